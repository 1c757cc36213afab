//! The database as a projection of the ledger. Every change to a covered row is captured on
//! the writer connection (temporary triggers, invisible in the database file) and written into
//! the ledger entry of the same transaction as the row's new values; `verify` replays those
//! values and compares them with the rows, naming any table, row and column that differs.
//!
//! What is *not* covered is declared here, each with its reason: tables that other checks
//! already prove (the ledger itself, its indexes, record versions, blobs), and the few columns
//! that are operational state only.

use rusqlite::types::ValueRef;
use rusqlite::{Connection, params};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::StoreError;

/// Tables outside the state capture, each with what proves it instead.
pub const NOT_COVERED_TABLES: &[(&str, &str)] = &[
    (
        "ledger",
        "the ledger itself: every entry is re-hashed into the Merkle tree and checked against the signed checkpoints",
    ),
    (
        "checkpoints",
        "signed checkpoints: each signature and root is checked against the rebuilt tree; which evidence record protects each is checked against the sealing entries by evidence verify",
    ),
    (
        "audit_by_patient",
        "query index: re-derived from the ledger by verify",
    ),
    (
        "audit_by_actor",
        "query index: re-derived from the ledger by verify",
    ),
    (
        "access_counts",
        "query index: re-derived from the ledger by verify",
    ),
    (
        "versions",
        "record versions: each row's digest is in the ledger entry that wrote it (version_digest)",
    ),
];

/// Columns outside the state capture: operational state that changes without a ledger entry
/// and whose editing grants nothing.
pub const NOT_COVERED_COLUMNS: &[(&str, &str, &str)] = &[
    (
        "sessions",
        "last_seen_at",
        "a session's last activity, written at most every 30 s to run the idle timeout; editing it only shortens or lengthens an idle period",
    ),
    (
        "sessions",
        "locked_at",
        "the screen lock of a browser session (locking and unlocking on request are ledgered; the idle lock is not)",
    ),
];

/// Meta keys outside the capture (operational bookkeeping).
pub const NOT_COVERED_META: &[(&str, &str)] = &[(
    "indexed_upto",
    "how far the query indexes are built; verify rebuilds them",
)];

/// The meta key that records the ledger size when every covered row was stated.
pub const BASELINE_KEY: &str = "state_baseline";

/// Longest text kept as such in a ledger entry; longer text and every blob are stated by
/// their SHA-256, which verify recomputes from the row.
const INLINE_TEXT: usize = 512;

/// One covered table as the catalogue describes it.
#[derive(Debug, Clone)]
pub struct Covered {
    pub table: String,
    /// All columns, in catalogue order.
    pub columns: Vec<String>,
    /// Primary-key columns (the row's key), or `rowid` where the table has none.
    pub key: Vec<String>,
}

impl Covered {
    fn covers(&self, column: &str) -> bool {
        !NOT_COVERED_COLUMNS
            .iter()
            .any(|(t, c, _)| *t == self.table && *c == column)
    }

    pub fn covered_columns(&self) -> impl Iterator<Item = &String> {
        self.columns.iter().filter(|c| self.covers(c))
    }

    fn select(&self) -> String {
        let cols: Vec<String> = self.covered_columns().map(|c| format!("\"{c}\"")).collect();
        let key: Vec<String> = self.key.iter().map(|k| format!("\"{k}\"")).collect();
        format!(
            "SELECT json_array({}), {} FROM \"{}\"",
            key.join(", "),
            cols.join(", "),
            self.table
        )
    }
}

/// Every covered table, from SQLite's own catalogue: a table added later is covered unless it
/// is declared above.
pub fn covered_tables(conn: &Connection) -> Result<Vec<Covered>, StoreError> {
    let mut names: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    names.retain(|n| !NOT_COVERED_TABLES.iter().any(|(t, _)| t == n));
    names
        .into_iter()
        .map(|table| {
            let mut cols: Vec<(i64, String, i64)> = conn
                .prepare(&format!(
                    "SELECT cid, name, pk FROM pragma_table_info('{table}')"
                ))?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<Result<_, _>>()?;
            cols.sort_by_key(|c| c.0);
            let mut key: Vec<(i64, String)> = cols
                .iter()
                .filter(|c| c.2 > 0)
                .map(|c| (c.2, c.1.clone()))
                .collect();
            key.sort();
            let key = if key.is_empty() {
                vec!["rowid".to_owned()]
            } else {
                key.into_iter().map(|k| k.1).collect()
            };
            Ok(Covered {
                table,
                columns: cols.into_iter().map(|c| c.1).collect(),
                key,
            })
        })
        .collect()
}

/// Installs the capture on the writer connection: a temporary table of changed keys and, per
/// covered table, temporary triggers that note each insert, covered update and delete.
pub fn install_capture(conn: &Connection) -> Result<(), StoreError> {
    let tables = covered_tables(conn)?;
    let mut sql = String::from(
        "CREATE TEMP TABLE IF NOT EXISTS state_changes (seq INTEGER PRIMARY KEY, tbl TEXT NOT NULL, key TEXT NOT NULL);\n",
    );
    for t in &tables {
        let key = |row: &str| {
            t.key
                .iter()
                .map(|k| format!("{row}.\"{k}\""))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let skip = |row: &str| -> String {
            if t.table == "meta" {
                let keys: Vec<String> = NOT_COVERED_META
                    .iter()
                    .map(|(k, _)| format!("'{k}'"))
                    .collect();
                format!(" WHEN {row}.key NOT IN ({})", keys.join(", "))
            } else {
                String::new()
            }
        };
        let cols: Vec<String> = t.covered_columns().map(|c| format!("\"{c}\"")).collect();
        let name = &t.table;
        sql.push_str(&format!(
            "CREATE TEMP TRIGGER IF NOT EXISTS state_ins_{name} AFTER INSERT ON main.\"{name}\"{w}
             BEGIN INSERT INTO state_changes (tbl, key) VALUES ('{name}', json_array({k})); END;\n",
            w = skip("NEW"),
            k = key("NEW")
        ));
        sql.push_str(&format!(
            "CREATE TEMP TRIGGER IF NOT EXISTS state_upd_{name} AFTER UPDATE OF {c} ON main.\"{name}\"{w}
             BEGIN INSERT INTO state_changes (tbl, key) VALUES ('{name}', json_array({k})); END;\n",
            c = cols.join(", "),
            w = skip("NEW"),
            k = key("NEW")
        ));
        sql.push_str(&format!(
            "CREATE TEMP TRIGGER IF NOT EXISTS state_del_{name} AFTER DELETE ON main.\"{name}\"{w}
             BEGIN INSERT INTO state_changes (tbl, key) VALUES ('{name}', json_array({k})); END;\n",
            w = skip("OLD"),
            k = key("OLD")
        ));
    }
    conn.execute_batch(&sql)?;
    Ok(())
}

/// A column value as the ledger states it.
fn value_of(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::from(i),
        ValueRef::Real(f) => Value::from(f),
        ValueRef::Text(t) => {
            let s = String::from_utf8_lossy(t);
            if s.len() <= INLINE_TEXT {
                Value::String(s.into_owned())
            } else {
                Value::String(format!("sha256:{}", hex::encode(Sha256::digest(t))))
            }
        }
        ValueRef::Blob(b) => Value::String(format!("sha256:{}", hex::encode(Sha256::digest(b)))),
    }
}

/// Reads rows of `t` (all, or those matching `filter` with its parameters) as (key, values).
fn read_rows(
    conn: &Connection,
    t: &Covered,
    filter: Option<(&str, &[&dyn rusqlite::ToSql])>,
    mut f: impl FnMut(String, Map<String, Value>) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut sql = t.select();
    let params: &[&dyn rusqlite::ToSql] = match filter {
        Some((w, p)) => {
            sql.push_str(" WHERE ");
            sql.push_str(w);
            p
        }
        None => &[],
    };
    if t.table == "meta" {
        let keys: Vec<String> = NOT_COVERED_META
            .iter()
            .map(|(k, _)| format!("'{k}'"))
            .collect();
        sql.push_str(if filter.is_some() { " AND " } else { " WHERE " });
        sql.push_str(&format!("key NOT IN ({})", keys.join(", ")));
    }
    let mut st = conn.prepare_cached(&sql)?;
    let mut rows = st.query(params)?;
    let cols: Vec<&String> = t.covered_columns().collect();
    while let Some(r) = rows.next()? {
        let key: String = r.get(0)?;
        let mut m = Map::new();
        for (i, c) in cols.iter().enumerate() {
            m.insert((*c).clone(), value_of(r.get_ref(i + 1)?));
        }
        f(key, m)?;
    }
    Ok(())
}

/// Every row of every covered table, as (table, key, values): for verify and the baseline.
pub fn for_each_covered_row(
    conn: &Connection,
    mut f: impl FnMut(&str, String, Map<String, Value>) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    for t in covered_tables(conn)? {
        read_rows(conn, &t, None, |k, m| f(&t.table, k, m))?;
    }
    Ok(())
}

/// The digest verify compares: of the row's stated values, in column order.
pub fn row_digest(values: &Map<String, Value>) -> [u8; 32] {
    Sha256::digest(Value::Object(values.clone()).to_string().as_bytes()).into()
}

/// The rows changed since the last call, with their values now (`null` for a deleted row),
/// in the order first changed: `[[table, key, values|null], …]`. Empties the capture.
pub fn take_changes(conn: &Connection) -> Result<Option<Value>, StoreError> {
    // A connection without the capture (a test's or a tool's own) has nothing to state.
    let mut st = match conn
        .prepare_cached("SELECT tbl, key FROM state_changes GROUP BY tbl, key ORDER BY MIN(seq)")
    {
        Ok(st) => st,
        Err(e) if e.to_string().contains("no such table") => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let changed: Vec<(String, String)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    drop(st);
    if changed.is_empty() {
        return Ok(None);
    }
    conn.execute("DELETE FROM state_changes", [])?;
    // The catalogue is read once per process: every instance a build opens has its schema.
    static TABLES: std::sync::OnceLock<Vec<Covered>> = std::sync::OnceLock::new();
    let tables = match TABLES.get() {
        Some(t) => t,
        None => {
            let t = covered_tables(conn)?;
            TABLES.get_or_init(|| t)
        }
    };
    let mut out = Vec::with_capacity(changed.len());
    for (tbl, key) in changed {
        let Some(t) = tables.iter().find(|t| t.table == tbl) else {
            continue;
        };
        let cond: Vec<String> = t
            .key
            .iter()
            .enumerate()
            .map(|(i, k)| format!("\"{k}\" IS json_extract(?1, '$[{i}]')"))
            .collect();
        let mut found = Value::Null;
        read_rows(
            conn,
            t,
            Some((&cond.join(" AND "), params![key] as &[&dyn rusqlite::ToSql])),
            |_, m| {
                found = Value::Object(m);
                Ok(())
            },
        )?;
        out.push(Value::Array(vec![
            Value::String(tbl),
            Value::String(key),
            found,
        ]));
    }
    Ok(Some(Value::Array(out)))
}

/// Whether changes wait to be recorded (a write that appended no ledger entry).
pub fn pending(conn: &Connection) -> Result<bool, StoreError> {
    match conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM state_changes)") {
        Ok(mut st) => Ok(st.query_row([], |r| r.get(0))?),
        Err(e) if e.to_string().contains("no such table") => Ok(false),
        Err(e) => Err(e.into()),
    }
}
