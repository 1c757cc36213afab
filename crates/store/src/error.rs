#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A statement failed on whichever database the store runs on.
    #[error("database error: {0}")]
    Sql(#[from] crate::sql::Error),
    /// PostgreSQL refused or failed a statement (issue #22's backend).
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// A database error reported to every request of a batch (the driver's own error is not
    /// `Clone`).
    #[error("database error: {0}")]
    Database(String),
    /// The database server could not be reached in the time the store waits for it; nothing
    /// of the request was kept.
    #[error("the database server cannot be reached: {0}")]
    Unreachable(String),
    #[error("file error: {0}")]
    Io(#[from] std::io::Error),
    #[error("another mamori process is using this data directory")]
    Locked,
    #[error("the store is shut down")]
    Closed,
    /// A read waited longer than the store's patience for a connection: the server is
    /// overloaded and says so rather than letting every request wait longer.
    #[error("no database connection became free in time")]
    Overloaded,
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Schema(String),
    /// The disk refused the write; nothing of it was kept.
    #[error("{0}")]
    Unwritable(crate::disk::Unwritable),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Sql(crate::sql::Error::Sqlite(e))
    }
}
