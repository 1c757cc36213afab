use serde::{Deserialize, Serialize};

/// A kind of record (診療録, 処方箋, …) with its retention period. Facilities may add their own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordKind {
    pub code: String,
    pub name_ja: String,
    pub name_en: String,
    /// Years to keep after the record is complete (法定保存期間). Policy, not law: the
    /// facility may lengthen it.
    pub retention_years: u32,
}

/// The default kinds with the statutory minimum retention: 診療録 5 years (医師法24条),
/// other 療養の給付 records 3 years (療担規則9条), 諸記録 2 years (医療法施行規則20条),
/// rounded up to 3 where insurance practice applies.
pub fn default_kinds() -> Vec<RecordKind> {
    [
        ("medical_record", "診療録", "Medical record", 5),
        ("prescription", "処方箋", "Prescription", 3),
        ("lab_result", "検査結果", "Laboratory result", 3),
        ("imaging", "画像", "Imaging", 3),
        ("nursing", "看護記録", "Nursing record", 3),
        ("pharmacy", "薬剤管理指導記録", "Pharmacy record", 3),
        ("consent", "同意書", "Consent form", 5),
        ("referral", "紹介状", "Referral letter", 3),
        ("scan", "スキャン文書", "Scanned document", 5),
    ]
    .into_iter()
    .map(|(c, ja, en, y)| RecordKind {
        code: c.into(),
        name_ja: ja.into(),
        name_en: en.into(),
        retention_years: y,
    })
    .collect()
}

pub fn valid_kind_code(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= 40
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}
