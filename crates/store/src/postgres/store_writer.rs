//! The store's writer on PostgreSQL: one thread per node with its own connection, committing
//! the requests that arrive together in one transaction (group commit), each in a savepoint
//! so that one refused request undoes only itself — as SQLite's writer does.
//!
//! A batch that fails because the connection broke, the server restarted or a failover is
//! under way is run again on a fresh connection (requests are `Fn`, so running one again is
//! the same request) for up to [`RETRY_FOR`]. Each batch records a random id in the same
//! transaction; when `COMMIT` was sent and no answer came, the id is looked up after
//! reconnecting: found, the batch is in and is answered as committed; not found, it runs
//! again. So an acknowledged write is never missing and a request is never applied twice.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use mamori_ledger::Frontier;
use rand_core::{OsRng, RngCore};
use tokio::sync::oneshot;

use super::Database;
use crate::ledger::LedgerState;
use crate::sql::{Conn, OptionalExtension, PgConn, params};
use crate::{StoreError, WriteTx};

/// How long a batch is retried across restarts and failovers before its callers are told the
/// database cannot be reached.
pub(crate) const RETRY_FOR: Duration = Duration::from_secs(30);

/// Most requests committed together.
const MAX_BATCH: usize = 256;

/// A request waiting for the writer.
pub(crate) trait PgWork: Send {
    /// Runs the request in the open transaction; whether its writes are kept.
    fn run(&mut self, wtx: &mut WriteTx<'_>) -> bool;
    /// Answers the caller once the batch's fate is known.
    fn answer(self: Box<Self>, committed: Result<(), StoreError>);
}

pub(crate) struct Request<F, R, E> {
    pub f: F,
    pub result: Option<Result<R, E>>,
    pub reply: oneshot::Sender<Result<R, E>>,
}

impl<F, R, E> PgWork for Request<F, R, E>
where
    F: Fn(&mut WriteTx<'_>) -> Result<R, E> + Send,
    R: Send,
    E: From<StoreError> + Send,
{
    fn run(&mut self, wtx: &mut WriteTx<'_>) -> bool {
        let r = (self.f)(wtx);
        let keep = r.is_ok();
        self.result = Some(r);
        keep
    }

    fn answer(self: Box<Self>, committed: Result<(), StoreError>) {
        let Request { result, reply, .. } = *self;
        let _ = reply.send(match committed {
            Ok(()) => result.unwrap_or_else(|| Err(E::from(StoreError::Closed))),
            Err(e) => Err(E::from(e)),
        });
    }
}

pub(crate) type Job = Box<dyn PgWork>;

/// How an attempt at a batch failed.
enum Failed {
    /// The transaction certainly did not commit.
    Before(StoreError),
    /// `COMMIT` was sent and no answer came: the batch may be in.
    AtCommit(StoreError),
}

impl Failed {
    fn error(&self) -> &StoreError {
        match self {
            Failed::Before(e) | Failed::AtCommit(e) => e,
        }
    }
}

/// Whether a failure is the connection's or the server's (worth a fresh connection), not
/// an answer to the statements.
pub(crate) fn transient(e: &StoreError) -> bool {
    match e {
        StoreError::Sql(crate::sql::Error::Postgres { retryable, .. }) => *retryable,
        StoreError::Unreachable(_) => true,
        _ => false,
    }
}

/// The writer's connection with the state capture's temporary table.
pub(crate) fn writer_connection(db: &Database) -> Result<PgConn, StoreError> {
    let conn = PgConn::connect(db)?;
    Conn::Pg(&conn).execute_batch(super::store::CAPTURE_TABLE)?;
    Ok(conn)
}

pub(crate) fn run(
    db: Database,
    mut conn: PgConn,
    mut state: LedgerState,
    rx: Receiver<Job>,
    stopping: Arc<AtomicBool>,
) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        let mut id = [0u8; 16];
        OsRng.fill_bytes(&mut id);
        let deadline = Instant::now() + RETRY_FOR;
        let mut pause = Duration::from_millis(50);
        let outcome = loop {
            let before = state.clone();
            let failed = match attempt(&conn, &mut state, &mut batch, &id) {
                Ok(()) => break Ok(()),
                Err(f) => f,
            };
            let _ = Conn::Pg(&conn).execute_batch("ROLLBACK");
            state = before;
            if !transient(failed.error()) || stopping.load(Ordering::Acquire) {
                break Err(failed);
            }
            tracing::warn!(error = %failed.error(), "the database connection failed during a write; trying again");
            // A fresh connection, as long as the deadline allows.
            let fresh = loop {
                match writer_connection(&db) {
                    Ok(c) => break Ok(c),
                    Err(e) if Instant::now() + pause < deadline && transient(&e) => {
                        std::thread::sleep(pause);
                        pause = (pause * 2).min(Duration::from_secs(1));
                    }
                    Err(e) => break Err(e),
                }
            };
            conn = match fresh {
                Ok(c) => c,
                Err(e) => break Err(Failed::Before(unreachable(e))),
            };
            let clock = state.clock_unsynchronised.clone();
            match crate::ledger::load_state(Conn::Pg(&conn)) {
                Ok(s) => {
                    state = s;
                    state.clock_unsynchronised = clock;
                }
                Err(e) => break Err(Failed::Before(e)),
            }
            if let Failed::AtCommit(_) = failed {
                match Conn::Pg(&conn).query_row(
                    "SELECT 1 FROM ledger_batches WHERE id = ?1",
                    [&id[..]],
                    |_| Ok(()),
                ) {
                    Ok(()) => break Ok(()), // it committed; `state` was loaded with it
                    Err(crate::sql::Error::NoRows) => {}
                    Err(e) => break Err(Failed::Before(e.into())),
                }
            }
            if Instant::now() >= deadline {
                break Err(failed);
            }
        };
        let outcome = outcome.map_err(|f| match f {
            Failed::Before(e) | Failed::AtCommit(e) => e.to_string(),
        });
        for job in batch {
            job.answer(
                outcome
                    .clone()
                    .map_err(|m| StoreError::Unreachable(format!("書き込めませんでした: {m}"))),
            );
        }
    }
}

fn unreachable(e: StoreError) -> StoreError {
    match e {
        StoreError::Unreachable(_) => e,
        other => StoreError::Unreachable(other.to_string()),
    }
}

/// One try at the batch in one transaction.
fn attempt(
    conn: &PgConn,
    state: &mut LedgerState,
    batch: &mut [Job],
    id: &[u8],
) -> Result<(), Failed> {
    let c = Conn::Pg(conn);
    let before = |e: crate::sql::Error| Failed::Before(e.into());
    c.execute_batch("BEGIN").map_err(before)?;
    let (size, edge): (i64, Vec<u8>) = c
        .query_row(
            "SELECT size, edge FROM ledger_head WHERE id = 1 FOR UPDATE",
            (),
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(before)?;
    if size as u64 != state.frontier.size() {
        // Another node appended: take the tree's edge from the coordinator row, which that
        // node wrote in the same transaction as its entries (`verify` re-derives it from the
        // entries), and the newest time from the newest entry — entry times never go back.
        // Not from the whole table: a scan per switch between nodes would cost more than
        // the batch.
        let frontier = Frontier::from_edge(size as u64, &edge).ok_or_else(|| {
            Failed::Before(StoreError::Corrupt(
                "the ledger's head is unreadable; run `mamori verify`".into(),
            ))
        })?;
        let last_ts: Option<i64> = c
            .query_row("SELECT ts FROM ledger WHERE idx = ?1", [size - 1], |r| {
                r.get(0)
            })
            .optional()
            .map_err(before)?;
        let indexed_upto: Option<String> = c
            .query_row(
                "SELECT value FROM meta WHERE key = 'indexed_upto'",
                (),
                |r| r.get(0),
            )
            .optional()
            .map_err(before)?;
        state.frontier = frontier;
        state.last_ts = last_ts.unwrap_or(i64::MIN);
        state.indexed_upto = indexed_upto.and_then(|v| v.parse().ok()).unwrap_or(0);
    }
    let first = state.frontier.size();
    for job in batch.iter_mut() {
        c.execute_batch("SAVEPOINT job").map_err(before)?;
        let job_before = state.clone();
        let mut wtx = WriteTx::new(c, state);
        // A panicking request answers its caller with an error; the others go on.
        let mut keep =
            std::panic::catch_unwind(AssertUnwindSafe(|| job.run(&mut wtx))).unwrap_or(false);
        // Rows changed after the request's last entry are stated in one of their own.
        if keep && crate::state::pending(c).map_err(Failed::Before)? {
            let ev = crate::state::recorded_event(state.last_ts);
            if WriteTx::new(c, state).append(&ev).is_err() {
                keep = false;
            }
        }
        if keep {
            c.execute_batch("RELEASE job").map_err(before)?;
        } else {
            c.execute_batch("ROLLBACK TO job; RELEASE job")
                .map_err(before)?;
            *state = job_before;
        }
    }
    // The query indexes follow in the same transaction: a batch adds a few entries.
    crate::ledger::index_pending(c, state, u64::MAX).map_err(Failed::Before)?;
    c.execute(
        "UPDATE ledger_head SET size = ?1, last_ts = ?2, edge = ?3 WHERE id = 1",
        params![
            state.frontier.size() as i64,
            state.last_ts,
            state.frontier.edge_bytes()
        ],
    )
    .map_err(before)?;
    c.execute(
        "INSERT INTO ledger_batches (id, first_idx, n) VALUES (?1, ?2, ?3)",
        params![id, first as i64, (state.frontier.size() - first) as i64],
    )
    .map_err(before)?;
    c.execute_batch("COMMIT")
        .map_err(|e| Failed::AtCommit(e.into()))
}
