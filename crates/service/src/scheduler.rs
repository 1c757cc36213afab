//! The background work a serving instance does on its own: periodic checkpoints, clock
//! checks, the scheduled full verification, the backup schedule (with events queued by
//! commands run beside the server), and the evidence sweep (signing what a crash left,
//! retrying time-stamps, sealing, renewing) with the hourly removal of unreferenced files.
//!
//! All of it starts in `Background::start` and stops when the handle is dropped. On an
//! instance whose state is in PostgreSQL several nodes may serve it: the work on the shared
//! state (checkpoints, the scheduled verification and backups, the evidence sweep, the orphan
//! sweep) runs only on the node that holds the database's advisory lock for it, and moves to
//! another node within seconds when that node dies; each node still checks its own clock and
//! records what commands run beside it queued.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::Service;
use crate::error::ErrorCode;

/// A file in the blob store that no row refers to is removed once it is this old (a write
/// references what it stored within seconds).
pub const ORPHAN_AGE_MS: u64 = 10 * 60_000;

/// The scheduling priority of background work (0 is normal, 19 the lowest). At 10 a busy
/// interactive thread gets about nine tenths of a contended core.
const BACKGROUND_NICE: i32 = 10;

/// Runs heavy work that nobody waits for at the screen (verification, backups and drills,
/// evidence trees) on a thread of its own at a lower priority; the threads it starts inherit
/// the priority. Chart reads then keep the cores while it runs (docs/benchmarks.md).
pub(crate) async fn in_background<R: Send + 'static>(
    work: impl FnOnce() -> R + Send + 'static,
) -> crate::error::Result<R> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("mamori-background".into())
        .spawn(move || {
            lower_priority();
            let _ = tx.send(work());
        })
        .map_err(crate::ServiceError::internal)?;
    rx.await
        .map_err(|_| crate::ServiceError::internal("background work stopped unexpectedly"))
}

/// Lowers the calling thread's priority (Linux: per thread). Failing is harmless.
fn lower_priority() {
    let me = rustix::thread::gettid();
    if let Err(e) = rustix::process::setpriority_process(Some(me), BACKGROUND_NICE) {
        tracing::debug!(error = %e, "could not lower the priority of background work");
    }
}

/// The running background tasks; dropping it stops them (and gives up the lead).
pub struct Background {
    tasks: Vec<JoinHandle<()>>,
    lead: Lead,
}

impl Drop for Background {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Background {
    /// Whether this node runs the work on the shared state now (always, on SQLite).
    pub fn leading(&self) -> bool {
        self.lead.leading()
    }
}

/// Who runs the work on the shared state: this process alone (SQLite), or the holder of a
/// PostgreSQL advisory lock among the nodes.
#[derive(Clone)]
enum Lead {
    Alone,
    Shared(Arc<mamori_store::postgres::Leadership>),
}

impl Lead {
    fn leading(&self) -> bool {
        match self {
            Lead::Alone => true,
            Lead::Shared(l) => l.is_leader(),
        }
    }
}

/// The name of the lock the nodes of one instance contend for.
const LEAD_WORK: &str = "background";

/// `work` every `every`, the first time after `first`.
fn every<F, Fut>(first: Duration, every: Duration, work: F) -> JoinHandle<()>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut t = tokio::time::interval_at(tokio::time::Instant::now() + first, every);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            t.tick().await;
            work().await;
        }
    })
}

impl Background {
    pub fn start(svc: &Arc<Service>) -> Background {
        let cfg = svc.config();
        let mut tasks = Vec::new();
        let lead = match crate::instance::database(cfg) {
            Ok(Some(db)) => Lead::Shared(Arc::new(mamori_store::postgres::Leadership::start(
                db,
                &format!("{LEAD_WORK} {}", svc.signer.verifier_key()),
                Default::default(),
            ))),
            _ => Lead::Alone,
        };

        let (s, l) = (svc.clone(), lead.clone());
        let period = Duration::from_secs(cfg.ledger.checkpoint_interval_secs.max(1));
        tasks.push(every(period, period, move || {
            let (s, leading) = (s.clone(), l.leading());
            async move {
                if !leading {
                    return;
                }
                if let Err(e) = s.checkpoint_now().await {
                    tracing::warn!(error = %e, "periodic checkpoint failed");
                }
            }
        }));

        let hours = cfg.ledger.verify_interval_hours;
        if hours > 0 {
            let (s, l) = (svc.clone(), lead.clone());
            // Not at once: a restart should not cost a full verification before anything else.
            let first = Duration::from_secs(60);
            tasks.push(every(first, Duration::from_secs(hours * 3600), move || {
                let (s, leading) = (s.clone(), l.leading());
                async move {
                    if !leading {
                        return;
                    }
                    match s.verify_and_record(None).await {
                        Ok(v) if v.ok => tracing::info!(
                            entries = v.ledger_entries,
                            "scheduled verification passed"
                        ),
                        Ok(v) => tracing::error!(
                            problems = v.problems_total,
                            "scheduled verification FAILED"
                        ),
                        Err(e) => {
                            tracing::warn!(error = %e, "scheduled verification could not run")
                        }
                    }
                }
            }));
        }

        let s = svc.clone();
        let period = Duration::from_secs(cfg.time.check_interval_secs.max(10));
        tasks.push(every(Duration::ZERO, period, move || {
            let s = s.clone();
            async move {
                if let Err(e) = s.check_clock().await {
                    tracing::warn!(error = %e, "clock check failed");
                }
            }
        }));

        // Events left by commands run beside the server every 5 s; the backup schedule every
        // minute, from two minutes after the start.
        let s = svc.clone();
        let period = Duration::from_secs(5);
        tasks.push(every(Duration::ZERO, period, move || {
            let s = s.clone();
            async move {
                if let Err(e) = s.ingest_outbox().await {
                    tracing::warn!(error = %e, "could not record queued events");
                }
            }
        }));
        let (s, l) = (svc.clone(), lead.clone());
        tasks.push(every(
            Duration::from_secs(120),
            Duration::from_secs(60),
            move || {
                let (s, leading) = (s.clone(), l.leading());
                async move {
                    if leading && s.backup_due().await.unwrap_or(false) {
                        match s.backup_now(None).await {
                            Ok(()) => tracing::info!("scheduled backup started"),
                            Err(e) if e.code == ErrorCode::BackupRunning => {}
                            Err(e) => {
                                tracing::warn!(error = %e, "scheduled backup could not start")
                            }
                        }
                    }
                }
            },
        ));

        let (s, l) = (svc.clone(), lead.clone());
        tasks.push(every(
            Duration::ZERO,
            Duration::from_secs(3600),
            move || {
                let (s, leading) = (s.clone(), l.leading());
                async move {
                    if !leading {
                        return;
                    }
                    match s.sweep_orphan_blobs(ORPHAN_AGE_MS).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(files = n, "unreferenced files removed"),
                        Err(e) => tracing::warn!(error = %e, "orphan sweep failed"),
                    }
                }
            },
        ));
        let (s, l) = (svc.clone(), lead.clone());
        tasks.push(every(Duration::ZERO, Duration::from_secs(60), move || {
            let (s, leading) = (s.clone(), l.leading());
            async move {
                if !leading {
                    return;
                }
                match s.evidence_sweep(false).await {
                    Ok(r) if r.sealed.is_some() || !r.renewed.is_empty() => {
                        tracing::info!(?r, "evidence sweep")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "evidence sweep failed"),
                }
                // Transaction documents whose time-stamp failed at registration.
                match s.transaction_stamp_sweep().await {
                    Ok((0, 0)) => {}
                    Ok((ok, failed)) => tracing::info!(ok, failed, "transaction stamps retried"),
                    Err(e) => tracing::warn!(error = %e, "transaction stamp sweep failed"),
                }
            }
        }));
        Background { tasks, lead }
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn background_work_runs_at_the_lower_priority_and_the_caller_keeps_its_own() {
        let mine = || rustix::process::getpriority_process(Some(rustix::thread::gettid()));
        let before = mine().unwrap();
        let (theirs, child) = super::in_background(move || {
            let child = std::thread::spawn(mine).join().unwrap().unwrap();
            (mine().unwrap(), child)
        })
        .await
        .unwrap();
        assert_eq!(theirs, (before + super::BACKGROUND_NICE).min(19));
        assert_eq!(child, theirs, "threads it starts inherit the priority");
        assert_eq!(mine().unwrap(), before);
    }
}
