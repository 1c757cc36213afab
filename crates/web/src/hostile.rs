//! Entry points for the fuzz targets and their bounded property tests (`crates/fuzzing`): the
//! page forms' multipart reader, reached without a signed-in session. Not an API.

use axum::extract::{FromRequest, Multipart};
use mamori_service::ServiceError;

/// Reads `body` as the pages' forms are read: text fields and non-empty files, or a Japanese
/// refusal. `content_type` is the request's header (with its boundary).
pub async fn read_form(
    content_type: &str,
    body: Vec<u8>,
) -> Result<(Vec<(String, String)>, Vec<(String, Vec<u8>)>), ServiceError> {
    let req = axum::http::Request::builder()
        .method("POST")
        .header("content-type", content_type)
        .body(axum::body::Body::from(body))
        .map_err(ServiceError::internal)?;
    let mp = Multipart::from_request(req, &())
        .await
        .map_err(|_| crate::ui::multipart::unreadable())?;
    let parts = crate::ui::multipart::read(mp).await?;
    Ok((parts.fields, parts.files))
}
