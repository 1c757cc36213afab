//! What the administrator's backup page and the self-assessment see: each target's last
//! success or failure, the last offline copy and restore drill, and the warnings (nothing backed
//! up lately, no drill, offline copy overdue), all derived from the backup events in the ledger.

use super::*;

/// One backup-related ledger entry, as the status is computed from.
#[derive(Clone, Debug)]
pub struct BackupEvent {
    pub at: Millis,
    pub action: String,
    pub detail: serde_json::Value,
    pub by: Option<String>,
}

#[derive(Clone, Debug, Serialize, Default)]
pub struct TargetStatus {
    pub target: String,
    pub configured: bool,
    pub last_ok_at: Option<Millis>,
    pub last_snapshot: Option<String>,
    pub last_bytes: Option<u64>,
    pub last_seconds: Option<f64>,
    pub locked_until: Option<String>,
    pub last_failure_at: Option<Millis>,
    pub last_error: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct OfflineCopy {
    pub at: Millis,
    pub medium: String,
    pub target: String,
    pub snapshot: String,
    pub by: Option<String>,
    pub note: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct DrillView {
    pub at: Millis,
    pub ok: bool,
    pub seconds: f64,
    pub snapshot: String,
    pub target: String,
    pub problems: Vec<String>,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum BackupWarning {
    NoTargets,
    NeverBackedUp { target: String },
    Overdue { target: String, hours: u64 },
    LastRunFailed { target: String, error: String },
    NoOfflineCopy,
    OfflineOverdue { days: u64 },
    NoDrill,
    DrillOverdue { days: u64 },
    DrillFailed,
}

#[derive(Clone, Debug, Serialize)]
pub struct BackupStatus {
    pub targets: Vec<TargetStatus>,
    pub last_offline: Option<OfflineCopy>,
    pub last_drill: Option<DrillView>,
    pub last_good_drill_at: Option<Millis>,
    pub warnings: Vec<BackupWarning>,
    pub running: bool,
    pub keep: u32,
}

pub(super) const HOUR: Millis = 3_600_000;

pub(super) const DAY: Millis = 24 * HOUR;

pub(super) fn text(v: &serde_json::Value, k: &str) -> String {
    v[k].as_str().unwrap_or_default().to_owned()
}

/// The administrator's view, from backup events newest first. Pure: no clock, no I/O.
pub fn status_from(
    events: &[BackupEvent],
    cfg: &BackupConfig,
    configured: &[String],
    now: Millis,
) -> BackupStatus {
    let mut targets: Vec<TargetStatus> = configured
        .iter()
        .map(|t| TargetStatus {
            target: t.clone(),
            configured: true,
            ..Default::default()
        })
        .collect();
    let mut last_offline = None;
    let mut last_drill: Option<DrillView> = None;
    let mut last_good_drill_at = None;
    // Newest first: what a target held before it was erased is gone.
    let mut erased: Vec<String> = Vec::new();
    for ev in events {
        let d = &ev.detail;
        match ev.action.as_str() {
            actions::BACKUP_ERASED => erased.push(text(d, "target")),
            actions::BACKUP_COMPLETED | actions::BACKUP_FAILED => {
                let name = text(d, "target");
                let spec = text(d, "target_spec");
                if erased.iter().any(|e| *e == name || *e == spec) {
                    continue;
                }
                let i = match targets
                    .iter()
                    .position(|t| t.target == spec || t.target == name)
                {
                    Some(i) => i,
                    None => {
                        targets.push(TargetStatus {
                            target: if spec.is_empty() { name } else { spec },
                            ..Default::default()
                        });
                        targets.len() - 1
                    }
                };
                let t = &mut targets[i];
                if ev.action == actions::BACKUP_COMPLETED {
                    if t.last_ok_at.is_none() {
                        t.last_ok_at = Some(ev.at);
                        t.last_snapshot = Some(text(d, "snapshot"));
                        t.last_bytes = d["total_bytes"].as_u64();
                        t.last_seconds = d["seconds"].as_f64();
                        t.locked_until = d["locked_until"].as_str().map(str::to_owned);
                    }
                } else if t.last_failure_at.is_none() {
                    t.last_failure_at = Some(ev.at);
                    t.last_error = Some(text(d, "error"));
                }
            }
            actions::BACKUP_OFFLINE if last_offline.is_none() => {
                last_offline = Some(OfflineCopy {
                    at: ev.at,
                    medium: text(d, "medium"),
                    target: text(d, "target"),
                    snapshot: text(d, "snapshot"),
                    by: ev.by.clone(),
                    note: text(d, "note"),
                });
            }
            actions::BACKUP_DRILL => {
                let ok = d["ok"].as_bool().unwrap_or(false);
                if last_drill.is_none() {
                    last_drill = Some(DrillView {
                        at: ev.at,
                        ok,
                        seconds: d["seconds"].as_f64().unwrap_or(0.0),
                        snapshot: text(d, "snapshot"),
                        target: text(d, "target"),
                        problems: crate::string_list(&d["problems"]),
                    });
                }
                if ok && last_good_drill_at.is_none() {
                    last_good_drill_at = Some(ev.at);
                }
            }
            _ => {}
        }
    }
    let mut warnings = Vec::new();
    if configured.is_empty() && targets.is_empty() {
        warnings.push(BackupWarning::NoTargets);
    }
    // A day's schedule may run a little late; warn after half an interval more.
    let due = (cfg.interval_hours.max(1) as Millis) * HOUR * 3 / 2;
    for t in &targets {
        match t.last_ok_at {
            None if t.configured => warnings.push(BackupWarning::NeverBackedUp {
                target: t.target.clone(),
            }),
            Some(at) if t.configured && now - at > due => warnings.push(BackupWarning::Overdue {
                target: t.target.clone(),
                hours: ((now - at) / HOUR) as u64,
            }),
            _ => {}
        }
        if t.failing() {
            warnings.push(BackupWarning::LastRunFailed {
                target: t.target.clone(),
                error: t.last_error.clone().unwrap_or_default(),
            });
        }
    }
    match &last_offline {
        None => warnings.push(BackupWarning::NoOfflineCopy),
        Some(o) if now - o.at > cfg.offline_days as Millis * DAY => {
            warnings.push(BackupWarning::OfflineOverdue {
                days: ((now - o.at) / DAY) as u64,
            })
        }
        _ => {}
    }
    match (&last_drill, last_good_drill_at) {
        (None, _) => warnings.push(BackupWarning::NoDrill),
        (Some(d), _) if !d.ok => warnings.push(BackupWarning::DrillFailed),
        (_, Some(at)) if now - at > cfg.drill_days as Millis * DAY => {
            warnings.push(BackupWarning::DrillOverdue {
                days: ((now - at) / DAY) as u64,
            })
        }
        _ => {}
    }
    BackupStatus {
        targets,
        last_offline,
        last_drill,
        last_good_drill_at,
        warnings,
        running: false,
        keep: cfg.keep,
    }
}

/// Shows a target without credentials or query parameters.
pub fn target_label(spec: &str) -> String {
    spec.split('?').next().unwrap_or(spec).to_owned()
}

impl Service {
    pub(crate) fn backup_events_in(
        &self,
        r: &mamori_store::Reader<'_>,
    ) -> Result<Vec<BackupEvent>> {
        let rows = r.audit_events(&mamori_store::AuditFilter {
            action_prefix: Some("backup.".to_owned()),
            limit: 500,
            ..Default::default()
        })?;
        Ok(rows
            .into_iter()
            .filter(|row| row.outcome == "ok")
            .map(|row| {
                let ev: serde_json::Value =
                    serde_json::from_slice(&row.payload).unwrap_or_default();
                BackupEvent {
                    at: ev["detail"]["at"].as_i64().unwrap_or(row.ts),
                    action: row.action.clone(),
                    by: ev["actor"]["login"].as_str().map(str::to_owned),
                    detail: ev["detail"].clone(),
                }
            })
            .collect())
    }

    pub(crate) fn backup_status_in(&self, r: &mamori_store::Reader<'_>) -> Result<BackupStatus> {
        let events = self.backup_events_in(r)?;
        let configured: Vec<String> = self
            .config
            .backup
            .target_list()
            .iter()
            .map(|t| target_label(t))
            .collect();
        let mut s = status_from(&events, &self.config.backup, &configured, self.now());
        s.running = self.backup_in_progress()?;
        Ok(s)
    }

    /// What the administrator and the security officer see about backups.
    pub async fn backup_status(self: &Arc<Self>, p: &Principal) -> Result<BackupStatus> {
        let pc = p.clone();
        self.read_audited(p, actions::BACKUP_STATUS, move |this, r, _| {
            may_see_backups(&pc)?;
            this.backup_status_in(r)
        })
        .await
    }

    /// Whether the schedule says a backup is due (no success within `interval_hours`).
    pub async fn backup_due(self: &Arc<Self>) -> Result<bool> {
        if self.config.backup.interval_hours == 0 || self.config.backup.target_list().is_empty() {
            return Ok(false);
        }
        let this = Arc::clone(self);
        let status = self
            .store
            .read(move |r| Ok(this.backup_status_in(r)))
            .await??;
        let every = self.config.backup.interval_hours as Millis * HOUR;
        let now = self.now();
        // A failing target is retried hourly, not at every tick.
        Ok(status.targets.iter().filter(|t| t.configured).any(|t| {
            t.last_ok_at.is_none_or(|at| now - at >= every)
                && t.last_failure_at.is_none_or(|at| now - at >= HOUR)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(at: Millis, action: &str, detail: serde_json::Value) -> BackupEvent {
        BackupEvent {
            at,
            action: action.into(),
            detail,
            by: None,
        }
    }

    #[test]
    fn status_warns_about_what_is_missing_or_late() {
        let cfg = BackupConfig::default();
        let t = vec!["/mnt/nas".to_owned()];
        let now = 100 * DAY;
        let s = status_from(&[], &cfg, &t, now);
        assert_eq!(
            s.warnings,
            vec![
                BackupWarning::NeverBackedUp {
                    target: "/mnt/nas".into()
                },
                BackupWarning::NoOfflineCopy,
                BackupWarning::NoDrill
            ]
        );
        assert_eq!(
            status_from(&[], &cfg, &[], now).warnings[0],
            BackupWarning::NoTargets
        );

        // Newest first: a recent success, an offline copy, a passing drill: nothing to say.
        let events = vec![
            ev(
                now - HOUR,
                actions::BACKUP_COMPLETED,
                serde_json::json!({"target": "/mnt/nas", "snapshot": "s2", "total_bytes": 10}),
            ),
            ev(
                now - 2 * DAY,
                actions::BACKUP_OFFLINE,
                serde_json::json!({"medium": "USB-1", "snapshot": "s1"}),
            ),
            ev(
                now - 3 * DAY,
                actions::BACKUP_DRILL,
                serde_json::json!({"ok": true, "seconds": 12.5}),
            ),
            ev(
                now - 4 * DAY,
                actions::BACKUP_FAILED,
                serde_json::json!({"target": "/mnt/nas", "error": "full"}),
            ),
        ];
        let s = status_from(&events, &cfg, &t, now);
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
        assert_eq!(s.targets[0].last_snapshot.as_deref(), Some("s2"));
        assert_eq!(s.last_drill.as_ref().unwrap().seconds, 12.5);

        // Later: everything is late, and the newest run failed.
        let later = now + 40 * DAY;
        let mut events2 = vec![ev(
            later - HOUR,
            actions::BACKUP_FAILED,
            serde_json::json!({"target": "/mnt/nas", "error": "disk full"}),
        )];
        events2.extend(events);
        let s = status_from(&events2, &cfg, &t, later);
        assert!(
            s.warnings.contains(&BackupWarning::Overdue {
                target: "/mnt/nas".into(),
                hours: 961
            }),
            "{:?}",
            s.warnings
        );
        assert!(s.warnings.contains(&BackupWarning::LastRunFailed {
            target: "/mnt/nas".into(),
            error: "disk full".into()
        }));
        assert!(
            s.warnings
                .contains(&BackupWarning::OfflineOverdue { days: 42 })
        );
        assert!(
            s.warnings
                .contains(&BackupWarning::DrillOverdue { days: 43 })
        );

        // A failed drill is reported even when an older one passed.
        let events3 = vec![
            ev(
                now - HOUR,
                actions::BACKUP_DRILL,
                serde_json::json!({"ok": false}),
            ),
            ev(
                now - DAY,
                actions::BACKUP_DRILL,
                serde_json::json!({"ok": true}),
            ),
        ];
        assert!(
            status_from(&events3, &cfg, &t, now)
                .warnings
                .contains(&BackupWarning::DrillFailed)
        );
    }

    #[test]
    fn labels_hide_credentials_and_parameters() {
        assert_eq!(
            target_label("s3://b/p?endpoint=http://x&lock_days=3"),
            "s3://b/p"
        );
        assert_eq!(target_label("/mnt/nas"), "/mnt/nas");
    }
}
