use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mamori_service::{ErrorCode, ServiceError};

/// The API's error body: `{"error": {"code", "message", "field"?}}`. Codes are stable;
/// messages are Japanese, for people.
pub struct ApiError(pub ServiceError);

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        Self(e)
    }
}

/// The status each code is answered with (declared with the code in the service).
pub fn status_of(code: ErrorCode) -> StatusCode {
    StatusCode::from_u16(code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = status_of(self.0.code);
        (status, Json(serde_json::json!({ "error": self.0 }))).into_response()
    }
}

pub type ApiResult<T> = Result<Json<T>, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_answers_its_status_with_its_code_and_message() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        for &code in ErrorCode::ALL {
            let res = ApiError(ServiceError::new(code, "具体的な説明")).into_response();
            assert_eq!(res.status().as_u16(), code.status(), "{code}");
            let body = rt
                .block_on(axum::body::to_bytes(res.into_body(), 1 << 16))
                .unwrap();
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(v["error"]["code"], code.as_str());
            assert_eq!(v["error"]["message"], "具体的な説明");
            let en = crate::i18n::error_text(crate::i18n::Lang::En, code, "具体的な説明");
            assert!(en.starts_with(code.en()) && en.contains("具体的な説明"));
        }
    }
}
