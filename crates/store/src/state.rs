//! The database as a projection of the ledger. Every change to a covered row is captured on
//! the writer connection (temporary triggers, invisible in the database file) and written into
//! the ledger entry of the same transaction as the row's new values; `verify` replays those
//! values and compares them with the rows, naming any table, row and column that differs.
//!
//! What is *not* covered is declared here, each with its reason: tables that other checks
//! already prove (the ledger itself, its indexes, record versions, blobs), and the few columns
//! that are operational state only.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::StoreError;
use crate::sql::{Conn, Params, ToValue, ValueRef};

/// Tables outside the state capture, each with what proves it instead.
pub const NOT_COVERED_TABLES: &[(&str, &str)] = &[
    (
        "invoice_registry",
        "public reference data imported from the NTA 公表サイト file (millions of rows): the import states the digest of the whole table in the ledger (meta invoice_registry), and verify recomputes it",
    ),
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
        "ledger_head",
        "PostgreSQL's coordinator row of the ledger: its size, newest time and tree edge are re-derived from the entries by verify",
    ),
    (
        "ledger_batches",
        "PostgreSQL's record of which batches committed, read only by a node that lost the answer to its COMMIT; no fact of the ledger",
    ),
    (
        "blob_bytes",
        "PostgreSQL's small content files (record texts, small attachments) when the large ones are in a bucket: named by their SHA-256, re-hashed by verify against the names the ledger states, like files on disk",
    ),
    (
        "ephemeral",
        "PostgreSQL's short-lived values shared by the nodes (passkey challenges, five minutes, used once): no fact of the records; a planted challenge opens nothing without the authenticator's signature",
    ),
    (
        "schema_version",
        "PostgreSQL's schema number, compared with the build at every start; states no fact of the records",
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
        "*",
        "rowid",
        "PostgreSQL's stand-in for SQLite's implicit rowid in a table with a primary key of its own: the order rows were inserted in, which some lists follow; as on SQLite, not one of the row's facts (where a table has no other key, rowid is its key and covered)",
    ),
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

    /// The key as SQLite's `json_array` (the form the ledger has stated keys in since state
    /// capture began), then the covered columns; PostgreSQL selects the key columns and the
    /// same JSON is built in Rust (see [`key_json`]).
    fn select(&self, conn: Conn<'_>) -> String {
        let cols: Vec<String> = self.covered_columns().map(|c| format!("\"{c}\"")).collect();
        let key: Vec<String> = self.key.iter().map(|k| format!("\"{k}\"")).collect();
        let key = match conn {
            Conn::Sqlite(_) => format!("json_array({})", key.join(", ")),
            Conn::Pg(_) => key.join(", "),
        };
        format!("SELECT {key}, {} FROM \"{}\"", cols.join(", "), self.table)
    }

    fn key_width(&self, conn: Conn<'_>) -> usize {
        match conn {
            Conn::Sqlite(_) => 1,
            Conn::Pg(_) => self.key.len(),
        }
    }
}

/// Every covered table, from the database's own catalogue: a table added later is covered
/// unless it is declared above.
pub fn covered_tables<'c>(conn: impl Into<Conn<'c>>) -> Result<Vec<Covered>, StoreError> {
    let conn = conn.into();
    // (table, column, position, position in the primary key or 0)
    let catalogue: Vec<(String, String, i64, i64)> = match conn {
        Conn::Sqlite(_) => conn
            .prepare(
                "SELECT m.name, c.name, c.cid, c.pk FROM sqlite_schema m, pragma_table_info(m.name) c
                 WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' ORDER BY m.name, c.cid",
            )?
            .query_map((), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect::<Result<_, _>>()?,
        Conn::Pg(_) => conn
            .prepare(
                "SELECT c.table_name::text, c.column_name::text, c.ordinal_position::bigint,
                        COALESCE((SELECT k.ordinal_position FROM information_schema.key_column_usage k
                                  JOIN information_schema.table_constraints t
                                    ON t.constraint_name = k.constraint_name AND t.table_schema = k.table_schema
                                  WHERE t.constraint_type = 'PRIMARY KEY' AND k.table_schema = c.table_schema
                                    AND k.table_name = c.table_name AND k.column_name = c.column_name), 0)::bigint
                 FROM information_schema.columns c
                 JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
                 WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'
                 ORDER BY 1, 3",
            )?
            .query_map((), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect::<Result<_, _>>()?,
    };
    let mut tables: Vec<Covered> = Vec::new();
    let mut keys: Vec<Vec<(i64, String)>> = Vec::new();
    for (table, column, _, pk) in catalogue {
        if NOT_COVERED_TABLES.iter().any(|(t, _)| *t == table) {
            continue;
        }
        if tables.last().is_none_or(|t| t.table != table) {
            tables.push(Covered {
                table: table.clone(),
                columns: Vec::new(),
                key: Vec::new(),
            });
            keys.push(Vec::new());
        }
        let (t, k) = (
            tables.last_mut().expect("pushed"),
            keys.last_mut().expect("pushed"),
        );
        if pk > 0 {
            k.push((pk, column.clone()));
        }
        // PostgreSQL has no rowid: a table that has none but its own gets a `rowid` key column,
        // which is the key and not one of the row's facts, as in SQLite.
        if column != "rowid" {
            t.columns.push(column);
        }
    }
    for (t, mut k) in tables.iter_mut().zip(keys) {
        k.sort();
        t.key = if k.is_empty() {
            vec!["rowid".to_owned()]
        } else {
            k.into_iter().map(|k| k.1).collect()
        };
    }
    Ok(tables)
}

/// Installs the capture on the writer connection: a temporary table of changed keys and, per
/// covered table, temporary triggers that note each insert, covered update and delete.
pub fn install_capture(conn: &rusqlite::Connection) -> Result<(), StoreError> {
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
            if t.len() <= INLINE_TEXT {
                Value::String(t.to_owned())
            } else {
                Value::String(format!("sha256:{}", hex::encode(Sha256::digest(t))))
            }
        }
        ValueRef::Blob(b) => Value::String(format!("sha256:{}", hex::encode(Sha256::digest(b)))),
    }
}

/// Reads rows of `t` (all, or those matching `filter` with its parameters) as (key, values).
fn read_rows(
    conn: Conn<'_>,
    t: &Covered,
    filter: Option<(&str, &[&dyn ToValue])>,
    mut f: impl FnMut(String, Map<String, Value>) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut sql = t.select(conn);
    let params: &[&dyn ToValue] = match filter {
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
    let width = t.key_width(conn);
    while let Some(r) = rows.next()? {
        let r = &r;
        let key: String = match conn {
            Conn::Sqlite(_) => r.get(0)?,
            Conn::Pg(_) => key_json((0..width).map(|i| r.get_ref(i)).collect::<Result<_, _>>()?),
        };
        let mut m = Map::new();
        for (i, c) in cols.iter().enumerate() {
            m.insert((*c).clone(), value_of(r.get_ref(i + width)?));
        }
        f(key, m)?;
    }
    Ok(())
}

/// Every row of every covered table, as (table, key, values): for verify and the baseline.
pub fn for_each_covered_row(
    conn: Conn<'_>,
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
pub fn take_changes(conn: Conn<'_>) -> Result<Option<Value>, StoreError> {
    // A connection without the capture (a test's or a tool's own) has nothing to state.
    if !capturing(conn)? {
        return Ok(None);
    }
    let mut changed: Vec<(String, String)> = conn
        .prepare_cached("SELECT tbl, key FROM state_changes GROUP BY tbl, key ORDER BY MIN(seq)")?
        .query_map((), |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    if let Conn::Pg(_) = conn {
        // The trigger wrote PostgreSQL's JSON text; the ledger states SQLite's compact form.
        for (_, key) in &mut changed {
            let v: Value = serde_json::from_str(key)
                .map_err(|e| StoreError::Corrupt(format!("a captured key is not JSON: {e}")))?;
            *key = v.to_string();
        }
        let mut seen = std::collections::HashSet::new();
        changed.retain(|c| seen.insert(c.clone()));
    }
    if changed.is_empty() {
        return Ok(None);
    }
    conn.execute("DELETE FROM state_changes", ())?;
    // The catalogue is read once per process: every instance a build opens has its schema.
    static SQLITE: std::sync::OnceLock<Vec<Covered>> = std::sync::OnceLock::new();
    static PG: std::sync::OnceLock<Vec<Covered>> = std::sync::OnceLock::new();
    let once = match conn {
        Conn::Sqlite(_) => &SQLITE,
        Conn::Pg(_) => &PG,
    };
    let tables = match once.get() {
        Some(t) => t,
        None => {
            let t = covered_tables(conn)?;
            once.get_or_init(|| t)
        }
    };
    let mut out = Vec::with_capacity(changed.len());
    for (tbl, key) in changed {
        let Some(t) = tables.iter().find(|t| t.table == tbl) else {
            continue;
        };
        let mut found = Value::Null;
        let mut keep = |_, m| {
            found = Value::Object(m);
            Ok(())
        };
        match conn {
            Conn::Sqlite(_) => {
                let cond: Vec<String> = t
                    .key
                    .iter()
                    .enumerate()
                    .map(|(i, k)| format!("\"{k}\" IS json_extract(?1, '$[{i}]')"))
                    .collect();
                read_rows(conn, t, Some((&cond.join(" AND "), &[&key])), &mut keep)?;
            }
            Conn::Pg(_) => {
                // Each key part compared as text: the JSON gives integers and strings alike.
                let parts: Vec<Value> = serde_json::from_str(&key).unwrap_or_default();
                let parts: Vec<String> = parts
                    .iter()
                    .map(|p| p.as_str().map_or_else(|| p.to_string(), str::to_owned))
                    .collect();
                let cond: Vec<String> = t
                    .key
                    .iter()
                    .enumerate()
                    .map(|(i, k)| format!("\"{k}\"::text = ?{}", i + 1))
                    .collect();
                read_rows(
                    conn,
                    t,
                    Some((&cond.join(" AND "), &parts.values())),
                    &mut keep,
                )?;
            }
        }
        out.push(Value::Array(vec![
            Value::String(tbl),
            Value::String(key),
            found,
        ]));
    }
    Ok(Some(Value::Array(out)))
}

/// Whether changes wait to be recorded (a write that appended no ledger entry).
pub fn pending<'c>(conn: impl Into<Conn<'c>>) -> Result<bool, StoreError> {
    let conn = conn.into();
    if !capturing(conn)? {
        return Ok(false);
    }
    Ok(
        conn.query_row("SELECT EXISTS (SELECT 1 FROM state_changes)", (), |r| {
            r.get(0)
        })?,
    )
}

/// Whether this connection captures changes (the writer's does; a tool's own does not).
fn capturing(conn: Conn<'_>) -> Result<bool, StoreError> {
    Ok(match conn {
        Conn::Sqlite(c) => match c.prepare_cached("SELECT 1 FROM temp.state_changes") {
            Ok(_) => true,
            Err(e) if e.to_string().contains("no such table") => false,
            Err(e) => return Err(e.into()),
        },
        // Every PostgreSQL connection that writes is made with the capture's table (the
        // writer's, a migration's); asking would cost a round trip per ledger entry. One
        // without it fails loudly on its first change of a covered table.
        Conn::Pg(_) => true,
    })
}

/// The key of a row as SQLite's `json_array` writes it, from the key columns' values.
fn key_json(parts: Vec<ValueRef<'_>>) -> String {
    Value::Array(
        parts
            .into_iter()
            .map(|p| match p {
                ValueRef::Null => Value::Null,
                ValueRef::Integer(i) => Value::from(i),
                ValueRef::Real(f) => Value::from(f),
                ValueRef::Text(t) => Value::from(t),
                ValueRef::Blob(b) => Value::from(hex::encode(b)),
            })
            .collect(),
    )
    .to_string()
}

/// The entry that states rows a write changed after (or without) its last entry: stamped now,
/// never before the newest entry.
pub(crate) fn recorded_event(last_ts: i64) -> mamori_domain::audit::AuditEvent {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    mamori_domain::audit::AuditEvent::new(
        last_ts.max(now),
        None,
        mamori_domain::audit::actions::STATE_RECORDED,
        mamori_domain::audit::Outcome::Ok,
    )
}
