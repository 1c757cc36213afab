//! The read-only connections. Opening a SQLite connection costs a schema parse, so a request
//! must never open one: the pool keeps up to `size` connections open and a reader waits for
//! one to come back instead. Async reads take a permit before they take a blocking thread, so
//! waiting costs no thread. A synchronous caller that waits too long (a reader held while
//! another is asked for on the same thread) gets one extra connection rather than a deadlock.

use std::path::PathBuf;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use tokio::sync::Semaphore;

use crate::StoreError;

/// How long a synchronous reader waits before it opens an extra connection.
const PATIENCE: Duration = Duration::from_secs(2);
/// Prepared statements kept per connection: every query the `Reader` has, with room.
const STATEMENT_CACHE: usize = 256;

/// The default size: two per core. Reads are short and CPU-bound; two per core keep the cores
/// busy while one waits for the disk, and more only queue on the CPU: measured at 64
/// connections on 2 cores, 4 readers served 18,600 chart reads/s with p99 8 ms, 8 readers
/// 16,100/s with p99 756 ms (docs/benchmarks.md).
pub fn default_size() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get()) * 2
}

pub(crate) struct Pool {
    db_path: PathBuf,
    size: usize,
    state: Mutex<State>,
    returned: Condvar,
    /// Permits for async reads, one per connection.
    pub(crate) permits: Semaphore,
}

struct State {
    idle: Vec<Connection>,
    /// Connections of the pool, idle or lent.
    open: usize,
}

/// A connection and whether it belongs to the pool (an extra one is closed on return).
pub(crate) struct Lent {
    pub conn: Connection,
    pub pooled: bool,
}

impl Pool {
    pub(crate) fn new(db_path: PathBuf, size: usize) -> Pool {
        let size = size.max(1);
        Pool {
            db_path,
            size,
            state: Mutex::new(State {
                idle: Vec::with_capacity(size),
                open: 0,
            }),
            returned: Condvar::new(),
            permits: Semaphore::new(size),
        }
    }

    fn open(&self) -> Result<Connection, StoreError> {
        let c = Connection::open_with_flags(
            &self.db_path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        c.busy_timeout(Duration::from_secs(10))?;
        c.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(c)
    }

    pub(crate) fn take(&self) -> Result<Lent, StoreError> {
        let mut s = self.state.lock().expect("reader pool");
        let deadline = std::time::Instant::now() + PATIENCE;
        loop {
            if let Some(conn) = s.idle.pop() {
                return Ok(Lent { conn, pooled: true });
            }
            if s.open < self.size {
                s.open += 1;
                drop(s);
                return match self.open() {
                    Ok(conn) => Ok(Lent { conn, pooled: true }),
                    Err(e) => {
                        self.state.lock().expect("reader pool").open -= 1;
                        Err(e)
                    }
                };
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                drop(s);
                tracing::debug!("reader pool exhausted; opening an extra connection");
                return Ok(Lent {
                    conn: self.open()?,
                    pooled: false,
                });
            }
            s = self
                .returned
                .wait_timeout(s, deadline - now)
                .expect("reader pool")
                .0;
        }
    }

    pub(crate) fn give_back(&self, lent: Lent) {
        if !lent.pooled {
            return;
        }
        self.state.lock().expect("reader pool").idle.push(lent.conn);
        self.returned.notify_one();
    }

    /// Connections open now (idle or lent), for tests and operations.
    pub fn open_connections(&self) -> usize {
        self.state.lock().expect("reader pool").open
    }
}
