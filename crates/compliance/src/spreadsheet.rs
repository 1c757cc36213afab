//! CSV for people who open it in Excel: UTF-8 with a BOM (so Japanese reads correctly), CRLF
//! line ends, quoting by the `csv` crate, and no cell that a spreadsheet would run as a formula
//! (CSV injection: a value starting with `=`, `+`, `-`, `@`, tab or CR gets an apostrophe).

/// The cell as a spreadsheet should show it, never as a formula.
pub fn guarded(s: &str) -> std::borrow::Cow<'_, str> {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}").into()
    } else {
        s.into()
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
