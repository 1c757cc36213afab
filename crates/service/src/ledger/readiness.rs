//! Whether this instance can serve: a read connection answers, the ledger writer commits and
//! the disk takes writes.
//! For a load balancer or monitoring, beside `/health` (which only says the process is up).
//! Answers name no figures, only each part's state.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::Service;

/// How long each part may take before it counts as not ready.
const PATIENCE: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Readiness {
    /// A read connection answered a query.
    pub database: bool,
    /// The single writer ran a (empty) request and committed it.
    pub ledger_writer: bool,
    /// The data directory's file system takes writes: not read-only, not full.
    pub storage: bool,
}

impl Readiness {
    pub fn ready(&self) -> bool {
        self.database && self.ledger_writer && self.storage
    }
}

/// The disk probe writes a file: asked at most once a second per data directory, however often
/// `/ready` (which needs no sign-in) is called.
fn storage_ok(dir: &std::path::Path) -> bool {
    type Last = Option<(std::path::PathBuf, std::time::Instant, bool)>;
    static LAST: std::sync::Mutex<Last> = std::sync::Mutex::new(None);
    let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((d, at, ok)) = &*last
        && d == dir
        && at.elapsed() < Duration::from_secs(1)
    {
        return *ok;
    }
    let ok = mamori_store::disk::probe(dir).is_none();
    *last = Some((dir.to_owned(), std::time::Instant::now(), ok));
    ok
}

impl Service {
    pub async fn readiness(self: &Arc<Self>) -> Readiness {
        let read = tokio::time::timeout(PATIENCE, self.store.read(|r| r.ledger_size()));
        let database = matches!(read.await, Ok(Ok(_)));
        let write = tokio::time::timeout(
            PATIENCE,
            self.store.write(|_| Ok::<(), mamori_store::StoreError>(())),
        );
        let ledger_writer = matches!(write.await, Ok(Ok(())));
        Readiness {
            database,
            ledger_writer,
            storage: storage_ok(&self.data_dir),
        }
    }
}
