use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mamori_service::ServiceError;

/// The API's error body: `{"error": {"code", "message", "field"?}}`. Codes are stable;
/// messages are Japanese, for people.
pub struct ApiError(pub ServiceError);

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        Self(e)
    }
}

pub fn status_of(code: &str) -> StatusCode {
    match code {
        "unauthenticated"
        | "session_expired"
        | "invalid_credentials"
        | "second_factor_required"
        | "session_locked" => StatusCode::UNAUTHORIZED,
        "forbidden"
        | "csrf"
        | "password_change_required"
        | "account_disabled"
        | "maintenance_window_required"
        | "client_certificate_required" => StatusCode::FORBIDDEN,
        "account_locked" => StatusCode::LOCKED,
        "not_found" => StatusCode::NOT_FOUND,
        "invalid_state" | "conflict" | "login_taken" | "exists" | "backup_running" => {
            StatusCode::CONFLICT
        }
        "backup_no_key" | "backup_wrong_key" | "backup_no_repository" | "backup_no_snapshot" => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
        "too_large" => StatusCode::PAYLOAD_TOO_LARGE,
        "unsupported_type" => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "malformed" => StatusCode::BAD_REQUEST,
        "busy" => StatusCode::SERVICE_UNAVAILABLE,
        "invalid_input" => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = status_of(self.0.code);
        (status, Json(serde_json::json!({ "error": self.0 }))).into_response()
    }
}

pub type ApiResult<T> = Result<Json<T>, ApiError>;
