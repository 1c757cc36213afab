//! The one reader of `multipart/form-data` pages (record writing, evidence files, imports,
//! registers): text fields in order, files with their names. A body past the route's limit
//! is "too large"; any other broken body says so, instead of blaming the size.

use axum::extract::Multipart;
use axum::extract::multipart::MultipartError;
use axum::http::StatusCode;
use mamori_service::{ErrorCode, ServiceError};

#[derive(Default)]
pub(crate) struct Parts {
    pub fields: Vec<(String, String)>,
    /// Files chosen in the form, by their name on the user's machine; empty file inputs
    /// (nothing chosen) are left out.
    pub files: Vec<(String, Vec<u8>)>,
}

impl Parts {
    /// The first value of a text field, or "".
    pub fn get(&self, name: &str) -> String {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    /// Every value of a repeated field (checkboxes), in order.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.fields
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

fn refusal(e: MultipartError) -> ServiceError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ServiceError::new(
            ErrorCode::TooLarge,
            "送信されたデータが大きすぎます。添付ファイルの大きさを確認してください（1ファイル 20MB まで）",
        )
    } else {
        unreadable()
    }
}

/// A body that is not a form (broken boundary, not multipart at all).
pub(crate) fn unreadable() -> ServiceError {
    ServiceError::new(
        ErrorCode::Malformed,
        "送信されたフォームを読み取れませんでした。もう一度送信してください",
    )
}

pub(crate) async fn read(mut mp: Multipart) -> Result<Parts, ServiceError> {
    let mut parts = Parts::default();
    while let Some(field) = mp.next_field().await.map_err(refusal)? {
        let name = field.name().unwrap_or("").to_owned();
        if let Some(file) = field.file_name().map(str::to_owned) {
            let bytes = field.bytes().await.map_err(refusal)?;
            if !bytes.is_empty() {
                parts.files.push((file, bytes.to_vec()));
            }
            continue;
        }
        let text = field.text().await.map_err(refusal)?;
        parts.fields.push((name, text));
    }
    Ok(parts)
}
