//! What a snapshot holds, signed by the instance's ledger key: the files with their sizes and
//! BLAKE3 hashes, and the facts the instance vouches for at that moment (ledger size and root,
//! record count and digest). A restore drill compares a restored instance against these.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::error::{BackupError, Result};

pub const MANIFEST_FORMAT: &str = "mamori-backup-manifest/1";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FileEntry {
    /// '/'-separated path inside the instance directory.
    pub path: String,
    pub size: u64,
    pub mtime_ms: i64,
    pub blake3: String,
    /// Chunk ids (keyed BLAKE3, hex) in file order.
    pub chunks: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub snapshot: String,
    pub created_at: String,
    pub created_ms: i64,
    pub host: String,
    pub tool: String,
    pub parent: Option<String>,
    pub total_bytes: u64,
    /// Until when the target keeps every object of this snapshot locked (write-once targets).
    pub locked_until: Option<String>,
    /// What the instance vouches for (ledger size and root, records, facility).
    pub facts: serde_json::Value,
    pub files: Vec<FileEntry>,
}

/// The manifest exactly as signed, the signature and the key that made it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SignedManifest {
    pub manifest: String,
    pub signature: String,
    pub public_key: String,
}

impl SignedManifest {
    pub fn sign(manifest: &Manifest, key: &SigningKey) -> Self {
        let text = serde_json::to_string(manifest).expect("manifest serialises");
        SignedManifest {
            signature: hex::encode(key.sign(text.as_bytes()).to_bytes()),
            public_key: hex::encode(key.verifying_key().to_bytes()),
            manifest: text,
        }
    }

    /// Checks the signature against the key the manifest carries, and (when given) that this
    /// key is the one expected (the instance's ledger key).
    pub fn verified(&self, expected_key: Option<&[u8; 32]>) -> Result<Manifest> {
        let name = "スナップショットの目録";
        let bad = |why: &str| BackupError::corrupt(name, "", why);
        let key: [u8; 32] = hex::decode(&self.public_key)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| bad("署名鍵が不正"))?;
        if let Some(expected) = expected_key {
            if *expected != key {
                return Err(bad("このインスタンスの鍵で署名されていません"));
            }
        }
        let sig: [u8; 64] = hex::decode(&self.signature)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| bad("署名が不正"))?;
        VerifyingKey::from_bytes(&key)
            .map_err(|_| bad("署名鍵が不正"))?
            .verify(self.manifest.as_bytes(), &Signature::from_bytes(&sig))
            .map_err(|_| bad("署名が一致しません"))?;
        let m: Manifest = serde_json::from_str(&self.manifest).map_err(|e| bad(&e.to_string()))?;
        if m.format != MANIFEST_FORMAT {
            return Err(bad(&format!("形式 {} は読めません", m.format)));
        }
        Ok(m)
    }
}
