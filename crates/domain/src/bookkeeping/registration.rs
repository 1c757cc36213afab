//! 適格請求書発行事業者の登録番号: `T` followed by 13 digits. A corporation's number is `T` and
//! its 法人番号, whose first digit is a check digit (法人番号の指定等に関する省令 第2条); a sole
//! proprietor's is a separately assigned number that is only format-checked.

use serde::{Deserialize, Serialize};

/// Whether the counterparty is a corporation (its number carries the 法人番号 check digit) or a
/// sole proprietor (format only), or not known (checked as a corporation's, since most are).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CounterpartyKind {
    #[default]
    Corporation,
    Individual,
}

impl CounterpartyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Corporation => "corporation",
            Self::Individual => "individual",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "corporation" | "" => Some(Self::Corporation),
            "individual" => Some(Self::Individual),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrationError {
    /// Not `T` + 13 digits.
    Format,
    /// A corporation's number whose check digit does not match its other twelve digits.
    CheckDigit { expected: u8, found: u8 },
}

impl RegistrationError {
    pub fn message_ja(&self) -> String {
        match self {
            Self::Format => "登録番号は「T」と13桁の数字です（例: T1180301018771）".into(),
            Self::CheckDigit { expected, found } => format!(
                "登録番号の検査用数字（Tの次の1桁）が一致しません（記載 {found}、計算上 {expected}）。法人番号の誤記の可能性があります"
            ),
        }
    }
}

/// The 法人番号 check digit of a 12-digit base number: 9 − (Σ Pₙ·Qₙ mod 9), where Pₙ is the
/// n-th digit counted from the right and Qₙ is 1 for odd n, 2 for even n.
pub fn check_digit(base: &[u8; 12]) -> u8 {
    let sum: u32 = base
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| u32::from(*d) * if i % 2 == 0 { 1 } else { 2 })
        .sum();
    9 - (sum % 9) as u8
}

/// Removes what people add when typing a number (spaces, hyphens, full-width forms) and
/// returns `T` + 13 digits if that is what is left.
pub fn normalise(input: &str) -> Option<String> {
    let mut out = String::with_capacity(14);
    for c in input.trim().chars() {
        let c = match c {
            '０'..='９' => char::from_u32(c as u32 - '０' as u32 + '0' as u32)?,
            'Ｔ' | 'ｔ' | 't' => 'T',
            ' ' | '-' | '－' | '　' => continue,
            c => c,
        };
        out.push(c);
    }
    let b = out.as_bytes();
    (b.len() == 14 && b[0] == b'T' && b[1..].iter().all(u8::is_ascii_digit)).then_some(out)
}

/// Checks a registration number: always its format, and for a corporation its check digit.
/// Returns the normalised number.
pub fn check(input: &str, kind: CounterpartyKind) -> Result<String, RegistrationError> {
    let n = normalise(input).ok_or(RegistrationError::Format)?;
    if kind == CounterpartyKind::Corporation {
        let digits: Vec<u8> = n.as_bytes()[1..].iter().map(|b| b - b'0').collect();
        let base: [u8; 12] = digits[1..].try_into().expect("12 digits");
        let expected = check_digit(&base);
        if digits[0] != expected {
            return Err(RegistrationError::CheckDigit {
                expected,
                found: digits[0],
            });
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_corporate_numbers_pass() {
        // Registration numbers and 法人番号 printed on real documents, and the worked example of
        // the check-digit explanation (7123456789012).
        for n in [
            "T1180301018771", // トヨタ自動車株式会社
            "T7010705000725", // 日本税理士会連合会 (its 登録番号)
            "T4011001098993",
            "T2120901007402",
            "T7123456789012",
        ] {
            let digits: Vec<u8> = n.as_bytes()[1..].iter().map(|b| b - b'0').collect();
            let base: [u8; 12] = digits[1..].try_into().unwrap();
            assert_eq!(check_digit(&base), digits[0], "{n}");
        }
        assert_eq!(
            check("T1180301018771", CounterpartyKind::Corporation).as_deref(),
            Ok("T1180301018771")
        );
    }

    #[test]
    fn the_formula_by_hand() {
        // 180301018771 from the right: 1·1 + 7·2 + 7·1 + 8·2 + 1·1 + 0·2 + 1·1 + 0·2 + 3·1
        // + 0·2 + 8·1 + 1·2 = 53; 53 mod 9 = 8; 9 − 8 = 1.
        assert_eq!(check_digit(&[1, 8, 0, 3, 0, 1, 0, 1, 8, 7, 7, 1]), 1);
        // A sum divisible by 9 gives 9, never 0.
        assert_eq!(check_digit(&[0; 12]), 9);
        assert_eq!(check_digit(&[2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 3]), 9);
    }

    #[test]
    fn wrong_check_digit_and_bad_format_are_refused() {
        // The placeholder in many sample invoices: its check digit would be 9.
        assert_eq!(
            check("T1234567890123", CounterpartyKind::Corporation),
            Err(RegistrationError::CheckDigit {
                expected: 9,
                found: 1
            })
        );
        // A sole proprietor's number is format-checked only.
        assert_eq!(
            check("T1234567890123", CounterpartyKind::Individual).as_deref(),
            Ok("T1234567890123")
        );
        for bad in [
            "",
            "T",
            "1180301018771",
            "T118030101877",
            "T11803010187710",
            "X1180301018771",
            "T11803O1018771",
        ] {
            assert_eq!(
                check(bad, CounterpartyKind::Individual),
                Err(RegistrationError::Format),
                "{bad}"
            );
        }
        assert!(RegistrationError::Format.message_ja().contains("13桁"));
    }

    #[test]
    fn typing_variants_are_normalised() {
        for typed in [
            "t1180301018771",
            " T1180-3010-1877-1 ",
            "Ｔ１１８０３０１０１８７７１",
        ] {
            assert_eq!(
                check(typed, CounterpartyKind::Corporation).as_deref(),
                Ok("T1180301018771"),
                "{typed}"
            );
        }
    }

    #[test]
    fn every_single_digit_error_is_caught() {
        // The weights 1 and 2 are both units mod 9, so changing any one base digit to another
        // value not congruent mod 9 changes the check digit.
        let good = *b"1180301018771";
        for pos in 1..13 {
            for d in b'0'..=b'9' {
                if d == good[pos] || (d as i32 - good[pos] as i32).abs() == 9 {
                    continue;
                }
                let mut n = good;
                n[pos] = d;
                let s = format!("T{}", std::str::from_utf8(&n).unwrap());
                assert!(
                    check(&s, CounterpartyKind::Corporation).is_err(),
                    "{s} passed"
                );
            }
        }
    }
}
