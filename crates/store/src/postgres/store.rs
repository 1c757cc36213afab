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
//! The writer (group commit, retries across restarts and failovers) is `store_writer.rs`.

use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, atomic::Ordering};

use tokio::sync::oneshot;

use super::Database;
use super::store_writer::{Job, Request};
use crate::sql::{Conn, PgConn};
use crate::{StoreError, WriteTx};

/// How long a reader waits for a lent connection before it opens one more.
const READER_PATIENCE: std::time::Duration = std::time::Duration::from_millis(100);

/// The readers' connections: idle ones, and how many are open (idle or lent).
#[derive(Default)]
struct Readers {
    idle: Vec<PgConn>,
    open: usize,
}

/// Held while installing the schema, so that nodes starting together do not race on it.
const INSTALL_LOCK: i64 = 0x6d61_6d6f_7269_0002;

pub(crate) struct PgStore {
    sender: Mutex<Option<crossbeam_channel::Sender<Job>>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    stopping: Arc<AtomicBool>,
    clock: Arc<AtomicBool>,
    readers: Mutex<Readers>,
    returned: std::sync::Condvar,
    db: Database,
    /// Idle reader connections kept; more are opened when all are lent.
    keep_readers: usize,
    /// The schema this open upgraded from (an earlier release's database).
    pub(crate) upgraded_from: Option<usize>,
}

impl PgStore {
    /// Connects, creating the schema in an empty database.
    pub(crate) fn open_with(db: &Database, keep_readers: usize) -> Result<Self, StoreError> {
        let conn = super::store_writer::writer_connection(db)?;
        let upgraded_from = install(&conn)?;
        let state = crate::ledger::load_state(Conn::Pg(&conn))?;
        let clock = state.clock_unsynchronised.clone();
        let (sender, rx) = crossbeam_channel::unbounded();
        let stopping = Arc::new(AtomicBool::new(false));
        let (wdb, wstop) = (db.clone(), stopping.clone());
        let writer = std::thread::Builder::new()
            .name("mamori-pg-writer".into())
            .spawn(move || super::store_writer::run(wdb, conn, state, rx, wstop))?;
        Ok(Self {
            sender: Mutex::new(Some(sender)),
            writer: Mutex::new(Some(writer)),
            stopping,
            clock,
            readers: Mutex::new(Readers::default()),
            returned: std::sync::Condvar::new(),
            db: db.clone(),
            // Requests wait on the server more than on SQLite: more connections keep the two
            // cores busy while others wait for an answer.
            keep_readers: keep_readers.max(16),
            upgraded_from,
        })
    }

    /// The flag every entry reads to say the clock was not trusted when it was written.
    pub(crate) fn clock_flag(&self) -> Arc<AtomicBool> {
        self.clock.clone()
    }

    /// Queues `f` for the next group commit; the answer comes once it is durable.
    pub(crate) fn submit<R, E>(
        &self,
        f: impl Fn(&mut WriteTx<'_>) -> Result<R, E> + Send + 'static,
    ) -> oneshot::Receiver<Result<R, E>>
    where
        R: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let job: Job = Box::new(Request {
            f,
            result: None,
            reply,
        });
        if let Some(s) = self.sender.lock().expect("PostgreSQL writer").as_ref() {
            // A send fails only when the writer is gone; the caller then sees Closed.
            let _ = s.send(job);
        }
        rx
    }

    /// Finishes what is queued and stops the writer; later writes are refused.
    pub(crate) fn close(&self) {
        self.stopping.store(true, Ordering::Release);
        drop(self.sender.lock().expect("PostgreSQL writer").take());
        if let Some(h) = self.writer.lock().expect("PostgreSQL writer").take() {
            let _ = h.join();
        }
    }

    /// A reader connection: an idle one; a new one while fewer than the pool's size are
    /// open; otherwise the next one given back. Opening a connection costs a server process
    /// and several round trips, so a burst of requests waits briefly rather than opening and
    /// dropping connections. A thread that already holds a reader and asks for another (which
    /// could wait forever) gets an extra connection after a short wait instead.
    pub(crate) fn take_reader(&self) -> Result<PgConn, StoreError> {
        let mut r = self.readers.lock().expect("PostgreSQL readers");
        let deadline = std::time::Instant::now() + READER_PATIENCE;
        loop {
            if let Some(c) = r.idle.pop() {
                if !c.is_closed() {
                    return Ok(c);
                }
                r.open -= 1;
                continue;
            }
            if r.open < self.keep_readers {
                r.open += 1;
                drop(r);
                return PgConn::connect(&self.db).inspect_err(|_| {
                    self.readers.lock().expect("PostgreSQL readers").open -= 1;
                    self.returned.notify_one();
                });
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                // All lent: one more, closed when given back.
                r.open += 1;
                drop(r);
                return PgConn::connect(&self.db).inspect_err(|_| {
                    self.readers.lock().expect("PostgreSQL readers").open -= 1;
                });
            }
            r = self
                .returned
                .wait_timeout(r, deadline - now)
                .expect("PostgreSQL readers")
                .0;
        }
    }

    /// Closes a lent connection that must not be lent again (it may still hold a lock).
    pub(crate) fn discard(&self, c: PgConn) {
        drop(c);
        self.readers.lock().expect("PostgreSQL readers").open -= 1;
        self.returned.notify_one();
    }

    pub(crate) fn give_back(&self, c: PgConn) {
        let mut r = self.readers.lock().expect("PostgreSQL readers");
        if !c.is_closed() && r.idle.len() < self.keep_readers && r.open <= self.keep_readers {
            r.idle.push(c);
        } else {
            r.open -= 1;
        }
        drop(r);
        self.returned.notify_one();
    }
}

/// Creates the ledger's and the store's tables in an empty database; refuses a database whose
/// schema is of another build.
/// The schema version it had, when it was an earlier release's and was upgraded.
pub(crate) fn install(conn: &PgConn) -> Result<Option<usize>, StoreError> {
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
            Some(v) if v as usize == crate::SCHEMA_VERSION => Ok(None),
            Some(v) if (v as usize) < crate::SCHEMA_VERSION => {
                // An earlier release's database: what it lacks is added in this transaction
                // (under the install lock, so one node of several does it).
                let Some((ddl, tables)) = super::store_schema::upgrade_ddl(v as usize)? else {
                    return Err(StoreError::Schema(format!(
                        "PostgreSQL のスキーマ {v} からこのリリース（{}）へは自動で更新できません。pg_dump を取り、リリースノートの手順で更新してください",
                        crate::SCHEMA_VERSION
                    )));
                };
                c.execute_batch(&ddl)?;
                let covered: Vec<crate::state::Covered> = crate::state::covered_tables(c)?
                    .into_iter()
                    .filter(|t| tables.contains(&t.table))
                    .collect();
                c.execute_batch(&super::store_schema::capture_ddl(&covered))?;
                c.execute(
                    "UPDATE schema_version SET version = ?1",
                    [crate::SCHEMA_VERSION as i64],
                )?;
                Ok(Some(v as usize))
            }
            Some(v) => Err(StoreError::Schema(format!(
                "PostgreSQL のスキーマ {v} はこのリリース（{}）より新しいリリースのものです。新しいリリースで開いてください",
                crate::SCHEMA_VERSION
            ))),
            None => {
                create_schema(c, crate::SCHEMA_VERSION)?;
                Ok(None)
            }
        }
    })();
    let done = done.and_then(|upgraded| {
        c.execute_batch(crate::shared::EPHEMERAL_DDL)?;
        c.execute_batch(super::BLOB_BYTES_DDL)?;
        Ok(upgraded)
    });
    match done {
        Ok(upgraded) => {
            c.execute_batch("COMMIT")?;
            Ok(upgraded)
        }
        Err(e) => {
            let _ = c.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// The schema of the release whose store had `migrations` migrations, in an empty database.
fn create_schema(c: Conn<'_>, migrations: usize) -> Result<(), StoreError> {
    c.execute_batch(super::schema::DDL)?;
    c.execute_batch(&super::store_schema::ddl_at(migrations)?)?;
    let covered = crate::state::covered_tables(c)?;
    c.execute_batch(&super::store_schema::capture_ddl(&covered))?;
    c.execute_batch("CREATE TABLE schema_version (version bigint NOT NULL)")?;
    c.execute(
        "INSERT INTO schema_version (version) VALUES (?1)",
        [migrations as i64],
    )?;
    Ok(())
}

/// An earlier release's schema in an empty database (tests of the upgrade).
#[doc(hidden)]
pub fn install_release_schema(db: &super::Database, migrations: usize) -> Result<(), StoreError> {
    let conn = super::store_writer::writer_connection(db)?;
    let c = Conn::Pg(&conn);
    c.execute_batch("BEGIN")?;
    match create_schema(c, migrations) {
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

impl Drop for PgStore {
    fn drop(&mut self) {
        self.close();
    }
}
