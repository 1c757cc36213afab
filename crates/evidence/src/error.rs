use thiserror::Error;

/// A failed check or a malformed object, with a stable code and a Japanese message.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("{message}")]
pub struct EvidenceError {
    pub code: &'static str,
    pub message: String,
}

pub type Result<T> = std::result::Result<T, EvidenceError>;

impl EvidenceError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub(crate) fn malformed(what: &str, e: impl std::fmt::Display) -> Self {
        Self::new("malformed", format!("{what}の形式が正しくありません: {e}"))
    }
}
