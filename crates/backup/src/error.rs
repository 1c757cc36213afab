//! Errors a person can act on: each says what is wrong with which object, in Japanese, and
//! none of them ever changes the running instance.

pub type Result<T, E = BackupError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(
        "鍵が指定されていません。--key-file か環境変数 MAMORI_BACKUP_PASSPHRASE を指定してください"
    )]
    NoKey,
    #[error(
        "鍵が違います。このバックアップ先のどの鍵でも開けません（パスフレーズまたは鍵ファイルを確認してください）"
    )]
    WrongKey,
    #[error("バックアップ先 {0} にはリポジトリがありません（最初のバックアップで作られます）")]
    NoRepository(String),
    #[error("{what} {name} が見つかりません（欠損しています）")]
    Missing { what: &'static str, name: String },
    #[error("{what} {name} が壊れています（破損または改ざん）: {why}")]
    Corrupt {
        what: &'static str,
        name: String,
        why: String,
    },
    #[error("スナップショット {0} はありません")]
    NoSnapshot(String),
    #[error("{0} は書き込み禁止期間（オブジェクトロック）中のため削除できません")]
    Locked(String),
    #[error(
        "バックアップ先は別の処理が使用中です: {0}。終わってからやり直してください（その処理がもう動いていなければ、30分後に自動的に無視されます）"
    )]
    RepoLocked(String),
    #[error("バックアップ先との入出力に失敗しました: {0}")]
    Io(String),
    #[error("{0}")]
    Invalid(String),
}

impl BackupError {
    /// A stable code for programs (API responses, the ledger).
    pub fn code(&self) -> &'static str {
        match self {
            BackupError::NoKey => "no_key",
            BackupError::WrongKey => "wrong_key",
            BackupError::NoRepository(_) => "no_repository",
            BackupError::Missing { .. } => "missing",
            BackupError::Corrupt { .. } => "corrupt",
            BackupError::NoSnapshot(_) => "no_snapshot",
            BackupError::Locked(_) => "locked",
            BackupError::RepoLocked(_) => "repo_locked",
            BackupError::Io(_) => "io",
            BackupError::Invalid(_) => "invalid",
        }
    }

    pub(crate) fn corrupt(what: &'static str, name: &str, why: impl Into<String>) -> Self {
        BackupError::Corrupt {
            what,
            name: name.to_owned(),
            why: why.into(),
        }
    }
}

impl From<std::io::Error> for BackupError {
    fn from(e: std::io::Error) -> Self {
        BackupError::Io(e.to_string())
    }
}
