//! The demo clinic's transaction documents (電子帳簿保存法): a few supplier invoices as PDF and
//! one as a JP PINT e-invoice, a receipt, a contract, one correction — registered by the
//! accounting clerk, time-stamped by the development TSA.

use std::sync::Arc;

use mamori_compliance::doc::Doc;
use mamori_domain::bookkeeping::{
    BookkeepingSettings, Direction, DocType, DocumentFields, InvoiceKind, RateAmount, calendar,
};
use mamori_service::transactions::{TxFile, TxInput};
use mamori_service::{Principal, Service, ServiceError};

/// A supplier's invoice as a printable PDF (what a clinic receives by e-mail).
fn invoice_pdf(f: &DocumentFields) -> Vec<u8> {
    let title = f.doc_type.label_ja();
    let mut d = Doc::new(format!("{title}（デモ）"));
    d.fields(vec![
        ("発行者".into(), f.counterparty.clone().unwrap_or_default()),
        (
            "登録番号".into(),
            f.registration_number.clone().unwrap_or_default(),
        ),
        ("宛先".into(), f.recipient.clone().unwrap_or_default()),
        (
            "取引年月日".into(),
            f.transaction_date.clone().unwrap_or_default(),
        ),
        (
            "書類番号".into(),
            f.document_number.clone().unwrap_or_default(),
        ),
        ("取引内容".into(), f.description.clone().unwrap_or_default()),
    ]);
    let rows = f
        .rates
        .iter()
        .map(|r| {
            vec![
                format!("{}%", r.rate),
                mamori_domain::bookkeeping::invoice::yen(r.base),
                r.tax
                    .map(mamori_domain::bookkeeping::invoice::yen)
                    .unwrap_or_default(),
            ]
        })
        .collect();
    d.table(
        &["税率", "対価の額（税抜）", "消費税額"],
        &[20, 40, 40],
        rows,
    );
    if let Some(a) = f.amount {
        d.para(format!(
            "合計 {}",
            mamori_domain::bookkeeping::invoice::yen(a)
        ));
    }
    mamori_compliance::pdf::render(&d)
}

/// A JP PINT e-invoice as a supplier's system sends it.
fn jp_pint(date: &str, number: &str) -> Vec<u8> {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
 xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
 xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">
 <cbc:CustomizationID>urn:peppol:pint:billing-1@jp-1</cbc:CustomizationID>
 <cbc:ProfileID>urn:peppol:bis:billing</cbc:ProfileID>
 <cbc:ID>{number}</cbc:ID>
 <cbc:IssueDate>{date}</cbc:IssueDate>
 <cbc:InvoiceTypeCode>380</cbc:InvoiceTypeCode>
 <cbc:DocumentCurrencyCode>JPY</cbc:DocumentCurrencyCode>
 <cac:AccountingSupplierParty><cac:Party>
  <cbc:EndpointID schemeID="0188">7010705000725</cbc:EndpointID>
  <cac:PartyTaxScheme><cbc:CompanyID>T7010705000725</cbc:CompanyID><cac:TaxScheme><cbc:ID>VAT</cbc:ID></cac:TaxScheme></cac:PartyTaxScheme>
  <cac:PartyLegalEntity><cbc:RegistrationName>株式会社 守り医療材料</cbc:RegistrationName></cac:PartyLegalEntity>
 </cac:Party></cac:AccountingSupplierParty>
 <cac:AccountingCustomerParty><cac:Party>
  <cac:PartyLegalEntity><cbc:RegistrationName>守りクリニック</cbc:RegistrationName></cac:PartyLegalEntity>
 </cac:Party></cac:AccountingCustomerParty>
 <cac:TaxTotal><cbc:TaxAmount currencyID="JPY">3640</cbc:TaxAmount>
  <cac:TaxSubtotal><cbc:TaxableAmount currencyID="JPY">32000</cbc:TaxableAmount><cbc:TaxAmount currencyID="JPY">3200</cbc:TaxAmount>
   <cac:TaxCategory><cbc:ID>S</cbc:ID><cbc:Percent>10</cbc:Percent><cac:TaxScheme><cbc:ID>VAT</cbc:ID></cac:TaxScheme></cac:TaxCategory></cac:TaxSubtotal>
  <cac:TaxSubtotal><cbc:TaxableAmount currencyID="JPY">5500</cbc:TaxableAmount><cbc:TaxAmount currencyID="JPY">440</cbc:TaxAmount>
   <cac:TaxCategory><cbc:ID>AA</cbc:ID><cbc:Percent>8</cbc:Percent><cac:TaxScheme><cbc:ID>VAT</cbc:ID></cac:TaxScheme></cac:TaxCategory></cac:TaxSubtotal>
 </cac:TaxTotal>
 <cac:LegalMonetaryTotal>
  <cbc:LineExtensionAmount currencyID="JPY">37500</cbc:LineExtensionAmount>
  <cbc:TaxExclusiveAmount currencyID="JPY">37500</cbc:TaxExclusiveAmount>
  <cbc:TaxInclusiveAmount currencyID="JPY">41140</cbc:TaxInclusiveAmount>
  <cbc:PayableAmount currencyID="JPY">41140</cbc:PayableAmount>
 </cac:LegalMonetaryTotal>
 <cac:InvoiceLine><cbc:ID>1</cbc:ID><cbc:InvoicedQuantity unitCode="H87">20</cbc:InvoicedQuantity><cbc:LineExtensionAmount currencyID="JPY">32000</cbc:LineExtensionAmount>
  <cac:Item><cbc:Name>ディスポーザブル手袋（100枚入）</cbc:Name><cac:ClassifiedTaxCategory><cbc:ID>S</cbc:ID><cbc:Percent>10</cbc:Percent><cac:TaxScheme><cbc:ID>VAT</cbc:ID></cac:TaxScheme></cac:ClassifiedTaxCategory></cac:Item>
  <cac:Price><cbc:PriceAmount currencyID="JPY">1600</cbc:PriceAmount></cac:Price></cac:InvoiceLine>
 <cac:InvoiceLine><cbc:ID>2</cbc:ID><cbc:InvoicedQuantity unitCode="H87">50</cbc:InvoicedQuantity><cbc:LineExtensionAmount currencyID="JPY">5500</cbc:LineExtensionAmount>
  <cac:Item><cbc:Name>経口補水液（軽減税率対象）</cbc:Name><cac:ClassifiedTaxCategory><cbc:ID>AA</cbc:ID><cbc:Percent>8</cbc:Percent><cac:TaxScheme><cbc:ID>VAT</cbc:ID></cac:TaxScheme></cac:ClassifiedTaxCategory></cac:Item>
  <cac:Price><cbc:PriceAmount currencyID="JPY">110</cbc:PriceAmount></cac:Price></cac:InvoiceLine>
</Invoice>
"#
    )
    .into_bytes()
}

fn day(now: i64, days_ago: i64) -> String {
    calendar::format(calendar::jst_day(now) - days_ago)
}

pub async fn seed(svc: &Arc<Service>, clerk: &Principal, now: i64) -> Result<(), ServiceError> {
    svc.save_bookkeeping_settings(Some(clerk), BookkeepingSettings::default())
        .await?;
    // Received within the last days (registered in time), except one found in an inbox
    // weeks later: its late registration is what the detail page warns about.
    let invoice =
        |days: i64, received: i64, who: &str, reg: &str, number: &str, base: i64| DocumentFields {
            doc_type: DocType::Invoice,
            direction: Direction::Received,
            transaction_date: Some(day(now, days)),
            received_on: Some(day(now, received)),
            amount: Some(base + base / 10),
            counterparty: Some(who.into()),
            registration_number: Some(reg.into()),
            document_number: Some(number.into()),
            invoice_kind: Some(InvoiceKind::Qualified),
            recipient: Some("守りクリニック".into()),
            description: Some("診療材料".into()),
            rates: vec![RateAmount {
                rate: 10,
                base,
                tax: Some(base / 10),
            }],
            ..Default::default()
        };
    let mut docs = [
        invoice(
            42,
            40,
            "東京メディカル株式会社",
            "T1180301018771",
            "TM-2026-0812",
            120_000,
        ),
        invoice(
            25,
            2,
            "ＡＢＣ薬品株式会社",
            "T4011001098993",
            "A-55190",
            48_000,
        ),
        invoice(
            9,
            1,
            "東京メディカル株式会社",
            "T1180301018771",
            "TM-2026-0911",
            86_000,
        ),
        DocumentFields {
            doc_type: DocType::Receipt,
            transaction_date: Some(day(now, 3)),
            received_on: Some(day(now, 3)),
            amount: Some(3_300),
            counterparty: Some("文具のまもり堂".into()),
            invoice_kind: Some(InvoiceKind::Simplified),
            registration_number: Some("T2120901007402".into()),
            description: Some("コピー用紙".into()),
            rates: vec![RateAmount {
                rate: 10,
                base: 3_000,
                tax: Some(300),
            }],
            ..Default::default()
        },
        DocumentFields {
            doc_type: DocType::Contract,
            transaction_date: Some(day(now, 60)),
            received_on: Some(day(now, 1)),
            amount: Some(660_000),
            counterparty: Some("株式会社 まもり清掃サービス".into()),
            description: Some("院内清掃業務委託契約（年間）".into()),
            ..Default::default()
        },
    ];
    // One typed with a mistake, corrected the next day with its reason.
    docs[1].amount = Some(58_800);
    let mut first = None;
    for (i, f) in docs.iter().enumerate() {
        let w = svc
            .register_transaction(
                Some(clerk),
                TxInput {
                    fields: f.clone(),
                    ..Default::default()
                },
                TxFile {
                    name: format!("{}_{}.pdf", f.doc_type.label_ja(), i + 1),
                    bytes: invoice_pdf(f),
                },
            )
            .await?;
        if i == 1 {
            first = Some(w.id);
        }
    }
    if let Some(id) = first {
        let mut fixed = docs[1].clone();
        fixed.amount = Some(52_800);
        svc.correct_transaction(
            Some(clerk),
            id,
            1,
            TxInput {
                fields: fixed,
                ..Default::default()
            },
            None,
            "取引金額の入力誤り（請求書の記載は 52,800円）".into(),
        )
        .await?;
    }
    svc.register_transaction(
        Some(clerk),
        TxInput {
            fields: DocumentFields {
                received_on: Some(day(now, 3)),
                ..Default::default()
            },
            given: vec!["received_on"],
            ..Default::default()
        },
        TxFile {
            name: "einvoice_MM-1204.xml".into(),
            bytes: jp_pint(&day(now, 4), "MM-1204"),
        },
    )
    .await?;
    Ok(())
}
