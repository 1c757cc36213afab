//! SMART Backend Services on the FHIR interface: the token endpoint (client credentials with a
//! signed JWT), its discovery document, and the scope check of every request an OAuth access
//! token makes.

use std::sync::Arc;

use axum::Form;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mamori_fhir::outcome::IssueType;
use mamori_fhir::smart::{self, Permission};
use mamori_service::access::oauth::TokenRequest;
use mamori_service::{Principal, Service};
use serde_json::json;

use super::{Base, FhirError};
use crate::extract::client_of;

/// `POST /fhir/r4/auth/token` (`application/x-www-form-urlencoded`, RFC 6749 §4.4 with an
/// RFC 7523 client assertion). Answers are OAuth's JSON, never cached.
pub(super) async fn token(
    State(svc): State<Arc<Service>>,
    Base(base): Base,
    parts: Parts,
    form: Result<Form<TokenRequest>, axum::extract::rejection::FormRejection>,
) -> Response {
    let answer = match form {
        Err(_) => Err(mamori_service::access::oauth::TokenRefusal {
            error: "invalid_request",
            description: "トークン要求は application/x-www-form-urlencoded で送ってください".into(),
        }),
        Ok(Form(req)) => {
            svc.oauth_token(req, format!("{base}/auth/token"), client_of(&parts))
                .await
        }
    };
    let (status, body) = match answer {
        Ok(grant) => (StatusCode::OK, json!(grant)),
        Err(r) => (
            match r.error {
                "invalid_client" => StatusCode::UNAUTHORIZED,
                "server_error" => StatusCode::INTERNAL_SERVER_ERROR,
                _ => StatusCode::BAD_REQUEST,
            },
            json!({ "error": r.error, "error_description": r.description }),
        ),
    };
    let mut res = (status, axum::Json(body)).into_response();
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    res
}

/// `GET /fhir/r4/.well-known/smart-configuration`.
pub(super) async fn smart_configuration(Base(base): Base) -> Response {
    axum::Json(mamori_fhir::capability::smart_configuration(&base)).into_response()
}

/// Refuses a request an OAuth token's scopes do not cover: the resource type is the path's
/// first segment, the permission follows from the method and whether an ID follows.
pub(super) fn require_scope(p: &Principal, parts: &Parts) -> Result<(), FhirError> {
    let path = parts.uri.path();
    let path = path.strip_prefix("/fhir/r4").unwrap_or(path);
    let mut segments = path.trim_start_matches('/').split('/');
    // A transaction (`POST` to the base) writes a DocumentReference and its files, nothing else.
    let resource = match segments.next().unwrap_or("") {
        "" if parts.method == axum::http::Method::POST => "DocumentReference",
        r => r,
    };
    let has_id = segments.next().is_some_and(|s| !s.is_empty());
    let permitted = Permission::of_request(parts.method.as_str(), has_id)
        .is_some_and(|perm| smart::permits(&p.token_scopes, resource, perm));
    if permitted {
        return Ok(());
    }
    let wanted = match Permission::of_request(parts.method.as_str(), has_id) {
        Some(Permission::Read) => "r（読む）",
        Some(Permission::Search) => "s（検索）",
        Some(Permission::Create) => "c（作成）",
        Some(Permission::Update) => "u（更新）",
        Some(Permission::Delete) => "d（削除）",
        None => "この操作",
    };
    Err(FhirError::new(
        StatusCode::FORBIDDEN,
        IssueType::Forbidden,
        "forbidden",
        &format!(
            "このアクセストークンのスコープ（{}）には system/{}.{} が含まれていません",
            p.token_scopes.join(" "),
            smart::clip(resource),
            wanted
        ),
        None,
    ))
}
