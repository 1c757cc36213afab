//! What monitoring reads (`GET /api/v1/metrics`, Prometheus): the figures an operator alerts
//! on, gathered in one read. Only the administrator may read them. A successful read is not a
//! ledger entry (a scrape every 15 s would drown the audit trail, and nothing in it is about a
//! patient); a refused one is.

use std::sync::Arc;

use mamori_domain::audit::actions;
use mamori_domain::permission::Action;
use serde::Serialize;

use crate::error::{Result, ServiceError};
use crate::{Principal, Service, Target};

#[derive(Clone, Debug, Serialize)]
pub struct Vitals {
    pub ledger_entries: u64,
    /// Client requests run by the writer, commits, and the time spent committing.
    pub writer_jobs: u64,
    pub writer_commits: u64,
    pub writer_commit_seconds: f64,
    pub writer_slowest_commit_seconds: f64,
    pub reader_connections: usize,
    pub backup_running: bool,
    /// Per target (label): seconds since its last successful backup (None: never), and
    /// whether its newest attempt failed.
    pub backups: Vec<BackupVital>,
    /// Signatures not yet sealed into an evidence record; time-stamps still to fetch.
    pub evidence_unsealed: u64,
    pub timestamps_pending: u64,
    /// None until the clock was checked.
    pub clock_trusted: Option<bool>,
    pub clock_offset_seconds: Option<f64>,
    /// Failed sign-ins in the last 24 hours.
    pub failed_logins_24h: u64,
    /// The newest full verification: whether it passed and how long ago (None: never ran).
    pub verify_ok: Option<bool>,
    pub verify_age_seconds: Option<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct BackupVital {
    pub target: String,
    pub age_seconds: Option<f64>,
    pub failing: bool,
}

const DAY: mamori_domain::Millis = 86_400_000;

impl Service {
    pub async fn vitals(self: &Arc<Self>, p: &Principal) -> Result<Vitals> {
        if let Err(e) = p.require(Action::AdminSettings, None) {
            let ev = self.refusal_event(Some(p), actions::METRICS_READ, &Target::default(), &e);
            self.store
                .write(move |tx| tx.append(&ev).map_err(ServiceError::from))
                .await?;
            return Err(e);
        }
        let this = Arc::clone(self);
        self.store.read(move |r| Ok(this.vitals_in(r))).await?
    }

    fn vitals_in(&self, r: &mamori_store::Reader<'_>) -> Result<Vitals> {
        let now = self.now();
        let backup = self.backup_status_in(r)?;
        let backups = backup
            .targets
            .iter()
            .filter(|t| t.configured)
            .map(|t| BackupVital {
                target: t.target.clone(),
                age_seconds: t.last_ok_at.map(|at| (now - at).max(0) as f64 / 1000.0),
                failing: t
                    .last_failure_at
                    .is_some_and(|f| t.last_ok_at.is_none_or(|ok| f > ok)),
            })
            .collect();
        let (pending, _) = r.timestamps_pending()?;
        let clock = self.clock_status();
        let verified = self.last_verification_in(r)?;
        let s = self.store.stats();
        let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        Ok(Vitals {
            ledger_entries: r.ledger_size()?,
            writer_jobs: load(&s.jobs),
            writer_commits: load(&s.batches),
            writer_commit_seconds: load(&s.commit_nanos) as f64 / 1e9,
            writer_slowest_commit_seconds: load(&s.slowest_commit_nanos) as f64 / 1e9,
            reader_connections: self.store.reader_connections(),
            backup_running: backup.running,
            backups,
            evidence_unsealed: r.unsealed_signatures(None)?.len() as u64,
            timestamps_pending: pending as u64,
            clock_trusted: clock.as_ref().map(|c| c.synchronised),
            clock_offset_seconds: clock
                .as_ref()
                .and_then(|c| c.offset_ms)
                .map(|ms| ms as f64 / 1000.0),
            failed_logins_24h: r.count_action_since(actions::LOGIN_FAILED, now - DAY)?,
            verify_ok: verified.as_ref().map(|v| v.ok),
            verify_age_seconds: verified
                .as_ref()
                .map(|v| (now - v.at).max(0) as f64 / 1000.0),
        })
    }
}
