use mamori_domain::DomainError;
use mamori_store::StoreError;
use serde::Serialize;

/// Declares every error code once, with its HTTP status and what it means for people in
/// Japanese and English; the API sends `as_str()`, the browser shows `ja()`/`en()` beside the
/// specific message.
macro_rules! error_codes {
    ($( $variant:ident = $code:literal, $status:literal, $ja:literal, $en:literal; )*) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum ErrorCode { $( $variant, )* }

        impl ErrorCode {
            pub const ALL: &'static [ErrorCode] = &[ $( ErrorCode::$variant, )* ];

            /// The stable code API clients match on.
            pub fn as_str(self) -> &'static str {
                match self { $( ErrorCode::$variant => $code, )* }
            }

            /// The HTTP status the API and the browser answer with.
            pub fn status(self) -> u16 {
                match self { $( ErrorCode::$variant => $status, )* }
            }

            /// What the code means, in Japanese.
            pub fn ja(self) -> &'static str {
                match self { $( ErrorCode::$variant => $ja, )* }
            }

            /// What the code means, in English.
            pub fn en(self) -> &'static str {
                match self { $( ErrorCode::$variant => $en, )* }
            }

            pub fn parse(code: &str) -> Option<ErrorCode> {
                match code { $( $code => Some(ErrorCode::$variant), )* _ => None }
            }
        }
    };
}

error_codes! {
    Unauthenticated = "unauthenticated", 401, "ログインしてください", "You were signed out. Please sign in again.";
    SessionExpired = "session_expired", 401, "一定時間操作がなかったためログアウトしました", "You were signed out. Please sign in again.";
    InvalidCredentials = "invalid_credentials", 401, "ログインIDまたはパスワードが違います", "The login ID or password is wrong.";
    SecondFactorRequired = "second_factor_required", 401, "2要素認証の確認が必要です", "The second factor is needed to finish signing in.";
    SessionLocked = "session_locked", 401, "画面がロックされています", "The screen is locked. Enter your password to continue.";
    Forbidden = "forbidden", 403, "この操作の権限がありません", "Your role does not allow this.";
    Csrf = "csrf", 403, "フォームの有効期限が切れました。もう一度操作してください", "The form has expired. Please try again.";
    PasswordChangeRequired = "password_change_required", 403, "先に新しいパスワードを設定してください", "You must set a new password first.";
    AccountDisabled = "account_disabled", 403, "このアカウントは使用できません", "This account cannot be used. Ask your system administrator.";
    MaintenanceWindowRequired = "maintenance_window_required", 403, "保守要員は承認された作業時間内にだけログインできます", "Maintenance accounts sign in only inside an approved work window.";
    ClientCertificateRequired = "client_certificate_required", 403, "この職種は施設の端末証明書がある端末からだけ接続できます", "Your role may connect only from a device with the facility's client certificate.";
    AccountLocked = "account_locked", 423, "失敗が続いたためアカウントがロックされています", "The account is locked after repeated failures. Ask your system administrator.";
    NotFound = "not_found", 404, "見つかりません", "Not found, or not visible to you.";
    InvalidInput = "invalid_input", 422, "入力内容を確認してください", "Please check what you entered.";
    InvalidState = "invalid_state", 409, "今の状態ではこの操作はできません", "This cannot be done in the current state.";
    Conflict = "conflict", 409, "ほかの操作と重なりました。最新の内容を確認してください", "Someone changed this meanwhile. Please check the latest version.";
    LoginTaken = "login_taken", 409, "このログインIDは既に使われています", "That login ID is already in use.";
    Exists = "exists", 409, "既に存在します", "That already exists.";
    Malformed = "malformed", 400, "要求の形式が正しくありません", "The request is malformed.";
    TooLarge = "too_large", 413, "大きすぎます", "The upload is too large.";
    UnsupportedType = "unsupported_type", 415, "この種類のファイルは受け付けません（PDF・JPEG・PNG・TIFF）", "That kind of file is not accepted (PDF, JPEG, PNG or TIFF).";
    Busy = "busy", 503, "ほかの処理が実行中です。終わるまでお待ちください", "Another run is in progress. Please wait until it ends.";
    LockedInstance = "locked_instance", 503, "データディレクトリは別の mamori プロセスが使用中です", "The data directory is in use by another mamori process.";
    NoTsa = "no_tsa", 503, "タイムスタンプ局 (TSA) が設定されていません", "No time-stamping authority (TSA) is configured.";
    TsaUnavailable = "tsa_unavailable", 503, "タイムスタンプ局 (TSA) に接続できません。後で自動的に再試行します", "The time-stamping authority cannot be reached; it will be retried.";
    TsaNotNewer = "tsa_not_newer", 502, "タイムスタンプ局の応答が更新になっていません", "The time-stamping authority's answer is not newer than the one held.";
    SigningKeyMissing = "signing_key_missing", 409, "この職員の署名鍵がまだありません", "This staff member has no signing key yet.";
    SigningPinWrong = "signing_pin_wrong", 403, "署名用 PIN が違います", "The signing PIN is wrong.";
    SigningPinLocked = "signing_pin_locked", 423, "署名用 PIN の誤入力が続いたため、しばらく署名ウィンドウを開けません", "The signing PIN was wrong too often; wait before trying again.";
    SigningWindowClosed = "signing_window_closed", 409, "署名ウィンドウが開いていません。署名用 PIN を入力して開いてください", "Your signing window is closed. Open it with your signing PIN.";
    TokenUnavailable = "token_unavailable", 503, "署名鍵のトークン (PKCS#11) を使えません", "The signing-key token (PKCS#11) is not available.";
    PdfNotSignable = "pdf_not_signable", 422, "この PDF には署名できません", "This PDF cannot be signed.";
    EvidenceMismatch = "evidence_mismatch", 422, "署名・証拠が記録の内容と一致しません", "The signature or evidence does not match the record.";
    Evidence = "evidence", 500, "署名・タイムスタンプ・証拠記録の処理に失敗しました", "Signing, time-stamping or evidence processing failed.";
    Export = "export", 500, "書き出しに失敗しました", "The export failed.";
    BackupRunning = "backup_running", 409, "バックアップまたは復元訓練が実行中です", "A backup or restore drill is already running. Please wait until it ends.";
    BackupNoKey = "backup_no_key", 422, "バックアップの鍵が指定されていません", "The backup key is missing.";
    BackupWrongKey = "backup_wrong_key", 422, "バックアップの鍵が違います", "The backup key is wrong.";
    BackupNoRepository = "backup_no_repository", 422, "バックアップ先にリポジトリがありません", "There is no backup repository at that target.";
    BackupNoSnapshot = "backup_no_snapshot", 404, "そのスナップショットはありません", "There is no such snapshot.";
    BackupMissing = "backup_missing", 502, "バックアップ先のデータが欠けています", "Data is missing at the backup target.";
    BackupCorrupt = "backup_corrupt", 502, "バックアップ先のデータが壊れています", "Data at the backup target is damaged.";
    BackupLocked = "backup_locked", 409, "書き込み禁止期間中のため削除できません", "It is locked (write-once) and cannot be deleted yet.";
    BackupRepoLocked = "backup_repo_locked", 409, "バックアップ先は別の処理が使用中です", "The backup repository is in use by another process.";
    BackupIo = "backup_io", 502, "バックアップ先との入出力に失敗しました", "Reading from or writing to the backup target failed.";
    OutboxIo = "outbox_io", 500, "サーバーへの記録を書けません", "The record for the server could not be written.";
    NoInstance = "no_instance", 500, "インスタンスがありません", "There is no instance here.";
    Key = "key", 500, "インスタンスの鍵を読めません", "The instance's key cannot be read.";
    KeyMismatch = "key_mismatch", 500, "インスタンスの鍵が記録された鍵と一致しません", "The instance's key does not match the one recorded.";
    SchemaUpgrade = "schema_upgrade", 500, "データベースをこのリリースの形式に更新できません", "The database cannot be brought to this release's format.";
    StorageUnreachable = "storage_unreachable", 503, "保存先に接続できないため処理できませんでした（何も保存されていません）。しばらくしてから再度お試しください", "The storage (database or file store) cannot be reached; nothing was saved. Please try again later.";
    Unwritable = "unwritable", 503, "ディスクに書き込めないため保存できませんでした", "The disk refused the write; nothing was saved.";
    Ca = "ca", 500, "施設CAの処理に失敗しました", "The facility CA failed.";
    Config = "config", 500, "設定に誤りがあります", "The configuration is wrong.";
    Corrupt = "corrupt", 500, "保存されたデータが壊れています", "Stored data is damaged.";
    Io = "io", 500, "ファイルの読み書きに失敗しました", "Reading or writing a file failed.";
    Internal = "internal", 500, "内部エラーが発生しました。管理者に連絡してください", "Something went wrong. Please tell your administrator.";
}

impl Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Tests and callers may compare with the wire form.
impl PartialEq<&str> for ErrorCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<ErrorCode> for &str {
    fn eq(&self, other: &ErrorCode) -> bool {
        *self == other.as_str()
    }
}

/// A refusal or failure with a stable code for API clients and a Japanese message for people.
#[derive(Debug, Clone, thiserror::Error, Serialize)]
#[error("{message}")]
pub struct ServiceError {
    pub code: ErrorCode,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'static str>,
}

impl ServiceError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            field: None,
        }
    }

    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            code: ErrorCode::InvalidInput,
            message: message.into(),
            field: Some(field),
        }
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("{what}が見つかりません"))
    }

    pub fn unauthenticated() -> Self {
        Self::new(ErrorCode::Unauthenticated, "ログインしてください")
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        // The detail goes to the server log only; clients get a generic message.
        tracing::error!(error = %e, "internal error");
        Self::new(ErrorCode::Internal, ErrorCode::Internal.ja())
    }

    /// Whether the ledger should record this as an access-rule refusal (vs a failed attempt).
    pub fn is_denial(&self) -> bool {
        self.code == ErrorCode::Forbidden
    }

    /// Refusals are recorded in the ledger; internal failures are not (nothing happened).
    pub fn is_refusal(&self) -> bool {
        self.code != ErrorCode::Internal
    }
}

impl From<DomainError> for ServiceError {
    fn from(e: DomainError) -> Self {
        match &e {
            DomainError::NotFound(what) => Self::not_found(what),
            DomainError::Forbidden(_) => Self::new(ErrorCode::Forbidden, e.message()),
            DomainError::InvalidState(_) => Self::new(ErrorCode::InvalidState, e.message()),
            DomainError::Invalid(_) => Self::new(ErrorCode::InvalidInput, e.message()),
            DomainError::Conflict(_) => Self::new(ErrorCode::Conflict, e.message()),
        }
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Locked => Self::new(
                ErrorCode::LockedInstance,
                "このデータディレクトリは別の mamori プロセスが使用中です（mamori serve が動いていないか確認してください）",
            ),
            StoreError::Overloaded => crate::access::guard::busy(),
            // What to do is in the message (free space, a newer release's database).
            StoreError::Schema(m) => Self::new(ErrorCode::SchemaUpgrade, m),
            StoreError::Unwritable(u) => Self::new(ErrorCode::Unwritable, u.to_string()),
            StoreError::Unreachable(detail) => {
                // Where and why is for the administrator's log; the person is told what it means.
                tracing::warn!(%detail, "storage unreachable");
                Self::new(
                    ErrorCode::StorageUnreachable,
                    ErrorCode::StorageUnreachable.ja(),
                )
            }
            e => Self::internal(e),
        }
    }
}

pub type Result<T, E = ServiceError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_a_status_and_both_messages_and_round_trips() {
        let mut seen = std::collections::HashSet::new();
        for &code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()), "{code} declared twice");
            assert_eq!(ErrorCode::parse(code.as_str()), Some(code));
            assert!((400..=599).contains(&code.status()), "{code}");
            assert!(
                code.ja()
                    .chars()
                    .any(|c| ('\u{3040}'..='\u{9fff}').contains(&c)),
                "{code}: the Japanese message is Japanese"
            );
            assert!(
                !code.en().is_empty() && code.en().is_ascii(),
                "{code}: the English message is English"
            );
            assert_eq!(
                serde_json::to_value(code).unwrap(),
                serde_json::json!(code.as_str())
            );
            // Only a fault of the server itself may answer 500; what a client can change or
            // retry has its own status.
            if code.status() == 500 {
                assert!(
                    matches!(
                        code,
                        ErrorCode::Internal
                            | ErrorCode::Evidence
                            | ErrorCode::Export
                            | ErrorCode::OutboxIo
                            | ErrorCode::NoInstance
                            | ErrorCode::Key
                            | ErrorCode::KeyMismatch
                            | ErrorCode::SchemaUpgrade
                            | ErrorCode::Ca
                            | ErrorCode::Config
                            | ErrorCode::Corrupt
                            | ErrorCode::Io
                    ),
                    "{code} answers 500"
                );
            }
        }
        assert_eq!(ErrorCode::parse("no_such_code"), None);
    }

    #[test]
    fn domain_store_and_backup_errors_map_to_declared_codes() {
        for e in [
            DomainError::Forbidden("x".into()),
            DomainError::InvalidState("x".into()),
            DomainError::Invalid("x".into()),
            DomainError::NotFound("x".into()),
            DomainError::Conflict("x".into()),
        ] {
            let code = ServiceError::from(e.clone()).code;
            assert_eq!(code.as_str(), e.code(), "{e:?}");
        }
        assert_eq!(
            ServiceError::from(StoreError::Locked).code,
            ErrorCode::LockedInstance
        );
    }
}
