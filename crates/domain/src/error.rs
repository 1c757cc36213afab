use serde::Serialize;

/// Every refusal has a stable machine code (for API clients) and a Japanese message (for people).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
pub enum DomainError {
    #[error("権限がありません: {0}")]
    Forbidden(String),
    #[error("この操作はできません: {0}")]
    InvalidState(String),
    #[error("入力が正しくありません: {0}")]
    Invalid(String),
    #[error("見つかりません: {0}")]
    NotFound(String),
    #[error("他の利用者が先に変更しました。最新の内容を確認してください: {0}")]
    Conflict(String),
}

impl DomainError {
    /// The explanation alone, for showing next to the field it concerns.
    pub fn message(&self) -> &str {
        match self {
            DomainError::Forbidden(m)
            | DomainError::InvalidState(m)
            | DomainError::Invalid(m)
            | DomainError::NotFound(m)
            | DomainError::Conflict(m) => m,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            DomainError::Forbidden(_) => "forbidden",
            DomainError::InvalidState(_) => "invalid_state",
            DomainError::Invalid(_) => "invalid_input",
            DomainError::NotFound(_) => "not_found",
            DomainError::Conflict(_) => "conflict",
        }
    }
}
