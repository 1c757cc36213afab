//! `/api/v1/transactions`: the facility's transaction documents (電子帳簿保存法) — register
//! (a PDF or image with its fields, or a JP PINT e-invoice whose fields are read from it),
//! correct, cancel, search, open, the time-stamp token, 一括検証 and the tax officer's ZIP.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use mamori_domain::bookkeeping::{self, BookkeepingSettings, DocumentFields};
use mamori_service::transactions::{
    BulkVerifyReport, TxFile, TxInput, TxSearch, TxView, TxWritten,
};
use mamori_service::{Service, ServiceError};
use mamori_store::TxDocumentRow;
use serde::Deserialize;

use crate::api::zip_response;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Auth};

type Svc = State<Arc<Service>>;

#[derive(Deserialize)]
pub struct FileBody {
    name: String,
    content_base64: String,
}

fn decode(f: FileBody) -> Result<TxFile, ApiError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(f.content_base64.as_bytes())
        .map_err(|_| ServiceError::invalid("file", "ファイルの base64 が読めません"))?;
    Ok(TxFile {
        name: f.name,
        bytes,
    })
}

/// A document's fields (any may be omitted: a JP PINT file supplies its own), the file, and
/// whether a failing registration number is kept as printed.
#[derive(Deserialize)]
pub struct RegisterBody {
    #[serde(flatten)]
    fields: serde_json::Map<String, serde_json::Value>,
    file: FileBody,
    #[serde(default)]
    as_printed: bool,
}

/// The fields the body names, and those it does not (which a JP PINT file may then fill).
fn input_of(
    mut fields: serde_json::Map<String, serde_json::Value>,
    as_printed: bool,
) -> Result<TxInput, ApiError> {
    const NAMES: [&str; 14] = [
        "doc_type",
        "direction",
        "transaction_date",
        "amount",
        "counterparty",
        "counterparty_kind",
        "registration_number",
        "received_on",
        "document_number",
        "invoice_kind",
        "recipient",
        "description",
        "rates",
        "amounts_include_tax",
    ];
    if let Some(k) = fields.keys().find(|k| !NAMES.contains(&k.as_str())) {
        return Err(ServiceError::invalid("body", format!("知らない項目です: {k}")).into());
    }
    let given: Vec<&'static str> = NAMES
        .iter()
        .copied()
        .filter(|n| fields.get(*n).is_some_and(|v| !v.is_null()))
        .collect();
    fields.retain(|_, v| !v.is_null());
    let parsed: DocumentFields = serde_json::from_value(serde_json::Value::Object(fields))
        .map_err(|e| ServiceError::invalid("body", format!("項目の形が正しくありません: {e}")))?;
    Ok(TxInput {
        fields: parsed,
        as_printed,
        given: if given.is_empty() {
            vec!["direction"]
        } else {
            given
        },
    })
}

pub async fn register(
    State(svc): Svc,
    Auth(p): Auth,
    ApiJson(b): ApiJson<RegisterBody>,
) -> Result<(StatusCode, Json<TxWritten>), ApiError> {
    let input = input_of(b.fields, b.as_printed)?;
    let file = decode(b.file)?;
    Ok((
        StatusCode::CREATED,
        Json(svc.register_transaction(Some(&p), input, file).await?),
    ))
}

#[derive(Deserialize)]
pub struct CorrectBody {
    #[serde(flatten)]
    fields: serde_json::Map<String, serde_json::Value>,
    /// The version the correction starts from (another change in between is refused).
    base_version: i64,
    reason: String,
    #[serde(default)]
    file: Option<FileBody>,
    #[serde(default)]
    as_printed: bool,
}

pub async fn correct(
    State(svc): Svc,
    Auth(p): Auth,
    Path(id): Path<i64>,
    ApiJson(b): ApiJson<CorrectBody>,
) -> Result<(StatusCode, Json<TxWritten>), ApiError> {
    let input = input_of(b.fields, b.as_printed)?;
    let file = b.file.map(decode).transpose()?;
    Ok((
        StatusCode::CREATED,
        Json(
            svc.correct_transaction(Some(&p), id, b.base_version, input, file, b.reason)
                .await?,
        ),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancelBody {
    base_version: i64,
    reason: String,
}

pub async fn cancel(
    State(svc): Svc,
    Auth(p): Auth,
    Path(id): Path<i64>,
    ApiJson(b): ApiJson<CancelBody>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let v = svc
        .cancel_transaction(Some(&p), id, b.base_version, b.reason)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({ "id": id, "version": v })),
    ))
}

pub async fn search(
    State(svc): Svc,
    Auth(p): Auth,
    Query(q): Query<TxSearch>,
) -> ApiResult<Vec<TxDocumentRow>> {
    Ok(Json(svc.search_transactions(Some(&p), q).await?))
}

pub async fn get(State(svc): Svc, Auth(p): Auth, Path(id): Path<i64>) -> ApiResult<TxView> {
    Ok(Json(svc.transaction(Some(&p), id).await?))
}

#[derive(Deserialize)]
pub struct FileQuery {
    #[serde(default)]
    version: Option<i64>,
}

/// A file served as a download (never rendered in the application's origin).
pub(crate) fn download(media: &str, name: &str, bytes: Vec<u8>) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(media)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'.' || b == b'-' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"
    )) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    (headers, bytes).into_response()
}

pub async fn file(
    State(svc): Svc,
    Auth(p): Auth,
    Path(id): Path<i64>,
    Query(q): Query<FileQuery>,
) -> Result<Response, ApiError> {
    let (name, media, bytes) = svc.transaction_file(Some(&p), id, q.version).await?;
    Ok(download(&media, &name, bytes))
}

pub async fn token(
    State(svc): Svc,
    Auth(p): Auth,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let der = svc.transaction_token(Some(&p), id).await?;
    Ok(download(
        "application/timestamp-reply",
        &format!("{id}.tst"),
        der,
    ))
}

#[derive(Deserialize)]
pub struct Period {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

pub async fn verify_stamps(
    State(svc): Svc,
    Auth(p): Auth,
    ApiJson(b): ApiJson<Period>,
) -> ApiResult<BulkVerifyReport> {
    Ok(Json(
        svc.verify_transaction_stamps(Some(&p), b.from, b.to)
            .await?,
    ))
}

pub async fn export(
    State(svc): Svc,
    Auth(p): Auth,
    Query(q): Query<Period>,
) -> Result<Response, ApiError> {
    let (zip, _) = svc
        .export_transactions(Some(&p), q.from.clone(), q.to.clone())
        .await?;
    Ok(zip_response(
        zip,
        &format!("transactions_{}_{}.zip", q.from, q.to),
    ))
}

pub async fn get_settings(State(svc): Svc, Auth(p): Auth) -> ApiResult<BookkeepingSettings> {
    // Reading the settings needs the same right as reading the documents.
    svc.gate(
        &p,
        mamori_domain::audit::actions::TRANSACTION_VIEWED,
        p.require(mamori_domain::permission::Action::ReadTransactions, None),
    )
    .await?;
    Ok(Json(svc.bookkeeping_settings().await?))
}

pub async fn save_settings(
    State(svc): Svc,
    Auth(p): Auth,
    ApiJson(b): ApiJson<BookkeepingSettings>,
) -> ApiResult<BookkeepingSettings> {
    svc.save_bookkeeping_settings(Some(&p), b).await?;
    Ok(Json(svc.bookkeeping_settings().await?))
}

#[derive(Deserialize)]
pub struct NumberQuery {
    number: String,
    #[serde(default)]
    kind: String,
}

/// Checks a registration number's format and (for a corporation) its check digit.
pub async fn check_number(
    State(svc): Svc,
    Auth(p): Auth,
    Query(q): Query<NumberQuery>,
) -> ApiResult<serde_json::Value> {
    svc.gate(
        &p,
        mamori_domain::audit::actions::TRANSACTION_SEARCHED,
        p.require(mamori_domain::permission::Action::ReadTransactions, None),
    )
    .await?;
    let kind = bookkeeping::CounterpartyKind::parse(q.kind.trim())
        .ok_or_else(|| ServiceError::invalid("kind", "kind は corporation か individual です"))?;
    Ok(Json(
        match bookkeeping::registration::check(&q.number, kind) {
            Ok(n) => serde_json::json!({ "valid": true, "number": n }),
            Err(e) => serde_json::json!({ "valid": false, "message": e.message_ja() }),
        },
    ))
}

#[derive(Deserialize)]
pub struct DocQuery {
    #[serde(default)]
    format: Option<String>,
}

/// The drafts of the 事務処理規程 (`rules`) and the システム概要書 (`overview`).
pub async fn document(
    State(svc): Svc,
    Auth(p): Auth,
    Path(kind): Path<String>,
    Query(q): Query<DocQuery>,
) -> Result<Response, ApiError> {
    let k = mamori_service::transactions::BooksDoc::parse(&kind)
        .ok_or_else(mamori_service::compliance::docs::unknown_doc)?;
    let doc = svc.bookkeeping_doc(&p, k).await?;
    Ok(match q.format.as_deref() {
        Some("pdf") => download(
            "application/pdf",
            &format!("{kind}.pdf"),
            mamori_compliance::pdf::render(&doc),
        ),
        None | Some("json") => Json(doc).into_response(),
        Some(_) => {
            return Err(ServiceError::invalid("format", "format は json か pdf です").into());
        }
    })
}

/// Imports the NTA 公表サイト's data (a CSV of the 全件 or 差分 download, unzipped).
pub async fn import_registry(
    State(svc): Svc,
    Auth(p): Auth,
    ApiJson(b): ApiJson<FileBody>,
) -> Result<
    (
        StatusCode,
        Json<mamori_service::transactions::RegistryStatus>,
    ),
    ApiError,
> {
    let f = decode(b)?;
    Ok((
        StatusCode::CREATED,
        Json(
            svc.import_invoice_registry(Some(&p), f.name, f.bytes)
                .await?,
        ),
    ))
}
