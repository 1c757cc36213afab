//! 電子帳簿保存法 and インボイス制度: the rules for the clinic's electronic transaction documents
//! (電子取引データ) — what a document must carry, the registration-number and invoice checks,
//! business days and deadlines, retention, and reading JP PINT (Peppol UBL) e-invoices.
//! No I/O: the service stores, stamps and searches; everything decided is decided here.

pub mod calendar;
pub mod invoice;
pub mod registration;
pub mod registry;
pub mod retention;
pub mod ubl;

use serde::{Deserialize, Serialize};

pub use invoice::{Check, checks};
pub use registration::CounterpartyKind;
pub use retention::{BookkeepingSettings, LegalForm};

/// The kinds of transaction document (取引関係書類) the law names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DocType {
    #[default]
    Invoice,
    Receipt,
    Quotation,
    Contract,
    Delivery,
    Order,
    Other,
}

impl DocType {
    pub const ALL: [DocType; 7] = [
        DocType::Invoice,
        DocType::Receipt,
        DocType::Quotation,
        DocType::Contract,
        DocType::Delivery,
        DocType::Order,
        DocType::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Invoice => "invoice",
            Self::Receipt => "receipt",
            Self::Quotation => "quotation",
            Self::Contract => "contract",
            Self::Delivery => "delivery",
            Self::Order => "order",
            Self::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    pub fn label_ja(self) -> &'static str {
        match self {
            Self::Invoice => "請求書",
            Self::Receipt => "領収書",
            Self::Quotation => "見積書",
            Self::Contract => "契約書",
            Self::Delivery => "納品書",
            Self::Order => "注文書",
            Self::Other => "その他",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    #[default]
    Received,
    Issued,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Received => "received",
            Self::Issued => "issued",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "received" => Some(Self::Received),
            "issued" => Some(Self::Issued),
            _ => None,
        }
    }

    pub fn label_ja(self) -> &'static str {
        match self {
            Self::Received => "受領",
            Self::Issued => "発行",
        }
    }
}

/// Which インボイス rules a document is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceKind {
    /// 適格請求書.
    Qualified,
    /// 適格簡易請求書 (retail, taxis: the recipient may be omitted, tax or rate).
    Simplified,
    /// 適格返還請求書 (returns and discounts).
    Return,
}

impl InvoiceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Qualified => "qualified",
            Self::Simplified => "simplified",
            Self::Return => "return",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "qualified" => Some(Self::Qualified),
            "simplified" => Some(Self::Simplified),
            "return" => Some(Self::Return),
            _ => None,
        }
    }

    pub fn label_ja(self) -> &'static str {
        match self {
            Self::Qualified => "適格請求書",
            Self::Simplified => "適格簡易請求書",
            Self::Return => "適格返還請求書",
        }
    }
}

/// The amounts of one tax rate on an invoice: the base (税抜 or 税込, as the invoice states
/// it) and the tax the invoice states for that rate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateAmount {
    /// Percent: 10, 8 (軽減税率), 0 (非課税・免税).
    pub rate: u32,
    pub base: i64,
    #[serde(default)]
    pub tax: Option<i64>,
}

/// What is recorded about a transaction document: the three search fields (取引年月日,
/// 取引金額, 取引先) and what the インボイス checks need. Any field may be empty (a document
/// is kept even when it does not say).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct DocumentFields {
    #[serde(default)]
    pub doc_type: DocType,
    #[serde(default)]
    pub direction: Direction,
    /// 取引年月日, YYYY-MM-DD.
    #[serde(default)]
    pub transaction_date: Option<String>,
    /// 取引金額 in yen (税込 where the document states it).
    #[serde(default)]
    pub amount: Option<i64>,
    /// 取引先 (the issuer of a received document, the recipient of an issued one).
    #[serde(default)]
    pub counterparty: Option<String>,
    #[serde(default)]
    pub counterparty_kind: CounterpartyKind,
    /// 登録番号 of the invoice's issuer.
    #[serde(default)]
    pub registration_number: Option<String>,
    /// The day a received document arrived (受領日), YYYY-MM-DD.
    #[serde(default)]
    pub received_on: Option<String>,
    /// The document's own number (請求書番号).
    #[serde(default)]
    pub document_number: Option<String>,
    #[serde(default)]
    pub invoice_kind: Option<InvoiceKind>,
    /// 書類の交付を受ける事業者の氏名又は名称.
    #[serde(default)]
    pub recipient: Option<String>,
    /// 取引内容.
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub rates: Vec<RateAmount>,
    /// Whether `rates[].base` include the tax (税込).
    #[serde(default)]
    pub amounts_include_tax: bool,
}

/// A refused field, named so the form can show the message beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

fn err(field: &'static str, message: impl Into<String>) -> FieldError {
    FieldError {
        field,
        message: message.into(),
    }
}

/// Whole yen as people type them: full-width digits, thousands separators and 円 allowed,
/// a sign kept (the range is the caller's to check). `Ok(None)` for nothing typed.
pub fn parse_yen(text: &str) -> Result<Option<i64>, std::num::ParseIntError> {
    let t: String = text
        .trim()
        .chars()
        .filter(|c| !matches!(c, ',' | '，' | '円' | ' ' | '　'))
        .map(|c| match c {
            '０'..='９' => char::from_u32(c as u32 - '０' as u32 + '0' as u32).unwrap_or(c),
            'ー' | '－' | '−' => '-',
            c => c,
        })
        .collect();
    if t.is_empty() {
        return Ok(None);
    }
    t.parse().map(Some)
}

/// The largest amount accepted (1 兆円): larger is a typing mistake, and sums stay in i64.
pub const MAX_AMOUNT: i64 = 1_000_000_000_000;

fn clean(v: &mut Option<String>, field: &'static str, max_chars: usize) -> Result<(), FieldError> {
    if let Some(s) = v.as_mut() {
        let t = s.trim();
        if t.is_empty() {
            *v = None;
            return Ok(());
        }
        if t.chars().count() > max_chars {
            return Err(err(field, format!("{max_chars}文字以内で入力してください")));
        }
        if t.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
            return Err(err(field, "制御文字は使えません"));
        }
        *s = t.to_owned();
    }
    Ok(())
}

fn check_date(
    v: &Option<String>,
    field: &'static str,
    label: &str,
    today: calendar::Day,
) -> Result<(), FieldError> {
    let Some(s) = v else { return Ok(()) };
    let day = calendar::parse(s).ok_or_else(|| {
        err(
            field,
            format!("{label}は YYYY-MM-DD の実在する日付で入力してください"),
        )
    })?;
    if day > today {
        return Err(err(field, format!("{label}が未来の日付です")));
    }
    if day < calendar::ymd(1990, 1, 1) {
        return Err(err(field, format!("{label}が古すぎます（1990年以降）")));
    }
    Ok(())
}

fn check_amount(v: Option<i64>, field: &'static str, label: &str) -> Result<(), FieldError> {
    match v {
        Some(a) if a < 0 => Err(err(
            field,
            format!("{label}は0以上で入力してください（返品・値引きは適格返還請求書として登録）"),
        )),
        Some(a) if a > MAX_AMOUNT => Err(err(field, format!("{label}が大きすぎます"))),
        _ => Ok(()),
    }
}

impl DocumentFields {
    /// Cleans and checks what a person or a parser supplied. `today` bounds the dates; a
    /// corporation's registration number with a wrong check digit is refused unless
    /// `as_printed` says the document really carries it (then it is kept and the check shows
    /// the failure).
    pub fn validate(&mut self, today: calendar::Day, as_printed: bool) -> Result<(), FieldError> {
        clean(&mut self.transaction_date, "transaction_date", 10)?;
        clean(&mut self.received_on, "received_on", 10)?;
        clean(&mut self.counterparty, "counterparty", 200)?;
        clean(&mut self.registration_number, "registration_number", 40)?;
        clean(&mut self.document_number, "document_number", 100)?;
        clean(&mut self.recipient, "recipient", 200)?;
        clean(&mut self.description, "description", 2000)?;
        check_date(
            &self.transaction_date,
            "transaction_date",
            "取引年月日",
            today,
        )?;
        check_date(&self.received_on, "received_on", "受領日", today)?;
        check_amount(self.amount, "amount", "取引金額")?;
        if let Some(n) = &self.registration_number {
            match registration::check(n, self.counterparty_kind) {
                Ok(norm) => self.registration_number = Some(norm),
                Err(registration::RegistrationError::CheckDigit { .. }) if as_printed => {
                    self.registration_number = registration::normalise(n);
                }
                Err(e) => return Err(err("registration_number", e.message_ja())),
            }
        }
        if self.rates.len() > 8 {
            return Err(err("rates", "税率ごとの金額が多すぎます"));
        }
        let mut seen = Vec::new();
        for r in &self.rates {
            if r.rate > 100 {
                return Err(err("rates", format!("税率 {}% は正しくありません", r.rate)));
            }
            if seen.contains(&r.rate) {
                return Err(err(
                    "rates",
                    format!("税率 {}% が二度あります（税率ごとに一行）", r.rate),
                ));
            }
            seen.push(r.rate);
            check_amount(Some(r.base), "rates", "税率ごとの対価の額")?;
            check_amount(r.tax, "rates", "税率ごとの消費税額")?;
        }
        Ok(())
    }

    /// The day a received document's time-stamp is due, if it says when it arrived.
    pub fn stamp_deadline(&self, settings: &BookkeepingSettings) -> Option<calendar::Day> {
        if self.direction != Direction::Received {
            return None;
        }
        let received = self.received_on.as_deref().and_then(calendar::parse)?;
        Some(settings.stamp_deadline(received))
    }

    /// The last day the document must be kept (from the transaction date, or the day it was
    /// received or registered when the document gives none).
    pub fn retention_until(
        &self,
        settings: &BookkeepingSettings,
        registered_on: calendar::Day,
    ) -> calendar::Day {
        let day = self
            .transaction_date
            .as_deref()
            .or(self.received_on.as_deref())
            .and_then(calendar::parse)
            .unwrap_or(registered_on);
        settings.retention_until(day)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> calendar::Day {
        calendar::ymd(2026, 12, 5)
    }

    #[test]
    fn bad_fields_are_named() {
        type Change = Box<dyn Fn(&mut DocumentFields)>;
        let cases: Vec<(Change, &str)> = vec![
            (
                Box::new(|f| f.transaction_date = Some("2026-13-01".into())),
                "transaction_date",
            ),
            (
                Box::new(|f| f.transaction_date = Some("2026-12-06".into())),
                "transaction_date",
            ),
            (
                Box::new(|f| f.received_on = Some("2099-01-01".into())),
                "received_on",
            ),
            (Box::new(|f| f.amount = Some(-1)), "amount"),
            (Box::new(|f| f.amount = Some(MAX_AMOUNT + 1)), "amount"),
            (
                Box::new(|f| f.registration_number = Some("T1234567890123".into())),
                "registration_number",
            ),
            (
                Box::new(|f| f.registration_number = Some("12345".into())),
                "registration_number",
            ),
            (
                Box::new(|f| f.counterparty = Some("あ".repeat(201))),
                "counterparty",
            ),
            (
                Box::new(|f| {
                    f.rates = vec![
                        RateAmount {
                            rate: 10,
                            base: 1,
                            tax: None,
                        },
                        RateAmount {
                            rate: 10,
                            base: 2,
                            tax: None,
                        },
                    ]
                }),
                "rates",
            ),
            (
                Box::new(|f| {
                    f.rates = vec![RateAmount {
                        rate: 10,
                        base: -5,
                        tax: None,
                    }]
                }),
                "rates",
            ),
        ];
        for (change, field) in cases {
            let mut f = DocumentFields::default();
            change(&mut f);
            let e = f.validate(today(), false).unwrap_err();
            assert_eq!(e.field, field, "{}", e.message);
            assert!(!e.message.is_empty());
        }
    }

    #[test]
    fn yen_as_typed() {
        assert_eq!(parse_yen("１２，１００円").ok(), Some(Some(12_100)));
        assert_eq!(parse_yen(" 1,000 ").ok(), Some(Some(1_000)));
        assert_eq!(parse_yen("－5").ok(), Some(Some(-5)));
        assert_eq!(parse_yen("").ok(), Some(None));
        assert!(parse_yen("abc").is_err());
    }

    #[test]
    fn a_wrong_check_digit_is_kept_as_printed_when_asked() {
        let mut f = DocumentFields {
            registration_number: Some(" t1234567890123 ".into()),
            counterparty: Some("  〇〇商事 ".into()),
            description: Some("   ".into()),
            ..Default::default()
        };
        f.validate(today(), true).unwrap();
        assert_eq!(f.registration_number.as_deref(), Some("T1234567890123"));
        assert_eq!(f.counterparty.as_deref(), Some("〇〇商事"));
        assert_eq!(f.description, None);
    }

    #[test]
    fn deadlines_and_retention_follow_the_settings() {
        let s = BookkeepingSettings::default();
        let mut f = DocumentFields {
            received_on: Some("2026-11-02".into()),
            transaction_date: Some("2026-10-31".into()),
            ..Default::default()
        };
        assert_eq!(
            calendar::format(f.stamp_deadline(&s).unwrap()),
            "2026-11-12",
            "11/3 is 文化の日"
        );
        // A 医療法人 on a 3月決算: the year ends 2027-03-31, kept through 2037-03-31.
        assert_eq!(
            calendar::format(f.retention_until(&s, today())),
            "2037-03-31"
        );
        f.direction = Direction::Issued;
        assert_eq!(f.stamp_deadline(&s), None);
    }
}

/// The form of a counterparty's name the search compares: full-width letters, digits and
/// spaces folded to ASCII, lower case, spaces and the usual corporate-form marks removed, so
/// 「株式会社 ＡＢＣ商事」, 「ABC商事」 and 「(株)abc商事」 all contain 「abc商事」.
pub fn search_key(name: &str) -> String {
    let folded: String = name
        .chars()
        .filter_map(|c| {
            let c = match c {
                '\u{ff01}'..='\u{ff5e}' => char::from_u32(c as u32 - 0xfee0)?,
                c => c,
            };
            (!c.is_whitespace()).then(|| c.to_ascii_lowercase())
        })
        .collect();
    let mut out = folded;
    for mark in [
        "株式会社",
        "有限会社",
        "合同会社",
        "医療法人社団",
        "医療法人財団",
        "医療法人",
        "(株)",
        "(有)",
        "㈱",
        "㈲",
    ] {
        out = out.replace(mark, "");
    }
    out
}

#[cfg(test)]
mod search_key_tests {
    use super::search_key;

    #[test]
    fn names_fold_to_one_key() {
        for n in [
            "株式会社 ＡＢＣ商事",
            "ABC商事",
            "(株)abc商事",
            "㈱ ＡＢＣ 商事",
        ] {
            assert_eq!(search_key(n), "abc商事", "{n}");
        }
        assert!(search_key("医療材料株式会社 東京支店").contains("医療材料"));
    }
}
