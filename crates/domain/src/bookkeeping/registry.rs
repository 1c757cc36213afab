//! The NTA 適格請求書発行事業者公表サイト's downloadable data (CSV, UTF-8, no header), imported
//! offline: whether a registration number was registered — and not cancelled (取消) or lapsed
//! (失効) — on a transaction's date. mamori never calls the NTA; the operator downloads the
//! 全件 or 差分 file and imports it.
//!
//! Columns used (the site's published layout): 1 registratedNumber (without `T` or with),
//! 2 process (01 new, 11 changed, 21 removed from publication…), 4 kind (1 個人, 2 法人,
//! 3 人格のない社団等), 6 latest (1 = the latest history of the number), 7 registrationDate,
//! 9 disposalDate (取消), 10 expireDate (失効), 18 name.

use sha2::{Digest, Sha256};

use super::invoice::Check;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryEntry {
    pub number: String,
    pub kind: String,
    pub name: String,
    pub registered_on: String,
    pub cancelled_on: Option<String>,
    pub lapsed_on: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryChange {
    Upsert(RegistryEntry),
    Remove(String),
}

fn date_or_none(s: &str, line: usize, what: &str) -> Result<Option<String>, String> {
    let t = s.trim();
    if t.is_empty() {
        return Ok(None);
    }
    if crate::date::valid(t) {
        Ok(Some(t.to_owned()))
    } else {
        Err(format!(
            "{line} 行目: {what}「{}」が日付（YYYY-MM-DD）ではありません",
            t.chars().take(20).collect::<String>()
        ))
    }
}

/// Reads a 公表サイト CSV. A file that is not one (too few columns, a bad number or date) is
/// refused whole, naming the line.
pub fn parse_csv(bytes: &[u8]) -> Result<Vec<RegistryChange>, String> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    if std::str::from_utf8(bytes).is_err() {
        return Err("UTF-8 の CSV ではありません（公表サイトの CSV 形式（Unicode）をダウンロードし、zip を展開して指定してください）".into());
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut out = Vec::new();
    for (i, rec) in reader.records().enumerate() {
        let line = i + 1;
        let rec = rec.map_err(|e| format!("{line} 行目を読めません: {e}"))?;
        if rec.len() < 19 {
            return Err(format!(
                "{line} 行目: 列が {} しかありません（公表サイトの CSV は30列）",
                rec.len()
            ));
        }
        let raw = rec[1].trim();
        let digits = raw.strip_prefix('T').unwrap_or(raw);
        if digits.len() != 13 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "{line} 行目: 登録番号「{}」が T＋13桁ではありません",
                raw.chars().take(20).collect::<String>()
            ));
        }
        let number = format!("T{digits}");
        if rec[2].trim() == "21" {
            out.push(RegistryChange::Remove(number));
            continue;
        }
        if !matches!(rec[6].trim(), "1" | "") {
            continue;
        }
        let registered_on = date_or_none(&rec[7], line, "登録年月日")?
            .ok_or_else(|| format!("{line} 行目: 登録年月日がありません"))?;
        out.push(RegistryChange::Upsert(RegistryEntry {
            number,
            kind: rec[4].trim().to_owned(),
            name: rec[18].trim().chars().take(300).collect(),
            registered_on,
            cancelled_on: date_or_none(&rec[9], line, "取消年月日")?,
            lapsed_on: date_or_none(&rec[10], line, "失効年月日")?,
        }));
    }
    if out.is_empty() {
        return Err("登録番号の行がありません".into());
    }
    Ok(out)
}

/// The digest the import states in the ledger and `verify` recomputes: over every entry,
/// ordered by number.
pub fn digest<'a>(entries: impl Iterator<Item = &'a RegistryEntry>) -> String {
    let mut h = Sha256::new();
    for e in entries {
        for part in [
            e.number.as_str(),
            &e.kind,
            &e.name,
            &e.registered_on,
            e.cancelled_on.as_deref().unwrap_or(""),
            e.lapsed_on.as_deref().unwrap_or(""),
        ] {
            h.update(part.as_bytes());
            h.update([0x1f]);
        }
        h.update([0x1e]);
    }
    hex::encode(h.finalize())
}

/// Whether the number was registered on `date` by the imported data (`imported_on`: when).
pub fn check(entry: Option<&RegistryEntry>, date: Option<&str>, imported_on: &str) -> Check {
    let source = format!("公表サイトのデータ（{imported_on} 取込）");
    let make = |ok: bool, message: String| Check {
        code: "registry".into(),
        ok,
        message,
    };
    let Some(e) = entry else {
        return make(false, format!("{source}にこの登録番号はありません"));
    };
    let Some(date) = date else {
        return make(
            true,
            format!(
                "{source}に登録あり（{}、登録日 {}）。取引年月日がないため取引日時点は未確認",
                e.name, e.registered_on
            ),
        );
    };
    if date < e.registered_on.as_str() {
        return make(
            false,
            format!(
                "{source}では取引日 {date} には未登録（登録日 {}）",
                e.registered_on
            ),
        );
    }
    for (end, what) in [(&e.cancelled_on, "取消"), (&e.lapsed_on, "失効")] {
        if let Some(end) = end
            && date >= end.as_str()
        {
            return make(
                false,
                format!("{source}では取引日 {date} には{what}済み（{what}日 {end}）"),
            );
        }
    }
    make(
        true,
        format!("{source}で取引日 {date} に登録されている（{}）", e.name),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(
        number: &str,
        process: &str,
        latest: &str,
        reg: &str,
        cancel: &str,
        lapse: &str,
        name: &str,
    ) -> String {
        let mut cols = vec![String::new(); 30];
        cols[0] = "1".into();
        cols[1] = number.into();
        cols[2] = process.into();
        cols[3] = "0".into();
        cols[4] = "2".into();
        cols[5] = "1".into();
        cols[6] = latest.into();
        cols[7] = reg.into();
        cols[8] = reg.into();
        cols[9] = cancel.into();
        cols[10] = lapse.into();
        cols[18] = format!("\"{name}\"");
        cols.join(",")
    }

    #[test]
    fn reads_the_published_layout_and_answers_for_a_date() {
        let csv = [
            row(
                "T1180301018771",
                "01",
                "1",
                "2023-10-01",
                "",
                "",
                "トヨタ自動車株式会社",
            ),
            row(
                "4011001098993",
                "11",
                "1",
                "2023-10-01",
                "2025-06-30",
                "",
                "株式会社 A, B",
            ),
            row(
                "T2120901007402",
                "11",
                "0",
                "2023-10-01",
                "",
                "",
                "old history",
            ),
            row("T7010705000725", "21", "1", "", "", "", ""),
        ]
        .join("\n");
        let changes = parse_csv(csv.as_bytes()).unwrap();
        assert_eq!(changes.len(), 3, "the non-latest history is skipped");
        let RegistryChange::Upsert(toyota) = &changes[0] else {
            panic!()
        };
        let RegistryChange::Upsert(a) = &changes[1] else {
            panic!()
        };
        assert_eq!(a.number, "T4011001098993");
        assert_eq!(a.name, "株式会社 A, B");
        assert_eq!(changes[2], RegistryChange::Remove("T7010705000725".into()));
        assert!(check(Some(toyota), Some("2026-11-30"), "2026-12-01").ok);
        assert!(!check(Some(toyota), Some("2023-09-30"), "2026-12-01").ok);
        let c = check(Some(a), Some("2025-07-01"), "2026-12-01");
        assert!(!c.ok && c.message.contains("取消済み"), "{}", c.message);
        assert!(check(Some(a), Some("2025-06-29"), "2026-12-01").ok);
        assert!(!check(None, Some("2025-06-29"), "2026-12-01").ok);
        // The digest changes with any field.
        let d = digest([toyota.clone(), a.clone()].iter());
        let mut a2 = a.clone();
        a2.cancelled_on = None;
        assert_ne!(d, digest([toyota.clone(), a2].iter()));
    }

    #[test]
    fn a_file_that_is_not_the_published_data_is_refused_by_line() {
        assert!(parse_csv(b"a,b,c\n").unwrap_err().contains("1 行目"));
        let bad_number = row("T12345", "01", "1", "2023-10-01", "", "", "x");
        assert!(
            parse_csv(bad_number.as_bytes())
                .unwrap_err()
                .contains("T＋13桁")
        );
        let bad_date = row("T1180301018771", "01", "1", "2023/10/01", "", "", "x");
        assert!(
            parse_csv(bad_date.as_bytes())
                .unwrap_err()
                .contains("登録年月日")
        );
        assert!(parse_csv(b"\xff\xfe").unwrap_err().contains("UTF-8"));
        assert!(parse_csv(b"").unwrap_err().contains("ありません"));
    }
}
