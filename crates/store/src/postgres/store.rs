//! The store's state on PostgreSQL: the same `WriteTx` and `Reader` the SQLite store hands
//! out, over a PostgreSQL connection.
//!
//! Every write transaction first locks the ledger's coordinator row (`ledger_head`), so write
//! transactions run one at a time across all nodes, as they do on SQLite's single writer: a
//! use case's check-then-act (is this login free? is this version still a draft?) stays
//! correct without serializable isolation, and no transaction of the store can fail with a
//! serialization error. Before running, the writer compares the head with its own view of
//! the ledger and reloads the tree's edge if another node appended meanwhile. The rows a
//! request changed are stated in its ledger entries exactly as on SQLite (the capture's
//! triggers are generated with the schema), and the head moves in the same transaction.
//!
//! Not yet here (issue #22 goes on): group commit of several requests per transaction and
//! retries across a failover.

use std::sync::Mutex;

use mamori_ledger::Frontier;

use super::Database;
use crate::ledger::LedgerState;
use crate::sql::{Conn, PgConn};
use crate::{Reader, StoreError, WriteTx};

/// Held while installing the schema, so that nodes starting together do not race on it.
const INSTALL_LOCK: i64 = 0x6d61_6d6f_7269_0002;

pub struct PgStore {
    writer: Mutex<Writer>,
    readers: Mutex<Vec<PgConn>>,
    db: Database,
    /// Idle reader connections kept; more are opened when all are lent.
    keep_readers: usize,
}

struct Writer {
    conn: PgConn,
    state: LedgerState,
}

impl PgStore {
    /// Connects, creating the schema in an empty database.
    pub fn open(db: &Database) -> Result<Self, StoreError> {
        Self::open_with(db, crate::pool::default_size())
    }

    pub(crate) fn open_with(db: &Database, keep_readers: usize) -> Result<Self, StoreError> {
        let conn = PgConn::connect(db)?;
        install(&conn)?;
        Conn::Pg(&conn).execute_batch(CAPTURE_TABLE)?;
        let state = crate::ledger::load_state(Conn::Pg(&conn))?;
        Ok(Self {
            writer: Mutex::new(Writer { conn, state }),
            readers: Mutex::new(Vec::new()),
            db: db.clone(),
            keep_readers: keep_readers.max(1),
        })
    }

    /// The flag every entry reads to say the clock was not trusted when it was written.
    pub(crate) fn clock_flag(&self) -> std::sync::Arc<std::sync::atomic::AtomicBool> {
        self.writer
            .lock()
            .expect("PostgreSQL writer")
            .state
            .clock_unsynchronised
            .clone()
    }

    /// A reader connection: an idle one, or a new one.
    pub(crate) fn take_reader(&self) -> Result<PgConn, StoreError> {
        let idle = self.readers.lock().expect("PostgreSQL readers").pop();
        if let Some(c) = idle.filter(|c| !c.is_closed()) {
            return Ok(c);
        }
        PgConn::connect(&self.db)
    }

    pub(crate) fn give_back(&self, c: PgConn) {
        let mut idle = self.readers.lock().expect("PostgreSQL readers");
        if !c.is_closed() && idle.len() < self.keep_readers {
            idle.push(c);
        }
    }

    /// Runs `f` in one transaction with the ledger locked; everything it wrote and appended
    /// commits together or not at all.
    pub fn write<R, E: From<StoreError>>(
        &self,
        f: impl Fn(&mut WriteTx<'_>) -> Result<R, E>,
    ) -> Result<R, E> {
        let mut w = self.writer.lock().expect("PostgreSQL writer");
        let Writer { conn, state } = &mut *w;
        let c = Conn::Pg(&*conn);
        c.execute_batch("BEGIN").map_err(StoreError::from)?;
        let before = state.clone();
        let result = run(c, state, &f);
        let done = match result {
            Ok(r) => c
                .execute_batch("COMMIT")
                .map(|()| r)
                .map_err(|e| E::from(e.into())),
            Err(e) => Err(e),
        };
        if done.is_err() {
            let _ = c.execute_batch("ROLLBACK");
            *state = before;
        }
        done
    }

    /// A reader on its own connection: it sees what has committed.
    pub fn read<R>(&self, f: impl FnOnce(&Reader<'_>) -> R) -> Result<R, StoreError> {
        let conn = self.take_reader()?;
        let r = f(&Reader::new(Conn::Pg(&conn)));
        self.give_back(conn);
        Ok(r)
    }
}

fn run<R, E: From<StoreError>>(
    c: Conn<'_>,
    state: &mut LedgerState,
    f: &impl Fn(&mut WriteTx<'_>) -> Result<R, E>,
) -> Result<R, E> {
    let (size, edge): (i64, Vec<u8>) = c
        .query_row(
            "SELECT size, edge FROM ledger_head WHERE id = 1 FOR UPDATE",
            (),
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(StoreError::from)?;
    if size as u64 != state.frontier.size() {
        // Another node appended: take the ledger as it is now (the clock flag is this node's).
        let clock = state.clock_unsynchronised.clone();
        *state = crate::ledger::load_state(c)?;
        state.clock_unsynchronised = clock;
        let stored = Frontier::from_edge(size as u64, &edge);
        if stored.as_ref().map(Frontier::root) != Some(state.frontier.root()) {
            return Err(E::from(StoreError::Corrupt(
                "the ledger's head does not match its entries; run `mamori verify`".into(),
            )));
        }
    }
    let r = f(&mut WriteTx::new(c, state))?;
    // Rows changed after the last entry are stated in one of their own, as on SQLite.
    if crate::state::pending(c)? {
        let ev = crate::state::recorded_event(state.last_ts);
        WriteTx::new(c, state).append(&ev)?;
    }
    // The query indexes follow in the same transaction: a write adds a few entries.
    crate::ledger::index_pending(c, state, u64::MAX)?;
    c.execute(
        "UPDATE ledger_head SET size = ?1, last_ts = ?2, edge = ?3 WHERE id = 1",
        crate::sql::params![
            state.frontier.size() as i64,
            state.last_ts,
            state.frontier.edge_bytes()
        ],
    )
    .map_err(StoreError::from)?;
    Ok(r)
}

/// Creates the ledger's and the store's tables in an empty database; refuses a database whose
/// schema is of another build.
pub(crate) fn install(conn: &PgConn) -> Result<(), StoreError> {
    let c = Conn::Pg(conn);
    c.execute_batch("BEGIN")?;
    let done = (|| {
        c.execute("SELECT pg_advisory_xact_lock(?1)", [INSTALL_LOCK])?;
        let version: Option<i64> = if c.query_row(
            "SELECT to_regclass('schema_version') IS NOT NULL",
            (),
            |r| r.get::<_, bool>(0),
        )? {
            c.query_row("SELECT version FROM schema_version", (), |r| r.get(0))?
        } else {
            None
        };
        match version {
            Some(v) if v as usize == crate::SCHEMA_VERSION => Ok(()),
            Some(v) => Err(StoreError::Schema(format!(
                "PostgreSQL のスキーマ {v} はこのリリース（{}）と異なります",
                crate::SCHEMA_VERSION
            ))),
            None => {
                c.execute_batch(super::schema::DDL)?;
                c.execute_batch(&super::store_schema::ddl()?)?;
                let covered = crate::state::covered_tables(c)?;
                c.execute_batch(&super::store_schema::capture_ddl(&covered))?;
                c.execute_batch("CREATE TABLE schema_version (version bigint NOT NULL)")?;
                c.execute(
                    "INSERT INTO schema_version (version) VALUES (?1)",
                    [crate::SCHEMA_VERSION as i64],
                )?;
                Ok(())
            }
        }
    })();
    match done {
        Ok(()) => Ok(c.execute_batch("COMMIT")?),
        Err(e) => {
            let _ = c.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// The temporary table the state capture writes into; a session without it cannot change a
/// covered table.
pub(crate) const CAPTURE_TABLE: &str = "CREATE TEMP TABLE IF NOT EXISTS state_changes (seq bigserial PRIMARY KEY, tbl text NOT NULL, key text NOT NULL)";
