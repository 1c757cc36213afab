//! Signed checkpoints and inclusion proofs.
//!
//! Owns: the ledger and its checkpoints (here), audit queries (`audit`), verification of the
//! ledger and every stored row (`verify`), trusted time (`timesync`), the command-line
//! operator's journal (`operator`), and whether the database and ledger writer answer
//! (`readiness`). Calls nothing of the other pillars.

pub mod audit;
pub mod operator;
pub mod readiness;
pub mod timesync;
pub mod verify;

use crate::ErrorCode;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use mamori_domain::audit::actions;
use mamori_domain::permission::Action;
use mamori_ledger::{Checkpoint, inclusion_proof, leaf_hash, root_at};
use serde::Serialize;

use crate::error::{Result, ServiceError};
use crate::{Principal, Service};

#[derive(Debug, Clone, Serialize)]
pub struct CheckpointView {
    pub size: u64,
    pub root: String,
    pub created_at: i64,
    /// The signed note, as `mamori checkpoint` prints it.
    pub note: String,
    pub verifier_key: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProofView {
    pub index: u64,
    pub tree_size: u64,
    pub leaf_hash: String,
    pub proof: Vec<String>,
    pub payload: serde_json::Value,
    pub checkpoint: CheckpointView,
}

impl Service {
    fn sign_checkpoint(
        &self,
        size: u64,
        root: [u8; 32],
        now: i64,
    ) -> mamori_ledger::SignedCheckpoint {
        self.signer.sign(&Checkpoint {
            origin: self.signer.name().to_owned(),
            size,
            root,
            extensions: vec![
                format!("time {}", crate::ledger::audit::rfc3339(now)),
                self.clock_line(),
            ],
        })
    }

    /// Signs a checkpoint of the current ledger if it grew since the last one.
    pub async fn checkpoint_now(self: &Arc<Self>) -> Result<CheckpointView> {
        let this = Arc::clone(self);
        let now = self.now();
        self.store
            .write(move |tx| -> Result<()> {
                let size = tx.ledger_size();
                let latest = tx.read().checkpoints()?.last().map(|c| c.size);
                if latest != Some(size) {
                    let signed = this.sign_checkpoint(size, tx.ledger_root(), now);
                    tx.insert_checkpoint(size, &signed.checkpoint.root, now, &signed.text)?;
                }
                Ok(())
            })
            .await?;
        self.latest_checkpoint().await
    }

    pub fn checkpoint_blocking(self: &Arc<Self>) -> Result<()> {
        let this = Arc::clone(self);
        let now = self.now();
        self.store.write_blocking(move |tx| -> Result<()> {
            let size = tx.ledger_size();
            let signed = this.sign_checkpoint(size, tx.ledger_root(), now);
            tx.insert_checkpoint(size, &signed.checkpoint.root, now, &signed.text)?;
            Ok(())
        })
    }

    pub async fn latest_checkpoint(self: &Arc<Self>) -> Result<CheckpointView> {
        let vkey = self.verifier_key();
        let cp = self
            .store
            .read(|r| Ok(r.checkpoints()?.pop()))
            .await?
            .ok_or_else(|| ServiceError::not_found("チェックポイント"))?;
        Ok(CheckpointView {
            size: cp.size,
            root: hex::encode(cp.root),
            created_at: cp.created_at,
            note: cp.note,
            verifier_key: vkey,
        })
    }

    /// An RFC 6962 inclusion proof of ledger entry `index` against the newest checkpoint
    /// that contains it (a fresh one is signed if needed).
    pub async fn inclusion_proof(self: &Arc<Self>, p: &Principal, index: u64) -> Result<ProofView> {
        self.gate(p, actions::LEDGER_PROOF, p.require(Action::ReadAudit, None))
            .await?;
        let mut cp = self.latest_checkpoint().await?;
        if index >= cp.size {
            cp = self.checkpoint_now().await?;
        }
        let pc = p.clone();
        let cp2 = cp.clone();
        self.read_audited(p, actions::LEDGER_PROOF, move |_, r, t| {
            t.detail("index", index);
            pc.require(Action::ReadAudit, None)?;
            let row = r
                .ledger_row(index)?
                .ok_or_else(|| ServiceError::not_found("台帳の項目"))?;
            let hashes = r.hashes();
            let proof = inclusion_proof(&hashes, index, cp2.size).map_err(|e| {
                ServiceError::new(ErrorCode::NotFound, format!("証明を作れません: {e}"))
            })?;
            let root = root_at(&hashes, cp2.size).map_err(ServiceError::internal)?;
            if hex::encode(root) != cp2.root {
                return Err(ServiceError::internal(
                    "stored hashes disagree with the checkpoint",
                ));
            }
            Ok(ProofView {
                index,
                tree_size: cp2.size,
                leaf_hash: B64.encode(leaf_hash(&row.payload)),
                proof: proof.iter().map(|h| B64.encode(h)).collect(),
                payload: serde_json::from_slice(&row.payload).unwrap_or(serde_json::Value::Null),
                checkpoint: cp2,
            })
        })
        .await
    }
}

/// The outcome of a full verification run, as recorded in the ledger.
#[derive(Debug, Clone, Serialize)]
pub struct VerificationView {
    pub at: i64,
    pub ok: bool,
    pub ledger_entries: u64,
    pub versions: u64,
    pub blobs: u64,
    pub problems_total: u64,
    pub problems: Vec<String>,
    pub seconds: f64,
    /// Who started it (None: the scheduled run inside `serve`).
    pub by: Option<String>,
}

fn may_see_ledger(p: &Principal) -> Result<()> {
    p.require(Action::ReadAudit, None)
        .or_else(|_| p.require(Action::AdminSettings, None))
}

impl Service {
    /// Signs a checkpoint now, on request of an auditor or administrator (recorded).
    pub async fn checkpoint_by(self: &Arc<Self>, p: &Principal) -> Result<CheckpointView> {
        let pc = p.clone();
        self.write_audited(
            Some(p),
            actions::LEDGER_CHECKPOINT,
            Default::default(),
            move |_, _, _| may_see_ledger(&pc),
        )
        .await?;
        self.checkpoint_now().await
    }

    /// Runs the same full verification as `mamori verify` against the live instance and
    /// records the result in the ledger. `p` is None for the scheduled run.
    pub async fn verify_and_record(
        self: &Arc<Self>,
        p: Option<&Principal>,
    ) -> Result<VerificationView> {
        if let Some(p) = p
            && let Err(e) = may_see_ledger(p)
        {
            return self
                .write_audited(
                    Some(p),
                    actions::LEDGER_VERIFIED,
                    Default::default(),
                    move |_, _, _| Err(e.clone()),
                )
                .await;
        }
        // One verification at a time on the whole instance (every node reads everything).
        let Some(_running) = self.store.try_turn("verify").await? else {
            return Err(ServiceError::new(
                ErrorCode::Busy,
                "検証を実行中です。終わるまでお待ちください",
            ));
        };
        let dir = self.data_dir.clone();
        let report = crate::scheduler::in_background(move || {
            crate::ledger::verify::verify(
                &dir,
                &crate::ledger::verify::VerifyOptions {
                    external_checkpoint: None,
                    trusted_key: None,
                    skip_blobs: false,
                },
            )
        })
        .await??;
        let mut t = crate::Target::default();
        t.detail("ok", report.ok);
        t.detail("ledger_entries", report.ledger_entries);
        t.detail("versions", report.versions);
        t.detail("blobs", report.blobs);
        t.detail("problems_total", report.problems_total as u64);
        t.detail(
            "problems",
            report.problems.iter().take(20).cloned().collect::<Vec<_>>(),
        );
        t.detail("seconds", (report.seconds * 1000.0).round() / 1000.0);
        if !report.ok {
            tracing::error!(
                problems = report.problems_total,
                "ledger verification found problems"
            );
        }
        let at = self.now();
        self.write_audited(p, actions::LEDGER_VERIFIED, t, |_, _, _| Ok(()))
            .await?;
        Ok(VerificationView {
            at,
            ok: report.ok,
            ledger_entries: report.ledger_entries,
            versions: report.versions,
            blobs: report.blobs,
            problems_total: report.problems_total as u64,
            problems: report.problems,
            seconds: report.seconds,
            by: p.map(|p| p.account.login.clone()),
        })
    }

    /// The newest recorded verification, if any (for the audit pages and the checklist).
    pub async fn last_verification(
        self: &Arc<Self>,
        p: &Principal,
    ) -> Result<Option<VerificationView>> {
        let pc = p.clone();
        self.read_audited(p, actions::AUDIT_QUERY, move |this, r, t| {
            t.detail("query", "last_verification");
            may_see_ledger(&pc)?;
            this.last_verification_in(r)
        })
        .await
    }

    pub(crate) fn last_verification_in(
        &self,
        r: &mamori_store::Reader<'_>,
    ) -> Result<Option<VerificationView>> {
        let rows = r.audit_events(&mamori_store::AuditFilter {
            action_prefix: Some(actions::LEDGER_VERIFIED.to_owned()),
            limit: 50,
            ..Default::default()
        })?;
        // Refused attempts (someone without the right pressed the button) are not results.
        let Some(row) = rows.into_iter().find(|r| r.outcome == "ok") else {
            return Ok(None);
        };
        let ev: serde_json::Value = serde_json::from_slice(&row.payload).unwrap_or_default();
        let d = &ev["detail"];
        let n = |k: &str| d[k].as_u64().unwrap_or(0);
        Ok(Some(VerificationView {
            at: row.ts,
            ok: d["ok"].as_bool().unwrap_or(false),
            ledger_entries: n("ledger_entries"),
            versions: n("versions"),
            blobs: n("blobs"),
            problems_total: n("problems_total"),
            problems: crate::string_list(&d["problems"]),
            seconds: d["seconds"].as_f64().unwrap_or(0.0),
            by: ev["actor"]["login"].as_str().map(str::to_owned),
        }))
    }
}
