use mamori_domain::DomainError;
use mamori_store::StoreError;
use serde::Serialize;

/// A refusal or failure with a stable code for API clients and a Japanese message for people.
#[derive(Debug, Clone, thiserror::Error, Serialize)]
#[error("{message}")]
pub struct ServiceError {
    pub code: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'static str>,
}

impl ServiceError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            field: None,
        }
    }

    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            code: "invalid_input",
            message: message.into(),
            field: Some(field),
        }
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new("forbidden", message)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new("not_found", format!("{what}が見つかりません"))
    }

    pub fn unauthenticated() -> Self {
        Self::new("unauthenticated", "ログインしてください")
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        // The detail goes to the server log only; clients get a generic message.
        tracing::error!(error = %e, "internal error");
        Self::new(
            "internal",
            "内部エラーが発生しました。管理者に連絡してください",
        )
    }

    /// Whether the ledger should record this as an access-rule refusal (vs a failed attempt).
    pub fn is_denial(&self) -> bool {
        self.code == "forbidden"
    }

    /// Refusals are recorded in the ledger; internal failures are not (nothing happened).
    pub fn is_refusal(&self) -> bool {
        self.code != "internal"
    }
}

impl From<DomainError> for ServiceError {
    fn from(e: DomainError) -> Self {
        match &e {
            DomainError::NotFound(what) => Self::not_found(what),
            _ => Self::new(e.code(), e.message()),
        }
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Locked => Self::new(
                "locked_instance",
                "このデータディレクトリは別の mamori プロセスが使用中です（mamori serve が動いていないか確認してください）",
            ),
            e => Self::internal(e),
        }
    }
}

pub type Result<T, E = ServiceError> = std::result::Result<T, E>;
