//! The facility registers in the browser: one page per register (破棄・持ち出し・教育訓練・
//! 外部保存), its entries newest first, and a form built from the register's field list, with
//! one file per entry and, for training, the accounts that attended.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use mamori_compliance::registers::{Entry, FieldKind, Register};
use mamori_service::ledger::audit::jst;
use mamori_service::{ErrorCode, Principal, Service, ServiceError};
use serde::Deserialize;

use crate::api::compliance::download;
use crate::error::status_of;
use crate::i18n::Lang;
use crate::ui::admin::FormError;
use crate::ui::compliance::{Upload, read_upload};
use crate::ui::form::SignedIn;
use crate::ui::{Layout, error_page, lang_of, layout, render};

type Svc = State<Arc<Service>>;

pub fn routes() -> axum::Router<Arc<Service>> {
    use axum::routing::get;
    axum::Router::new()
        .route(
            "/compliance/registers",
            get(|| async { Redirect::to("/compliance/registers/disposal") }),
        )
        .route(
            "/compliance/registers/{register}",
            get(register_page).post(save_entry),
        )
        .route("/compliance/registers/files/{id}", get(entry_file))
}

pub struct FieldView {
    pub key: &'static str,
    pub label: &'static str,
    /// `text`, `textarea`, `date` or `select`.
    pub kind: &'static str,
    pub required: bool,
    pub value: String,
    pub options: Vec<(&'static str, &'static str, bool)>,
}

pub struct RowView {
    pub id: i64,
    pub cells: Vec<String>,
    pub long: Vec<(&'static str, String)>,
    pub people: usize,
    pub file: Option<String>,
    pub by_mamori: bool,
    pub updated: String,
}

#[derive(Template)]
#[template(path = "compliance_register.html")]
struct RegisterPage {
    layout: Layout,
    tab: &'static str,
    code: &'static str,
    title: &'static str,
    help: &'static str,
    registers: Vec<(&'static str, &'static str, bool)>,
    columns: Vec<&'static str>,
    rows: Vec<RowView>,
    form: Vec<FieldView>,
    people: Vec<(String, String, bool)>,
    has_people: bool,
    file_label: &'static str,
    edit_id: Option<i64>,
    error: Option<FormError>,
}

#[derive(Deserialize)]
struct EditQuery {
    #[serde(default)]
    edit: Option<i64>,
}

fn pick(lang: Lang, ja: &'static str, en: &'static str) -> &'static str {
    if lang == Lang::En { en } else { ja }
}

async fn show(
    svc: &Arc<Service>,
    headers: &HeaderMap,
    p: &Principal,
    reg: Register,
    form: Option<(Option<i64>, Entry)>,
    edit: Option<i64>,
    error: Option<&ServiceError>,
) -> Response {
    let lang = lang_of(headers);
    let rows = match svc.register_entries(p, reg).await {
        Ok(r) => r,
        Err(e) => return error_page(svc, headers, Some(p), &e),
    };
    let people = if reg.has_people() {
        match svc.register_people(p).await {
            Ok(v) => v,
            Err(e) => return error_page(svc, headers, Some(p), &e),
        }
    } else {
        Vec::new()
    };
    let (edit_id, entry) = form
        .or_else(|| {
            edit.and_then(|id| {
                rows.iter()
                    .find(|r| r.id == id)
                    .map(|r| (Some(id), r.entry.clone()))
            })
        })
        .unwrap_or((None, Entry::default()));
    let fields = reg.fields();
    let short: Vec<_> = fields
        .iter()
        .filter(|f| f.kind != FieldKind::LongText)
        .collect();
    let rows = rows
        .into_iter()
        .map(|r| RowView {
            id: r.id,
            cells: short
                .iter()
                .map(|f| r.entry.shown(f, lang == Lang::En).to_owned())
                .collect(),
            long: fields
                .iter()
                .filter(|f| f.kind == FieldKind::LongText && !r.entry.get(f.key).is_empty())
                .map(|f| (pick(lang, f.ja, f.en), r.entry.get(f.key).to_owned()))
                .collect(),
            people: r.entry.people.len(),
            file: r.file_name.clone(),
            by_mamori: r.source == "mamori",
            updated: jst(r.updated_at),
        })
        .collect();
    let form = fields
        .iter()
        .map(|f| {
            let value = entry.get(f.key).to_owned();
            FieldView {
                key: f.key,
                label: pick(lang, f.ja, f.en),
                kind: match f.kind {
                    FieldKind::Text => "text",
                    FieldKind::LongText => "textarea",
                    FieldKind::Date => "date",
                    FieldKind::Choice(_) => "select",
                },
                required: f.required,
                options: match f.kind {
                    FieldKind::Choice(o) => o
                        .iter()
                        .map(|(c, ja, en)| (*c, pick(lang, ja, en), *c == value))
                        .collect(),
                    _ => Vec::new(),
                },
                value,
            }
        })
        .collect();
    let (file_ja, file_en) = reg.file_label();
    let status = error.map_or(StatusCode::OK, |e| status_of(e.code));
    render(
        status,
        RegisterPage {
            layout: layout(svc, headers, Some(p), p.csrf.clone()),
            tab: "registers",
            code: reg.code(),
            title: pick(lang, reg.ja(), reg.en()),
            help: pick(lang, reg.help_ja(), reg.help_en()),
            registers: Register::ALL
                .iter()
                .map(|r| (r.code(), pick(lang, r.ja(), r.en()), *r == reg))
                .collect(),
            columns: short.iter().map(|f| pick(lang, f.ja, f.en)).collect(),
            rows,
            form,
            people: people
                .into_iter()
                .map(|(login, name)| {
                    let on = entry.people.contains(&login);
                    (login, name, on)
                })
                .collect(),
            has_people: reg.has_people(),
            file_label: pick(lang, file_ja, file_en),
            edit_id,
            error: error.and_then(|e| FormError::of(headers, e)),
        },
    )
}

fn no_such_register(svc: &Arc<Service>, headers: &HeaderMap, p: &Principal) -> Response {
    error_page(svc, headers, Some(p), &ServiceError::not_found("台帳"))
}

async fn register_page(
    State(svc): Svc,
    headers: HeaderMap,
    Path(code): Path<String>,
    Query(q): Query<EditQuery>,
    SignedIn(p): SignedIn,
) -> Response {
    match Register::parse(&code) {
        Some(reg) => show(&svc, &headers, &p, reg, None, q.edit, None).await,
        None => no_such_register(&svc, &headers, &p),
    }
}

fn entry_of(reg: Register, u: &Upload) -> Entry {
    let mut e = Entry::default();
    for f in reg.fields() {
        e.fields.insert(f.key.to_owned(), u.get(f.key));
    }
    e.people = u.form.all("people");
    e
}

async fn save_entry(
    State(svc): Svc,
    headers: HeaderMap,
    Path(code): Path<String>,
    SignedIn(p): SignedIn,
    mp: Multipart,
) -> Response {
    let Some(reg) = Register::parse(&code) else {
        return no_such_register(&svc, &headers, &p);
    };
    let u = match read_upload(&svc, &p, mp).await {
        Ok(u) => u,
        Err(e) => return error_page(&svc, &headers, Some(&p), &e),
    };
    let id = u.get("id").parse::<i64>().ok();
    let entry = entry_of(reg, &u);
    match svc
        .save_register_entry(&p, reg, id, entry.clone(), u.file)
        .await
    {
        Ok(_) => Redirect::to(&format!("/compliance/registers/{}", reg.code())).into_response(),
        Err(e) if e.code == ErrorCode::Forbidden || e.code == ErrorCode::NotFound => {
            error_page(&svc, &headers, Some(&p), &e)
        }
        Err(e) => show(&svc, &headers, &p, reg, Some((id, entry)), None, Some(&e)).await,
    }
}

async fn entry_file(
    State(svc): Svc,
    headers: HeaderMap,
    Path(id): Path<i64>,
    SignedIn(p): SignedIn,
) -> Response {
    match svc.register_file(&p, id).await {
        Ok((name, media, bytes)) => download(bytes, &media, &name),
        Err(e) => error_page(&svc, &headers, Some(&p), &e),
    }
}
