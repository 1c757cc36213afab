//! The インボイス checks of a received invoice: its issuer's registration number, the items an
//! 適格請求書 (or 適格簡易請求書, 適格返還請求書) must carry (消費税法 57条の4), and the tax of
//! each rate recomputed with one rounding per rate per invoice (消費税法施行令 70条の10).
//! A failed check is shown as it is; nothing is corrected.

use serde::Serialize;

use super::registration::{self, CounterpartyKind};
use super::{DocumentFields, InvoiceKind};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// `registration`, `required_items`, `tax_rate_10`, `total`.
    pub code: String,
    pub ok: bool,
    pub message: String,
}

fn check(code: impl Into<String>, ok: bool, message: impl Into<String>) -> Check {
    Check {
        code: code.into(),
        ok,
        message: message.into(),
    }
}

/// Yen with thousands separators.
pub fn yen(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}円")
    } else {
        format!("{out}円")
    }
}

/// The tax of `base` at `rate` percent, rounded down and up (the issuer chooses 切り捨て,
/// 切り上げ or 四捨五入, once per rate; any of them lies between the two).
pub fn tax_bounds(base: i64, rate: u32, included: bool) -> (i64, i64) {
    let (num, den) = if included {
        (i128::from(base) * i128::from(rate), 100 + i128::from(rate))
    } else {
        (i128::from(base) * i128::from(rate), 100)
    };
    let floor = num.div_euclid(den);
    let ceil = floor + i128::from(num.rem_euclid(den) != 0);
    (floor as i64, ceil as i64)
}

/// The items the kind of invoice must carry that `f` lacks, by their names in the law.
pub fn missing_items(kind: InvoiceKind, f: &DocumentFields) -> Vec<&'static str> {
    let mut missing = Vec::new();
    if f.registration_number.is_none() {
        missing.push("登録番号");
    }
    if f.counterparty.is_none() {
        missing.push("発行事業者の氏名又は名称");
    }
    if f.transaction_date.is_none() {
        missing.push(if kind == InvoiceKind::Return {
            "返還等を行う年月日"
        } else {
            "取引年月日"
        });
    }
    if f.description.is_none() {
        missing.push("取引内容");
    }
    if f.rates.is_empty() {
        missing.push("税率ごとに区分した対価の額及び適用税率");
    }
    let tax_needed = kind != InvoiceKind::Simplified;
    if tax_needed && (f.rates.is_empty() || f.rates.iter().any(|r| r.tax.is_none())) {
        missing.push("税率ごとに区分した消費税額等");
    }
    if kind == InvoiceKind::Qualified && f.recipient.is_none() {
        missing.push("書類の交付を受ける事業者の氏名又は名称");
    }
    missing
}

/// Every check that applies to `f` (none for a document that is not an invoice of a kind).
pub fn checks(f: &DocumentFields) -> Vec<Check> {
    let mut out = Vec::new();
    if let Some(n) = &f.registration_number {
        out.push(match registration::check(n, f.counterparty_kind) {
            Ok(_) if f.counterparty_kind == CounterpartyKind::Individual => check(
                "registration",
                true,
                "登録番号の形式は正しい（個人事業者の番号のため検査用数字は確認しません）",
            ),
            Ok(_) => check("registration", true, "登録番号の形式と検査用数字は正しい"),
            Err(e) => check("registration", false, e.message_ja()),
        });
    }
    let Some(kind) = f.invoice_kind else {
        return out;
    };
    let missing = missing_items(kind, f);
    out.push(if missing.is_empty() {
        check(
            "required_items",
            true,
            format!("{}の記載事項はそろっている", kind.label_ja()),
        )
    } else {
        check(
            "required_items",
            false,
            format!(
                "{}の記載事項が不足: {}",
                kind.label_ja(),
                missing.join("、")
            ),
        )
    });
    for r in &f.rates {
        let Some(tax) = r.tax else { continue };
        let (lo, hi) = tax_bounds(r.base, r.rate, f.amounts_include_tax);
        let basis = if f.amounts_include_tax {
            "税込"
        } else {
            "税抜"
        };
        let expected = if lo == hi {
            yen(lo)
        } else {
            format!("{}〜{}", yen(lo), yen(hi))
        };
        let ok = (lo..=hi).contains(&tax);
        out.push(check(
            format!("tax_rate_{}", r.rate),
            ok,
            if ok {
                format!(
                    "税率{}%: 消費税額 {} は対象額 {}（{basis}）からの計算と一致",
                    r.rate,
                    yen(tax),
                    yen(r.base)
                )
            } else {
                format!(
                    "税率{}%: 消費税額 {} が対象額 {}（{basis}）からの計算（{expected}、税率ごとに一回の端数処理）と一致しません",
                    r.rate,
                    yen(tax),
                    yen(r.base)
                )
            },
        ));
    }
    if let Some(amount) = f.amount
        && !f.rates.is_empty()
        && f.rates
            .iter()
            .all(|r| r.tax.is_some() || f.amounts_include_tax)
    {
        let base: i64 = f.rates.iter().map(|r| r.base).sum();
        let tax: i64 = f.rates.iter().filter_map(|r| r.tax).sum();
        let total = if f.amounts_include_tax {
            base
        } else {
            base + tax
        };
        out.push(check(
            "total",
            total == amount,
            if total == amount {
                format!("取引金額 {} は税率ごとの金額の合計と一致", yen(amount))
            } else {
                format!(
                    "取引金額 {} が税率ごとの金額の合計 {} と一致しません",
                    yen(amount),
                    yen(total)
                )
            },
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::RateAmount;
    use super::*;

    fn qualified() -> DocumentFields {
        // 国税庁「インボイス制度に関するQ&A」問45 の記載例: 8% 15,000円 (1,200円), 10% 2,000円
        // (200円), 合計 18,400円.
        DocumentFields {
            invoice_kind: Some(InvoiceKind::Qualified),
            registration_number: Some("T1180301018771".into()),
            counterparty: Some("株式会社 △△商事".into()),
            transaction_date: Some("2023-11-30".into()),
            description: Some("小麦粉※、牛肉※、キッチンペーパー（※は軽減税率対象）".into()),
            recipient: Some("株式会社 〇〇".into()),
            rates: vec![
                RateAmount {
                    rate: 8,
                    base: 15_000,
                    tax: Some(1_200),
                },
                RateAmount {
                    rate: 10,
                    base: 2_000,
                    tax: Some(200),
                },
            ],
            amount: Some(18_400),
            ..Default::default()
        }
    }

    #[test]
    fn the_nta_example_passes_every_check() {
        let c = checks(&qualified());
        assert_eq!(c.len(), 5, "{c:#?}");
        assert!(c.iter().all(|c| c.ok), "{c:#?}");
    }

    #[test]
    fn one_rounding_per_rate() {
        // 税抜 1,234円 at 10%: 123.4 → 123 whichever way but up (124).
        assert_eq!(tax_bounds(1_234, 10, false), (123, 124));
        assert_eq!(tax_bounds(1_000, 10, false), (100, 100));
        // 税込 1,080円 at 8%: 80 exactly; 税込 1,000円 at 10%: 90.9 → 90 or 91.
        assert_eq!(tax_bounds(1_080, 8, true), (80, 80));
        assert_eq!(tax_bounds(1_000, 10, true), (90, 91));
        // Rounding per line and adding up is not allowed: three lines of 税抜 105円 at 8%
        // (8.4 each, 8 × 3 = 24) against 315円 × 8% = 25.2 → 25 or 26.
        let mut f = qualified();
        f.rates = vec![RateAmount {
            rate: 8,
            base: 315,
            tax: Some(24),
        }];
        f.amount = None;
        let c = checks(&f);
        let t = c.iter().find(|c| c.code == "tax_rate_8").unwrap();
        assert!(!t.ok && t.message.contains("25円〜26円"), "{}", t.message);
    }

    #[test]
    fn missing_items_per_kind() {
        let mut f = qualified();
        f.recipient = None;
        f.rates[0].tax = None;
        assert_eq!(
            missing_items(InvoiceKind::Qualified, &f),
            [
                "税率ごとに区分した消費税額等",
                "書類の交付を受ける事業者の氏名又は名称"
            ]
        );
        // A 適格簡易請求書 needs neither the recipient nor, with the rate, the tax.
        assert!(missing_items(InvoiceKind::Simplified, &f).is_empty());
        f.registration_number = None;
        f.description = None;
        let c = checks(&DocumentFields {
            invoice_kind: Some(InvoiceKind::Simplified),
            ..f
        });
        let r = c.iter().find(|c| c.code == "required_items").unwrap();
        assert!(!r.ok && r.message.contains("登録番号") && r.message.contains("取引内容"));
    }

    #[test]
    fn totals_and_numbers_are_compared_not_corrected() {
        let mut f = qualified();
        f.amount = Some(18_000);
        f.registration_number = Some("T1234567890123".into());
        let c = checks(&f);
        assert!(!c.iter().find(|c| c.code == "total").unwrap().ok);
        assert!(!c.iter().find(|c| c.code == "registration").unwrap().ok);
        assert_eq!(f.amount, Some(18_000));
        assert_eq!(yen(1_234_567), "1,234,567円");
        assert_eq!(yen(0), "0円");
    }
}
