//! Trusted time: compares the clock with the configured NTP servers (SNTP) and reads the
//! kernel's synchronisation state; keeps the result for the checkpoints, the administrators'
//! warning and the marking of ledger entries written while the clock is not trusted. A change
//! of verdict is itself a ledger entry.

use std::sync::Arc;
use std::time::Duration;

use mamori_domain::audit::actions;
use mamori_domain::timesync::{self, ClockStatus};

use crate::error::{Result, ServiceError};
use crate::{Service, Target};

impl Service {
    pub fn clock_status(&self) -> Option<ClockStatus> {
        self.clock_status.lock().ok().and_then(|s| s.clone())
    }

    /// Checks the clock now (NTP servers in order until one answers, and the kernel), keeps
    /// the verdict, and records it in the ledger when it changed.
    pub async fn check_clock(self: &Arc<Self>) -> Result<ClockStatus> {
        let cfg = self.config.time.clone();
        let servers: Vec<String> = cfg
            .ntp_servers
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        let this = Arc::clone(self);
        let ntp = tokio::task::spawn_blocking(move || {
            let mut last = None;
            for s in servers {
                let timeout = Duration::from_millis(cfg.timeout_ms.max(1));
                let r = this.outside.time.ntp(&s, timeout, &|| this.now());
                let ok = r.is_ok();
                last = Some((s, r));
                if ok {
                    break;
                }
            }
            last
        })
        .await
        .map_err(ServiceError::internal)?;
        let kernel = self.outside.time.kernel_synchronised();
        let status = timesync::judge(self.now(), ntp, kernel, cfg.max_offset_ms);
        let changed = {
            let mut slot = self
                .clock_status
                .lock()
                .map_err(|_| ServiceError::internal("clock status lock"))?;
            let changed = slot
                .as_ref()
                .is_none_or(|old| old.synchronised != status.synchronised);
            *slot = Some(status.clone());
            changed
        };
        // From now on the ledger writer marks every entry while the clock is not trusted.
        self.store.set_clock_unsynchronised(!status.synchronised);
        if changed {
            if !status.synchronised {
                tracing::warn!(problem = ?status.problem, "the clock is not trusted");
            }
            let mut t = Target::default();
            t.detail("synchronised", status.synchronised);
            t.detail("source", status.source.clone());
            if let Some(o) = status.offset_ms {
                t.detail("offset_ms", o);
            }
            if let Some(p) = &status.problem {
                t.detail("problem", p.clone());
            }
            self.write_audited(None, actions::TIME_STATUS, t, |_, _, _| Ok(()))
                .await?;
        }
        Ok(status)
    }

    /// The extension line a checkpoint carries about the clock.
    pub(crate) fn clock_line(&self) -> String {
        match self.clock_status() {
            None => "clock unchecked".into(),
            Some(c) => format!(
                "clock {} source={} offset_ms={}",
                if c.synchronised {
                    "synchronised"
                } else {
                    "unsynchronised"
                },
                c.source.replace(' ', "_"),
                c.offset_ms.map_or("-".into(), |o| o.to_string())
            ),
        }
    }
}
