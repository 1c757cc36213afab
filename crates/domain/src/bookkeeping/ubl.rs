//! Reading a structured e-invoice: a Peppol UBL 2.1 `Invoice` or `CreditNote`, as JP PINT
//! (the Japanese Peppol specification, `urn:peppol:pint:billing-1@jp-1`) and Peppol BIS
//! Billing 3 send it. Only what the law's search and the インボイス checks need is read; the
//! file itself is kept unchanged beside the fields.
//!
//! Safety: the input is someone else's file. A DOCTYPE (and so any entity definition) is
//! refused before anything is expanded, nesting is bounded, and every number is checked.

use quick_xml::NsReader;
use quick_xml::events::Event;
use quick_xml::name::{Namespace, ResolveResult};

use super::{Direction, MAX_AMOUNT};
use super::{DocType, DocumentFields, InvoiceKind, RateAmount};

const INVOICE_NS: &[u8] = b"urn:oasis:names:specification:ubl:schema:xsd:Invoice-2";
const CREDIT_NOTE_NS: &[u8] = b"urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2";
const MAX_DEPTH: usize = 64;
const MAX_NAMES_IN_DESCRIPTION: usize = 5;

/// What was read from the file, and how it called itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedInvoice {
    pub fields: DocumentFields,
    /// `cbc:CustomizationID` (which specification the sender followed).
    pub customization_id: String,
    pub lines: usize,
}

impl ParsedInvoice {
    /// Whether the sender declared JP PINT (or its draft, "peppol:jp").
    pub fn is_jp_pint(&self) -> bool {
        self.customization_id.contains("@jp") || self.customization_id.contains("peppol:jp")
    }
}

#[derive(Default)]
struct Subtotal {
    base: Option<(String, String)>,
    tax: Option<(String, String)>,
    percent: Option<String>,
}

#[derive(Default)]
struct Seen {
    customization_id: String,
    id: Option<String>,
    issue_date: Option<String>,
    type_code: Option<String>,
    currency: Option<String>,
    supplier_registration: Option<String>,
    supplier_name: Option<String>,
    supplier_trading_name: Option<String>,
    customer_name: Option<String>,
    customer_trading_name: Option<String>,
    subtotals: Vec<Subtotal>,
    tax_inclusive: Option<(String, String)>,
    payable: Option<(String, String)>,
    item_names: Vec<String>,
    lines: usize,
}

fn refuse(msg: impl Into<String>) -> String {
    msg.into()
}

/// Whole yen from an amount's text ("1200", "1200.00"); a fraction of a yen is refused.
fn yen(text: &str, element: &str) -> Result<i64, String> {
    let t = text.trim();
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    let digits = int.strip_prefix('-').unwrap_or(int);
    let ok = !digits.is_empty()
        && digits.len() <= 15
        && digits.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b == b'0');
    if !ok {
        return Err(refuse(format!(
            "金額「{}」（{element}）を円の整数として読めません",
            clip(t)
        )));
    }
    let v: i64 = int
        .parse()
        .map_err(|_| format!("金額「{}」が大きすぎます", clip(t)))?;
    if v.abs() > MAX_AMOUNT {
        return Err(refuse(format!(
            "金額「{}」（{element}）が大きすぎます",
            clip(t)
        )));
    }
    Ok(v)
}

fn clip(s: &str) -> String {
    s.chars().take(40).collect()
}

/// Reads a UBL invoice. `direction` says whose document it is: a received invoice's
/// counterparty is its supplier, an issued one's its customer.
pub fn parse(bytes: &[u8], direction: Direction) -> Result<ParsedInvoice, String> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| refuse("XML が UTF-8 ではありません（JP PINT は UTF-8 です）"))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = NsReader::from_str(text);
    let mut path: Vec<String> = Vec::new();
    let mut seen = Seen::default();
    let mut root: Option<&'static str> = None;
    // The currency attribute of the element being read.
    let mut currency_attr = String::new();
    loop {
        let pos = reader.buffer_position();
        let (ns, ev) = reader
            .read_resolved_event()
            .map_err(|e| format!("XML として読めません（{pos} バイト目付近: {e}）"))?;
        match ev {
            Event::DocType(_) => {
                return Err(refuse(
                    "DOCTYPE 宣言を含む XML は受け付けません（UBL の請求書には不要です）",
                ));
            }
            Event::Start(e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                if path.is_empty() {
                    root = Some(match (&ns, name.as_str()) {
                        (ResolveResult::Bound(Namespace(n)), "Invoice") if *n == INVOICE_NS => {
                            "Invoice"
                        }
                        (ResolveResult::Bound(Namespace(n)), "CreditNote")
                            if *n == CREDIT_NOTE_NS =>
                        {
                            "CreditNote"
                        }
                        _ => {
                            return Err(refuse(format!(
                                "UBL の請求書（Invoice）または返還請求書（CreditNote）ではありません（最上位の要素: {}）",
                                clip(&name)
                            )));
                        }
                    });
                }
                if path.len() >= MAX_DEPTH {
                    return Err(refuse("XML の入れ子が深すぎます"));
                }
                currency_attr.clear();
                for a in e.attributes().flatten() {
                    if a.key.local_name().as_ref() == b"currencyID" {
                        currency_attr = a
                            .unescape_value()
                            .map(|v| v.into_owned())
                            .unwrap_or_default();
                    }
                }
                let p = path.join("/");
                if name == "TaxSubtotal" && p.ends_with("/TaxTotal") && path.len() == 2 {
                    seen.subtotals.push(Subtotal::default());
                }
                if (name == "InvoiceLine" || name == "CreditNoteLine") && path.len() == 1 {
                    seen.lines += 1;
                    if seen.lines > 100_000 {
                        return Err(refuse("明細行が多すぎます"));
                    }
                }
                path.push(name);
            }
            Event::Empty(e) => {
                if path.is_empty() {
                    return Err(refuse(
                        "UBL の請求書（Invoice）または返還請求書（CreditNote）ではありません",
                    ));
                }
                let _ = e;
            }
            Event::End(_) => {
                path.pop();
            }
            Event::Text(t) => {
                let v = t
                    .unescape()
                    .map_err(|e| format!("XML の文字を読めません（{e}）"))?
                    .trim()
                    .to_owned();
                if v.is_empty() || path.is_empty() {
                    continue;
                }
                take(&mut seen, &path[1..], v, &currency_attr);
            }
            Event::CData(c) => {
                let v = String::from_utf8_lossy(&c).trim().to_owned();
                if !v.is_empty() && !path.is_empty() {
                    take(&mut seen, &path[1..], v, &currency_attr);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let Some(root) = root else {
        return Err(refuse(
            "UBL の請求書（Invoice）ではありません（XML の要素がありません）",
        ));
    };
    if !path.is_empty() {
        return Err(refuse("XML が途中で終わっています"));
    }
    finish(seen, root, direction)
}

/// Keeps the text of the element at `path` (below the root) if it is one of ours.
fn take(seen: &mut Seen, path: &[String], v: String, currency: &str) {
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    let pair = || (v.clone(), currency.to_owned());
    match p.as_slice() {
        ["CustomizationID"] => seen.customization_id = v,
        ["ID"] => seen.id = Some(v),
        ["IssueDate"] => seen.issue_date = Some(v),
        ["InvoiceTypeCode"] | ["CreditNoteTypeCode"] => seen.type_code = Some(v),
        ["DocumentCurrencyCode"] => seen.currency = Some(v),
        [
            "AccountingSupplierParty",
            "Party",
            "PartyTaxScheme",
            "CompanyID",
        ] if v.starts_with('T') || v.starts_with('Ｔ') || seen.supplier_registration.is_none() => {
            seen.supplier_registration = Some(v);
        }
        [
            "AccountingSupplierParty",
            "Party",
            "PartyLegalEntity",
            "RegistrationName",
        ] => seen.supplier_name = Some(v),
        ["AccountingSupplierParty", "Party", "PartyName", "Name"] => {
            seen.supplier_trading_name = Some(v)
        }
        [
            "AccountingCustomerParty",
            "Party",
            "PartyLegalEntity",
            "RegistrationName",
        ] => seen.customer_name = Some(v),
        ["AccountingCustomerParty", "Party", "PartyName", "Name"] => {
            seen.customer_trading_name = Some(v)
        }
        ["TaxTotal", "TaxSubtotal", "TaxableAmount"] => {
            if let Some(s) = seen.subtotals.last_mut() {
                s.base = Some(pair());
            }
        }
        ["TaxTotal", "TaxSubtotal", "TaxAmount"] => {
            if let Some(s) = seen.subtotals.last_mut() {
                s.tax = Some(pair());
            }
        }
        ["TaxTotal", "TaxSubtotal", "TaxCategory", "Percent"] => {
            if let Some(s) = seen.subtotals.last_mut() {
                s.percent = Some(v);
            }
        }
        ["LegalMonetaryTotal", "TaxInclusiveAmount"] => seen.tax_inclusive = Some(pair()),
        ["LegalMonetaryTotal", "PayableAmount"] => seen.payable = Some(pair()),
        ["InvoiceLine" | "CreditNoteLine", "Item", "Name"]
            if seen.item_names.len() <= MAX_NAMES_IN_DESCRIPTION =>
        {
            seen.item_names.push(v)
        }
        _ => {}
    }
}

fn percent(text: &str) -> Result<u32, String> {
    let t = text.trim();
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    if int.is_empty() || int.len() > 3 || !int.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("税率「{}」を読めません", clip(t)));
    }
    if !frac.bytes().all(|b| b == b'0') {
        return Err(format!(
            "税率「{}」は日本の消費税率（10%・8%・0%）ではありません",
            clip(t)
        ));
    }
    int.parse::<u32>()
        .ok()
        .filter(|p| *p <= 100)
        .ok_or_else(|| format!("税率「{}」が正しくありません", clip(t)))
}

fn finish(seen: Seen, root: &str, direction: Direction) -> Result<ParsedInvoice, String> {
    let currency = seen.currency.clone().unwrap_or_default();
    if currency != "JPY" {
        return Err(refuse(format!(
            "通貨が円（JPY）ではありません（{}）。金額は自動で読めないため、PDF と同じく項目を入力して登録してください",
            if currency.is_empty() {
                "記載なし".to_owned()
            } else {
                clip(&currency)
            }
        )));
    }
    let issue_date = seen
        .issue_date
        .clone()
        .ok_or_else(|| refuse("請求書の発行日（IssueDate）がありません"))?;
    if !crate::date::valid(&issue_date) {
        return Err(refuse(format!(
            "発行日（IssueDate）「{}」が日付ではありません",
            clip(&issue_date)
        )));
    }
    let in_document_currency = |c: &str| c.is_empty() || c == currency;
    let mut rates: Vec<RateAmount> = Vec::new();
    for s in &seen.subtotals {
        let (Some((base, bc)), Some(p)) = (&s.base, &s.percent) else {
            continue;
        };
        if !in_document_currency(bc) {
            continue;
        }
        let rate = percent(p)?;
        let base = yen(base, "TaxableAmount")?;
        let tax = match &s.tax {
            Some((t, _)) => Some(yen(t, "TaxAmount")?),
            None => None,
        };
        // A return (credit note) states positive amounts; a negative invoice is a return too.
        if let Some(r) = rates.iter_mut().find(|r| r.rate == rate) {
            r.base += base;
            r.tax = match (r.tax, tax) {
                (Some(a), Some(b)) => Some(a + b),
                _ => None,
            };
        } else {
            rates.push(RateAmount { rate, base, tax });
        }
    }
    let total = match (&seen.tax_inclusive, &seen.payable) {
        (Some((t, c)), _) if in_document_currency(c) => Some(yen(t, "TaxInclusiveAmount")?),
        (_, Some((t, c))) if in_document_currency(c) => Some(yen(t, "PayableAmount")?),
        _ => None,
    };
    let negative = total.is_some_and(|t| t < 0) || rates.iter().any(|r| r.base < 0);
    let is_return = root == "CreditNote" || seen.type_code.as_deref() == Some("381") || negative;
    for r in &mut rates {
        r.base = r.base.abs();
        r.tax = r.tax.map(i64::abs);
    }
    let supplier = seen
        .supplier_name
        .clone()
        .or(seen.supplier_trading_name.clone());
    let customer = seen
        .customer_name
        .clone()
        .or(seen.customer_trading_name.clone());
    let mut names: Vec<String> = seen
        .item_names
        .iter()
        .take(MAX_NAMES_IN_DESCRIPTION)
        .cloned()
        .collect();
    if seen.item_names.len() > MAX_NAMES_IN_DESCRIPTION
        || seen.lines > names.len() && !names.is_empty()
    {
        names.push(format!("ほか（全{}行）", seen.lines));
    }
    let description = (!names.is_empty()).then(|| names.join("、"));
    let fields = DocumentFields {
        doc_type: DocType::Invoice,
        direction,
        transaction_date: Some(issue_date),
        amount: total.map(i64::abs),
        counterparty: match direction {
            Direction::Received => supplier,
            Direction::Issued => customer.clone(),
        },
        counterparty_kind: Default::default(),
        registration_number: seen.supplier_registration.clone(),
        received_on: None,
        document_number: seen.id.clone(),
        invoice_kind: Some(if is_return {
            InvoiceKind::Return
        } else {
            InvoiceKind::Qualified
        }),
        recipient: customer,
        description,
        rates,
        amounts_include_tax: false,
    };
    Ok(ParsedInvoice {
        fields,
        customization_id: seen.customization_id,
        lines: seen.lines,
    })
}

/// Whether bytes look like XML at all (so an upload is sent to the parser, not kept as a file
/// of an unknown type).
pub fn looks_like_xml(bytes: &[u8]) -> bool {
    let b = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    b[start..].starts_with(b"<")
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
 xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
 xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">
 <cbc:CustomizationID>urn:peppol:pint:billing-1@jp-1</cbc:CustomizationID>
 <cbc:ID>INV-1</cbc:ID><cbc:IssueDate>2026-11-30</cbc:IssueDate>
 <cbc:InvoiceTypeCode>380</cbc:InvoiceTypeCode><cbc:DocumentCurrencyCode>JPY</cbc:DocumentCurrencyCode>
 <cac:AccountingSupplierParty><cac:Party>
  <cac:PartyTaxScheme><cbc:CompanyID>T1180301018771</cbc:CompanyID><cac:TaxScheme><cbc:ID>VAT</cbc:ID></cac:TaxScheme></cac:PartyTaxScheme>
  <cac:PartyLegalEntity><cbc:RegistrationName>医療材料株式会社</cbc:RegistrationName></cac:PartyLegalEntity>
 </cac:Party></cac:AccountingSupplierParty>
 <cac:AccountingCustomerParty><cac:Party><cac:PartyLegalEntity><cbc:RegistrationName>医療法人 まもり会</cbc:RegistrationName></cac:PartyLegalEntity></cac:Party></cac:AccountingCustomerParty>
 <cac:TaxTotal><cbc:TaxAmount currencyID="JPY">1100</cbc:TaxAmount>
  <cac:TaxSubtotal><cbc:TaxableAmount currencyID="JPY">11000</cbc:TaxableAmount><cbc:TaxAmount currencyID="JPY">1100</cbc:TaxAmount>
   <cac:TaxCategory><cbc:ID>S</cbc:ID><cbc:Percent>10</cbc:Percent></cac:TaxCategory></cac:TaxSubtotal></cac:TaxTotal>
 <cac:LegalMonetaryTotal><cbc:TaxInclusiveAmount currencyID="JPY">12100</cbc:TaxInclusiveAmount><cbc:PayableAmount currencyID="JPY">12100</cbc:PayableAmount></cac:LegalMonetaryTotal>
 <cac:InvoiceLine><cbc:ID>1</cbc:ID><cac:Item><cbc:Name>ディスポ手袋 &amp; マスク</cbc:Name></cac:Item></cac:InvoiceLine>
</Invoice>"#;

    #[test]
    fn reads_what_the_law_searches_and_the_checks_need() {
        let p = parse(MINIMAL.as_bytes(), Direction::Received).unwrap();
        assert!(p.is_jp_pint());
        let f = &p.fields;
        assert_eq!(f.transaction_date.as_deref(), Some("2026-11-30"));
        assert_eq!(f.amount, Some(12_100));
        assert_eq!(f.counterparty.as_deref(), Some("医療材料株式会社"));
        assert_eq!(f.recipient.as_deref(), Some("医療法人 まもり会"));
        assert_eq!(f.registration_number.as_deref(), Some("T1180301018771"));
        assert_eq!(f.document_number.as_deref(), Some("INV-1"));
        assert_eq!(f.description.as_deref(), Some("ディスポ手袋 & マスク"));
        assert_eq!(
            f.rates,
            [RateAmount {
                rate: 10,
                base: 11_000,
                tax: Some(1_100)
            }]
        );
        assert!(super::super::checks(f).iter().all(|c| c.ok));
        let issued = parse(MINIMAL.as_bytes(), Direction::Issued).unwrap();
        assert_eq!(
            issued.fields.counterparty.as_deref(),
            Some("医療法人 まもり会")
        );
    }

    #[test]
    fn refuses_what_is_not_an_invoice_in_japanese() {
        let cases: &[(&[u8], &str)] = &[
            (b"not xml at all", "UBL"),
            (
                b"<Invoice xmlns=\"urn:oasis:names:specification:ubl:schema:xsd:Invoice-2\"><a></Invoice>",
                "XML として読めません",
            ),
            (b"<Order xmlns=\"urn:oasis:names:specification:ubl:schema:xsd:Order-2\"/>", "UBL"),
            (b"<Invoice/>", "UBL"),
            (
                b"<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY a \"aaaa\">]><Invoice xmlns=\"urn:oasis:names:specification:ubl:schema:xsd:Invoice-2\">&a;</Invoice>",
                "DOCTYPE",
            ),
            (b"\xff\xfe<\x00", "UTF-8"),
            (
                b"<Invoice xmlns=\"urn:oasis:names:specification:ubl:schema:xsd:Invoice-2\"><a>",
                "途中",
            ),
        ];
        for (bytes, expect) in cases {
            let e = parse(bytes, Direction::Received).unwrap_err();
            assert!(e.contains(expect), "{e}");
        }
        let usd = MINIMAL.replace(">JPY<", ">USD<");
        assert!(
            parse(usd.as_bytes(), Direction::Received)
                .unwrap_err()
                .contains("円")
        );
        let frac = MINIMAL.replace(">12100<", ">12100.5<");
        assert!(
            parse(frac.as_bytes(), Direction::Received)
                .unwrap_err()
                .contains("12100.5")
        );
        let no_date = MINIMAL.replace("<cbc:IssueDate>2026-11-30</cbc:IssueDate>", "");
        assert!(
            parse(no_date.as_bytes(), Direction::Received)
                .unwrap_err()
                .contains("IssueDate")
        );
        let deep = format!(
            "<Invoice xmlns=\"urn:oasis:names:specification:ubl:schema:xsd:Invoice-2\">{}",
            "<a>".repeat(100)
        );
        assert!(
            parse(deep.as_bytes(), Direction::Received)
                .unwrap_err()
                .contains("深すぎ")
        );
    }

    #[test]
    fn a_credit_note_is_a_return() {
        let cn = MINIMAL
            .replace("Invoice-2", "CreditNote-2")
            .replace("<Invoice ", "<CreditNote ")
            .replace("</Invoice>", "</CreditNote>")
            .replace("InvoiceTypeCode>380<", "CreditNoteTypeCode>381<")
            .replace("InvoiceTypeCode>", "CreditNoteTypeCode>")
            .replace("InvoiceLine>", "CreditNoteLine>");
        let p = parse(cn.as_bytes(), Direction::Received).unwrap();
        assert_eq!(p.fields.invoice_kind, Some(InvoiceKind::Return));
        assert!(looks_like_xml(b"\xef\xbb\xbf  <?xml"));
        assert!(!looks_like_xml(b"%PDF-1.7"));
    }
}
