//! `/api/v1`: the facility registers (disposal, take-out, training, outside storage), erasing a
//! backup target, and export bundles encrypted to leave the facility.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine;
use mamori_compliance::registers::{Entry, Register};
use mamori_service::backup::erase::ErasureReport;
use mamori_service::records::export::Scope;
use mamori_service::records::export_encrypted::TakeOut;
use mamori_service::{Service, ServiceError};
use mamori_store::RegisterRow;
use serde::Deserialize;

use crate::api::{file_part, zip_response};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Auth};

type Svc = State<Arc<Service>>;

fn register_of(code: &str) -> Result<Register, ApiError> {
    Register::parse(code).ok_or_else(|| ServiceError::not_found("台帳").into())
}

pub async fn list_register(
    State(svc): Svc,
    Auth(p): Auth,
    Path(code): Path<String>,
) -> ApiResult<Vec<RegisterRow>> {
    let reg = register_of(&code)?;
    Ok(Json(svc.register_entries(&p, reg).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryBody {
    #[serde(default)]
    id: Option<i64>,
    #[serde(flatten)]
    entry: Entry,
    /// A file for the entry (certificate, materials, contract), as `{name, content_base64}`.
    #[serde(default)]
    file: Option<FileBody>,
}

#[derive(Deserialize)]
pub struct FileBody {
    name: String,
    content_base64: String,
}

pub async fn save_register_entry(
    State(svc): Svc,
    Auth(p): Auth,
    Path(code): Path<String>,
    ApiJson(b): ApiJson<EntryBody>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let reg = register_of(&code)?;
    let file = match b.file {
        Some(f) => Some((
            f.name,
            base64::engine::general_purpose::STANDARD
                .decode(f.content_base64.as_bytes())
                .map_err(|_| ServiceError::invalid("file", "ファイルの base64 が読めません"))?,
        )),
        None => None,
    };
    let id = svc
        .save_register_entry(&p, reg, b.id, b.entry, file)
        .await?;
    Ok((StatusCode::CREATED, Json(serde_json::json!({ "id": id }))))
}

#[derive(Deserialize)]
pub struct EraseBody {
    target: String,
    confirm: String,
}

pub async fn erase_backup_target(
    State(svc): Svc,
    Auth(p): Auth,
    ApiJson(b): ApiJson<EraseBody>,
) -> ApiResult<ErasureReport> {
    Ok(Json(
        svc.erase_backup_target(&p, &b.target, &b.confirm).await?,
    ))
}

pub async fn record_bundle_encrypted(
    State(svc): Svc,
    Auth(p): Auth,
    Path(id): Path<i64>,
    ApiJson(b): ApiJson<TakeOut>,
) -> Result<Response, ApiError> {
    let bytes = svc
        .export_bundle_encrypted(&p, Scope::Record(id), b)
        .await?;
    Ok(zip_response(
        bytes,
        &format!("mamori-record-{id}-encrypted.zip"),
    ))
}

pub async fn patient_bundle_encrypted(
    State(svc): Svc,
    Auth(p): Auth,
    Path(pid): Path<String>,
    ApiJson(b): ApiJson<TakeOut>,
) -> Result<Response, ApiError> {
    let name = format!("mamori-patient-{}-encrypted.zip", file_part(&pid));
    let bytes = svc
        .export_bundle_encrypted(&p, Scope::Patient(pid), b)
        .await?;
    Ok(zip_response(bytes, &name))
}
