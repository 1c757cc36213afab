//! One node at a time: background work (ledger checkpoints, evidence sweeps, scheduled backups,
//! periodic verification) runs on the node that holds a PostgreSQL session advisory lock.
//! The server releases the lock when the holder's connection ends — a node killed with -9, a
//! node cut off, a server restart — and another node, which keeps asking, takes it over.
//!
//! Leadership avoids doing the work twice; it does not make the work correct. A cut-off holder
//! learns that it lost the lock only at its next check (`check_every`), so for that long two
//! nodes may both believe they lead: each job must stay safe to run twice (its writes go
//! through the ledger's coordinator row like any other).

use std::time::Duration;

use super::Database;
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use super::connect;

#[derive(Debug, Clone)]
pub struct LeaderOptions {
    /// How often a node that does not lead asks for the lock again.
    pub retry_every: Duration,
    /// How often the leader checks that its connection, and so its lock, is still there.
    pub check_every: Duration,
}

impl Default for LeaderOptions {
    fn default() -> Self {
        Self {
            retry_every: Duration::from_secs(1),
            check_every: Duration::from_secs(1),
        }
    }
}

/// This node's standing for one kind of work; dropping it gives the lock up.
pub struct Leadership {
    leading: watch::Receiver<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// The advisory lock's key for `work`: the same on every node, distinct per kind of work.
pub fn lock_key(work: &str) -> i64 {
    let d = Sha256::digest(format!("mamori leader: {work}").as_bytes());
    i64::from_be_bytes(d[..8].try_into().expect("8 bytes"))
}

impl Leadership {
    /// Starts campaigning for `work` in the background.
    pub fn start(config: Database, work: &str, opts: LeaderOptions) -> Self {
        let (tx, leading) = watch::channel(false);
        let key = lock_key(work);
        let work = work.to_owned();
        let task = tokio::spawn(async move {
            loop {
                let client = match connect(&config).await {
                    Ok(c) => c,
                    Err(_) => {
                        tokio::time::sleep(opts.retry_every).await;
                        continue;
                    }
                };
                // Ask until the lock is ours, then hold it while the connection lives.
                loop {
                    match client
                        .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
                        .await
                    {
                        Ok(row) if row.get::<_, bool>(0) => {
                            tracing::info!(work = %work, "this node now runs the background work");
                            let _ = tx.send(true);
                            while client.simple_query("SELECT 1").await.is_ok() {
                                tokio::time::sleep(opts.check_every).await;
                            }
                            tracing::warn!(work = %work, "lost the database connection; no longer running the background work");
                            let _ = tx.send(false);
                            break;
                        }
                        Ok(_) => tokio::time::sleep(opts.retry_every).await,
                        Err(_) => break,
                    }
                }
                let _ = tx.send(false);
                tokio::time::sleep(opts.retry_every).await;
            }
        });
        Self { leading, task }
    }

    /// Whether this node holds the lock now (as of its last check).
    pub fn is_leader(&self) -> bool {
        *self.leading.borrow()
    }

    /// Waits until this node's standing changes.
    pub async fn changed(&mut self) -> bool {
        let _ = self.leading.changed().await;
        self.is_leader()
    }
}

impl Drop for Leadership {
    fn drop(&mut self) {
        // Ends the task and with it the connection, which releases the lock.
        self.task.abort();
    }
}
