//! Patient identity rules: the facility's patient ID, names in kanji and kana, birth date, sex.

use serde::{Deserialize, Serialize};

use crate::DomainError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sex {
    Male,
    Female,
    Other,
    Unknown,
}

impl Sex {
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        match s {
            "male" | "M" | "男" => Ok(Sex::Male),
            "female" | "F" | "女" => Ok(Sex::Female),
            "other" | "その他" => Ok(Sex::Other),
            "unknown" | "不明" => Ok(Sex::Unknown),
            _ => Err(DomainError::Invalid(
                "性別は male / female / other / unknown のいずれかです".into(),
            )),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Sex::Male => "male",
            Sex::Female => "female",
            Sex::Other => "other",
            Sex::Unknown => "unknown",
        }
    }
}

pub fn validate_patient_id(id: &str) -> Result<(), DomainError> {
    let ok =
        (1..=20).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(DomainError::Invalid(
            "患者IDは英数字と - で20文字以内にしてください".into(),
        ))
    }
}

fn is_space(c: char) -> bool {
    c == ' ' || c == '\u{3000}'
}

/// The search key for a kana name: hiragana folded to katakana, spaces removed.
pub fn kana_key(kana: &str) -> Option<String> {
    let mut out = String::with_capacity(kana.len());
    for c in kana.chars() {
        match c {
            c if is_space(c) => {}
            // ぁ..ゖ → ァ..ヶ
            '\u{3041}'..='\u{3096}' => out.push(char::from_u32(c as u32 + 0x60)?),
            '\u{30A1}'..='\u{30FA}' | 'ー' | '・' => out.push(c),
            _ => return None,
        }
    }
    (!out.is_empty()).then_some(out)
}

pub fn validate_names(kanji: &str, kana: &str) -> Result<String, DomainError> {
    let kanji = kanji.trim();
    if kanji.is_empty() || kanji.chars().count() > 100 {
        return Err(DomainError::Invalid(
            "氏名を100文字以内で入力してください".into(),
        ));
    }
    if kana.chars().any(|c| ('\u{FF65}'..='\u{FF9F}').contains(&c)) {
        return Err(DomainError::Invalid(
            "フリガナは全角カタカナかひらがなで入力してください".into(),
        ));
    }
    if kana.chars().count() > 100 {
        return Err(DomainError::Invalid(
            "フリガナは100文字以内にしてください".into(),
        ));
    }
    kana_key(kana).ok_or_else(|| {
        DomainError::Invalid("フリガナはカタカナかひらがなで入力してください".into())
    })
}

/// YYYY-MM-DD, a real date, not in the future relative to `today` (also YYYY-MM-DD).
pub fn validate_birth_date(date: &str, today: &str) -> Result<(), DomainError> {
    let err = || {
        DomainError::Invalid("生年月日は YYYY-MM-DD の形式で正しい日付を入力してください".into())
    };
    let year_ok = date
        .get(..4)
        .and_then(|y| y.parse::<u32>().ok())
        .is_some_and(|y| y >= 1850);
    if !year_ok || !crate::date::valid(date) {
        return Err(err());
    }
    if date > today {
        return Err(DomainError::Invalid("生年月日が未来の日付です".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kana_keys() {
        assert_eq!(kana_key("やまだ たろう").as_deref(), Some("ヤマダタロウ"));
        assert_eq!(kana_key("ヤマダ　タロウ").as_deref(), Some("ヤマダタロウ"));
        assert_eq!(kana_key("山田"), None);
        assert_eq!(kana_key("  "), None);
        assert!(validate_names("山田 太郎", "ﾔﾏﾀﾞ").is_err());
        assert!(validate_names("", "ヤマダ").is_err());
    }

    #[test]
    fn birth_dates() {
        assert!(validate_birth_date("2000-02-29", "2026-11-23").is_ok());
        assert!(validate_birth_date("2001-02-29", "2026-11-23").is_err());
        assert!(validate_birth_date("2030-01-01", "2026-11-23").is_err());
        assert!(validate_birth_date("20000101", "2026-11-23").is_err());
        assert!(validate_birth_date("2000-13-01", "2026-11-23").is_err());
    }

    #[test]
    fn ids() {
        assert!(validate_patient_id("P-000123").is_ok());
        assert!(validate_patient_id("").is_err());
        assert!(validate_patient_id("山田").is_err());
        assert!(validate_patient_id("a'; DROP TABLE").is_err());
    }
}
