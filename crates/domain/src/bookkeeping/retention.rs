//! How long a transaction document is kept, and when it must have been time-stamped.
//!
//! Retention (research §3.2): a corporation keeps 帳簿・書類, 電子取引データ included, for 7
//! years from the day after its filing deadline (法人税法施行規則 59条・67条), 10 years for a
//! business year with a 欠損金 carried forward (法人税法 57条; years from 2018-04-01); a
//! 医療法人 keeps its books and important documents 10 years from closing the books (医療法
//! 50条の2 ②); an individual (開業医) 7 years from the 確定申告 deadline of 3/15 (所得税法
//! 施行規則 63条・102条). The longest rule that applies wins: keeping longer is never wrong.

use serde::{Deserialize, Serialize};

use super::calendar::{self, Day};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LegalForm {
    /// 医療法人.
    #[default]
    MedicalCorporation,
    /// Another corporation (社会医療法人 is a 医療法人; a 株式会社 runs no clinic, but a
    /// 一般社団法人 may).
    Corporation,
    /// 個人 (an individual doctor's practice).
    Individual,
}

impl LegalForm {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MedicalCorporation => "medical_corporation",
            Self::Corporation => "corporation",
            Self::Individual => "individual",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "medical_corporation" => Some(Self::MedicalCorporation),
            "corporation" => Some(Self::Corporation),
            "individual" => Some(Self::Individual),
            _ => None,
        }
    }

    pub fn label_ja(self) -> &'static str {
        match self {
            Self::MedicalCorporation => "医療法人",
            Self::Corporation => "その他の法人",
            Self::Individual => "個人（開業医）",
        }
    }
}

/// What the facility sets once (settings page; defaults suit most 医療法人 on a 3月決算).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookkeepingSettings {
    pub legal_form: LegalForm,
    /// The month the business year ends (1–12); an individual's year always ends in December.
    pub fiscal_year_end_month: u32,
    /// Whether the corporation has the one-month extension of its filing deadline
    /// (申告期限の延長の特例).
    pub filing_extension: bool,
    /// Business years (named by the year they end in) with a 欠損金 carried forward.
    pub loss_years: Vec<i64>,
    /// The 事務処理規程's normal processing period before time-stamping, in months (0 = stamp
    /// 速やかに after receipt; at most 2).
    pub processing_months: u32,
}

impl Default for BookkeepingSettings {
    fn default() -> Self {
        Self {
            legal_form: LegalForm::MedicalCorporation,
            fiscal_year_end_month: 3,
            filing_extension: false,
            loss_years: Vec::new(),
            processing_months: 0,
        }
    }
}

impl BookkeepingSettings {
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if !(1..=12).contains(&self.fiscal_year_end_month) {
            return Err((
                "fiscal_year_end_month",
                "決算月は1〜12で指定してください".into(),
            ));
        }
        if self.processing_months > 2 {
            return Err((
                "processing_months",
                "事務処理規程の処理期間は最長2か月です（電子帳簿保存法施行規則4条1項2号）".into(),
            ));
        }
        if self.loss_years.iter().any(|y| !(1990..=2200).contains(y)) {
            return Err((
                "loss_years",
                "欠損金の事業年度の年が正しくありません".into(),
            ));
        }
        Ok(())
    }

    fn year_end_month(&self) -> u32 {
        match self.legal_form {
            LegalForm::Individual => 12,
            _ => self.fiscal_year_end_month,
        }
    }

    /// The last day of the business year `day` falls in.
    pub fn fiscal_year_end(&self, day: Day) -> Day {
        let end_month = self.year_end_month();
        let (y, m, _) = calendar::civil(day);
        let year = if m > end_month { y + 1 } else { y };
        calendar::end_of_month(calendar::ymd(year, end_month, 1))
    }

    /// The filing deadline of that business year.
    pub fn filing_deadline(&self, day: Day) -> Day {
        let end = self.fiscal_year_end(day);
        match self.legal_form {
            LegalForm::Individual => {
                let (y, _, _) = calendar::civil(end);
                calendar::ymd(y + 1, 3, 15)
            }
            _ => {
                let months = if self.filing_extension { 3 } else { 2 };
                calendar::end_of_month(calendar::add_months(end, months))
            }
        }
    }

    /// The last day a document of a transaction on `day` must still be kept.
    pub fn retention_until(&self, day: Day) -> Day {
        let end = self.fiscal_year_end(day);
        let start = self.filing_deadline(day) + 1;
        let (end_year, _, _) = calendar::civil(end);
        let loss = self.legal_form != LegalForm::Individual
            && self.loss_years.contains(&end_year)
            && end >= calendar::ymd(2019, 3, 31);
        let tax_years = if loss { 10 } else { 7 };
        let tax = calendar::add_months(start, 12 * tax_years) - 1;
        let medical = match self.legal_form {
            LegalForm::MedicalCorporation => calendar::add_months(end + 1, 120) - 1,
            _ => i64::MIN,
        };
        tax.max(medical)
    }

    /// The day by which a document received on `received` should carry its time-stamp: after
    /// the processing period (if the 事務処理規程 sets one), then about 7 business days.
    pub fn stamp_deadline(&self, received: Day) -> Day {
        let base = if self.processing_months == 0 {
            received
        } else {
            calendar::add_months(received, i64::from(self.processing_months))
        };
        calendar::add_business_days(base, 7)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use calendar::{format, ymd};

    #[test]
    fn retention_by_legal_form() {
        let mut s = BookkeepingSettings {
            legal_form: LegalForm::Corporation,
            ..Default::default()
        };
        // 3月決算, a transaction on 2026-05-10: year ends 2027-03-31, filing by 2027-05-31,
        // kept 7 years from 2027-06-01, so through 2034-05-31.
        let d = ymd(2026, 5, 10);
        assert_eq!(format(s.fiscal_year_end(d)), "2027-03-31");
        assert_eq!(format(s.filing_deadline(d)), "2027-05-31");
        assert_eq!(format(s.retention_until(d)), "2034-05-31");
        // With the filing extension one month later.
        s.filing_extension = true;
        assert_eq!(format(s.retention_until(d)), "2034-06-30");
        // A loss year: 10 years.
        s.filing_extension = false;
        s.loss_years = vec![2027];
        assert_eq!(format(s.retention_until(d)), "2037-05-31");
        // A 医療法人 keeps 10 years from closing the books (2027-04-01 … 2037-03-31), longer
        // than the tax rule's 7.
        s.loss_years.clear();
        s.legal_form = LegalForm::MedicalCorporation;
        assert_eq!(format(s.retention_until(d)), "2037-03-31");
        // An individual: calendar year, 確定申告 by 3/15, 7 years from 3/16.
        s.legal_form = LegalForm::Individual;
        assert_eq!(format(s.retention_until(d)), "2034-03-15");
        // 12月決算 corporation: a December transaction belongs to that year.
        let s = BookkeepingSettings {
            legal_form: LegalForm::Corporation,
            fiscal_year_end_month: 12,
            ..Default::default()
        };
        assert_eq!(format(s.fiscal_year_end(ymd(2026, 12, 31))), "2026-12-31");
        assert_eq!(format(s.retention_until(ymd(2026, 12, 31))), "2034-02-28");
    }

    #[test]
    fn stamp_deadlines() {
        let mut s = BookkeepingSettings::default();
        // Received Friday 2026-12-25: 7 business days skip the year-end break.
        // 12/28, then 1/4–1/8, then 1/12 (1/11 is 成人の日).
        assert_eq!(format(s.stamp_deadline(ymd(2026, 12, 25))), "2027-01-12");
        s.processing_months = 2;
        assert_eq!(format(s.stamp_deadline(ymd(2026, 1, 15))), "2026-03-25");
        assert!(s.validate().is_ok());
        s.processing_months = 3;
        assert_eq!(s.validate().unwrap_err().0, "processing_months");
    }
}
