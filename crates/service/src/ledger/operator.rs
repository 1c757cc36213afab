//! The command-line operator: whoever holds the data directory. Their acts (export, prune,
//! restore, CRL issue, …) follow the rule the API follows: the act is in the ledger, durably,
//! before its effect is visible. When no server holds the instance the entry goes straight
//! into the ledger; when one does, into `outbox/` (fsynced file and directory), which the
//! server records within a minute. If neither is possible the act does not happen.

use crate::ErrorCode;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mamori_domain::audit::actions;

use crate::error::{Result, ServiceError};
use crate::{Service, Target};

pub const OUTBOX: &str = "outbox";

/// Where an act was recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recorded {
    Ledger,
    /// Queued for the running server.
    Outbox,
}

/// One act of the operator, as the ledger will hold it.
#[derive(Clone, Debug)]
pub struct Act {
    pub action: &'static str,
    /// The patient whose data the act reads (so it appears in that patient's access log).
    pub patient: Option<String>,
    pub record: Option<i64>,
    pub detail: serde_json::Value,
}

impl Act {
    pub fn new(action: &'static str, detail: serde_json::Value) -> Self {
        Act {
            action,
            patient: None,
            record: None,
            detail,
        }
    }
}

/// The operator's way into the ledger of one instance.
pub enum Journal {
    Direct {
        svc: Arc<Service>,
        rt: tokio::runtime::Runtime,
    },
    Outbox(PathBuf),
}

impl Journal {
    /// The ledger itself if the instance is free, its outbox if a server holds it.
    pub fn open(dir: &Path) -> Result<Journal> {
        match crate::instance::open(dir) {
            Ok(svc) => Ok(Journal::Direct {
                svc,
                rt: runtime()?,
            }),
            Err(e) if e.code == ErrorCode::LockedInstance => Ok(Journal::Outbox(dir.join(OUTBOX))),
            Err(e) => Err(e),
        }
    }

    /// Only the outbox: for an instance that cannot be opened yet (a restored copy whose keys
    /// are kept apart); the first start records what is queued.
    pub fn outbox_of(dir: &Path) -> Journal {
        Journal::Outbox(dir.join(OUTBOX))
    }

    /// Records the act durably; the caller must not act if this fails.
    pub fn record(&self, act: Act) -> Result<Recorded> {
        if outbox_action(act.action).is_none() {
            return Err(ServiceError::internal(format!(
                "{} is not an operator act",
                act.action
            )));
        }
        match self {
            Journal::Direct { svc, rt } => {
                rt.block_on(svc.record_act(act))?;
                Ok(Recorded::Ledger)
            }
            Journal::Outbox(dir) => {
                queue(dir, &act)?;
                Ok(Recorded::Outbox)
            }
        }
    }

    /// The open instance, when the journal holds it.
    pub fn service(&self) -> Option<&Arc<Service>> {
        match self {
            Journal::Direct { svc, .. } => Some(svc),
            Journal::Outbox(_) => None,
        }
    }

    pub fn close(self) {
        if let Journal::Direct { svc, .. } = self {
            svc.store().close();
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ServiceError::internal)
}

fn io(what: &Path, e: std::io::Error) -> ServiceError {
    ServiceError::new(
        ErrorCode::OutboxIo,
        format!("{} に記録を書けません: {e}", what.display()),
    )
}

/// Writes one outbox entry so that it survives a crash once this returns: the file's data,
/// then its name (rename), then the directory entry are synced.
fn queue(dir: &Path, act: &Act) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let now = now_ms();
    let body = serde_json::json!({
        "action": act.action,
        "patient": act.patient,
        "record": act.record,
        "detail": act.detail,
        "queued_at": now,
    });
    let name = format!("{now}-{}.json", crate::crypto::random_hex(4));
    let tmp = dir.join(format!(".{name}"));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(|e| io(&tmp, e))?;
    mamori_store::restrict_file(&tmp).map_err(|e| io(&tmp, e))?;
    f.write_all(&serde_json::to_vec(&body).map_err(ServiceError::internal)?)
        .and_then(|_| f.sync_all())
        .map_err(|e| io(&tmp, e))?;
    drop(f);
    std::fs::rename(&tmp, dir.join(&name)).map_err(|e| io(dir, e))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io(dir, e))
}

fn now_ms() -> mamori_domain::Millis {
    use mamori_domain::Clock;
    mamori_domain::SystemClock.now()
}

/// The only acts the outbox may carry: whoever can write it can already read the instance,
/// but it must not be a way to forge, say, a finalisation.
pub(crate) fn outbox_action(name: &str) -> Option<&'static str> {
    [
        actions::BACKUP_COMPLETED,
        actions::BACKUP_FAILED,
        actions::BACKUP_VERIFIED,
        actions::BACKUP_DRILL,
        actions::BACKUP_OFFLINE,
        actions::BACKUP_PRUNE_PLANNED,
        actions::BACKUP_PRUNED,
        actions::BACKUP_RESTORED,
        actions::RECORD_EXPORT,
        actions::EVIDENCE_VERIFIED,
    ]
    .into_iter()
    .find(|a| *a == name)
}

impl Service {
    /// Records an operator act in the group commit, durably.
    pub async fn record_act(self: &Arc<Self>, act: Act) -> Result<()> {
        let mut t = Target {
            patient: act.patient,
            record: act.record,
            ..Target::default()
        };
        if let serde_json::Value::Object(m) = act.detail {
            t.detail = m;
        }
        t.detail("by", "cli");
        self.write_audited(None, act.action, t, |_, _, _| Ok(()))
            .await
    }

    /// Records what commands run beside the server left in the outbox.
    pub async fn ingest_outbox(self: &Arc<Self>) -> Result<usize> {
        let dir = self.data_dir.join(OUTBOX);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Ok(0);
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| {
                p.extension().is_some_and(|x| x == "json")
                    && !p
                        .file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            })
            .collect();
        files.sort();
        let mut n = 0;
        for path in files {
            match std::fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .and_then(|v| parse_entry(&v))
            {
                Some(act) => {
                    self.record_act(act).await?;
                    n += 1;
                }
                None => {
                    tracing::warn!(file = %path.display(), "ignored an unreadable outbox entry")
                }
            }
            let _ = std::fs::remove_file(&path);
        }
        Ok(n)
    }
}

fn parse_entry(v: &serde_json::Value) -> Option<Act> {
    let action = outbox_action(v["action"].as_str()?)?;
    let mut detail = v["detail"].clone();
    if !detail.is_object() {
        return None;
    }
    detail["at"] = v["queued_at"].clone();
    detail["via"] = "outbox".into();
    Some(Act {
        action,
        patient: v["patient"].as_str().map(str::to_owned),
        record: v["record"].as_i64(),
        detail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbox_entries_keep_patient_and_refuse_other_actions() {
        let v = serde_json::json!({"action": actions::RECORD_EXPORT, "patient": "P1",
            "record": 7, "detail": {"records": 1}, "queued_at": 5});
        let act = parse_entry(&v).expect("parses");
        assert_eq!(act.patient.as_deref(), Some("P1"));
        assert_eq!(act.record, Some(7));
        assert_eq!(act.detail["via"], "outbox");
        assert_eq!(act.detail["at"], 5);
        let forged = serde_json::json!({"action": actions::RECORD_SIGNED, "detail": {}});
        assert!(parse_entry(&forged).is_none());
        let not_object = serde_json::json!({"action": actions::BACKUP_PRUNED, "detail": 3});
        assert!(parse_entry(&not_object).is_none());
    }
}
