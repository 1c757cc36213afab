//! CSV for people who open it in Excel: UTF-8 with a BOM (so Japanese reads correctly), CRLF
//! line ends, quoting by the `csv` crate, and no cell that a spreadsheet would run as a formula
//! (CSV injection: a value starting with `=`, `+`, `-`, `@`, tab or CR gets an apostrophe).

/// Whether a spreadsheet could take the cell for a formula — or, after its leading
/// apostrophes, it reads as one that was guarded (so that guarding can be undone exactly).
fn needs_guard(s: &str) -> bool {
    s.starts_with(['=', '+', '-', '@', '\t', '\r']) || s.strip_prefix('\'').is_some_and(needs_guard)
}

/// The cell as a spreadsheet should show it, never as a formula.
pub fn guarded(s: &str) -> std::borrow::Cow<'_, str> {
    if needs_guard(s) {
        format!("'{s}").into()
    } else {
        s.into()
    }
}

/// The value a guarded cell stands for: the apostrophe [`guarded`] adds is taken off again
/// (as a spreadsheet does), so an exported file imports back unchanged.
pub fn unguarded(s: &str) -> &str {
    match s.strip_prefix('\'') {
        Some(rest) if needs_guard(rest) => rest,
        _ => s,
    }
}

/// A header row and the rows beneath it, every cell guarded.
pub fn csv<R, C>(head: &[&str], rows: impl IntoIterator<Item = R>) -> Vec<u8>
where
    R: IntoIterator<Item = C>,
    C: AsRef<str>,
{
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(vec![0xEF, 0xBB, 0xBF]);
    w.write_record(head).expect("in-memory write");
    for row in rows {
        let cells: Vec<String> = row
            .into_iter()
            .map(|c| guarded(c.as_ref()).into_owned())
            .collect();
        w.write_record(&cells).expect("in-memory write");
    }
    w.into_inner().expect("in-memory write")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guarded_cell_reads_back_as_it_was() {
        for v in [
            "-1", "=SUM(A1)", "+81 3", "@x", "'quoted", "'-kept?", "plain", "",
        ] {
            assert_eq!(unguarded(&guarded(v)), v, "{v}");
        }
    }

    #[test]
    fn cells_are_quoted_and_never_formulas() {
        let out = csv(
            &["a", "b"],
            [
                vec!["plain", "a,b"],
                vec!["say \"hi\"", "=HYPERLINK(\"x\")"],
                vec!["-1", "line\nbreak"],
            ],
        );
        assert_eq!(&out[..3], &[0xEF, 0xBB, 0xBF]);
        assert_eq!(
            String::from_utf8(out[3..].to_vec()).unwrap(),
            "a,b\r\nplain,\"a,b\"\r\n\"say \"\"hi\"\"\",\"'=HYPERLINK(\"\"x\"\")\"\r\n'-1,\"line\nbreak\"\r\n"
        );
    }
}
