//! Signed checkpoints and inclusion proofs.

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
            extensions: vec![format!("time {}", crate::audit::rfc3339(now))],
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
        p.require(Action::ReadAudit, None)?;
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
            let proof = inclusion_proof(&hashes, index, cp2.size)
                .map_err(|e| ServiceError::new("not_found", format!("証明を作れません: {e}")))?;
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
