//! A node's ledger writer on PostgreSQL: concurrent appends are gathered into one batch, the
//! batch is sequenced in one transaction against the coordinator row, and each caller is
//! answered only after `COMMIT` returned (with `synchronous_commit = on`, after the WAL is on
//! disk, and on a synchronous standby's too when one is configured).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mamori_domain::audit::AuditEvent;
use mamori_ledger::Frontier;
use rand_core::{OsRng, RngCore};
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Statement};

use super::{Database, connect, retryable, schema};
use crate::StoreError;

#[derive(Debug, Clone)]
pub struct PgLedgerOptions {
    /// Most entries sequenced in one transaction.
    pub max_batch: usize,
    /// How long a batch waits for the database to come back (restart, failover) before its
    /// callers are told it is unreachable. Their entries are then not in the ledger.
    pub reconnect_for: Duration,
}

impl Default for PgLedgerOptions {
    fn default() -> Self {
        Self {
            max_batch: 1024,
            reconnect_for: Duration::from_secs(30),
        }
    }
}

/// Counters for benchmarks and operations.
#[derive(Debug, Default)]
pub struct PgLedgerStats {
    pub batches: AtomicU64,
    pub entries: AtomicU64,
    /// Transactions run again after a broken connection, a restart or a failover.
    pub retries: AtomicU64,
    /// Batches whose COMMIT had no answer and which were found committed afterwards.
    pub recovered: AtomicU64,
    pub reconnects: AtomicU64,
}

struct Job {
    ev: AuditEvent,
    done: oneshot::Sender<Result<u64, StoreError>>,
}

/// A handle to this node's ledger writer; clones share it.
#[derive(Clone)]
pub struct PgLedger {
    jobs: mpsc::Sender<Job>,
    stats: Arc<PgLedgerStats>,
}

impl PgLedger {
    /// Connects, creates the tables if the database is new, and starts the writer task.
    pub async fn open(config: Database, opts: PgLedgerOptions) -> Result<Self, StoreError> {
        let conn = Conn::open(&config).await?;
        let (jobs, rx) = mpsc::channel(opts.max_batch.max(1) * 16);
        let stats = Arc::new(PgLedgerStats::default());
        tokio::spawn(run(config, conn, rx, opts, stats.clone()));
        Ok(Self { jobs, stats })
    }

    /// Appends one event; returns its index once it is durable.
    pub async fn append(&self, ev: AuditEvent) -> Result<u64, StoreError> {
        let (done, answer) = oneshot::channel();
        self.jobs
            .send(Job { ev, done })
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    pub fn stats(&self) -> &PgLedgerStats {
        &self.stats
    }
}

/// One connection with the writer's statements prepared on it.
struct Conn {
    client: Client,
    lock_head: Statement,
    write: Statement,
    batch_known: Statement,
}

impl Conn {
    async fn open(config: &Database) -> Result<Self, StoreError> {
        let mut client = connect(config).await?;
        schema::install(&mut client).await?;
        let lock_head = client
            .prepare("SELECT size, last_ts, edge FROM ledger_head WHERE id = 1 FOR UPDATE")
            .await?;
        // One statement writes the entries, moves the head and records the batch id.
        let write = client
            .prepare(
                "WITH entries AS (
                    INSERT INTO ledger (idx, ts, actor_id, action, outcome, patient_id, record_id, payload, hashes)
                    SELECT * FROM UNNEST($1::int8[], $2::int8[], $3::int8[], $4::text[], $5::text[],
                                         $6::text[], $7::int8[], $8::bytea[], $9::bytea[])
                 ), head AS (
                    UPDATE ledger_head SET size = $10, last_ts = $11, edge = $12 WHERE id = 1
                 )
                 INSERT INTO ledger_batches (id, first_idx, n) VALUES ($13, $14, $15)",
            )
            .await?;
        let batch_known = client
            .prepare("SELECT first_idx FROM ledger_batches WHERE id = $1")
            .await?;
        Ok(Self {
            client,
            lock_head,
            write,
            batch_known,
        })
    }
}

/// How a sequencing attempt failed.
enum Failed {
    /// The transaction certainly did not commit.
    Before(StoreError),
    /// `COMMIT` was sent and no answer came: the batch may or may not be in.
    AtCommit(StoreError),
}

impl Failed {
    fn retryable(&self) -> bool {
        let e = match self {
            Failed::Before(e) | Failed::AtCommit(e) => e,
        };
        match e {
            StoreError::Postgres(e) => retryable(e),
            StoreError::Unreachable(_) => true,
            _ => false,
        }
    }
}

/// The entry rows of one batch, column by column (as `UNNEST` takes them).
#[derive(Default)]
struct Columns {
    idx: Vec<i64>,
    ts: Vec<i64>,
    actor: Vec<Option<i64>>,
    action: Vec<String>,
    outcome: Vec<&'static str>,
    patient: Vec<Option<String>>,
    record: Vec<Option<i64>>,
    payload: Vec<Vec<u8>>,
    hashes: Vec<Vec<u8>>,
}

/// Sequences `batch` after the stored head: times never go backwards, so an entry stamped
/// earlier than the head (another node's clock ahead) takes the head's time.
fn sequence(frontier: &mut Frontier, last_ts: &mut i64, batch: &[Job]) -> Columns {
    let mut c = Columns::default();
    for job in batch {
        let adjusted;
        let ev = if job.ev.ts < *last_ts {
            adjusted = AuditEvent {
                ts: *last_ts,
                ..job.ev.clone()
            };
            &adjusted
        } else {
            &job.ev
        };
        let payload = ev.to_bytes();
        let idx = frontier.size();
        let stored = frontier.append(&payload);
        c.idx.push(idx as i64);
        c.ts.push(ev.ts);
        c.actor.push(ev.actor.as_ref().map(|a| a.id));
        c.action.push(ev.action.clone());
        c.outcome.push(ev.outcome.as_str());
        c.patient.push(ev.patient.clone());
        c.record.push(ev.record);
        c.payload.push(payload);
        c.hashes.push(stored.iter().flat_map(|s| s.hash).collect());
        *last_ts = ev.ts;
    }
    c
}

/// One try at sequencing the batch. While this node waited for the coordinator row (another
/// node was committing), more appends may have arrived: when `more` is given they join the
/// batch, so that contention between nodes makes batches larger rather than throughput lower.
async fn attempt(
    conn: &mut Conn,
    batch: &mut Vec<Job>,
    more: Option<(&mut mpsc::Receiver<Job>, usize)>,
    id: &[u8],
) -> Result<u64, Failed> {
    let before = |e: tokio_postgres::Error| Failed::Before(e.into());
    let tx = conn.client.transaction().await.map_err(before)?;
    let head = tx.query_one(&conn.lock_head, &[]).await.map_err(before)?;
    if let Some((rx, max)) = more {
        while batch.len() < max {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
    }
    let size: i64 = head.get(0);
    let mut last_ts: i64 = head.get(1);
    let edge: &[u8] = head.get(2);
    let mut frontier = Frontier::from_edge(size as u64, edge).ok_or_else(|| {
        Failed::Before(StoreError::Corrupt(format!(
            "the ledger head's tree edge does not fit its size {size}; run `mamori verify`"
        )))
    })?;
    let c = sequence(&mut frontier, &mut last_ts, batch);
    let n = batch.len() as i32;
    tx.execute(
        &conn.write,
        &[
            &c.idx,
            &c.ts,
            &c.actor,
            &c.action,
            &c.outcome,
            &c.patient,
            &c.record,
            &c.payload,
            &c.hashes,
            &(frontier.size() as i64),
            &last_ts,
            &frontier.edge_bytes(),
            &id,
            &size,
            &n,
        ],
    )
    .await
    .map_err(before)?;
    tx.commit().await.map_err(|e| Failed::AtCommit(e.into()))?;
    Ok(size as u64)
}

/// Asks a fresh connection whether a batch whose COMMIT went unanswered is in.
async fn committed(conn: &Conn, id: &[u8]) -> Result<Option<u64>, StoreError> {
    let row = conn.client.query_opt(&conn.batch_known, &[&id]).await?;
    Ok(row.map(|r| r.get::<_, i64>(0) as u64))
}

async fn reconnect(
    config: &Database,
    deadline: Instant,
    stats: &PgLedgerStats,
) -> Result<Conn, StoreError> {
    let mut pause = Duration::from_millis(50);
    loop {
        match Conn::open(config).await {
            Ok(c) => {
                stats.reconnects.fetch_add(1, Ordering::Relaxed);
                return Ok(c);
            }
            Err(e) if Instant::now() + pause >= deadline => {
                return Err(StoreError::Unreachable(e.to_string()));
            }
            Err(e) => {
                tracing::warn!(error = %e, "the ledger database cannot be reached; trying again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
        }
    }
}

async fn run(
    config: Database,
    conn: Conn,
    mut rx: mpsc::Receiver<Job>,
    opts: PgLedgerOptions,
    stats: Arc<PgLedgerStats>,
) {
    let mut conn = Some(conn);
    let mut batch = Vec::with_capacity(opts.max_batch);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < opts.max_batch {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        let mut id = [0u8; 16];
        OsRng.fill_bytes(&mut id);
        let deadline = Instant::now() + opts.reconnect_for;
        let outcome = sequence_batch(
            &config,
            &mut conn,
            &mut batch,
            &mut rx,
            opts.max_batch,
            &id,
            deadline,
            &stats,
        )
        .await;
        if outcome.is_ok() {
            stats.batches.fetch_add(1, Ordering::Relaxed);
            stats
                .entries
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
        }
        for (i, job) in batch.drain(..).enumerate() {
            let answer = match &outcome {
                Ok(first) => Ok(first + i as u64),
                Err(e) => Err(copy_error(e)),
            };
            let _ = job.done.send(answer);
        }
    }
}

/// Runs the batch until it is in, or it certainly is not and will not be. The batch grows only
/// on the first try: once a COMMIT may have happened, the id stands for exactly those entries.
#[allow(clippy::too_many_arguments)]
async fn sequence_batch(
    config: &Database,
    conn: &mut Option<Conn>,
    batch: &mut Vec<Job>,
    rx: &mut mpsc::Receiver<Job>,
    max_batch: usize,
    id: &[u8],
    deadline: Instant,
    stats: &PgLedgerStats,
) -> Result<u64, StoreError> {
    let mut unsure = false;
    let mut first_try = true;
    loop {
        let c = match conn {
            Some(c) => c,
            None => conn.insert(reconnect(config, deadline, stats).await?),
        };
        if unsure {
            match committed(c, id).await {
                Ok(Some(first)) => {
                    stats.recovered.fetch_add(1, Ordering::Relaxed);
                    return Ok(first);
                }
                Ok(None) => unsure = false,
                Err(e) => {
                    *conn = None;
                    if Instant::now() >= deadline {
                        return Err(e);
                    }
                    continue;
                }
            }
        }
        let more = first_try.then_some((&mut *rx, max_batch));
        first_try = false;
        let failed = match attempt(c, batch, more, id).await {
            Ok(first) => return Ok(first),
            // An earlier try of this batch did commit after all (its connection broke while the
            // server went on): the id is taken, so the entries are in.
            Err(Failed::Before(StoreError::Postgres(e)))
                if e.code() == Some(&SqlState::UNIQUE_VIOLATION)
                    && e.as_db_error().and_then(|d| d.constraint())
                        == Some("ledger_batches_pkey") =>
            {
                if Instant::now() >= deadline {
                    return Err(StoreError::Corrupt(
                        "a ledger batch id is taken but its batch cannot be found".into(),
                    ));
                }
                unsure = true;
                *conn = None;
                continue;
            }
            Err(f) => f,
        };
        let retry = failed.retryable() && Instant::now() < deadline;
        let (Failed::Before(e) | Failed::AtCommit(e)) = &failed;
        tracing::warn!(error = %e, retry, "ledger batch not committed");
        if matches!(failed, Failed::AtCommit(_)) {
            unsure = true;
        }
        if !retry {
            let (Failed::Before(e) | Failed::AtCommit(e)) = failed;
            return Err(if unsure {
                StoreError::Unreachable(format!(
                    "the database did not confirm the commit ({e}); whether these entries are in is shown by `mamori verify`"
                ))
            } else {
                e
            });
        }
        stats.retries.fetch_add(1, Ordering::Relaxed);
        *conn = None;
    }
}

/// Every caller of a failed batch gets the error; the driver's error is not `Clone`.
fn copy_error(e: &StoreError) -> StoreError {
    match e {
        StoreError::Unreachable(m) => StoreError::Unreachable(m.clone()),
        StoreError::Corrupt(m) => StoreError::Corrupt(m.clone()),
        StoreError::Closed => StoreError::Closed,
        StoreError::Postgres(e) if retryable(e) => StoreError::Unreachable(e.to_string()),
        other => StoreError::Database(other.to_string()),
    }
}
