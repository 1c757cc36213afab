//! Handlers of `/api/v1`, one file per capability. Each one parses, calls one service
//! function, and shapes the reply: no rule lives here. This file has what they share: the
//! imports, file and DER replies, health and not-found.

pub mod access;
pub mod backup;
pub mod compliance;
pub mod evidence;
pub mod ledger;
pub mod records;
pub mod registers;
pub mod transactions;

pub use access::*;
pub use backup::*;
pub use evidence::*;
pub use ledger::*;
pub use records::*;

use mamori_service::ErrorCode;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use mamori_domain::kinds::RecordKind;
use mamori_service::access::accounts::{AccountView, IssuedToken, NewAccount};
use mamori_service::access::auth::LoginOk;
use mamori_service::access::settings::{RoleInput, RoleSaved, RoleView};
use mamori_service::ledger::audit::{AuditEntry, PatientAccessCount, parse_time};
use mamori_service::ledger::{CheckpointView, ProofView};
use mamori_service::records::patients::NewPatient;
use mamori_service::records::{
    DiffLine, PendingItem, PrintView, RecordInput, RecordSummary, RecordView, Then, Upload,
    WriteResult,
};
use mamori_service::{Service, ServiceError};
use mamori_store::{AuditFilter, Patient};
use serde::Deserialize;

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Auth, ClientAddr, MaybeAuth, PendingAuth, SESSION_COOKIE};
use mamori_service::access::auth::SecondFactorProof;

type Svc = State<Arc<Service>>;

pub async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// Prometheus metrics (OpenMetrics text) for the administrator's token.
pub async fn metrics(State(svc): Svc, Auth(p): Auth) -> Result<Response, crate::error::ApiError> {
    let v = svc.vitals(&p).await?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        crate::metrics::render(&v),
    )
        .into_response())
}

/// 200 when the database answers and the ledger writer commits, else 503 naming the part.
pub async fn ready(State(svc): Svc) -> Response {
    let r = svc.readiness().await;
    let status = if r.ready() {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({
        "status": if r.ready() { "ready" } else { "unavailable" },
        "database": if r.database { "ok" } else { "unavailable" },
        "ledger_writer": if r.ledger_writer { "ok" } else { "unavailable" },
        "storage": if r.storage { "ok" } else { "unavailable" },
    });
    (status, Json(body)).into_response()
}

pub async fn not_found() -> ApiError {
    ApiError(ServiceError::new(
        ErrorCode::NotFound,
        "この URL の API はありません",
    ))
}

pub(crate) fn zip_response(bytes: Vec<u8>, name: &str) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/zip"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    (headers, bytes).into_response()
}

/// A file-name-safe form of an identifier (patient IDs are free text).
pub(crate) fn file_part(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect()
}

/// One DER request in, one DER reply out, as RFC 3161 and RFC 6960 carry them over HTTP.
async fn der_exchange<F, Fut>(
    headers: &HeaderMap,
    body: axum::body::Bytes,
    (request_type, reply_type): (&'static str, &'static str),
    answer: F,
) -> Response
where
    F: FnOnce(Vec<u8>) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<u8>, mamori_service::ServiceError>>,
{
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct != request_type {
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Type must be {request_type}"),
        )
            .into_response();
    }
    match answer(body.to_vec()).await {
        Ok(resp) => ([(header::CONTENT_TYPE, reply_type)], resp).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}
