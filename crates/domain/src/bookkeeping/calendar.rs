//! Japanese calendar arithmetic for tax deadlines: national holidays (国民の祝日に関する法律,
//! including 振替休日 and 国民の休日), business days, and months.
//!
//! A business day (営業日) here is a weekday that is neither a national holiday nor in the
//! year-end break 12/29–1/3 (the days 行政機関の休日に関する法律 closes offices), which is how
//! the NTA's "おおむね7営業日" is usually counted; a facility whose own days differ still gets
//! a deadline on the safe side of most calendars.

/// A calendar day as days since 1970-01-01.
pub type Day = i64;

/// The calendar day in Japan (UTC+9, no daylight saving) of a moment in ms since the epoch.
pub fn jst_day(ms: crate::Millis) -> Day {
    (ms + 9 * 3_600_000).div_euclid(86_400_000)
}

/// The YYYY-MM-DD text of a day.
pub fn format(day: Day) -> String {
    let (y, m, d) = civil(day);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Parses YYYY-MM-DD (a real day).
pub fn parse(s: &str) -> Option<Day> {
    crate::date::days(s)
}

/// (year, month, day) of a day (Howard Hinnant's civil_from_days).
pub fn civil(day: Day) -> (i64, u32, u32) {
    let z = day + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

pub fn ymd(y: i64, m: u32, d: u32) -> Day {
    parse(&format!("{y:04}-{m:02}-{d:02}")).expect("a real day")
}

/// 0 = Monday … 6 = Sunday.
pub fn weekday(day: Day) -> u32 {
    (day + 3).rem_euclid(7) as u32
}

/// The last day of the month `day` is in.
pub fn end_of_month(day: Day) -> Day {
    let (y, m, _) = civil(day);
    ymd(y, m, crate::date::days_in_month(y, m))
}

/// `day` moved by `months` calendar months, clamped to the end of a shorter month
/// (1/31 + 1 month = 2/28 or 2/29).
pub fn add_months(day: Day, months: i64) -> Day {
    let (y, m, d) = civil(day);
    let total = y * 12 + i64::from(m - 1) + months;
    let (ny, nm) = (total.div_euclid(12), (total.rem_euclid(12) + 1) as u32);
    ymd(ny, nm, d.min(crate::date::days_in_month(ny, nm)))
}

/// The n-th Monday of a month.
fn nth_monday(y: i64, m: u32, n: u32) -> u32 {
    let first = weekday(ymd(y, m, 1));
    1 + (7 - first) % 7 + 7 * (n - 1)
}

/// 春分日 and 秋分日 by the usual approximation, valid 1980–2099 (the dates the Cabinet
/// announces each February have matched it every year so far).
fn equinoxes(y: i64) -> (u32, u32) {
    let t = (y - 1980) as f64;
    let leap_shift = ((y - 1980) / 4) as f64;
    let spring = (20.8431 + 0.242194 * t - leap_shift).floor() as u32;
    let autumn = (23.2488 + 0.242194 * t - leap_shift).floor() as u32;
    (spring, autumn)
}

/// The holidays a law names for a date (before 振替休日 and 国民の休日 are added).
fn named_holiday(y: i64, m: u32, d: u32) -> bool {
    let (spring, autumn) = equinoxes(y);
    match (m, d) {
        (1, 1) | (2, 11) | (4, 29) | (5, 3) | (5, 4) | (5, 5) | (11, 3) | (11, 23) => true,
        (1, _) => d == nth_monday(y, 1, 2),
        (2, 23) => y >= 2020,
        (12, 23) => (1989..=2018).contains(&y),
        (3, _) => d == spring,
        (9, _) => d == autumn || d == nth_monday(y, 9, 3),
        // 2019: the enthronement (5/1 and 10/22).
        (5, 1) | (10, 22) => y == 2019,
        // The Olympic years moved 海の日, スポーツの日 and 山の日.
        (7, _) if y == 2020 => d == 23 || d == 24,
        (7, _) if y == 2021 => d == 22 || d == 23,
        (7, _) => d == nth_monday(y, 7, 3),
        (8, _) if y == 2020 => d == 10,
        (8, _) if y == 2021 => d == 8,
        (8, 11) => y >= 2016,
        (10, _) if y == 2020 || y == 2021 => false,
        (10, _) => d == nth_monday(y, 10, 2),
        _ => false,
    }
}

/// Whether `day` is a national holiday (祝日, 振替休日 or 国民の休日).
pub fn is_holiday(day: Day) -> bool {
    let (y, m, d) = civil(day);
    if named_holiday(y, m, d) {
        return true;
    }
    let named = |x: Day| {
        let (y, m, d) = civil(x);
        named_holiday(y, m, d)
    };
    // 振替休日: the first day after a Sunday holiday that is not a holiday itself.
    let mut back = day - 1;
    while named(back) {
        if weekday(back) == 6 {
            return true;
        }
        back -= 1;
    }
    // 国民の休日: a weekday between two holidays.
    weekday(day) != 6 && named(day - 1) && named(day + 1)
}

/// Whether `day` is a business day (see the module comment).
pub fn is_business_day(day: Day) -> bool {
    let (_, m, d) = civil(day);
    let year_end = (m == 12 && d >= 29) || (m == 1 && d <= 3);
    weekday(day) < 5 && !is_holiday(day) && !year_end
}

/// The `n`-th business day after `day`.
pub fn add_business_days(day: Day, n: u32) -> Day {
    let mut d = day;
    let mut left = n;
    while left > 0 {
        d += 1;
        if is_business_day(d) {
            left -= 1;
        }
    }
    d
}

/// Business days after `from` up to and including `to` (0 when `to` is not after `from`).
pub fn business_days_between(from: Day, to: Day) -> u32 {
    (from + 1..=to).filter(|d| is_business_day(*d)).count() as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holidays(y: i64) -> Vec<String> {
        (ymd(y, 1, 1)..=ymd(y, 12, 31))
            .filter(|d| is_holiday(*d))
            .map(|d| format(d)[5..].to_owned())
            .collect()
    }

    #[test]
    fn the_cabinet_office_lists() {
        // 内閣府「国民の祝日について」, the published lists for 2024–2026.
        assert_eq!(
            holidays(2024),
            [
                "01-01", "01-08", "02-11", "02-12", "02-23", "03-20", "04-29", "05-03", "05-04",
                "05-05", "05-06", "07-15", "08-11", "08-12", "09-16", "09-22", "09-23", "10-14",
                "11-03", "11-04", "11-23"
            ]
        );
        assert_eq!(
            holidays(2025),
            [
                "01-01", "01-13", "02-11", "02-23", "02-24", "03-20", "04-29", "05-03", "05-04",
                "05-05", "05-06", "07-21", "08-11", "09-15", "09-23", "10-13", "11-03", "11-23",
                "11-24"
            ]
        );
        assert_eq!(
            holidays(2026),
            [
                "01-01", "01-12", "02-11", "02-23", "03-20", "04-29", "05-03", "05-04", "05-05",
                "05-06", "07-20", "08-11", "09-21", "09-22", "09-23", "10-12", "11-03", "11-23"
            ]
        );
        // 2019 and 2020 had their special days.
        assert!(holidays(2019).contains(&"10-22".to_owned()));
        assert!(holidays(2020).contains(&"07-24".to_owned()));
        assert!(!holidays(2020).contains(&"10-12".to_owned()));
    }

    #[test]
    fn days_round_trip() {
        for day in -1000..30_000 {
            let (y, m, d) = civil(day);
            assert_eq!(ymd(y, m, d), day);
        }
        assert_eq!(weekday(ymd(2026, 12, 5)), 5, "a Saturday");
        assert_eq!(format(add_months(ymd(2024, 1, 31), 1)), "2024-02-29");
        assert_eq!(format(add_months(ymd(2026, 11, 30), 3)), "2027-02-28");
        assert_eq!(format(end_of_month(ymd(2026, 2, 3))), "2026-02-28");
    }

    #[test]
    fn business_days_skip_weekends_holidays_and_the_year_end() {
        // Friday 2026-05-01 + 1: the Golden Week (5/2 Sat … 5/6 振替休日) is skipped.
        assert_eq!(format(add_business_days(ymd(2026, 5, 1), 1)), "2026-05-07");
        // 2026-12-25 (Fri) + 2: 12/28, then 1/4 (12/29–1/3 closed).
        assert_eq!(
            format(add_business_days(ymd(2026, 12, 25), 2)),
            "2027-01-04"
        );
        assert_eq!(business_days_between(ymd(2026, 5, 1), ymd(2026, 5, 8)), 2);
        assert_eq!(business_days_between(ymd(2026, 5, 8), ymd(2026, 5, 1)), 0);
    }
}
