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
    /// For a file backed up in fixed parts (the database): what the next backup needs to
    /// take unchanged parts from this snapshot without reading them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paged: Option<PagedEntry>,
}

/// A file stored as fixed-size parts, one chunk each.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PagedEntry {
    /// Bytes per part; the last part may be shorter.
    pub part: u64,
    /// The change-tracking state the file was read in (see `PagedFile::mark`).
    pub map: String,
    pub round: u64,
    /// Backups since every part was last read.
    pub since_full: u32,
    /// BLAKE3 chaining value of each part (hex), from which the whole file's hash is made.
    pub cvs: Vec<String>,
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

/// What the key signs: a domain-separated BLAKE3 digest of the manifest text (a manifest of a
/// large instance is megabytes; Ed25519 would hash it twice with SHA-512).
pub fn signed_bytes(manifest_text: &str) -> Vec<u8> {
    let mut m = b"mamori backup manifest v1\n".to_vec();
    m.extend_from_slice(blake3::hash(manifest_text.as_bytes()).as_bytes());
    m
}

/// The first line of a snapshot object; the manifest text follows it as is (no escaping of a
/// multi-megabyte document inside another).
#[derive(Serialize, Deserialize)]
struct Header {
    signature: String,
    public_key: String,
}

impl SignedManifest {
    /// The plaintext of a snapshot object: a header line, then the manifest exactly as signed.
    pub fn to_object(&self) -> Vec<u8> {
        let header = serde_json::to_string(&Header {
            signature: self.signature.clone(),
            public_key: self.public_key.clone(),
        })
        .expect("header serialises");
        let mut out = Vec::with_capacity(header.len() + 1 + self.manifest.len());
        out.extend_from_slice(header.as_bytes());
        out.push(b'\n');
        out.extend_from_slice(self.manifest.as_bytes());
        out
    }

    pub fn from_object(bytes: &[u8]) -> Option<Self> {
        let at = bytes.iter().position(|b| *b == b'\n')?;
        let header: Header = serde_json::from_slice(&bytes[..at]).ok()?;
        Some(SignedManifest {
            manifest: String::from_utf8(bytes[at + 1..].to_vec()).ok()?,
            signature: header.signature,
            public_key: header.public_key,
        })
    }

    pub fn sign(manifest: &Manifest, key: &SigningKey) -> Self {
        let text = serde_json::to_string(manifest).expect("manifest serialises");
        SignedManifest {
            signature: hex::encode(key.sign(&signed_bytes(&text)).to_bytes()),
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
        if let Some(expected) = expected_key
            && *expected != key
        {
            return Err(bad("このインスタンスの鍵で署名されていません"));
        }
        let sig: [u8; 64] = hex::decode(&self.signature)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| bad("署名が不正"))?;
        VerifyingKey::from_bytes(&key)
            .map_err(|_| bad("署名鍵が不正"))?
            .verify(&signed_bytes(&self.manifest), &Signature::from_bytes(&sig))
            .map_err(|_| bad("署名が一致しません"))?;
        let m: Manifest = serde_json::from_str(&self.manifest).map_err(|e| bad(&e.to_string()))?;
        if m.format != MANIFEST_FORMAT {
            return Err(bad(&format!("形式 {} は読めません", m.format)));
        }
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed() -> (SignedManifest, SigningKey) {
        let key = SigningKey::from_bytes(&[3; 32]);
        let m = Manifest {
            format: MANIFEST_FORMAT.into(),
            snapshot: "s1".into(),
            created_at: "2026-12-05T00:00:00Z".into(),
            created_ms: 0,
            host: "h".into(),
            tool: "mamori".into(),
            parent: None,
            total_bytes: 10,
            locked_until: None,
            facts: serde_json::json!({"ledger_size": 3}),
            files: vec![FileEntry {
                path: "mamori.db".into(),
                size: 10,
                mtime_ms: 0,
                blake3: "00".repeat(32),
                chunks: vec!["11".repeat(32)],
                paged: Some(PagedEntry {
                    part: 131_072,
                    map: "ab".into(),
                    round: 7,
                    since_full: 1,
                    cvs: vec!["22".repeat(32)],
                }),
            }],
        };
        (SignedManifest::sign(&m, &key), key)
    }

    proptest::proptest! {
        /// A snapshot object read back on restore can be anything (a damaged medium, an
        /// attacker's file): parsing and checking it never panics.
        #[test]
        fn any_snapshot_object_is_refused_or_read_without_panic(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..400),
        ) {
            if let Some(s) = SignedManifest::from_object(&bytes) {
                let _ = s.verified(None);
            }
        }

        /// Any one byte of the manifest changed in a signed snapshot object is refused, never
        /// read as another manifest. (In the header line, a hex digit's case may change
        /// harmlessly.)
        #[test]
        fn a_changed_byte_is_refused(at in 0usize..10_000, flip in 1u8..=255) {
            let (s, key) = signed();
            let mut bytes = s.to_object();
            let start = bytes.iter().position(|b| *b == b'\n').unwrap();
            let at = start + at % (bytes.len() - start);
            bytes[at] ^= flip;
            let vk = key.verifying_key().to_bytes();
            if let Some(changed) = SignedManifest::from_object(&bytes) {
                proptest::prop_assert!(changed.verified(Some(&vk)).is_err());
            }
        }
    }

    #[test]
    fn a_paged_entry_survives_the_round_trip_and_older_manifests_read_without_it() {
        let (s, _) = signed();
        let m = s.verified(None).unwrap();
        assert_eq!(m.files[0].paged.as_ref().unwrap().round, 7);
        let old = r#"{"path":"a","size":1,"mtime_ms":0,"blake3":"","chunks":[]}"#;
        let f: FileEntry = serde_json::from_str(old).unwrap();
        assert!(f.paged.is_none());
    }
}
