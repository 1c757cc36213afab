//! The transaction documents (電子帳簿保存法) in the browser: 検索 (the list), 登録, 詳細 (every
//! version, the インボイス checks, deadlines, the time-stamp), 訂正 and 取消, 一括検証, the
//! tax officer's download, and the facility's settings. Plain forms; no script needed.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use mamori_domain::audit::actions;
use mamori_domain::bookkeeping::{
    BookkeepingSettings, CounterpartyKind, Direction, DocType, DocumentFields, InvoiceKind,
    LegalForm, RateAmount, invoice::yen,
};
use mamori_domain::permission::Action;
use mamori_service::ledger::audit::jst;
use mamori_service::transactions::{BulkVerifyReport, TxFile, TxInput, TxSearch, TxView};
use mamori_service::{ErrorCode, Principal, Service, ServiceError};
use mamori_store::TxDocumentRow;
use serde::Deserialize;

use crate::api::transactions::download;
use crate::api::zip_response;
use crate::error::status_of;
use crate::i18n::Lang;
use crate::ui::admin::FormError;
use crate::ui::compliance::{Upload, read_upload};
use crate::ui::form::{SignedForm, SignedIn};
use crate::ui::{Layout, error_page, lang_of, layout, render};

type Svc = State<Arc<Service>>;

pub fn routes() -> axum::Router<Arc<Service>> {
    use axum::routing::get;
    axum::Router::new()
        .route("/transactions", get(list_page))
        .route("/transactions/new", get(new_page).post(register))
        .route("/transactions/verify", get(verify_page).post(verify))
        .route("/transactions/export", get(export_page))
        .route("/transactions/export.zip", get(export_zip))
        .route(
            "/transactions/settings",
            get(settings_page).post(save_settings),
        )
        .route(
            "/transactions/registry",
            axum::routing::post(import_registry),
        )
        .route("/transactions/documents/{kind}", get(document))
        .route("/transactions/{id}", get(detail_page))
        .route(
            "/transactions/{id}/correct",
            get(correct_page).post(correct),
        )
        .route("/transactions/{id}/cancel", axum::routing::post(cancel))
        .route("/transactions/{id}/file", get(file))
        .route("/transactions/{id}/timestamp", get(token))
}

fn pick(lang: Lang, ja: &'static str, en: &'static str) -> &'static str {
    if lang == Lang::En { en } else { ja }
}

fn type_label(lang: Lang, t: DocType) -> &'static str {
    match t {
        DocType::Invoice => pick(lang, "請求書", "Invoice"),
        DocType::Receipt => pick(lang, "領収書", "Receipt"),
        DocType::Quotation => pick(lang, "見積書", "Quotation"),
        DocType::Contract => pick(lang, "契約書", "Contract"),
        DocType::Delivery => pick(lang, "納品書", "Delivery note"),
        DocType::Order => pick(lang, "注文書", "Purchase order"),
        DocType::Other => pick(lang, "その他", "Other"),
    }
}

fn direction_label(lang: Lang, d: Direction) -> &'static str {
    match d {
        Direction::Received => pick(lang, "受領", "Received"),
        Direction::Issued => pick(lang, "発行", "Issued"),
    }
}

pub struct Row {
    pub id: i64,
    pub date: String,
    pub amount: String,
    pub counterparty: String,
    pub doc_type: &'static str,
    pub direction: &'static str,
    pub stamped: bool,
    pub cancelled: bool,
}

fn row(lang: Lang, d: &TxDocumentRow) -> Row {
    Row {
        id: d.id,
        date: d.transaction_date.clone().unwrap_or_default(),
        amount: d.amount.map(yen).unwrap_or_default(),
        counterparty: d.counterparty.clone().unwrap_or_default(),
        doc_type: DocType::parse(&d.doc_type).map_or("", |t| type_label(lang, t)),
        direction: Direction::parse(&d.direction).map_or("", |t| direction_label(lang, t)),
        stamped: d.stamp_next_at.is_none(),
        cancelled: d.status == "cancelled",
    }
}

#[derive(Template)]
#[template(path = "transactions.html")]
struct ListPage {
    layout: Layout,
    tab: &'static str,
    q: TxSearch,
    types: Vec<(&'static str, &'static str, bool)>,
    searched: bool,
    rows: Vec<Row>,
    error: Option<FormError>,
    can_write: bool,
}

fn can_write(p: &Principal) -> bool {
    p.role.allows(Action::WriteTransactions, None)
}

async fn list_page(
    State(svc): Svc,
    headers: HeaderMap,
    Query(q): Query<TxSearch>,
    SignedIn(p): SignedIn,
) -> Response {
    let lang = lang_of(&headers);
    let (rows, error) = match svc.search_transactions(Some(&p), q.clone()).await {
        Ok(r) => (r, None),
        Err(e) if e.code == ErrorCode::Forbidden => {
            return error_page(&svc, &headers, Some(&p), &e);
        }
        Err(e) => (Vec::new(), Some(e)),
    };
    let searched = !(q.from.is_empty()
        && q.to.is_empty()
        && q.min.is_empty()
        && q.max.is_empty()
        && q.counterparty.is_empty()
        && q.missing.is_empty()
        && q.doc_type.is_empty());
    let status = error.as_ref().map_or(StatusCode::OK, |e| status_of(e.code));
    render(
        status,
        ListPage {
            layout: layout(&svc, &headers, Some(&p), p.csrf.clone()),
            tab: "search",
            types: DocType::ALL
                .iter()
                .map(|t| (t.as_str(), type_label(lang, *t), q.doc_type == t.as_str()))
                .collect(),
            searched,
            rows: rows.iter().map(|d| row(lang, d)).collect(),
            error: error.and_then(|e| FormError::of(&headers, &e)),
            can_write: can_write(&p),
            q,
        },
    )
}

/// The form's values as text, for showing them again after a refusal.
#[derive(Default, Clone)]
pub struct FormValues {
    pub doc_type: String,
    pub direction: String,
    pub transaction_date: String,
    pub amount: String,
    pub counterparty: String,
    pub individual: bool,
    pub registration_number: String,
    pub as_printed: bool,
    pub received_on: String,
    pub document_number: String,
    pub invoice_kind: String,
    pub recipient: String,
    pub description: String,
    /// (rate, base, tax) for 10%, 8% and 0%.
    pub rates: Vec<(u32, String, String)>,
    pub include_tax: bool,
}

const RATES: [u32; 3] = [10, 8, 0];

impl FormValues {
    fn of(f: &DocumentFields) -> Self {
        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
        Self {
            doc_type: f.doc_type.as_str().into(),
            direction: f.direction.as_str().into(),
            transaction_date: opt(&f.transaction_date),
            amount: f.amount.map(|a| a.to_string()).unwrap_or_default(),
            counterparty: opt(&f.counterparty),
            individual: f.counterparty_kind == CounterpartyKind::Individual,
            registration_number: opt(&f.registration_number),
            as_printed: false,
            received_on: opt(&f.received_on),
            document_number: opt(&f.document_number),
            invoice_kind: f
                .invoice_kind
                .map(|k| k.as_str().to_owned())
                .unwrap_or_default(),
            recipient: opt(&f.recipient),
            description: opt(&f.description),
            rates: RATES
                .iter()
                .map(|r| {
                    let line = f.rates.iter().find(|x| x.rate == *r);
                    (
                        *r,
                        line.map(|l| l.base.to_string()).unwrap_or_default(),
                        line.and_then(|l| l.tax)
                            .map(|t| t.to_string())
                            .unwrap_or_default(),
                    )
                })
                .collect(),
            include_tax: f.amounts_include_tax,
        }
    }

    fn read(u: &Upload) -> Self {
        Self {
            doc_type: u.get("doc_type"),
            direction: u.get("direction"),
            transaction_date: u.get("transaction_date"),
            amount: u.get("amount"),
            counterparty: u.get("counterparty"),
            individual: u.get("individual") == "on",
            registration_number: u.get("registration_number"),
            as_printed: u.get("as_printed") == "on",
            received_on: u.get("received_on"),
            document_number: u.get("document_number"),
            invoice_kind: u.get("invoice_kind"),
            recipient: u.get("recipient"),
            description: u.get("description"),
            rates: RATES
                .iter()
                .map(|r| (*r, u.get(&format!("base_{r}")), u.get(&format!("tax_{r}"))))
                .collect(),
            include_tax: u.get("include_tax") == "on",
        }
    }

    /// The fields the person filled in (the rest may come from a JP PINT file).
    fn input(&self) -> Result<TxInput, ServiceError> {
        let text = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        let number = |s: &str, field: &'static str| -> Result<Option<i64>, ServiceError> {
            mamori_domain::bookkeeping::parse_yen(s).map_err(|_| {
                ServiceError::invalid(field, "金額は数字で入力してください（例: 12100）")
            })
        };
        let mut rates = Vec::new();
        for (rate, base, tax) in &self.rates {
            if let Some(b) = number(base, "rates")? {
                rates.push(RateAmount {
                    rate: *rate,
                    base: b,
                    tax: number(tax, "rates")?,
                });
            } else if !tax.trim().is_empty() {
                return Err(ServiceError::invalid(
                    "rates",
                    format!("税率{rate}%の消費税額には対価の額も入力してください"),
                ));
            }
        }
        let fields = DocumentFields {
            doc_type: DocType::parse(&self.doc_type)
                .ok_or_else(|| ServiceError::invalid("doc_type", "書類の種類を選んでください"))?,
            direction: Direction::parse(&self.direction).ok_or_else(|| {
                ServiceError::invalid("direction", "受領か発行かを選んでください")
            })?,
            transaction_date: text(&self.transaction_date),
            amount: number(&self.amount, "amount")?,
            counterparty: text(&self.counterparty),
            counterparty_kind: if self.individual {
                CounterpartyKind::Individual
            } else {
                CounterpartyKind::Corporation
            },
            registration_number: text(&self.registration_number),
            received_on: text(&self.received_on),
            document_number: text(&self.document_number),
            invoice_kind: match self.invoice_kind.trim() {
                "" => None,
                k => Some(InvoiceKind::parse(k).ok_or_else(|| {
                    ServiceError::invalid("invoice_kind", "インボイスの区分が正しくありません")
                })?),
            },
            recipient: text(&self.recipient),
            description: text(&self.description),
            amounts_include_tax: self.include_tax,
            rates,
        };
        let mut given = vec!["doc_type", "direction", "received_on"];
        for (name, v) in [
            ("transaction_date", &fields.transaction_date),
            ("counterparty", &fields.counterparty),
            ("registration_number", &fields.registration_number),
            ("document_number", &fields.document_number),
            ("recipient", &fields.recipient),
            ("description", &fields.description),
        ] {
            if v.is_some() {
                given.push(name);
            }
        }
        if fields.amount.is_some() {
            given.push("amount");
        }
        Ok(TxInput {
            fields,
            as_printed: self.as_printed,
            given,
        })
    }
}

#[derive(Template)]
#[template(path = "transaction_form.html")]
struct FormPage {
    layout: Layout,
    tab: &'static str,
    /// None: a new document; Some: correcting this one (at this version).
    correcting: Option<(i64, i64)>,
    v: FormValues,
    reason: String,
    types: Vec<(&'static str, &'static str)>,
    kinds: Vec<(&'static str, &'static str)>,
    error: Option<FormError>,
}

fn form_page(
    svc: &Arc<Service>,
    headers: &HeaderMap,
    p: &Principal,
    correcting: Option<(i64, i64)>,
    v: FormValues,
    reason: String,
    error: Option<&ServiceError>,
) -> Response {
    let lang = lang_of(headers);
    let status = error.map_or(StatusCode::OK, |e| status_of(e.code));
    render(
        status,
        FormPage {
            layout: layout(svc, headers, Some(p), p.csrf.clone()),
            tab: if correcting.is_some() {
                "search"
            } else {
                "new"
            },
            correcting,
            v,
            reason,
            types: DocType::ALL
                .iter()
                .map(|t| (t.as_str(), type_label(lang, *t)))
                .collect(),
            kinds: [
                InvoiceKind::Qualified,
                InvoiceKind::Simplified,
                InvoiceKind::Return,
            ]
            .iter()
            .map(|k| {
                (
                    k.as_str(),
                    match k {
                        InvoiceKind::Qualified => pick(lang, "適格請求書", "Qualified invoice"),
                        InvoiceKind::Simplified => {
                            pick(lang, "適格簡易請求書", "Simplified qualified invoice")
                        }
                        InvoiceKind::Return => {
                            pick(lang, "適格返還請求書", "Qualified return invoice")
                        }
                    },
                )
            })
            .collect(),
            error: error.and_then(|e| FormError::of(headers, e)),
        },
    )
}

async fn new_page(State(svc): Svc, headers: HeaderMap, SignedIn(p): SignedIn) -> Response {
    if let Err(r) = refuse_without(
        &svc,
        &headers,
        &p,
        actions::TRANSACTION_REGISTERED,
        Action::WriteTransactions,
    )
    .await
    {
        return r;
    }
    let mut v = FormValues::of(&DocumentFields::default());
    v.received_on = mamori_service::ledger::audit::jst_date(svc.now());
    form_page(&svc, &headers, &p, None, v, String::new(), None)
}

async fn register(
    State(svc): Svc,
    headers: HeaderMap,
    SignedIn(p): SignedIn,
    mp: Multipart,
) -> Response {
    let u = match read_upload(&svc, &p, mp).await {
        Ok(u) => u,
        Err(e) => return error_page(&svc, &headers, Some(&p), &e),
    };
    let v = FormValues::read(&u);
    let outcome = async {
        let input = v.input()?;
        let (name, bytes) = u
            .file
            .clone()
            .ok_or_else(|| ServiceError::invalid("file", "ファイルを選んでください"))?;
        svc.register_transaction(Some(&p), input, TxFile { name, bytes })
            .await
    }
    .await;
    match outcome {
        Ok(w) => Redirect::to(&format!("/transactions/{}?registered=1", w.id)).into_response(),
        Err(e) if e.code == ErrorCode::Forbidden => error_page(&svc, &headers, Some(&p), &e),
        Err(e) => form_page(&svc, &headers, &p, None, v, String::new(), Some(&e)),
    }
}

pub struct CheckRow {
    pub ok: bool,
    pub message: String,
}

pub struct VersionRow {
    pub no: i64,
    pub change: &'static str,
    pub reason: String,
    pub by: String,
    pub at: String,
    pub file_name: String,
}

#[derive(Template)]
#[template(path = "transaction.html")]
struct DetailPage {
    layout: Layout,
    tab: &'static str,
    id: i64,
    version: i64,
    cancelled: bool,
    just_registered: bool,
    title: String,
    fields: Vec<(&'static str, String)>,
    rates: Vec<(String, String, String)>,
    checks: Vec<CheckRow>,
    warnings: Vec<String>,
    stamp: Option<(String, String, bool)>,
    versions: Vec<VersionRow>,
    retention_until: String,
    stamp_due: String,
    file_name: String,
    can_write: bool,
    error: Option<FormError>,
}

#[derive(Deserialize)]
struct DetailQuery {
    #[serde(default)]
    registered: Option<u8>,
}

fn detail(
    svc: &Arc<Service>,
    headers: &HeaderMap,
    p: &Principal,
    v: TxView,
    just_registered: bool,
    error: Option<&ServiceError>,
) -> Response {
    let lang = lang_of(headers);
    let f = &v.fields;
    let opt = |s: &Option<String>| s.clone().unwrap_or_default();
    let l = |ja: &'static str, en: &'static str| pick(lang, ja, en);
    let fields = vec![
        (
            l("書類の種類", "Document type"),
            type_label(lang, f.doc_type).to_owned(),
        ),
        (
            l("受領／発行", "Received / issued"),
            direction_label(lang, f.direction).to_owned(),
        ),
        (
            l("取引年月日", "Transaction date"),
            opt(&f.transaction_date),
        ),
        (
            l("取引金額", "Amount"),
            f.amount.map(yen).unwrap_or_default(),
        ),
        (l("取引先", "Counterparty"), opt(&f.counterparty)),
        (
            l("登録番号", "Registration number"),
            opt(&f.registration_number),
        ),
        (l("書類番号", "Document number"), opt(&f.document_number)),
        (l("受領日", "Received on"), opt(&f.received_on)),
        (
            l("インボイスの区分", "Invoice type"),
            f.invoice_kind
                .map(|k| k.label_ja().to_owned())
                .unwrap_or_default(),
        ),
        (l("交付を受ける者", "Recipient"), opt(&f.recipient)),
        (l("取引内容", "Description"), opt(&f.description)),
    ];
    let status = error.map_or(StatusCode::OK, |e| status_of(e.code));
    let current = v.versions.last();
    render(
        status,
        DetailPage {
            layout: layout(svc, headers, Some(p), p.csrf.clone()),
            tab: "search",
            id: v.document.id,
            version: v.document.current_version,
            cancelled: v.document.status == "cancelled",
            just_registered,
            title: format!(
                "{} #{} {}",
                type_label(lang, f.doc_type),
                v.document.id,
                opt(&f.counterparty)
            ),
            fields,
            rates: f
                .rates
                .iter()
                .map(|r| {
                    (
                        format!("{}%", r.rate),
                        yen(r.base),
                        r.tax.map(yen).unwrap_or_default(),
                    )
                })
                .collect(),
            checks: v
                .checks
                .iter()
                .map(|c| CheckRow {
                    ok: c.ok,
                    message: c.message.clone(),
                })
                .collect(),
            warnings: v.warnings.clone(),
            stamp: v
                .stamp
                .as_ref()
                .map(|s| (jst(s.gen_time), s.tsa.clone(), s.development)),
            versions: v
                .versions
                .iter()
                .map(|x| VersionRow {
                    no: x.version_no,
                    change: match x.change.as_str() {
                        "registered" => l("登録", "Registered"),
                        "corrected" => l("訂正", "Corrected"),
                        _ => l("取消", "Cancelled"),
                    },
                    reason: x.reason.clone().unwrap_or_default(),
                    by: x.entered_by_name.clone().unwrap_or_default(),
                    at: jst(x.entered_at),
                    file_name: x.file_name.clone(),
                })
                .collect(),
            retention_until: v.document.retention_until.clone(),
            stamp_due: v.document.stamp_due.clone().unwrap_or_default(),
            file_name: current.map(|c| c.file_name.clone()).unwrap_or_default(),
            can_write: can_write(p),
            error: error.and_then(|e| FormError::of(headers, e)),
        },
    )
}

async fn detail_page(
    State(svc): Svc,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Query(q): Query<DetailQuery>,
    SignedIn(p): SignedIn,
) -> Response {
    match svc.transaction(Some(&p), id).await {
        Ok(v) => detail(&svc, &headers, &p, v, q.registered.is_some(), None),
        Err(e) => error_page(&svc, &headers, Some(&p), &e),
    }
}

async fn correct_page(
    State(svc): Svc,
    headers: HeaderMap,
    Path(id): Path<i64>,
    SignedIn(p): SignedIn,
) -> Response {
    if let Err(r) = refuse_without(
        &svc,
        &headers,
        &p,
        actions::TRANSACTION_CORRECTED,
        Action::WriteTransactions,
    )
    .await
    {
        return r;
    }
    match svc.transaction(Some(&p), id).await {
        Ok(v) => {
            let values = FormValues::of(&v.fields);
            form_page(
                &svc,
                &headers,
                &p,
                Some((id, v.document.current_version)),
                values,
                String::new(),
                None,
            )
        }
        Err(e) => error_page(&svc, &headers, Some(&p), &e),
    }
}

async fn correct(
    State(svc): Svc,
    headers: HeaderMap,
    Path(id): Path<i64>,
    SignedIn(p): SignedIn,
    mp: Multipart,
) -> Response {
    let u = match read_upload(&svc, &p, mp).await {
        Ok(u) => u,
        Err(e) => return error_page(&svc, &headers, Some(&p), &e),
    };
    let v = FormValues::read(&u);
    let reason = u.get("reason");
    let base: i64 = u.get("base_version").parse().unwrap_or(0);
    let outcome = async {
        let mut input = v.input()?;
        input.given.clear();
        let file = u.file.clone().map(|(name, bytes)| TxFile { name, bytes });
        svc.correct_transaction(Some(&p), id, base, input, file, reason.clone())
            .await
    }
    .await;
    match outcome {
        Ok(_) => Redirect::to(&format!("/transactions/{id}")).into_response(),
        Err(e) if matches!(e.code, ErrorCode::Forbidden | ErrorCode::NotFound) => {
            error_page(&svc, &headers, Some(&p), &e)
        }
        Err(e) => form_page(&svc, &headers, &p, Some((id, base)), v, reason, Some(&e)),
    }
}

async fn cancel(
    State(svc): Svc,
    headers: HeaderMap,
    Path(id): Path<i64>,
    post: SignedForm,
) -> Response {
    let p = post.p;
    let base: i64 = post.fields.get("base_version").parse().unwrap_or(0);
    match svc
        .cancel_transaction(Some(&p), id, base, post.fields.get("reason"))
        .await
    {
        Ok(_) => Redirect::to(&format!("/transactions/{id}")).into_response(),
        Err(e) if matches!(e.code, ErrorCode::Forbidden | ErrorCode::NotFound) => {
            error_page(&svc, &headers, Some(&p), &e)
        }
        Err(e) => match svc.transaction(Some(&p), id).await {
            Ok(v) => detail(&svc, &headers, &p, v, false, Some(&e)),
            Err(e) => error_page(&svc, &headers, Some(&p), &e),
        },
    }
}

#[derive(Deserialize)]
struct FileQuery {
    #[serde(default)]
    version: Option<i64>,
}

async fn file(
    State(svc): Svc,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Query(q): Query<FileQuery>,
    SignedIn(p): SignedIn,
) -> Response {
    match svc.transaction_file(Some(&p), id, q.version).await {
        Ok((name, media, bytes)) => download(&media, &name, bytes),
        Err(e) => error_page(&svc, &headers, Some(&p), &e),
    }
}

async fn token(
    State(svc): Svc,
    headers: HeaderMap,
    Path(id): Path<i64>,
    SignedIn(p): SignedIn,
) -> Response {
    match svc.transaction_token(Some(&p), id).await {
        Ok(der) => download("application/timestamp-reply", &format!("{id}.tst"), der),
        Err(e) => error_page(&svc, &headers, Some(&p), &e),
    }
}

#[derive(Deserialize, Default, Clone)]
struct Period {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

#[derive(Template)]
#[template(path = "transactions_period.html")]
struct PeriodPage {
    layout: Layout,
    tab: &'static str,
    /// `verify` (一括検証) or `export` (税務調査用ダウンロード).
    mode: &'static str,
    from: String,
    to: String,
    report: Option<BulkVerifyReport>,
    problems: Vec<(i64, String, bool)>,
    error: Option<FormError>,
}

/// The business year so far, as the default period.
fn default_period(svc: &Service) -> (String, String) {
    let today = mamori_service::ledger::audit::jst_date(svc.now());
    (format!("{}-01-01", &today[..4]), today)
}

fn period_page(
    svc: &Arc<Service>,
    headers: &HeaderMap,
    p: &Principal,
    mode: &'static str,
    period: Period,
    report: Option<BulkVerifyReport>,
    error: Option<&ServiceError>,
) -> Response {
    let (df, dt) = default_period(svc);
    let status = error.map_or(StatusCode::OK, |e| status_of(e.code));
    render(
        status,
        PeriodPage {
            layout: layout(svc, headers, Some(p), p.csrf.clone()),
            tab: mode,
            mode,
            from: if period.from.is_empty() {
                df
            } else {
                period.from
            },
            to: if period.to.is_empty() { dt } else { period.to },
            problems: report
                .as_ref()
                .map(|r| {
                    r.problems
                        .iter()
                        .map(|x| {
                            (
                                x.document,
                                x.message.clone(),
                                x.verdict
                                    == mamori_service::transactions::StampVerdict::Development,
                            )
                        })
                        .collect()
                })
                .unwrap_or_default(),
            report,
            error: error.and_then(|e| FormError::of(headers, e)),
        },
    )
}

/// Someone without `right` gets the refusal page, and the refusal is in the ledger as
/// `action`'s.
async fn refuse_without(
    svc: &Arc<Service>,
    headers: &HeaderMap,
    p: &Principal,
    action: &'static str,
    right: Action,
) -> Result<(), Response> {
    svc.gate(p, action, p.require(right, None))
        .await
        .map_err(|e| error_page(svc, headers, Some(p), &e))
}

async fn verify_page(State(svc): Svc, headers: HeaderMap, SignedIn(p): SignedIn) -> Response {
    if let Err(r) = refuse_without(
        &svc,
        &headers,
        &p,
        actions::TRANSACTION_STAMPS_VERIFIED,
        Action::ReadTransactions,
    )
    .await
    {
        return r;
    }
    period_page(&svc, &headers, &p, "verify", Period::default(), None, None)
}

async fn verify(State(svc): Svc, headers: HeaderMap, post: SignedForm) -> Response {
    let p = post.p;
    let period = Period {
        from: post.fields.get("from"),
        to: post.fields.get("to"),
    };
    match svc
        .verify_transaction_stamps(Some(&p), period.from.clone(), period.to.clone())
        .await
    {
        Ok(r) => period_page(&svc, &headers, &p, "verify", period, Some(r), None),
        Err(e) if e.code == ErrorCode::Forbidden => error_page(&svc, &headers, Some(&p), &e),
        Err(e) => period_page(&svc, &headers, &p, "verify", period, None, Some(&e)),
    }
}

async fn export_page(State(svc): Svc, headers: HeaderMap, SignedIn(p): SignedIn) -> Response {
    if let Err(r) = refuse_without(
        &svc,
        &headers,
        &p,
        actions::TRANSACTION_EXPORTED,
        Action::ReadTransactions,
    )
    .await
    {
        return r;
    }
    period_page(&svc, &headers, &p, "export", Period::default(), None, None)
}

async fn export_zip(
    State(svc): Svc,
    headers: HeaderMap,
    Query(q): Query<Period>,
    SignedIn(p): SignedIn,
) -> Response {
    match svc
        .export_transactions(Some(&p), q.from.clone(), q.to.clone())
        .await
    {
        Ok((zip, _)) => zip_response(zip, &format!("transactions_{}_{}.zip", q.from, q.to)),
        Err(e) if e.code == ErrorCode::Forbidden => error_page(&svc, &headers, Some(&p), &e),
        Err(e) => period_page(&svc, &headers, &p, "export", q, None, Some(&e)),
    }
}

#[derive(Template)]
#[template(path = "transactions_settings.html")]
struct SettingsPage {
    layout: Layout,
    tab: &'static str,
    forms: Vec<(&'static str, &'static str, bool)>,
    s: BookkeepingSettings,
    loss_years: String,
    saved: bool,
    can_write: bool,
    error: Option<FormError>,
    /// The imported 公表サイト data: rows and the day it was imported.
    registry: Option<(u64, String)>,
}

#[allow(clippy::too_many_arguments)]
fn settings_view(
    svc: &Arc<Service>,
    headers: &HeaderMap,
    p: &Principal,
    s: BookkeepingSettings,
    saved: bool,
    error: Option<&ServiceError>,
    registry: Option<(u64, String)>,
) -> Response {
    let lang = lang_of(headers);
    let status = error.map_or(StatusCode::OK, |e| status_of(e.code));
    render(
        status,
        SettingsPage {
            layout: layout(svc, headers, Some(p), p.csrf.clone()),
            tab: "settings",
            forms: [
                LegalForm::MedicalCorporation,
                LegalForm::Corporation,
                LegalForm::Individual,
            ]
            .iter()
            .map(|f| {
                (
                    f.as_str(),
                    match f {
                        LegalForm::MedicalCorporation => {
                            pick(lang, "医療法人", "Medical corporation")
                        }
                        LegalForm::Corporation => pick(lang, "その他の法人", "Other corporation"),
                        LegalForm::Individual => {
                            pick(lang, "個人（開業医）", "Individual practice")
                        }
                    },
                    *f == s.legal_form,
                )
            })
            .collect(),
            loss_years: s
                .loss_years
                .iter()
                .map(|y| y.to_string())
                .collect::<Vec<_>>()
                .join(","),
            s,
            saved,
            can_write: can_write(p),
            error: error.and_then(|e| FormError::of(headers, e)),
            registry,
        },
    )
}

async fn registry_of(svc: &Arc<Service>) -> Option<(u64, String)> {
    svc.invoice_registry_status()
        .await
        .ok()
        .flatten()
        .map(|s| (s.rows, s.imported_on))
}

#[derive(Deserialize)]
struct SavedQuery {
    #[serde(default)]
    saved: Option<u8>,
}

async fn settings_page(
    State(svc): Svc,
    headers: HeaderMap,
    Query(q): Query<SavedQuery>,
    SignedIn(p): SignedIn,
) -> Response {
    if let Err(r) = refuse_without(
        &svc,
        &headers,
        &p,
        actions::TRANSACTION_VIEWED,
        Action::ReadTransactions,
    )
    .await
    {
        return r;
    }
    let registry = registry_of(&svc).await;
    match svc.bookkeeping_settings().await {
        Ok(s) => settings_view(&svc, &headers, &p, s, q.saved.is_some(), None, registry),
        Err(e) => error_page(&svc, &headers, Some(&p), &e),
    }
}

async fn save_settings(State(svc): Svc, headers: HeaderMap, post: SignedForm) -> Response {
    let p = post.p;
    let f = &post.fields;
    let parsed = (|| -> Result<BookkeepingSettings, ServiceError> {
        let legal_form = LegalForm::parse(&f.get("legal_form"))
            .ok_or_else(|| ServiceError::invalid("legal_form", "法人の種類を選んでください"))?;
        let month = f.get("fiscal_year_end_month").trim().parse().map_err(|_| {
            ServiceError::invalid(
                "fiscal_year_end_month",
                "決算月は1〜12の数字で入力してください",
            )
        })?;
        let months = f.get("processing_months").trim().parse().map_err(|_| {
            ServiceError::invalid(
                "processing_months",
                "処理期間は0〜2の数字で入力してください",
            )
        })?;
        let mut loss_years = Vec::new();
        for y in f
            .get("loss_years")
            .split([',', '、', ' '])
            .filter(|s| !s.trim().is_empty())
        {
            loss_years.push(y.trim().parse().map_err(|_| {
                ServiceError::invalid(
                    "loss_years",
                    "欠損金の年度は西暦の年をカンマで区切って入力してください",
                )
            })?);
        }
        Ok(BookkeepingSettings {
            legal_form,
            fiscal_year_end_month: month,
            filing_extension: f.get("filing_extension") == "on",
            loss_years,
            processing_months: months,
        })
    })();
    let outcome = match parsed.clone() {
        Ok(s) => svc.save_bookkeeping_settings(Some(&p), s).await,
        Err(e) => Err(e),
    };
    match outcome {
        Ok(()) => Redirect::to("/transactions/settings?saved=1").into_response(),
        Err(e) if e.code == ErrorCode::Forbidden => error_page(&svc, &headers, Some(&p), &e),
        Err(e) => {
            let s = parsed.unwrap_or_default();
            let registry = registry_of(&svc).await;
            settings_view(&svc, &headers, &p, s, false, Some(&e), registry)
        }
    }
}

async fn import_registry(
    State(svc): Svc,
    headers: HeaderMap,
    SignedIn(p): SignedIn,
    mp: Multipart,
) -> Response {
    let u = match read_upload(&svc, &p, mp).await {
        Ok(u) => u,
        Err(e) => return error_page(&svc, &headers, Some(&p), &e),
    };
    let outcome = match u.file.clone() {
        Some((name, bytes)) => svc
            .import_invoice_registry(Some(&p), name, bytes)
            .await
            .map(|_| ()),
        None => Err(ServiceError::invalid("file", "ファイルを選んでください")),
    };
    match outcome {
        Ok(()) => Redirect::to("/transactions/settings?saved=1").into_response(),
        Err(e) if e.code == ErrorCode::Forbidden => error_page(&svc, &headers, Some(&p), &e),
        Err(e) => {
            let s = svc.bookkeeping_settings().await.unwrap_or_default();
            let registry = registry_of(&svc).await;
            settings_view(&svc, &headers, &p, s, false, Some(&e), registry)
        }
    }
}

#[derive(Deserialize)]
struct FormatQuery {
    #[serde(default)]
    format: Option<String>,
}

async fn document(
    State(svc): Svc,
    headers: HeaderMap,
    Path(kind): Path<String>,
    Query(q): Query<FormatQuery>,
    SignedIn(p): SignedIn,
) -> Response {
    let Some(k) = mamori_service::transactions::BooksDoc::parse(&kind) else {
        return error_page(
            &svc,
            &headers,
            Some(&p),
            &mamori_service::compliance::docs::unknown_doc(),
        );
    };
    match svc.bookkeeping_doc(&p, k).await {
        Ok(d) if q.format.as_deref() == Some("pdf") => download(
            "application/pdf",
            &format!("{kind}.pdf"),
            mamori_compliance::pdf::render(&d),
        ),
        Ok(d) => {
            let nav = format!(
                "<a href=\"/transactions/settings\">{}</a> <a href=\"/transactions/documents/{kind}?format=pdf\">PDF</a>",
                crate::i18n::t(lang_of(&headers), "cmp.back")
            );
            crate::ui::compliance::assessments::print_page(d.to_html(Some("/static/doc.css"), &nav))
        }
        Err(e) => error_page(&svc, &headers, Some(&p), &e),
    }
}
