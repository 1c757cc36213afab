//! One way for the store's queries to reach a database, whichever it is. `Reader` and
//! `WriteTx` talk to a [`Conn`]; the statements keep SQLite's `?N` placeholders, the row
//! mapping reads [`Row::get`] as before, and values cross as [`ValueRef`]s, so the same query
//! text and the same mapping serve SQLite (borrowed, no copy) and PostgreSQL (rows arrive as
//! owned values from the connection's thread).
//!
//! Why not `sqlx` or a query builder: mamori keeps rusqlite's synchronous, zero-copy path for
//! the embedded default, where the latency budget is micro-seconds; this layer adds one
//! indirection there and nothing else.

pub(crate) mod pg;
mod value;

pub use pg::PgConn;

pub use value::{FromValue, ToValue, Value, ValueRef};

/// The statements' parameters, as `params![a, b]`, `[a]` or `()`.
pub trait Params {
    fn values(&self) -> Vec<&dyn ToValue>;
}

impl Params for () {
    fn values(&self) -> Vec<&dyn ToValue> {
        Vec::new()
    }
}

impl Params for &[&dyn ToValue] {
    fn values(&self) -> Vec<&dyn ToValue> {
        self.to_vec()
    }
}

impl<T: ToValue, const N: usize> Params for [T; N] {
    fn values(&self) -> Vec<&dyn ToValue> {
        self.iter().map(|v| v as &dyn ToValue).collect()
    }
}

impl<T: ToValue, const N: usize> Params for &[T; N] {
    fn values(&self) -> Vec<&dyn ToValue> {
        self.iter().map(|v| v as &dyn ToValue).collect()
    }
}

impl<T: ToValue> Params for Vec<T> {
    fn values(&self) -> Vec<&dyn ToValue> {
        self.iter().map(|v| v as &dyn ToValue).collect()
    }
}

/// `params![a, b, …]`: a statement's positional parameters.
#[macro_export]
#[doc(hidden)]
macro_rules! sql_params {
    () => { &[] as &[&dyn $crate::sql::ToValue] };
    ($($p:expr),+ $(,)?) => { &[$(&$p as &dyn $crate::sql::ToValue),+] as &[&dyn $crate::sql::ToValue] };
}
pub use crate::sql_params as params;

/// What went wrong with a statement, whichever database ran it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error("PostgreSQL: {message}")]
    Postgres {
        message: String,
        constraint: bool,
        /// The connection or the server failed (restart, failover, broken socket), not the
        /// statement: worth running again on a fresh connection.
        retryable: bool,
    },
    /// `query_row` found no row (`.optional()` turns this into `None`).
    #[error("the query returned no row")]
    NoRows,
    #[error("column {column}: {message}")]
    Conversion { column: usize, message: String },
}

impl Error {
    pub fn conversion(column: usize, message: impl std::fmt::Display) -> Self {
        Self::Conversion {
            column,
            message: message.to_string(),
        }
    }

    /// Whether a uniqueness or key constraint refused the statement.
    pub fn is_constraint(&self) -> bool {
        match self {
            Self::Sqlite(rusqlite::Error::SqliteFailure(f, _)) => {
                f.code == rusqlite::ErrorCode::ConstraintViolation
            }
            Self::Postgres { constraint, .. } => *constraint,
            _ => false,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `query_row(…).optional()`: no row is `None`, not an error.
pub trait OptionalExtension<T> {
    fn optional(self) -> Result<Option<T>>;
}

impl<T> OptionalExtension<T> for Result<T> {
    fn optional(self) -> Result<Option<T>> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(Error::NoRows) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// A connection the store's queries run on.
#[derive(Clone, Copy)]
pub enum Conn<'c> {
    Sqlite(&'c rusqlite::Connection),
    Pg(&'c PgConn),
}

impl<'c> From<&'c rusqlite::Connection> for Conn<'c> {
    fn from(c: &'c rusqlite::Connection) -> Self {
        Self::Sqlite(c)
    }
}

/// Hands the values to rusqlite without copying them.
struct Bridge<'a>(&'a dyn ToValue);

impl rusqlite::ToSql for Bridge<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::ValueRef as R;
        Ok(rusqlite::types::ToSqlOutput::Borrowed(
            match self.0.value_ref() {
                ValueRef::Null => R::Null,
                ValueRef::Integer(i) => R::Integer(i),
                ValueRef::Real(f) => R::Real(f),
                ValueRef::Text(t) => R::Text(t.as_bytes()),
                ValueRef::Blob(b) => R::Blob(b),
            },
        ))
    }
}

fn bridged<'a>(values: &'a [&'a dyn ToValue]) -> Vec<Bridge<'a>> {
    values.iter().map(|v| Bridge(*v)).collect()
}

fn sqlite_value(v: rusqlite::types::ValueRef<'_>, column: usize) -> Result<ValueRef<'_>> {
    use rusqlite::types::ValueRef as R;
    Ok(match v {
        R::Null => ValueRef::Null,
        R::Integer(i) => ValueRef::Integer(i),
        R::Real(f) => ValueRef::Real(f),
        R::Text(t) => {
            ValueRef::Text(std::str::from_utf8(t).map_err(|e| Error::conversion(column, e))?)
        }
        R::Blob(b) => ValueRef::Blob(b),
    })
}

impl<'c> Conn<'c> {
    pub fn execute(&self, sql: &str, params: impl Params) -> Result<usize> {
        let values = params.values();
        match self {
            Self::Sqlite(c) => {
                let b = bridged(&values);
                Ok(c.prepare_cached(sql)?
                    .execute(rusqlite::params_from_iter(b.iter()))?)
            }
            Self::Pg(c) => c.execute(sql, &values),
        }
    }

    /// Runs statements without parameters, separated by `;`.
    pub fn execute_batch(&self, sql: &str) -> Result<()> {
        match self {
            Self::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Self::Pg(c) => c.batch(sql),
        }
    }

    pub fn query_row<T>(
        &self,
        sql: &str,
        params: impl Params,
        f: impl FnOnce(&Row<'_>) -> Result<T>,
    ) -> Result<T> {
        let mut st = self.prepare_cached(sql)?;
        st.query_row(params, f)
    }

    /// A statement kept prepared on the connection (SQLite's cache; PostgreSQL's per
    /// connection).
    pub fn prepare_cached(&self, sql: &str) -> Result<Stmt<'c>> {
        match self {
            Self::Sqlite(c) => Ok(Stmt::Sqlite(c.prepare_cached(sql)?)),
            Self::Pg(c) => Ok(Stmt::Pg {
                conn: c,
                sql: sql.to_owned(),
            }),
        }
    }

    /// A statement prepared once (built at run time, not worth caching).
    pub fn prepare(&self, sql: &str) -> Result<Stmt<'c>> {
        match self {
            Self::Sqlite(c) => Ok(Stmt::SqliteOnce(c.prepare(sql)?)),
            Self::Pg(c) => Ok(Stmt::Pg {
                conn: c,
                sql: sql.to_owned(),
            }),
        }
    }
}

/// A prepared statement.
pub enum Stmt<'c> {
    Sqlite(rusqlite::CachedStatement<'c>),
    SqliteOnce(rusqlite::Statement<'c>),
    Pg { conn: &'c PgConn, sql: String },
}

impl<'c> Stmt<'c> {
    pub fn execute(&mut self, params: impl Params) -> Result<usize> {
        let values = params.values();
        let b = bridged(&values);
        match self {
            Self::Sqlite(s) => Ok(s.execute(rusqlite::params_from_iter(b.iter()))?),
            Self::SqliteOnce(s) => Ok(s.execute(rusqlite::params_from_iter(b.iter()))?),
            Self::Pg { conn, sql } => conn.execute(sql, &values),
        }
    }

    pub fn exists(&mut self, params: impl Params) -> Result<bool> {
        let mut rows = self.query(params)?;
        Ok(rows.next()?.is_some())
    }

    pub fn query_row<T>(
        &mut self,
        params: impl Params,
        f: impl FnOnce(&Row<'_>) -> Result<T>,
    ) -> Result<T> {
        let mut rows = self.query(params)?;
        match rows.next()? {
            Some(r) => f(&r),
            None => Err(Error::NoRows),
        }
    }

    /// Every row, mapped.
    pub fn query_map<T>(
        &mut self,
        params: impl Params,
        mut f: impl FnMut(&Row<'_>) -> Result<T>,
    ) -> Result<std::vec::IntoIter<Result<T>>> {
        let mut rows = self.query(params)?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(f(&r));
        }
        Ok(out.into_iter())
    }

    /// The rows one at a time (for scans too long to collect).
    pub fn query(&mut self, params: impl Params) -> Result<Rows<'_>> {
        let values = params.values();
        let b = bridged(&values);
        Ok(match self {
            Self::Sqlite(s) => Rows::Sqlite(s.query(rusqlite::params_from_iter(b.iter()))?),
            Self::SqliteOnce(s) => Rows::Sqlite(s.query(rusqlite::params_from_iter(b.iter()))?),
            Self::Pg { conn, sql } => Rows::Values {
                rows: conn.query(sql, &values)?.into_iter(),
                current: None,
            },
        })
    }
}

/// Rows of a query, one at a time.
pub enum Rows<'s> {
    Sqlite(rusqlite::Rows<'s>),
    Values {
        rows: std::vec::IntoIter<Vec<Value>>,
        current: Option<Vec<Value>>,
    },
}

impl Rows<'_> {
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Row<'_>>> {
        match self {
            Self::Sqlite(r) => Ok(r.next()?.map(Row::Sqlite)),
            Self::Values { rows, current } => {
                *current = rows.next();
                Ok(current.as_deref().map(Row::Values))
            }
        }
    }
}

/// One row of a result.
pub enum Row<'r> {
    Sqlite(&'r rusqlite::Row<'r>),
    Values(&'r [Value]),
}

/// A column by position.
pub trait ColumnIndex: Copy {
    fn index(self) -> usize;
}

impl ColumnIndex for usize {
    fn index(self) -> usize {
        self
    }
}

impl Row<'_> {
    pub fn get<I: ColumnIndex, T: FromValue>(&self, i: I) -> Result<T> {
        let i = i.index();
        T::from_value(self.get_ref(i)?).map_err(|m| Error::conversion(i, m))
    }

    /// The column's value as stored, borrowed from the row.
    pub fn get_ref(&self, i: usize) -> Result<ValueRef<'_>> {
        match self {
            Self::Sqlite(r) => sqlite_value(r.get_ref(i)?, i),
            Self::Values(v) => v
                .get(i)
                .map(Value::as_ref)
                .ok_or_else(|| Error::conversion(i, "no such column")),
        }
    }

    pub fn column_count(&self) -> usize {
        match self {
            Self::Sqlite(r) => r.as_ref().column_count(),
            Self::Values(v) => v.len(),
        }
    }
}
