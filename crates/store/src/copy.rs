//! Copies an instance's state, table by table, from one database to the other: SQLite to
//! PostgreSQL (`mamori store migrate --to`) and PostgreSQL to SQLite (a backup of a
//! PostgreSQL instance is a SQLite database, so restores and drills stay what they are).
//!
//! The tables and their columns are SQLite's (the schema both are made from); a row keeps its
//! key, its `rowid` where SQLite numbers it, and every value as stored, so the ledger is the
//! same byte for byte and `verify` gives the same root on both sides. The source is read in
//! one snapshot (the caller's `ReadOnly`); the destination is written in one transaction.

use rusqlite::Connection;

use crate::sql::{Conn, Value};
use crate::{ReadOnly, StoreError};

/// What a copy moved.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Copied {
    pub tables: usize,
    pub rows: u64,
    pub ledger_entries: u64,
}

struct Table {
    name: String,
    columns: Vec<String>,
}

/// The store's tables in the order PostgreSQL accepts them, with the columns to copy.
fn tables() -> Result<Vec<Table>, StoreError> {
    let mut conn = Connection::open_in_memory()?;
    crate::schema::migrate(&mut conn)?;
    let defs: Vec<(String, String)> = conn
        .prepare("SELECT name, sql FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY rowid")?
        .query_map((), |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut out = Vec::new();
    for (name, sql) in crate::postgres::in_reference_order(defs) {
        let mut columns: Vec<String> = conn
            .prepare("SELECT name FROM pragma_table_info(?1) ORDER BY cid")?
            .query_map([&name], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        if crate::postgres::numbers_rows(&sql) {
            columns.insert(0, "rowid".into());
        }
        out.push(Table { name, columns });
    }
    Ok(out)
}

/// Copies every table of `from` into `to`, which must hold the schema and no rows. `to` is
/// written inside the caller's transaction.
pub fn copy_tables(from: &ReadOnly, to: Conn<'_>) -> Result<Copied, StoreError> {
    let src = from.get().conn;
    let mut copied = Copied::default();
    for t in tables()? {
        let cols: Vec<String> = t.columns.iter().map(|c| format!("\"{c}\"")).collect();
        let cols = cols.join(", ");
        // Many rows per INSERT: one round trip per few hundred rows, not per row.
        let per_insert = (4_000 / t.columns.len()).clamp(1, 500);
        let insert = |rows: usize| {
            let width = t.columns.len();
            let tuples: Vec<String> = (0..rows)
                .map(|r| {
                    let marks: Vec<String> =
                        (1..=width).map(|i| format!("?{}", r * width + i)).collect();
                    format!("({})", marks.join(", "))
                })
                .collect();
            format!(
                "INSERT INTO \"{}\" ({cols}) VALUES {}",
                t.name,
                tuples.join(", ")
            )
        };
        let full = insert(per_insert);
        // In key order: a row that names another of its table (an account's creator) comes
        // after it, as it was written.
        let mut st = src.prepare(&format!("SELECT {cols} FROM \"{}\" ORDER BY 1", t.name))?;
        let mut rows = st.query(())?;
        let mut pending: Vec<Value> = Vec::new();
        let mut n = 0;
        while let Some(r) = rows.next()? {
            for i in 0..t.columns.len() {
                pending.push(r.get::<_, Value>(i)?);
            }
            n += 1;
            if n == per_insert {
                to.execute(&full, std::mem::take(&mut pending))?;
                n = 0;
            }
            copied.rows += 1;
            if t.name == "ledger" {
                copied.ledger_entries += 1;
            }
        }
        if n > 0 {
            to.execute(&insert(n), pending)?;
        }
        copied.tables += 1;
    }
    if let Conn::Pg(_) = to {
        // Identity columns go on after the highest key copied; the ledger's head is the copy's.
        for (table, column) in to
            .prepare(
                "SELECT table_name::text, column_name::text FROM information_schema.columns
                 WHERE table_schema = current_schema() AND is_identity = 'YES'",
            )?
            .query_map((), |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
            .collect::<Result<Vec<_>, _>>()?
        {
            to.query_row(
                &format!(
                    "SELECT setval(pg_get_serial_sequence('\"{table}\"', '{column}'),
                        COALESCE((SELECT max(\"{column}\") FROM \"{table}\"), 0) + 1, false)"
                ),
                (),
                |_| Ok(()),
            )?;
        }
        let state = crate::ledger::load_state(to)?;
        to.execute(
            "UPDATE ledger_head SET size = ?1, last_ts = ?2, edge = ?3 WHERE id = 1",
            crate::sql::params![
                state.frontier.size() as i64,
                state.last_ts,
                state.frontier.edge_bytes()
            ],
        )?;
    }
    Ok(copied)
}

/// A SQLite database at `path` with the current schema and a copy of `from`'s state (what a
/// backup of a PostgreSQL instance holds).
pub fn copy_into_sqlite(from: &ReadOnly, path: &std::path::Path) -> Result<Copied, StoreError> {
    // A plain rollback-journal file: complete on disk once the transaction commits.
    let mut conn = Connection::open(path)?;
    crate::restrict_file(path)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    crate::schema::migrate(&mut conn)?;
    let tx = conn.transaction()?;
    tx.pragma_update(None, "defer_foreign_keys", "ON")?;
    let copied = copy_tables(from, Conn::Sqlite(&tx))?;
    tx.commit()?;
    Ok(copied)
}

/// What moving an instance to PostgreSQL did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Migrated {
    pub copied: Copied,
    /// The ledger's size and root, the same on both sides (checked before committing).
    pub ledger_size: u64,
    pub ledger_root: String,
}

/// Copies the SQLite instance in `dir` into the empty PostgreSQL database `db`, in one
/// transaction there, and checks that the ledger there has the same root; the SQLite file is
/// not changed. The data directory is locked meanwhile: no server may be writing.
pub fn migrate_to_postgres(
    dir: &std::path::Path,
    db: &crate::postgres::Database,
) -> Result<Migrated, StoreError> {
    let _lock = crate::writer::lock_dir(dir)?;
    let from = ReadOnly::open(dir)?;
    let before = crate::ledger::load_state(from.get().conn)?;
    let pg = crate::sql::PgConn::connect(db)?;
    crate::postgres::install(&pg)?;
    let to = Conn::Pg(&pg);
    to.execute_batch(crate::postgres::CAPTURE_TABLE)?;
    to.execute_batch("BEGIN")?;
    let done = (|| {
        // Nobody else writes while the copy is made, and it goes into an empty database.
        to.query_row(
            "SELECT 1 FROM ledger_head WHERE id = 1 FOR UPDATE",
            (),
            |_| Ok(()),
        )?;
        let holds: i64 = to.query_row("SELECT count(*) FROM meta", (), |r| r.get(0))?;
        if holds > 0 {
            return Err(StoreError::Schema(
                "このデータベースには既に mamori のデータがあります。空のデータベースを指定してください".into(),
            ));
        }
        let copied = copy_tables(&from, to)?;
        let after = crate::ledger::load_state(to)?;
        if after.frontier.size() != before.frontier.size()
            || after.frontier.root() != before.frontier.root()
        {
            return Err(StoreError::Corrupt(format!(
                "PostgreSQL に写した台帳の root が元と一致しません（{} 件 / {} 件）。何も書き込んでいません",
                after.frontier.size(),
                before.frontier.size()
            )));
        }
        to.execute("DELETE FROM state_changes", ())?;
        Ok(Migrated {
            copied,
            ledger_size: after.frontier.size(),
            ledger_root: hex::encode(after.frontier.root()),
        })
    })();
    match done {
        Ok(m) => {
            to.execute_batch("COMMIT")?;
            Ok(m)
        }
        Err(e) => {
            let _ = to.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}
