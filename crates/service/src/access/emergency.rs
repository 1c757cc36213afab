//! Break-glass (非常時アクセス; JAHIS 09-001 §6.6(2), guideline 6.0 システム運用編 非常時の
//! 利用者): in an emergency a person whose role allows it opens one patient's records beyond
//! the role's rights, for a limited time, giving a reason. Each use is in the ledger at full
//! detail, announced at once (in-app queue, optional webhook), shown with a red banner, and
//! must be reviewed and closed by a security officer (`read_audit`) with a comment.

use crate::ErrorCode;
use std::sync::Arc;

use mamori_domain::audit::actions;
use mamori_domain::permission::Action;
use mamori_store::EmergencyRow;
use serde::Serialize;

use crate::error::{Result, ServiceError};
use crate::ledger::audit::actor_entries;
use crate::{Principal, Service, Target};

#[derive(Debug, Clone, Serialize)]
pub struct EmergencyView {
    #[serde(flatten)]
    pub row: EmergencyRow,
    pub login: String,
    pub display_name: String,
    pub patient_name: String,
    pub reviewer_login: Option<String>,
    /// Ledger entries of this person on this patient from the start to the end (or now).
    pub events: usize,
}

fn reason_ok(reason: &str) -> Result<String> {
    let r = reason.trim();
    if r.chars().count() < 4 || r.chars().count() > 500 {
        return Err(ServiceError::invalid(
            "reason",
            "理由を4〜500文字で入力してください（例：救急搬送、主治医不在のため）",
        ));
    }
    Ok(r.to_owned())
}

impl Service {
    pub async fn start_emergency(
        self: &Arc<Self>,
        p: &Principal,
        patient: &str,
        reason: &str,
    ) -> Result<EmergencyRow> {
        let pc = p.clone();
        let (pid, now) = (patient.to_owned(), self.now());
        let expires = now + i64::from(self.config.emergency.minutes.max(1)) * 60_000;
        let reason = reason.to_owned();
        let mut t = Target {
            patient: Some(pid.clone()),
            ..Default::default()
        };
        t.detail("expires_at", expires);
        t.detail("reason", reason.clone());
        let row = self
            .write_audited(Some(p), actions::EMERGENCY_STARTED, t, move |_, tx, t| {
                pc.require(Action::BreakGlass, None)?;
                let reason = reason_ok(&reason)?;
                tx.read()
                    .patient(&pid)?
                    .ok_or_else(|| ServiceError::not_found("患者").with_field("patient_id"))?;
                if pc.emergency_for(&pid).is_some() {
                    return Err(ServiceError::new(
                        ErrorCode::InvalidState,
                        "この患者への非常時アクセスは既に有効です",
                    ));
                }
                let id = tx.insert_emergency_access(pc.account.id, &pid, &reason, now, expires)?;
                t.detail("emergency", id);
                tx.read()
                    .emergency_access(id)?
                    .ok_or_else(|| ServiceError::internal("emergency row vanished"))
            })
            .await?;
        self.announce(
            (&p.account.login, &p.account.display_name, &p.role.code),
            &row,
        );
        Ok(row)
    }

    /// Ends one's own break-glass access before it expires.
    pub async fn end_emergency(self: &Arc<Self>, p: &Principal, id: i64) -> Result<()> {
        let (me, now) = (p.account.id, self.now());
        let mut t = Target::default();
        t.detail("emergency", id);
        self.write_audited(Some(p), actions::EMERGENCY_ENDED, t, move |_, tx, t| {
            let e = tx
                .read()
                .emergency_access(id)?
                .filter(|e| e.account_id == me)
                .ok_or_else(|| ServiceError::not_found("非常時アクセス"))?;
            t.patient = Some(e.patient_id);
            tx.end_emergency_access(id, now)?;
            Ok(())
        })
        .await
    }

    /// The security officers' queue: uses not yet reviewed (or all, newest first).
    pub async fn emergency_queue(
        self: &Arc<Self>,
        p: &Principal,
        include_reviewed: bool,
    ) -> Result<Vec<EmergencyView>> {
        let pc = p.clone();
        let now = self.now();
        self.read_audited(p, actions::EMERGENCY_QUEUE, move |_, r, _| {
            pc.require(Action::ReadAudit, None)?;
            let accounts: std::collections::HashMap<i64, mamori_store::Account> =
                r.accounts()?.into_iter().map(|a| (a.id, a)).collect();
            let mut out = Vec::new();
            for row in r.emergency_accesses(None, None, !include_reviewed)? {
                let until = row
                    .ended_at
                    .unwrap_or(row.expires_at)
                    .min(now.max(row.started_at));
                let patient = (row.kind == "patient").then(|| row.patient_id.clone());
                let events =
                    actor_entries(r, row.account_id, row.started_at, until + 1, patient)?.len();
                let a = accounts.get(&row.account_id);
                out.push(EmergencyView {
                    login: a.map(|a| a.login.clone()).unwrap_or_default(),
                    display_name: a.map(|a| a.display_name.clone()).unwrap_or_default(),
                    patient_name: r
                        .patient(&row.patient_id)?
                        .map(|p| p.name_kanji)
                        .unwrap_or_default(),
                    reviewer_login: row
                        .reviewed_by
                        .and_then(|id| accounts.get(&id))
                        .map(|a| a.login.clone()),
                    events,
                    row,
                });
            }
            Ok(out)
        })
        .await
    }

    /// Marks an account as a sealed emergency account (非常用アカウント): each sign-in with it is
    /// announced and queued for review like break-glass, and it is refused after one use until
    /// an administrator sets new credentials (password reset).
    pub async fn set_emergency_account(
        self: &Arc<Self>,
        p: &Principal,
        id: i64,
        yes: bool,
    ) -> Result<()> {
        let pc = p.clone();
        let mut t = Target::default();
        t.detail("account", id);
        t.detail("emergency_account", yes);
        self.write_audited(
            Some(p),
            actions::ACCOUNT_EMERGENCY_SET,
            t,
            move |_, tx, _| {
                pc.require(Action::AdminAccounts, None)?;
                tx.read()
                    .account(id)?
                    .ok_or_else(|| ServiceError::not_found("アカウント"))?;
                Ok(tx.set_emergency_account(id, yes)?)
            },
        )
        .await
    }

    /// For the account page: Some(used_at) for an emergency account, None otherwise.
    pub async fn emergency_account_state(
        self: &Arc<Self>,
        p: &Principal,
        id: i64,
    ) -> Result<Option<Option<mamori_domain::Millis>>> {
        p.require(Action::AdminAccounts, None)?;
        Ok(self.store.read(move |r| r.emergency_account(id)).await?)
    }

    /// How many uses await review (a count only, for the officers' home page; not audited as
    /// it shows no personal data).
    pub async fn emergency_reviews_due(self: &Arc<Self>, p: &Principal) -> Result<usize> {
        p.require(Action::ReadAudit, None)?;
        Ok(self
            .store
            .read(|r| Ok(r.emergency_accesses(None, None, true)?.len()))
            .await?)
    }

    /// Closes the review of one use with a comment. Nobody reviews their own.
    pub async fn review_emergency(
        self: &Arc<Self>,
        p: &Principal,
        id: i64,
        comment: &str,
    ) -> Result<()> {
        let pc = p.clone();
        let now = self.now();
        let comment = comment.trim().to_owned();
        let mut t = Target::default();
        t.detail("emergency", id);
        t.detail("comment", comment.clone());
        self.write_audited(Some(p), actions::EMERGENCY_REVIEWED, t, move |_, tx, t| {
            pc.require(Action::ReadAudit, None)?;
            let comment = super::review_comment(&comment, "確認の結果")?;
            let e = tx
                .read()
                .emergency_access(id)?
                .ok_or_else(|| ServiceError::not_found("非常時アクセス"))?;
            t.patient = Some(e.patient_id.clone());
            if e.account_id == pc.account.id {
                return Err(ServiceError::forbidden(
                    "自分の非常時アクセスは確認できません。ほかの安全管理担当者に依頼してください",
                ));
            }
            if !tx.review_emergency_access(id, pc.account.id, comment, now)? {
                return Err(ServiceError::new(
                    ErrorCode::InvalidState,
                    "この非常時アクセスは既に確認済みです",
                ));
            }
            Ok(())
        })
        .await
    }

    /// Announces a use at once on the configured channels (webhook, e-mail), in the
    /// background; each delivery (or its failure) is itself a ledger entry. The in-app queue
    /// needs no announcement.
    pub(crate) fn announce(self: &Arc<Self>, who: (&str, &str, &str), row: &EmergencyRow) {
        let cfg = &self.config.emergency;
        let url = cfg.webhook_url.trim().to_owned();
        if !url.is_empty() {
            let body = serde_json::json!({
                "event": if row.kind == "account" { "emergency_account" } else { "break_glass" },
                "facility": self.facility(),
                "id": row.id,
                "login": who.0,
                "name": who.1,
                "role": who.2,
                "patient_id": row.patient_id,
                "reason": row.reason,
                "started_at": crate::ledger::audit::rfc3339(row.started_at),
                "expires_at": crate::ledger::audit::rfc3339(row.expires_at),
            });
            let hooks = Arc::clone(&self.outside.webhooks);
            self.deliver(row.id, "webhook", move || {
                hooks
                    .post(&url, &body)
                    .map(|status| serde_json::json!(status))
            });
        }
        let smtp = cfg.smtp_url.trim().to_owned();
        let to: Vec<String> = cfg
            .mail_to
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        if !smtp.is_empty() && !to.is_empty() {
            let mail = emergency_mail(self.facility(), who, row);
            let from = cfg.mail_from.trim().to_owned();
            let transport = Arc::clone(&self.outside.mail);
            self.deliver(row.id, "email", move || {
                transport
                    .send(&smtp, &from, &to, &mail)
                    .map(|n| serde_json::json!(n))
            });
        }
    }

    /// Runs one delivery off the async runtime and records its outcome in the ledger.
    fn deliver(
        self: &Arc<Self>,
        id: i64,
        channel: &'static str,
        send: impl FnOnce() -> std::result::Result<serde_json::Value, String> + Send + 'static,
    ) {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let sent = tokio::task::spawn_blocking(send)
                .await
                .unwrap_or_else(|e| Err(e.to_string()));
            let mut t = Target::default();
            t.detail("emergency", id);
            t.detail("channel", channel);
            let ok = sent.is_ok();
            match sent {
                Ok(status) => t.detail("status", status),
                Err(e) => {
                    tracing::warn!(error = %e, channel, "break-glass announcement failed");
                    t.detail("error", e)
                }
            }
            let ev = this.event(
                None,
                actions::EMERGENCY_NOTIFIED,
                if ok {
                    mamori_domain::audit::Outcome::Ok
                } else {
                    mamori_domain::audit::Outcome::Failed
                },
                &t,
            );
            let _ = this
                .store
                .write(move |tx| tx.append(&ev).map_err(ServiceError::from))
                .await;
        });
    }
}

/// Subject and body of the announcement of one emergency use.
pub fn emergency_mail(
    facility: &str,
    who: (&str, &str, &str),
    row: &EmergencyRow,
) -> (String, String) {
    let (login, name, role) = who;
    let what = if row.kind == "account" {
        "非常用アカウントが使われました".to_owned()
    } else {
        format!(
            "患者 {} の記録が非常時アクセスで開かれました",
            row.patient_id
        )
    };
    let subject = format!("【mamori {facility}】{what}（{name}）");
    let body = format!(
        "{facility} の mamori からのお知らせです。\n\n{what}。\n\n\
         職員: {name}（{login}、{role}）\n理由: {}\n開始: {}\n期限: {}\n\n\
         この使用は 監査 › 非常時アクセス で確認し、コメントを付けて閉じてください。\n\
         （このメールは自動送信です。記録は改ざん検知台帳にあります。）\n",
        row.reason,
        crate::ledger::audit::jst(row.started_at),
        crate::ledger::audit::jst(row.expires_at),
    );
    (subject, body)
}
