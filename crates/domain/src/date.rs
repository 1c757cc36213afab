//! Calendar dates as mamori stores them: `YYYY-MM-DD` text, checked to be a real day.

/// Whether `s` is a real calendar date YYYY-MM-DD.
pub fn valid(s: &str) -> bool {
    days(s).is_some()
}

/// The number of days in month `m` (1–12) of year `y` (proleptic Gregorian).
pub fn days_in_month(y: i64, m: u32) -> u32 {
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    match m {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a YYYY-MM-DD date (proleptic Gregorian), checking the day exists.
pub fn days(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let digits = [0, 1, 2, 3, 5, 6, 8, 9]
        .iter()
        .all(|&i| b.get(i).is_some_and(u8::is_ascii_digit));
    // Only digits: `i64::from_str` alone would take "-026" or "+026" as a year (found by fuzzing).
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' || !digits {
        return None;
    }
    let y: i64 = s[..4].parse().ok()?;
    let m: i64 = s[5..7].parse().ok()?;
    let d: i64 = s[8..10].parse().ok()?;
    if !(1..=12).contains(&m) || d < 1 || d > i64::from(days_in_month(y, m as u32)) {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_days_only() {
        assert_eq!(days("1970-01-01"), Some(0));
        assert_eq!(days("2024-02-29"), Some(19_782));
        assert_eq!(days("2023-02-29"), None);
        assert_eq!(days("2026-13-01"), None);
        assert_eq!(days("2026-1-01"), None);
        assert!(valid("2000-02-29") && !valid("1900-02-29"));
        assert_eq!(days("-026-11-01"), None);
        assert_eq!(days("+026-11-01"), None);
        assert_eq!(days("2026-+1-01"), None);
    }
}
