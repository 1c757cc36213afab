//! The single writer: one thread owns the write connection and the ledger frontier, and
//! commits concurrent requests together (group commit) so that many durable writes share
//! one fsync. Each request runs in its own savepoint, so one refused request never undoes
//! another's.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use rusqlite::{Connection, OpenFlags};
use tokio::sync::oneshot;

use crate::ledger::LedgerState;
use crate::read::ReaderGuard;
use crate::{BlobStore, StoreError, WriteTx};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fsync on every commit: an acknowledged write survives a power cut. The default.
    Full,
    /// No fsync on commit (survives a process crash, not a power cut). For comparisons only.
    Normal,
}

#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub durability: Durability,
    /// Most requests committed together in one transaction.
    pub max_batch: usize,
    /// Bring the query indexes up to date whenever the writer is idle (off only in tests).
    pub background_indexing: bool,
    /// Read-only connections kept open; a reader waits for one rather than opening another.
    pub readers: usize,
    /// Where content files live; None: `blobs/` in the data directory.
    pub blobs: Option<Arc<dyn crate::BlobBackend>>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            durability: Durability::Full,
            max_batch: 1024,
            background_indexing: true,
            readers: crate::pool::default_size(),
            blobs: None,
        }
    }
}

type Done = Box<dyn FnOnce(Result<(), Failure>) + Send>;

/// Why a request's writes did not commit, as every request of the batch is told.
#[derive(Clone, Debug)]
enum Failure {
    /// The disk refused it (full, read-only, failing).
    Unwritable(crate::disk::Unwritable),
    Other(String),
}

impl Failure {
    fn of(e: &rusqlite::Error, dir: &Path) -> Self {
        match crate::disk::from_sqlite(e, dir) {
            Some(u) => Failure::Unwritable(u),
            None => Failure::Other(e.to_string()),
        }
    }

    fn into_error(self, what: &str) -> StoreError {
        match self {
            Failure::Unwritable(u) => StoreError::Unwritable(u),
            Failure::Other(e) => StoreError::Corrupt(format!("{what}: {e}")),
        }
    }
}

/// Counters of the writer's work, for benchmarks and operations.
#[derive(Debug, Default)]
pub struct WriterStats {
    pub batches: AtomicU64,
    pub jobs: AtomicU64,
    pub job_nanos: AtomicU64,
    pub commit_nanos: AtomicU64,
    /// The slowest single commit (fsync included): what a waiting request felt at worst.
    pub slowest_commit_nanos: AtomicU64,
    /// The longest the writer was held by one batch (its requests and its commit).
    pub slowest_batch_nanos: AtomicU64,
    pub indexed: AtomicU64,
    pub index_nanos: AtomicU64,
}

impl WriterStats {
    pub fn summary(&self) -> String {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let (b, j) = (g(&self.batches).max(1), g(&self.jobs));
        format!(
            "writer: {j} requests in {} commits ({:.1} per commit); running requests {:.1} µs each, commit {:.0} µs each (slowest {:.1} ms, slowest batch {:.1} ms); indexed {} entries in {:.0} ms",
            g(&self.batches),
            j as f64 / b as f64,
            g(&self.job_nanos) as f64 / j.max(1) as f64 / 1000.0,
            g(&self.commit_nanos) as f64 / b as f64 / 1000.0,
            g(&self.slowest_commit_nanos) as f64 / 1e6,
            g(&self.slowest_batch_nanos) as f64 / 1e6,
            g(&self.indexed),
            g(&self.index_nanos) as f64 / 1e6
        )
    }
}
/// A request to the writer. It runs only inside a transaction and its own savepoint; when the
/// writer cannot give it those it is answered without running, so that nothing it would
/// write can commit by another route.
trait Work: Send {
    /// Runs the request; says whether its writes are kept, and how to answer after commit.
    fn run(self: Box<Self>, wtx: &mut WriteTx<'_>) -> (bool, Done);
    /// Answers without running.
    fn refuse(self: Box<Self>, why: Failure);
}

type Job = Box<dyn Work>;

/// Debug builds (every test) run each request twice, the first time undone.
const REHEARSE: bool = cfg!(debug_assertions);

struct Request<F, R, E> {
    f: F,
    reply: oneshot::Sender<Result<R, E>>,
}

impl<F, R, E> Work for Request<F, R, E>
where
    F: Fn(&mut WriteTx<'_>) -> Result<R, E> + Send + 'static,
    R: Send + 'static,
    E: From<StoreError> + Send + 'static,
{
    fn run(self: Box<Self>, wtx: &mut WriteTx<'_>) -> (bool, Done) {
        let Request { f, reply } = *self;
        if REHEARSE {
            // What a PostgreSQL serialization failure does: the request runs, everything it
            // wrote is undone, and it runs again. A request that cannot be run twice (one that
            // consumed its input or acted outside the transaction) fails its tests here.
            let _ = wtx.rehearse(&f);
        }
        let result = f(wtx);
        let keep = result.is_ok();
        let done: Done = Box::new(move |commit| {
            let _ = reply.send(match commit {
                Ok(()) => result,
                Err(e) => Err(E::from(e.into_error("commit failed"))),
            });
        });
        (keep, done)
    }

    fn refuse(self: Box<Self>, why: Failure) {
        let _ = self
            .reply
            .send(Err(E::from(why.into_error("the write could not start"))));
    }
}

enum Msg {
    Job(Job),
    Stop,
}

struct Inner {
    /// Held for the store's lifetime: one process writes an instance's ledger at a time.
    _lock: std::fs::File,
    sender: Sender<Msg>,
    writer: Mutex<Option<JoinHandle<()>>>,
    readers: crate::pool::Pool,
    blobs: BlobStore,
    stats: Arc<WriterStats>,
    access: crate::access_watch::AccessWatch,
    _checkpointer: crate::wal_checkpointer::Checkpointer,
    clock_unsynchronised: Arc<std::sync::atomic::AtomicBool>,
    upgrade: Option<crate::upgrade::Upgrade>,
}

/// A handle on an instance's storage; cheap to clone.
#[derive(Clone)]
pub struct Store {
    engine: Arc<Engine>,
    /// Turns and short-lived values within this process (`shared.rs`).
    pub(crate) shared: Arc<crate::shared::Local>,
}

/// Where the instance's state lives.
// One per open store, behind an Arc: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
enum Engine {
    /// SQLite in the data directory: the default, and the single-binary clinic's.
    Sqlite(Inner),
    /// PostgreSQL (issue #22), with the content files still in the data directory.
    Pg(PgEngine),
}

struct PgEngine {
    pg: crate::postgres::PgStore,
    /// Held for the store's lifetime: one process per data directory, as on SQLite.
    _lock: std::fs::File,
    blobs: BlobStore,
    stats: Arc<WriterStats>,
    clock_unsynchronised: Arc<std::sync::atomic::AtomicBool>,
    /// Moves on at every ask: another node may have changed who a session is, and no
    /// notice of it arrives here yet, so nothing about access is served from memory.
    access_asks: AtomicU64,
    permits: tokio::sync::Semaphore,
}

pub(crate) fn open_conn(path: &Path, durability: Durability) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(
        None,
        "synchronous",
        match durability {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        },
    )?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Only the checkpointer copies the log back, after recording which pages it may copy
    // (`wal_checkpointer.rs`): incremental backups rely on that record.
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    crate::wal_checkpointer::no_checkpoint_on_close(&conn)?;
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
    Ok(conn)
}

/// One process per data directory: it holds the instance's keys and content files.
pub(crate) fn lock_dir(dir: &Path) -> Result<std::fs::File, StoreError> {
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("mamori.lock"))?;
    crate::restrict_file(&dir.join("mamori.lock"))?;
    match lock.try_lock() {
        Ok(()) => Ok(lock),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Locked),
        Err(std::fs::TryLockError::Error(e)) => Err(e.into()),
    }
}

fn blob_store(dir: &Path, opts: &StoreOptions) -> Result<BlobStore, StoreError> {
    match &opts.blobs {
        Some(b) => Ok(BlobStore::with_backend(b.clone())),
        None => BlobStore::open(dir.join("blobs")),
    }
}

impl Store {
    /// Opens (creating if needed) the store in `dir`: `mamori.db` and `blobs/`.
    pub fn open(dir: &Path, opts: StoreOptions) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir)?;
        crate::restrict_dir(dir)?;
        let lock = lock_dir(dir)?;
        let db_path = dir.join("mamori.db");
        let mut conn = open_conn(&db_path, opts.durability)?;
        crate::restrict_file(&db_path)?;
        let found = crate::schema::version(&conn)?;
        let upgrade = if found > 0 && found < crate::schema::VERSION {
            Some(crate::upgrade::copy_before(
                &conn,
                dir,
                found,
                crate::schema::VERSION,
            )?)
        } else {
            None
        };
        crate::schema::migrate(&mut conn)?;
        crate::state::install_capture(&conn)?;
        let mut state = crate::ledger::load_state((&conn).into())?;
        state.sync_pragma = match opts.durability {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        };
        let blobs = blob_store(dir, &opts)?;
        let (sender, rx) = crossbeam_channel::unbounded();
        let max_batch = opts.max_batch.max(1);
        let stats = Arc::new(WriterStats::default());
        let background = opts.background_indexing;
        let wstats = stats.clone();
        let clock_unsynchronised = state.clock_unsynchronised.clone();
        let access = crate::access_watch::AccessWatch::default();
        access.install(&conn);
        let waccess = access.clone();
        let checkpointer = crate::wal_checkpointer::Checkpointer::start(&db_path)?;
        let backstop = checkpointer.backstop(&db_path);
        let wdir = dir.to_owned();
        let writer = std::thread::Builder::new()
            .name("mamori-writer".into())
            .spawn(move || {
                let around = Around {
                    stats: &wstats,
                    access: &waccess,
                    backstop: &backstop,
                    dir: &wdir,
                };
                run_writer(conn, state, rx, max_batch, background, around)
            })?;
        Ok(Self {
            engine: Arc::new(Engine::Sqlite(Inner {
                _lock: lock,
                sender,
                writer: Mutex::new(Some(writer)),
                readers: crate::pool::Pool::new(db_path.clone(), opts.readers),
                blobs,
                stats,
                access,
                _checkpointer: checkpointer,
                clock_unsynchronised,
                upgrade,
            })),
            shared: Default::default(),
        })
    }

    /// Opens the store with its state in PostgreSQL (created there if the database is
    /// empty) and its content files in `dir`.
    pub fn open_postgres(
        dir: &Path,
        db: &crate::postgres::Database,
        opts: StoreOptions,
    ) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir)?;
        crate::restrict_dir(dir)?;
        let lock = lock_dir(dir)?;
        let pg = crate::postgres::PgStore::open_with(db, opts.readers)?;
        let clock_unsynchronised = pg.clock_flag();
        Ok(Self {
            engine: Arc::new(Engine::Pg(PgEngine {
                pg,
                _lock: lock,
                blobs: blob_store(dir, &opts)?,
                stats: Arc::new(WriterStats::default()),
                clock_unsynchronised,
                access_asks: AtomicU64::new(0),
                permits: tokio::sync::Semaphore::new(opts.readers.max(1)),
            })),
            shared: Default::default(),
        })
    }

    /// Whether the state is in PostgreSQL (some operations, such as SQLite's page-level
    /// backups, exist only for SQLite).
    pub fn on_postgres(&self) -> bool {
        matches!(*self.engine, Engine::Pg(_))
    }

    /// While set, every ledger entry records that the clock was not trusted when written.
    /// The schema upgrade this open made, with its pre-upgrade copy (none: already current).
    pub fn upgrade(&self) -> Option<&crate::upgrade::Upgrade> {
        match &*self.engine {
            Engine::Sqlite(i) => i.upgrade.as_ref(),
            Engine::Pg(_) => None,
        }
    }

    /// The schema an earlier release left that this open upgraded (both engines; SQLite's
    /// with the copy in [`Store::upgrade`]).
    pub fn upgraded_from(&self) -> Option<usize> {
        match &*self.engine {
            Engine::Sqlite(i) => i.upgrade.as_ref().map(|u| u.from),
            Engine::Pg(p) => p.pg.upgraded_from,
        }
    }

    pub fn set_clock_unsynchronised(&self, yes: bool) {
        let flag = match &*self.engine {
            Engine::Sqlite(i) => &i.clock_unsynchronised,
            Engine::Pg(p) => &p.clock_unsynchronised,
        };
        flag.store(yes, std::sync::atomic::Ordering::Relaxed);
    }

    /// Moves on whenever a commit changed who a session is or what it may do (see
    /// `ACCESS_TABLES`); a cache of sign-in state filled at one generation is good while the
    /// generation stays the same.
    pub fn access_generation(&self) -> u64 {
        match &*self.engine {
            Engine::Sqlite(i) => i.access.generation(),
            Engine::Pg(p) => p.access_asks.fetch_add(1, Ordering::Relaxed),
        }
    }

    pub fn stats(&self) -> &WriterStats {
        match &*self.engine {
            Engine::Sqlite(i) => &i.stats,
            Engine::Pg(p) => &p.stats,
        }
    }

    pub fn blobs(&self) -> &BlobStore {
        match &*self.engine {
            Engine::Sqlite(i) => &i.blobs,
            Engine::Pg(p) => &p.blobs,
        }
    }

    fn sqlite(&self) -> Option<&Inner> {
        match &*self.engine {
            Engine::Sqlite(i) => Some(i),
            Engine::Pg(_) => None,
        }
    }

    fn submit<R, E>(
        &self,
        f: impl Fn(&mut WriteTx<'_>) -> Result<R, E> + Send + 'static,
    ) -> oneshot::Receiver<Result<R, E>>
    where
        R: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        match &*self.engine {
            Engine::Sqlite(i) => {
                let (tx, rx) = oneshot::channel();
                let job: Job = Box::new(Request { f, reply: tx });
                if i.sender.send(Msg::Job(job)).is_err() {
                    // The receiver is gone with the writer; the caller sees Closed below.
                }
                rx
            }
            // The node's PostgreSQL writer: group commit, retried across failovers.
            Engine::Pg(p) => p.pg.submit(f),
        }
    }

    /// Runs `f` in the next group commit and resolves once it is durable. When `f` fails,
    /// everything it wrote is rolled back and the error returned.
    ///
    /// `f` is `Fn`, not `FnOnce`: a backend may run it again after undoing it (PostgreSQL
    /// answers a serialization failure that way), so it must take its input by reference and
    /// act only through the transaction. Debug builds rehearse this on every write.
    pub async fn write<R, E>(
        &self,
        f: impl Fn(&mut WriteTx<'_>) -> Result<R, E> + Send + 'static,
    ) -> Result<R, E>
    where
        R: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.submit(f)
            .await
            .unwrap_or_else(|_| Err(E::from(StoreError::Closed)))
    }

    /// The same as [`Store::write`], for callers outside an async runtime.
    pub fn write_blocking<R, E>(
        &self,
        f: impl Fn(&mut WriteTx<'_>) -> Result<R, E> + Send + 'static,
    ) -> Result<R, E>
    where
        R: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.submit(f)
            .blocking_recv()
            .unwrap_or_else(|_| Err(E::from(StoreError::Closed)))
    }

    /// A pooled read-only connection (waits for one when all are lent).
    pub fn reader(&self) -> Result<ReaderGuard, StoreError> {
        let held = match &*self.engine {
            Engine::Sqlite(i) => crate::read::Held::Sqlite(i.readers.take()?),
            Engine::Pg(p) => crate::read::Held::Pg(p.pg.take_reader()?),
        };
        Ok(ReaderGuard::new(held, self.clone()))
    }

    /// A PostgreSQL connection for a turn's lock or a short-lived value (from the readers'
    /// pool; given back with no lock held).
    pub(crate) fn lock_connection(&self) -> Result<crate::sql::PgConn, StoreError> {
        match &*self.engine {
            Engine::Pg(p) => p.pg.take_reader(),
            Engine::Sqlite(_) => Err(StoreError::Schema("not on PostgreSQL".into())),
        }
    }

    pub(crate) fn give_back_lock_connection(&self, c: crate::sql::PgConn) {
        if let Engine::Pg(p) = &*self.engine {
            p.pg.give_back(c);
        }
    }

    /// Closes a lock connection whose lock could not be released (closing releases it).
    pub(crate) fn discard_lock_connection(&self, c: crate::sql::PgConn) {
        if let Engine::Pg(p) = &*self.engine {
            p.pg.discard(c);
        }
    }

    pub(crate) fn give_back(&self, held: crate::read::Held) {
        match (&*self.engine, held) {
            (Engine::Sqlite(i), crate::read::Held::Sqlite(l)) => i.readers.give_back(l),
            (Engine::Pg(p), crate::read::Held::Pg(c)) => p.pg.give_back(c),
            _ => {}
        }
    }

    /// Read-only connections open now (idle or lent; on PostgreSQL, the permits in use).
    pub fn reader_connections(&self) -> usize {
        match &*self.engine {
            Engine::Sqlite(i) => i.readers.open_connections(),
            Engine::Pg(p) => p.permits.available_permits(),
        }
    }

    /// Runs a read on a blocking thread (reads never wait on the writer). The connection is
    /// reserved before the thread is: a read waiting for a connection holds no thread.
    pub async fn read<R: Send + 'static>(
        &self,
        f: impl FnOnce(&crate::Reader<'_>) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        let permits = match &*self.engine {
            Engine::Sqlite(i) => &i.readers.permits,
            Engine::Pg(p) => &p.permits,
        };
        let permit = tokio::time::timeout(READ_PATIENCE, permits.acquire())
            .await
            .map_err(|_| StoreError::Overloaded)?
            .map_err(|_| StoreError::Closed)?;
        let store = self.clone();
        let r = tokio::task::spawn_blocking(move || {
            let guard = store.reader()?;
            f(&guard.get())
        })
        .await
        .map_err(|e| StoreError::Corrupt(format!("read task failed: {e}")));
        drop(permit);
        r?
    }

    /// Finishes queued writes and stops the writer.
    pub fn close(&self) {
        let Some(i) = self.sqlite() else {
            // Every PostgreSQL write finishes before its caller is answered; later ones are
            // refused.
            if let Engine::Pg(p) = &*self.engine {
                p.pg.close();
            }
            return;
        };
        let _ = i.sender.send(Msg::Stop);
        if let Some(h) = i.writer.lock().expect("writer handle").take() {
            let _ = h.join();
        }
    }
}

/// How long an async read waits for a connection before the request is refused as overload
/// (HTTP 503 with Retry-After): under a burst far past capacity, a quick "come back" is kinder
/// than an answer that arrives after the user gave up.
const READ_PATIENCE: std::time::Duration = std::time::Duration::from_secs(2);

/// Entries indexed per index transaction, and the backlog at which indexing interleaves with
/// client writes instead of waiting for an idle moment.
const INDEX_CHUNK: u64 = 2_048;
const INDEX_BACKLOG_MAX: u64 = 200_000;
/// Idle time after which a small backlog is indexed.
const INDEX_IDLE: std::time::Duration = std::time::Duration::from_millis(50);

/// What the writer thread reports to and answers to, besides its connection and queue.
struct Around<'a> {
    stats: &'a WriterStats,
    access: &'a crate::access_watch::AccessWatch,
    backstop: &'a crate::wal_checkpointer::Backstop,
    /// The database's directory, asked what a failed write means.
    dir: &'a Path,
}

fn run_writer(
    conn: Connection,
    mut state: LedgerState,
    rx: Receiver<Msg>,
    max_batch: usize,
    background: bool,
    around: Around<'_>,
) {
    let Around {
        stats,
        access,
        backstop,
        dir,
    } = around;
    let mut stop = false;
    while !stop {
        // The query indexes are brought up to date in large chunks: when the backlog is big,
        // or once the writer has been idle for a moment.
        let first = match rx.try_recv() {
            Ok(m) => m,
            Err(crossbeam_channel::TryRecvError::Disconnected) => break,
            Err(crossbeam_channel::TryRecvError::Empty) => {
                let backlog = state.frontier.size() - state.indexed_upto;
                if background && backlog >= INDEX_CHUNK {
                    index_step(&conn, &mut state, stats);
                    backstop.after_commit();
                    continue;
                }
                let wait = if background && backlog > 0 {
                    INDEX_IDLE
                } else {
                    std::time::Duration::from_secs(3600)
                };
                match rx.recv_timeout(wait) {
                    Ok(m) => m,
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                        if background && state.indexed_upto < state.frontier.size() {
                            index_step(&conn, &mut state, stats);
                        }
                        continue;
                    }
                    Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
                }
            }
        };
        let mut batch = Vec::with_capacity(64);
        match first {
            Msg::Job(j) => batch.push(j),
            Msg::Stop => break,
        }
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(Msg::Job(j)) => batch.push(j),
                Ok(Msg::Stop) => {
                    stop = true;
                    break;
                }
                Err(_) => break,
            }
        }
        commit_batch(
            &conn,
            &mut state,
            batch,
            Some((&rx, max_batch, &mut stop)),
            (stats, access, dir),
        );
        if background && state.frontier.size() - state.indexed_upto > INDEX_BACKLOG_MAX {
            index_step(&conn, &mut state, stats);
        }
        backstop.after_commit();
    }
    // Drain whatever is left so no caller waits forever, then leave the indexes complete.
    while let Ok(Msg::Job(j)) = rx.try_recv() {
        commit_batch(&conn, &mut state, vec![j], None, (stats, access, dir));
    }
    while background && state.indexed_upto < state.frontier.size() {
        let before = state.indexed_upto;
        index_step(&conn, &mut state, stats);
        if state.indexed_upto == before {
            break;
        }
    }
}

fn index_step(conn: &Connection, state: &mut LedgerState, stats: &WriterStats) {
    let t = std::time::Instant::now();
    let before = state.clone();
    let r = conn
        .execute_batch("BEGIN IMMEDIATE")
        .map_err(StoreError::from)
        .and_then(|_| crate::ledger::index_pending(conn.into(), state, INDEX_CHUNK))
        .and_then(|n| {
            conn.execute_batch("COMMIT")
                .map(|_| n)
                .map_err(StoreError::from)
        });
    stats
        .index_nanos
        .fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
    if let Ok(n) = r {
        stats.indexed.fetch_add(n, Ordering::Relaxed);
    }
    if let Err(e) = r {
        tracing::error!(error = %e, "indexing the ledger failed; will retry");
        let _ = conn.execute_batch("ROLLBACK");
        *state = before;
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Takes the savepoint a job runs in. In unit tests a job can make the next one fail (on the
/// writer thread only) to prove that the job after it then writes nothing.
fn savepoint(conn: &Connection) -> rusqlite::Result<()> {
    #[cfg(test)]
    if FAIL_NEXT_SAVEPOINT.with(|f| f.replace(false)) {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_IOERR),
            Some("injected savepoint failure".into()),
        ));
    }
    conn.execute_batch("SAVEPOINT job")
}

#[cfg(test)]
thread_local! {
    static FAIL_NEXT_SAVEPOINT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `batch` (and, when `more` is given, requests that arrive while it runs, up to the
/// batch limit) in one transaction with one commit.
fn commit_batch(
    conn: &Connection,
    state: &mut LedgerState,
    batch: Vec<Job>,
    more: Option<(&Receiver<Msg>, usize, &mut bool)>,
    (stats, access, dir): (&WriterStats, &crate::access_watch::AccessWatch, &Path),
) {
    let started = std::time::Instant::now();
    stats.batches.fetch_add(1, Ordering::Relaxed);
    stats.jobs.fetch_add(batch.len() as u64, Ordering::Relaxed);
    let before_batch = state.clone();
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        tracing::error!(error = %e, "could not begin a write transaction");
        let why = Failure::of(&e, dir);
        // Outside a transaction each statement would commit on its own: none may run.
        for job in batch {
            job.refuse(why.clone());
        }
        *state = before_batch;
        return;
    }
    let mut dones = Vec::with_capacity(batch.len());
    let mut queue: std::collections::VecDeque<Job> = batch.into();
    let mut more = more;
    let mut taken = queue.len();
    loop {
        let Some(job) = queue.pop_front().or_else(|| {
            let (rx, max, stop) = more.as_mut()?;
            if taken >= *max || **stop {
                return None;
            }
            match rx.try_recv() {
                Ok(Msg::Job(j)) => {
                    taken += 1;
                    stats.jobs.fetch_add(1, Ordering::Relaxed);
                    Some(j)
                }
                Ok(Msg::Stop) => {
                    **stop = true;
                    None
                }
                Err(_) => None,
            }
        }) else {
            break;
        };
        let before = state.clone();
        // A job runs only inside its savepoint: otherwise a refusal could not undo its writes
        // and they would commit with the batch.
        if let Err(e) = savepoint(conn) {
            tracing::error!(error = %e, "could not take a savepoint; the request is refused");
            job.refuse(Failure::of(&e, dir));
            continue;
        }
        let mut wtx = WriteTx::new(conn, state);
        // A panicking job drops its reply channel (its caller sees an error); the others go on.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.run(&mut wtx)));
        let (mut keep, done) = match outcome {
            Ok((keep, done)) => (keep, Some(done)),
            Err(_) => (false, None),
        };
        // A write that changed covered rows after (or without) its last ledger entry: those
        // rows are stated in an entry of their own, so that nothing changes unrecorded.
        if keep && matches!(crate::state::pending(conn), Ok(true)) {
            let ev = crate::state::recorded_event(state.last_ts);
            let mut wtx = WriteTx::new(conn, state);
            if let Err(e) = wtx.append(&ev) {
                tracing::error!(error = %e, "could not record a state change; the write is undone");
                keep = false;
            }
        }
        let end = if keep {
            "RELEASE job"
        } else {
            "ROLLBACK TO job; RELEASE job"
        };
        if let Err(e) = conn.execute_batch(end) {
            tracing::error!(error = %e, "savepoint failed");
        }
        if !keep {
            *state = before;
        }
        dones.extend(done);
    }
    let committing = std::time::Instant::now();
    stats
        .job_nanos
        .fetch_add((committing - started).as_nanos() as u64, Ordering::Relaxed);
    let committed = conn.execute_batch("COMMIT");
    let took = committing.elapsed().as_nanos() as u64;
    stats.commit_nanos.fetch_add(took, Ordering::Relaxed);
    stats
        .slowest_commit_nanos
        .fetch_max(took, Ordering::Relaxed);
    stats
        .slowest_batch_nanos
        .fetch_max(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
    match committed {
        Ok(()) => {
            // Before anyone is answered: whoever revoked a session must not see it served.
            access.transaction_ended();
            dones.into_iter().for_each(|d| d(Ok(())));
        }
        Err(e) => {
            tracing::error!(error = %e, "commit failed; the whole batch is rolled back");
            let _ = conn.execute_batch("ROLLBACK");
            access.transaction_ended();
            *state = before_batch;
            let why = Failure::of(&e, dir);
            dones.into_iter().for_each(|d| d(Err(why.clone())));
        }
    }
}

#[cfg(test)]
mod savepoint_tests {
    use super::*;

    #[test]
    fn a_job_whose_savepoint_fails_is_refused_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::Store::open(dir.path(), StoreOptions::default()).unwrap();
        store
            .write_blocking(|_| -> Result<(), StoreError> {
                FAIL_NEXT_SAVEPOINT.with(|f| f.set(true));
                Ok(())
            })
            .unwrap();
        let refused = store.write_blocking(|tx| tx.set_meta("written_without_savepoint", "yes"));
        assert!(refused.is_err(), "{refused:?}");
        let after = store
            .reader()
            .unwrap()
            .get()
            .meta("written_without_savepoint")
            .unwrap();
        assert_eq!(after, None, "the refused job's write did not commit");
        store
            .write_blocking(|tx| tx.set_meta("written_after", "yes"))
            .unwrap();
        assert_eq!(
            store
                .reader()
                .unwrap()
                .get()
                .meta("written_after")
                .unwrap()
                .as_deref(),
            Some("yes"),
            "the writer goes on"
        );
    }
}
