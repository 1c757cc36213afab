//! Who can open a repository: a random master secret, wrapped once per way in (a passphrase
//! through Argon2id, a key file through BLAKE3's key derivation). Each wrapping is its own
//! write-once object under `keys/`, so adding a way in never rewrites anything.
//!
//! The key file is short enough to print and keep in a safe (the key ceremony in
//! docs/operations.md): 32 random bytes as hex in groups of four, with a check value so a
//! mistyped copy is caught before it is used.

use argon2::{Algorithm, Argon2, Params, Version};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use crate::error::{BackupError, Result};
use crate::seal::{open, random_bytes, seal};

const KEY_FILE_HEADER: &str = "mamori-backup-key v1";

/// The secrets used for one repository, derived from its master secret.
pub struct MasterKey {
    /// Seals every object.
    pub(crate) enc: [u8; 32],
    /// Keys the chunk-id hash, so chunk ids reveal nothing about content to someone without it.
    pub(crate) id: [u8; 32],
    /// Keys the chunker's gear table, so cut points do not fingerprint known files.
    pub(crate) cdc_seed: u64,
}

impl Drop for MasterKey {
    fn drop(&mut self) {
        self.enc.zeroize();
        self.id.zeroize();
        self.cdc_seed.zeroize();
    }
}

impl MasterKey {
    fn derive(secret: &[u8; 32]) -> Self {
        let seed = blake3::derive_key("mamori backup 2026 chunker seed", secret);
        MasterKey {
            enc: blake3::derive_key("mamori backup 2026 object encryption", secret),
            id: blake3::derive_key("mamori backup 2026 chunk id", secret),
            cdc_seed: u64::from_le_bytes(seed[..8].try_into().expect("8 bytes")),
        }
    }

    pub(crate) fn chunk_id(&self, data: &[u8]) -> [u8; 32] {
        *blake3::keyed_hash(&self.id, data).as_bytes()
    }
}

/// A 32-byte key kept outside the machine (printed, on a USB stick in a safe).
#[derive(Clone)]
pub struct KeyFile(Zeroizing<[u8; 32]>);

impl KeyFile {
    pub fn generate() -> Self {
        KeyFile(Zeroizing::new(random_bytes::<32>()))
    }

    fn check(bytes: &[u8; 32]) -> String {
        hex::encode(&blake3::hash(bytes).as_bytes()[..2])
    }

    /// The printable form: a header line, the key in groups of four hex digits, a check value.
    pub fn to_text(&self) -> String {
        let hex = hex::encode(*self.0);
        let groups: Vec<&str> = (0..hex.len()).step_by(4).map(|i| &hex[i..i + 4]).collect();
        format!(
            "{KEY_FILE_HEADER}\n{}\n{}\ncheck {}\n",
            groups[..8].join(" "),
            groups[8..].join(" "),
            Self::check(&self.0)
        )
    }

    /// Reads the printable form back, typed in by hand if need be (spaces and case ignored).
    pub fn parse(text: &str) -> Result<Self> {
        let bad = |why: &str| BackupError::Invalid(format!("鍵ファイルを読めません: {why}"));
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        if lines.next() != Some(KEY_FILE_HEADER) {
            return Err(bad("1行目が mamori-backup-key v1 ではありません"));
        }
        let mut hex_digits = String::new();
        let mut check = None;
        for line in lines {
            let line = line.to_ascii_lowercase();
            if let Some(c) = line.strip_prefix("check") {
                check = Some(c.trim().to_ascii_lowercase());
            } else {
                hex_digits.extend(line.chars().filter(|c| !c.is_whitespace()));
            }
        }
        let bytes: [u8; 32] = hex::decode(hex_digits.to_ascii_lowercase())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| bad("鍵は16進数64桁です"))?;
        if check.as_deref() != Some(Self::check(&bytes).as_str()) {
            return Err(bad("検査値が合いません（写し間違いがあります）"));
        }
        Ok(KeyFile(Zeroizing::new(bytes)))
    }

    /// A short public name for the key, recorded in the repository and the ledger.
    pub fn fingerprint(&self) -> String {
        hex::encode(&blake3::derive_key("mamori backup 2026 key file id", &*self.0)[..6])
    }

    fn kek(&self) -> [u8; 32] {
        blake3::derive_key("mamori backup 2026 key file wrapping", &*self.0)
    }
}

/// What the operator supplied to open (or create) a repository.
#[derive(Clone, Default)]
pub struct KeyMaterial {
    pub passphrase: Option<Zeroizing<String>>,
    pub key_file: Option<KeyFile>,
}

impl KeyMaterial {
    pub fn is_empty(&self) -> bool {
        self.passphrase.is_none() && self.key_file.is_none()
    }
}

/// Argon2id cost for passphrases: 64 MiB, 3 passes (OWASP's first recommended setting).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct KdfParams {
    pub m_kib: u32,
    pub t: u32,
    pub p: u32,
}

impl Default for KdfParams {
    fn default() -> Self {
        KdfParams {
            m_kib: 64 * 1024,
            t: 3,
            p: 1,
        }
    }
}

/// One wrapping of the master secret, stored as `keys/<id>`.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum KeySlot {
    Passphrase {
        kdf: KdfParams,
        salt: String,
        sealed: String,
    },
    KeyFile {
        fingerprint: String,
        sealed: String,
    },
}

fn passphrase_kek(pass: &str, salt: &[u8], kdf: KdfParams) -> Result<Zeroizing<[u8; 32]>> {
    let params = Params::new(kdf.m_kib, kdf.t, kdf.p, Some(32))
        .map_err(|e| BackupError::Invalid(format!("鍵導出の設定が不正です: {e}")))?;
    let mut out = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(pass.as_bytes(), salt, &mut *out)
        .map_err(|e| BackupError::Invalid(format!("鍵導出に失敗しました: {e}")))?;
    Ok(out)
}

/// Creates the master secret and one slot per way in that `material` offers.
pub(crate) fn create_slots(
    material: &KeyMaterial,
    repo_id: &str,
    kdf: KdfParams,
) -> Result<(MasterKey, Vec<KeySlot>)> {
    if material.is_empty() {
        return Err(BackupError::NoKey);
    }
    let secret = Zeroizing::new(random_bytes::<32>());
    let mut slots = Vec::new();
    if let Some(pass) = &material.passphrase {
        if pass.chars().count() < 12 {
            return Err(BackupError::Invalid(
                "バックアップのパスフレーズは12文字以上にしてください".into(),
            ));
        }
        let salt = random_bytes::<16>();
        let kek = passphrase_kek(pass, &salt, kdf)?;
        slots.push(KeySlot::Passphrase {
            kdf,
            salt: hex::encode(salt),
            sealed: hex::encode(seal(&kek, &*secret, repo_id.as_bytes())),
        });
    }
    if let Some(file) = &material.key_file {
        slots.push(KeySlot::KeyFile {
            fingerprint: file.fingerprint(),
            sealed: hex::encode(seal(&file.kek(), &*secret, repo_id.as_bytes())),
        });
    }
    Ok((MasterKey::derive(&secret), slots))
}

/// Opens the master secret with whichever slot `material` fits.
pub(crate) fn unlock(
    material: &KeyMaterial,
    repo_id: &str,
    slots: &[KeySlot],
) -> Result<MasterKey> {
    if material.is_empty() {
        return Err(BackupError::NoKey);
    }
    for slot in slots {
        let opened = match (slot, &material.passphrase, &material.key_file) {
            (KeySlot::Passphrase { kdf, salt, sealed }, Some(pass), _) => {
                let salt = hex::decode(salt).unwrap_or_default();
                let kek = passphrase_kek(pass, &salt, *kdf)?;
                open(
                    &kek,
                    &hex::decode(sealed).unwrap_or_default(),
                    repo_id.as_bytes(),
                )
            }
            (KeySlot::KeyFile { sealed, .. }, _, Some(file)) => open(
                &file.kek(),
                &hex::decode(sealed).unwrap_or_default(),
                repo_id.as_bytes(),
            ),
            _ => None,
        };
        if let Some(secret) = opened {
            let secret = Zeroizing::new(secret);
            let bytes: [u8; 32] = secret
                .as_slice()
                .try_into()
                .map_err(|_| BackupError::corrupt("鍵", repo_id, "長さが不正"))?;
            return Ok(MasterKey::derive(&bytes));
        }
    }
    Err(BackupError::WrongKey)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHEAP: KdfParams = KdfParams {
        m_kib: 256,
        t: 1,
        p: 1,
    };

    #[test]
    fn key_file_text_round_trips_and_catches_typos() {
        let k = KeyFile::generate();
        let text = k.to_text();
        let back = KeyFile::parse(&text).unwrap();
        assert_eq!(back.fingerprint(), k.fingerprint());
        assert_eq!(
            KeyFile::parse(
                &text
                    .to_uppercase()
                    .replace("MAMORI-BACKUP-KEY V1", KEY_FILE_HEADER)
            )
            .unwrap()
            .fingerprint(),
            k.fingerprint()
        );
        let line = text.lines().nth(1).unwrap();
        let typo = line.replacen(&line[..1], if &line[..1] == "0" { "1" } else { "0" }, 1);
        assert!(KeyFile::parse(&text.replace(line, &typo)).is_err());
        assert!(KeyFile::parse("hello").is_err());
    }

    #[test]
    fn either_way_in_opens_the_same_master_and_others_do_not() {
        let file = KeyFile::generate();
        let both = KeyMaterial {
            passphrase: Some(Zeroizing::new("correct horse battery".into())),
            key_file: Some(file.clone()),
        };
        let (master, slots) = create_slots(&both, "repo1", CHEAP).unwrap();
        let by_pass = KeyMaterial {
            passphrase: both.passphrase.clone(),
            key_file: None,
        };
        let by_file = KeyMaterial {
            passphrase: None,
            key_file: Some(file),
        };
        assert_eq!(unlock(&by_pass, "repo1", &slots).unwrap().enc, master.enc);
        assert_eq!(unlock(&by_file, "repo1", &slots).unwrap().id, master.id);
        let wrong = KeyMaterial {
            passphrase: Some(Zeroizing::new("wrong horse battery".into())),
            key_file: Some(KeyFile::generate()),
        };
        assert!(matches!(
            unlock(&wrong, "repo1", &slots),
            Err(BackupError::WrongKey)
        ));
        assert!(matches!(
            unlock(&by_pass, "another-repo", &slots),
            Err(BackupError::WrongKey)
        ));
        assert!(matches!(
            unlock(&KeyMaterial::default(), "repo1", &slots),
            Err(BackupError::NoKey)
        ));
    }
}
