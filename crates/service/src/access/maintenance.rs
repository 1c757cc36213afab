//! Maintenance accounts (保守要員; JAHIS 09-001 §6.4, guideline 6.0 システム運用編 10): each
//! engineer has a personal account that signs in only inside a work window the facility's
//! administrator approved in advance (who, when, purpose, whether personal information will be
//! touched). Everything done is in the ledger anyway; at the end mamori assembles the work
//! report (actions, patients touched, times) for the administrator to acknowledge.

use crate::ErrorCode;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use mamori_domain::Millis;
use mamori_domain::audit::{Outcome, actions};
use mamori_domain::permission::Action;
use mamori_store::MaintenanceWindow;
use serde::{Deserialize, Serialize};

use crate::error::{Result, ServiceError};
use crate::ledger::audit::AuditEntry;
use crate::ledger::audit::actor_entries;
use crate::{Principal, Service, Target};

/// The built-in role whose members need a window to sign in.
pub const MAINTENANCE_ROLE: &str = "maintenance";
/// The longest window one request may cover.
pub const MAX_WINDOW_MS: i64 = 7 * 86_400_000;

#[derive(Debug, Clone, Deserialize)]
pub struct WindowRequest {
    pub account_id: i64,
    pub starts_at: Millis,
    pub ends_at: Millis,
    pub purpose: String,
    #[serde(default)]
    pub personal_info: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct WindowView {
    #[serde(flatten)]
    pub window: MaintenanceWindow,
    pub login: String,
    pub display_name: String,
    pub requested_by_login: String,
    pub decided_by_login: Option<String>,
    pub acknowledged_by_login: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PatientTouched {
    pub patient_id: String,
    pub name: String,
    pub entries: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct WorkReport {
    pub window: WindowView,
    pub entries: Vec<AuditEntry>,
    /// Entries per action code.
    pub by_action: BTreeMap<String, usize>,
    pub patients: Vec<PatientTouched>,
    pub refused: usize,
    pub first_at: Option<Millis>,
    pub last_at: Option<Millis>,
    /// The window has ended, so the report is final.
    pub complete: bool,
}

fn require_admin(p: &Principal) -> Result<()> {
    p.require(Action::AdminAccounts, None)
}

fn views(r: &mamori_store::Reader<'_>, windows: Vec<MaintenanceWindow>) -> Result<Vec<WindowView>> {
    let accounts: HashMap<i64, mamori_store::Account> =
        r.accounts()?.into_iter().map(|a| (a.id, a)).collect();
    let login = |id: i64| {
        accounts
            .get(&id)
            .map(|a| a.login.clone())
            .unwrap_or_default()
    };
    Ok(windows
        .into_iter()
        .map(|w| WindowView {
            login: login(w.account_id),
            display_name: accounts
                .get(&w.account_id)
                .map(|a| a.display_name.clone())
                .unwrap_or_default(),
            requested_by_login: login(w.requested_by),
            decided_by_login: w.decided_by.map(login),
            acknowledged_by_login: w.acknowledged_by.map(login),
            window: w,
        })
        .collect())
}

impl Service {
    /// For `open_session`: Ok(None) for everyone but 保守要員; for them the end of the open
    /// window they sign in within, or a refusal (recorded) outside every approved window.
    pub(crate) async fn maintenance_gate(
        self: &Arc<Self>,
        acc: &mamori_store::Account,
        client: Option<String>,
    ) -> Result<Option<Millis>> {
        if acc.role != MAINTENANCE_ROLE {
            return Ok(None);
        }
        let (id, now) = (acc.id, self.now());
        let open = self
            .store
            .read(move |r| {
                Ok(r.maintenance_windows(Some(id))?
                    .into_iter()
                    .find(|w| w.open_at(now)))
            })
            .await?;
        if let Some(w) = open {
            return Ok(Some(w.ends_at));
        }
        let mut ev = crate::account_event(now, acc, actions::LOGIN_FAILED, Outcome::Denied, client);
        ev.detail =
            serde_json::json!({ "login": acc.login, "reason": "outside_maintenance_window" });
        self.store
            .write(move |tx| tx.append(&ev).map_err(ServiceError::from))
            .await?;
        Err(ServiceError::new(
            ErrorCode::MaintenanceWindowRequired,
            "承認された保守作業の時間外のため、ログインできません。施設のシステム管理者に作業申請の承認を依頼してください",
        ))
    }

    /// Records a work request (entered by the facility's administrator from the vendor's
    /// request); it does not open anything until approved.
    pub async fn request_maintenance(
        self: &Arc<Self>,
        p: &Principal,
        req: WindowRequest,
    ) -> Result<WindowView> {
        let pc = p.clone();
        let now = self.now();
        let mut t = Target::default();
        t.detail("account", req.account_id);
        t.detail("starts_at", req.starts_at);
        t.detail("ends_at", req.ends_at);
        t.detail("purpose", req.purpose.clone());
        t.detail("personal_info", req.personal_info);
        self.write_audited(
            Some(p),
            actions::MAINTENANCE_REQUESTED,
            t,
            move |_, tx, t| {
                require_admin(&pc)?;
                let acc = tx
                    .read()
                    .account(req.account_id)?
                    .filter(|a| a.active && a.role == MAINTENANCE_ROLE)
                    .ok_or_else(|| {
                        ServiceError::invalid(
                            "account_id",
                            "有効な保守要員のアカウントを選んでください",
                        )
                    })?;
                if req.ends_at <= req.starts_at {
                    return Err(ServiceError::invalid(
                        "ends_at",
                        "終了日時は開始日時より後にしてください",
                    ));
                }
                if req.ends_at - req.starts_at > MAX_WINDOW_MS {
                    return Err(ServiceError::invalid(
                        "ends_at",
                        "一度の作業時間は7日以内にしてください",
                    ));
                }
                if req.ends_at <= now {
                    return Err(ServiceError::invalid("ends_at", "終了日時が過ぎています"));
                }
                let purpose = req.purpose.trim();
                if purpose.is_empty() || purpose.chars().count() > 500 {
                    return Err(ServiceError::invalid(
                        "purpose",
                        "作業の目的・内容を500文字以内で入力してください",
                    ));
                }
                let id = tx.insert_maintenance_window(
                    acc.id,
                    req.starts_at,
                    req.ends_at,
                    purpose,
                    req.personal_info,
                    pc.account.id,
                    now,
                )?;
                t.detail("window", id);
                let w = tx
                    .read()
                    .maintenance_window(id)?
                    .ok_or_else(|| ServiceError::internal("window vanished"))?;
                Ok(views(&tx.read(), vec![w])?.remove(0))
            },
        )
        .await
    }

    pub async fn decide_maintenance(
        self: &Arc<Self>,
        p: &Principal,
        id: i64,
        approve: bool,
    ) -> Result<()> {
        let pc = p.clone();
        let now = self.now();
        let mut t = Target::default();
        t.detail("window", id);
        let action = if approve {
            actions::MAINTENANCE_APPROVED
        } else {
            actions::MAINTENANCE_REJECTED
        };
        self.write_audited(Some(p), action, t, move |_, tx, _| {
            require_admin(&pc)?;
            tx.read()
                .maintenance_window(id)?
                .ok_or_else(|| ServiceError::not_found("保守作業"))?;
            if !tx.decide_maintenance_window(id, approve, pc.account.id, now)? {
                return Err(ServiceError::new(
                    ErrorCode::InvalidState,
                    "この作業申請は既に承認または却下されています",
                ));
            }
            Ok(())
        })
        .await
    }

    pub async fn maintenance_windows(self: &Arc<Self>, p: &Principal) -> Result<Vec<WindowView>> {
        let pc = p.clone();
        self.read_audited(p, actions::MAINTENANCE_LIST, move |_, r, _| {
            require_admin(&pc)?;
            views(r, r.maintenance_windows(None)?)
        })
        .await
    }

    /// The work report: every ledger entry of the engineer inside the window.
    pub async fn maintenance_report(
        self: &Arc<Self>,
        p: &Principal,
        id: i64,
    ) -> Result<WorkReport> {
        let pc = p.clone();
        let now = self.now();
        self.read_audited(p, actions::MAINTENANCE_REPORT, move |_, r, t| {
            t.detail("window", id);
            require_admin(&pc)?;
            let w = r
                .maintenance_window(id)?
                .ok_or_else(|| ServiceError::not_found("保守作業"))?;
            let mut entries = actor_entries(r, w.account_id, w.starts_at, w.ends_at, None)?;
            entries.reverse();
            let mut by_action = BTreeMap::new();
            let mut per_patient: BTreeMap<String, usize> = BTreeMap::new();
            for e in &entries {
                *by_action.entry(e.action.clone()).or_insert(0) += 1;
                if let Some(pid) = &e.patient_id {
                    *per_patient.entry(pid.clone()).or_insert(0) += 1;
                }
            }
            let mut patients = Vec::new();
            for (pid, n) in per_patient {
                patients.push(PatientTouched {
                    name: r.patient(&pid)?.map(|p| p.name_kanji).unwrap_or_default(),
                    patient_id: pid,
                    entries: n,
                });
            }
            Ok(WorkReport {
                refused: entries.iter().filter(|e| e.outcome != "ok").count(),
                first_at: entries.first().map(|e| e.ts),
                last_at: entries.last().map(|e| e.ts),
                complete: now >= w.ends_at,
                window: views(r, vec![w])?.remove(0),
                entries,
                by_action,
                patients,
            })
        })
        .await
    }

    /// The administrator acknowledges the report of a finished window, with a comment.
    pub async fn acknowledge_maintenance(
        self: &Arc<Self>,
        p: &Principal,
        id: i64,
        comment: &str,
    ) -> Result<()> {
        let pc = p.clone();
        let now = self.now();
        let comment = comment.trim().to_owned();
        let mut t = Target::default();
        t.detail("window", id);
        t.detail("comment", comment.clone());
        self.write_audited(
            Some(p),
            actions::MAINTENANCE_ACKNOWLEDGED,
            t,
            move |_, tx, _| {
                require_admin(&pc)?;
                let w = tx
                    .read()
                    .maintenance_window(id)?
                    .ok_or_else(|| ServiceError::not_found("保守作業"))?;
                if w.status != "approved" || now < w.ends_at {
                    return Err(ServiceError::new(
                        ErrorCode::InvalidState,
                        "作業報告は、承認された作業の終了後に確認できます",
                    ));
                }
                let comment = super::review_comment(&comment, "確認の内容")?;
                if !tx.acknowledge_maintenance_report(id, pc.account.id, comment, now)? {
                    return Err(ServiceError::new(
                        ErrorCode::InvalidState,
                        "この作業報告は既に確認済みです",
                    ));
                }
                Ok(())
            },
        )
        .await
    }
}
