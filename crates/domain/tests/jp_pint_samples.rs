//! The published JP PINT sample invoices (tests/fixtures/jp-pint, sources in its README) read
//! as the law's fields, and their インボイス checks as a person checking them would find.

use mamori_domain::bookkeeping::ubl::parse;
use mamori_domain::bookkeeping::{Direction, InvoiceKind, RateAmount, checks};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/../../tests/fixtures/jp-pint/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[test]
fn the_minimum_example() {
    let p = parse(&fixture("Example1-minimum.xml"), Direction::Received).unwrap();
    assert!(p.is_jp_pint());
    assert_eq!(p.lines, 3);
    let f = &p.fields;
    assert_eq!(f.transaction_date.as_deref(), Some("2023-10-24"));
    assert_eq!(f.amount, Some(281_240));
    assert_eq!(f.counterparty.as_deref(), Some("株式会社 〇〇商事"));
    assert_eq!(f.recipient.as_deref(), Some("株式会社 〇〇物産"));
    assert_eq!(f.document_number.as_deref(), Some("156"));
    assert_eq!(f.invoice_kind, Some(InvoiceKind::Qualified));
    assert_eq!(
        f.rates,
        [
            RateAmount {
                rate: 10,
                base: 252_500,
                tax: Some(25_250)
            },
            RateAmount {
                rate: 0,
                base: 3_490,
                tax: Some(0)
            },
        ]
    );
    let c = checks(f);
    // The placeholder registration number fails its check digit; everything else holds.
    let failed: Vec<&str> = c
        .iter()
        .filter(|c| !c.ok)
        .map(|c| c.code.as_str())
        .collect();
    assert_eq!(failed, ["registration"], "{c:#?}");
    assert!(c.iter().any(|c| c.code == "total" && c.ok));
}

#[test]
fn the_nta_question_45_example() {
    let p = parse(&fixture("NTA_QandA_45.xml"), Direction::Received).unwrap();
    let f = &p.fields;
    assert_eq!(f.amount, Some(18_400));
    assert_eq!(
        f.rates,
        [
            RateAmount {
                rate: 8,
                base: 15_000,
                tax: Some(1_200)
            },
            RateAmount {
                rate: 10,
                base: 2_000,
                tax: Some(200)
            },
        ]
    );
    assert_eq!(
        f.description.as_deref(),
        Some("小麦粉、牛肉、キッチンペーパー")
    );
    let c = checks(f);
    for code in ["required_items", "tax_rate_8", "tax_rate_10", "total"] {
        assert!(c.iter().any(|c| c.code == code && c.ok), "{code}: {c:#?}");
    }
}
