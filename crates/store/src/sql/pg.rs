//! The store's queries on PostgreSQL, synchronously. The store is synchronous (its writer is
//! a thread, its readers are called from request handlers as SQLite's are), while the driver
//! is asynchronous: each connection's socket is driven by a small runtime of its own, and a
//! caller waits for its statement's answer by parking its thread — never by entering a tokio
//! runtime, so this works inside request handlers and tests alike.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Wake, Waker};

use bytes::BytesMut;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use tokio_postgres::{Client, Statement};

use super::{Error, Value, ValueRef};
use crate::postgres::Database;

/// Drives every store connection's socket: two threads are plenty for the I/O of a pool.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("mamori-pg-io")
            .enable_all()
            .build()
            .expect("the PostgreSQL I/O runtime starts")
    })
}

struct Unpark(std::thread::Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Waits for `f` on this thread. The futures it is given only wait on channels to the I/O
/// runtime, so no reactor is needed here.
fn wait<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        match f.as_mut().poll(&mut cx) {
            Poll::Ready(v) => return v,
            Poll::Pending => std::thread::park(),
        }
    }
}

/// One PostgreSQL connection used synchronously, with its prepared statements.
pub struct PgConn {
    client: Client,
    prepared: Mutex<HashMap<String, Statement>>,
}

impl PgConn {
    pub fn connect(db: &Database) -> Result<Self, crate::StoreError> {
        let db = db.clone();
        let client = wait(runtime().spawn(async move { crate::postgres::connect(&db).await }))
            .map_err(|e| crate::StoreError::Database(e.to_string()))??;
        Ok(Self {
            client,
            prepared: Mutex::new(HashMap::new()),
        })
    }

    fn statement(&self, sql: &str) -> Result<Statement, Error> {
        if let Some(s) = self.prepared.lock().expect("statements").get(sql) {
            return Ok(s.clone());
        }
        let st = wait(self.client.prepare(&translate(sql))).map_err(pg_error)?;
        self.prepared
            .lock()
            .expect("statements")
            .insert(sql.to_owned(), st.clone());
        Ok(st)
    }

    pub(super) fn execute(
        &self,
        sql: &str,
        params: &[&dyn super::ToValue],
    ) -> Result<usize, Error> {
        let st = self.statement(sql)?;
        let owned = owned(params);
        let refs: Vec<&(dyn ToSql + Sync)> = owned.iter().map(|v| v as _).collect();
        let n = wait(self.client.execute(&st, &refs)).map_err(pg_error)?;
        Ok(n as usize)
    }

    pub(super) fn query(
        &self,
        sql: &str,
        params: &[&dyn super::ToValue],
    ) -> Result<Vec<Vec<Value>>, Error> {
        let st = self.statement(sql)?;
        let owned = owned(params);
        let refs: Vec<&(dyn ToSql + Sync)> = owned.iter().map(|v| v as _).collect();
        let rows = wait(self.client.query(&st, &refs)).map_err(pg_error)?;
        rows.iter()
            .map(|r| {
                (0..r.len())
                    .map(|i| column(r, i).map_err(|m| Error::conversion(i, m)))
                    .collect()
            })
            .collect()
    }

    pub(super) fn batch(&self, sql: &str) -> Result<(), Error> {
        wait(self.client.batch_execute(sql)).map_err(pg_error)
    }

    /// Whether the connection is gone (the pool drops such a connection).
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }
}

fn owned(params: &[&dyn super::ToValue]) -> Vec<Value> {
    params.iter().map(|p| p.value_ref().to_owned()).collect()
}

fn pg_error(e: tokio_postgres::Error) -> Error {
    let constraint = e.code().is_some_and(|c| c.code().starts_with("23"));
    let mut msg = e.to_string();
    if let Some(db) = e.as_db_error() {
        msg = format!("{}: {}", db.code().code(), db.message());
    }
    Error::Postgres {
        message: msg,
        constraint,
        retryable: crate::postgres::retryable(&e),
    }
}

/// A statement of the store in PostgreSQL's dialect: `?N` placeholders as `$N`; SQLite's
/// case-insensitive comparisons (`COLLATE NOCASE`, `LIKE` on ASCII) as `lower()` and `ILIKE`.
pub(crate) fn translate(sql: &str) -> String {
    placeholders(&replace_word(&nocase(sql), "LIKE", "ILIKE"))
}

/// `word` replaced where it stands as a whole word (not inside a name or a quoted string).
pub(crate) fn replace_word(sql: &str, word: &str, by: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let bytes = sql.as_bytes();
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut i = 0;
    let mut quoted = false;
    while i < sql.len() {
        let c = bytes[i];
        if c == b'\'' {
            quoted = !quoted;
        }
        if !quoted
            && sql[i..].starts_with(word)
            && (i == 0 || !ident(bytes[i - 1]))
            && bytes.get(i + word.len()).is_none_or(|b| !ident(*b))
        {
            out.push_str(by);
            i += word.len();
            continue;
        }
        let ch = sql[i..].chars().next().expect("in bounds");
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// `x COLLATE NOCASE` as `lower(x)`, for an expression that is one name.
pub(crate) fn nocase(sql: &str) -> String {
    let mut s = sql.to_owned();
    while let Some(at) = s.find(" COLLATE NOCASE") {
        let start = s[..at]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '?' | '$')))
            .map_or(0, |p| p + 1);
        let name = s[start..at].to_owned();
        s.replace_range(
            start..at + " COLLATE NOCASE".len(),
            &format!("lower({name})"),
        );
        // In `a = b COLLATE NOCASE` the collation applies to the comparison: both sides.
        if let Some(left_end) = s[..start].strip_suffix(" = ").map(str::len) {
            let left_start = s[..left_end]
                .rfind(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '?' | '$')))
                .map_or(0, |p| p + 1);
            let left = s[left_start..left_end].to_owned();
            s.replace_range(left_start..left_end, &format!("lower({left})"));
        }
    }
    s
}

/// SQLite's `?N` placeholders as PostgreSQL's `$N`, outside quoted text and names.
pub(crate) fn placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut quote: Option<char> = None;
    let mut next_bare = 1;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                out.push(c);
                if c == q {
                    quote = None;
                }
            }
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                out.push(c);
            }
            None if c == '?' => {
                out.push('$');
                if chars.peek().is_some_and(char::is_ascii_digit) {
                    while let Some(d) = chars.next_if(char::is_ascii_digit) {
                        out.push(d);
                    }
                } else {
                    out.push_str(&next_bare.to_string());
                    next_bare += 1;
                }
            }
            None => out.push(c),
        }
    }
    out
}

/// A column of a PostgreSQL row as one of the five values.
fn column(r: &tokio_postgres::Row, i: usize) -> Result<Value, String> {
    let ty = r.columns()[i].type_();
    let e = |e: tokio_postgres::Error| e.to_string();
    Ok(match *ty {
        Type::INT8 => r
            .try_get::<_, Option<i64>>(i)
            .map_err(e)?
            .map(Value::Integer),
        Type::INT4 => r
            .try_get::<_, Option<i32>>(i)
            .map_err(e)?
            .map(|v| Value::Integer(v.into())),
        Type::INT2 => r
            .try_get::<_, Option<i16>>(i)
            .map_err(e)?
            .map(|v| Value::Integer(v.into())),
        Type::BOOL => r
            .try_get::<_, Option<bool>>(i)
            .map_err(e)?
            .map(|v| Value::Integer(v.into())),
        Type::FLOAT8 => r.try_get::<_, Option<f64>>(i).map_err(e)?.map(Value::Real),
        Type::FLOAT4 => r
            .try_get::<_, Option<f32>>(i)
            .map_err(e)?
            .map(|v| Value::Real(v.into())),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => r
            .try_get::<_, Option<String>>(i)
            .map_err(e)?
            .map(Value::Text),
        Type::BYTEA => r
            .try_get::<_, Option<Vec<u8>>>(i)
            .map_err(e)?
            .map(Value::Blob),
        Type::NUMERIC => r.try_get::<_, Option<Numeric>>(i).map_err(e)?.map(|n| n.0),
        ref other => {
            return Err(format!(
                "PostgreSQL type {other} is not one the store reads"
            ));
        }
    }
    .unwrap_or(Value::Null))
}

/// `numeric` (what PostgreSQL's `sum` of integers gives): an integer if it is one.
struct Numeric(Value);

impl<'a> tokio_postgres::types::FromSql<'a> for Numeric {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        // Binary format: ndigits, weight, sign, dscale (i16 each), then base-10000 digits.
        let word = |k: usize| -> Result<i16, String> {
            raw.get(2 * k..2 * k + 2)
                .map(|b| i16::from_be_bytes([b[0], b[1]]))
                .ok_or_else(|| "truncated numeric".to_owned())
        };
        let (n, weight, sign, scale) = (word(0)?, word(1)?, word(2)? as u16, word(3)?);
        if sign == 0xC000 {
            return Ok(Numeric(Value::Null)); // NaN
        }
        let mut int: i128 = 0;
        let mut real = 0f64;
        for k in 0..n as usize {
            let d = word(4 + k)?;
            let power = i32::from(weight) - k as i32;
            real += f64::from(d) * 10000f64.powi(power);
            if power >= 0 {
                int = int
                    .checked_mul(10000)
                    .and_then(|v| v.checked_add(d.into()))
                    .ok_or("numeric out of range")?;
            }
        }
        // Trailing zero groups are not sent.
        let last_power = i32::from(weight) - i32::from(n) + 1;
        if n > 0 && last_power > 0 {
            int = int
                .checked_mul(
                    10000i128
                        .checked_pow(last_power as u32)
                        .ok_or("numeric out of range")?,
                )
                .ok_or("numeric out of range")?;
        }
        let negative = sign == 0x4000;
        let fractional = n > 0 && last_power < 0 && scale > 0;
        Ok(Numeric(if fractional {
            Value::Real(if negative { -real } else { real })
        } else {
            let v = if negative { -int } else { int };
            Value::Integer(i64::try_from(v).map_err(|_| "numeric out of range")?)
        }))
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }
}

impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self.as_ref() {
            ValueRef::Null => Ok(IsNull::Yes),
            ValueRef::Integer(i) => match *ty {
                Type::INT8 => i.to_sql(ty, out),
                Type::INT4 => i32::try_from(i)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(i)?.to_sql(ty, out),
                Type::BOOL => (i != 0).to_sql(ty, out),
                Type::FLOAT8 => (i as f64).to_sql(ty, out),
                _ => Err(format!("an integer given where PostgreSQL expects {ty}").into()),
            },
            ValueRef::Real(f) => match *ty {
                Type::FLOAT4 => (f as f32).to_sql(ty, out),
                _ => f.to_sql(ty, out),
            },
            ValueRef::Text(t) => t.to_sql(ty, out),
            ValueRef::Blob(b) => b.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        // Checked per value in `to_sql`, which names the mismatch.
        true
    }

    to_sql_checked!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_replaced_whole_and_outside_quotes() {
        assert_eq!(
            replace_word("a INTEGER, b INTEGERS, c 'INTEGER'", "INTEGER", "BIGINT"),
            "a BIGINT, b INTEGERS, c 'INTEGER'"
        );
    }

    #[test]
    fn nocase_becomes_lower() {
        assert_eq!(
            nocase("WHERE login = NEW.login COLLATE NOCASE"),
            "WHERE lower(login) = lower(NEW.login)"
        );
        assert_eq!(
            nocase("ON accounts(login COLLATE NOCASE)"),
            "ON accounts(lower(login))"
        );
    }

    proptest::proptest! {
        /// Whatever bytes arrive as a `numeric`, decoding answers or refuses; it never panics.
        #[test]
        fn any_numeric_bytes_decode_or_are_refused(raw in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            use tokio_postgres::types::FromSql;
            let _ = Numeric::from_sql(&Type::NUMERIC, &raw);
        }
    }

    #[test]
    fn numerics_decode_as_integers_or_reals() {
        use tokio_postgres::types::FromSql;
        let words = |w: &[i16]| w.iter().flat_map(|v| v.to_be_bytes()).collect::<Vec<u8>>();
        // 12345678 = 1234·10000 + 5678: two digits, weight 1, positive, scale 0.
        let n = Numeric::from_sql(&Type::NUMERIC, &words(&[2, 1, 0, 0, 1234, 5678])).unwrap();
        assert_eq!(n.0, Value::Integer(12_345_678));
        // 20000 = 2·10000 with its trailing zero group not sent.
        let n = Numeric::from_sql(&Type::NUMERIC, &words(&[1, 1, 0, 0, 2])).unwrap();
        assert_eq!(n.0, Value::Integer(20_000));
        // -1.5: digits 1 and 5000 at weights 0 and -1, negative, scale 1.
        let n = Numeric::from_sql(&Type::NUMERIC, &words(&[2, 0, 0x4000, 1, 1, 5000])).unwrap();
        assert_eq!(n.0, Value::Real(-1.5));
        // Past i64: refused, not wrapped.
        assert!(Numeric::from_sql(&Type::NUMERIC, &words(&[1, 9, 0, 0, 1])).is_err());
    }

    #[test]
    fn case_insensitive_comparisons_keep_their_meaning() {
        assert_eq!(
            translate("SELECT 1 FROM accounts WHERE login = ?1 COLLATE NOCASE AND id LIKE ?2"),
            "SELECT 1 FROM accounts WHERE lower(login) = lower($1) AND id ILIKE $2"
        );
    }

    #[test]
    fn placeholders_are_renamed_outside_quotes_only() {
        assert_eq!(
            placeholders("SELECT a FROM t WHERE b = ?1 AND c = '?2' AND \"?3\" = ?12"),
            "SELECT a FROM t WHERE b = $1 AND c = '?2' AND \"?3\" = $12"
        );
        assert_eq!(placeholders("VALUES (?, ?)"), "VALUES ($1, $2)");
        assert_eq!(placeholders("x = 'it''s ?'"), "x = 'it''s ?'");
    }
}
