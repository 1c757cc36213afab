//! C2SP `tlog-checkpoint` bodies signed as C2SP `signed-note`s with Ed25519.
//!
//! A checkpoint is plain text so that a person outside the server administrator's control can
//! keep it (print it, e-mail it) and a verifier written in any language can check it.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::hash::Hash;

const ED25519_ALG: u8 = 0x01;
const SIG_PREFIX: &str = "\u{2014} ";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NoteError {
    #[error("the checkpoint text is malformed: {0}")]
    Malformed(&'static str),
    #[error("no signature by key {0} is on the checkpoint")]
    NoSignatureByKey(String),
    #[error("the checkpoint signature does not verify")]
    BadSignature,
    #[error("the checkpoint is for log '{found}', not '{expected}'")]
    WrongOrigin { expected: String, found: String },
}

/// The 4-byte key ID of C2SP signed-note: SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key)[..4].
pub fn key_id(name: &str, key: &VerifyingKey) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([ED25519_ALG]);
    h.update(key.as_bytes());
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

/// The unsigned body: origin, size, root, and extension lines (each without newlines).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
    pub extensions: Vec<String>,
}

impl Checkpoint {
    pub fn body(&self) -> String {
        let mut s = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        );
        for e in &self.extensions {
            s.push_str(e);
            s.push('\n');
        }
        s
    }

    fn parse_body(body: &str) -> Result<Self, NoteError> {
        let mut lines = body
            .strip_suffix('\n')
            .ok_or(NoteError::Malformed("body must end with a newline"))?
            .split('\n');
        let origin = lines
            .next()
            .filter(|o| !o.is_empty())
            .ok_or(NoteError::Malformed("missing origin"))?;
        let size = lines
            .next()
            .and_then(|s| {
                // Decimal without leading zeros, as the checkpoint spec requires.
                (s == "0" || !s.starts_with('0')).then(|| s.parse::<u64>().ok())?
            })
            .ok_or(NoteError::Malformed("bad tree size"))?;
        let root_b64 = lines.next().ok_or(NoteError::Malformed("missing root"))?;
        let root: Hash = B64
            .decode(root_b64)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or(NoteError::Malformed("bad root hash"))?;
        let extensions: Vec<String> = lines.map(str::to_owned).collect();
        if extensions.iter().any(String::is_empty) {
            return Err(NoteError::Malformed("empty line in body"));
        }
        Ok(Self {
            origin: origin.to_owned(),
            size,
            root,
            extensions,
        })
    }

    /// The value of extension line `key value…`, if present.
    pub fn extension(&self, key: &str) -> Option<&str> {
        self.extensions
            .iter()
            .find_map(|e| e.strip_prefix(key)?.strip_prefix(' '))
    }
}

/// Signs checkpoints under a key name (the log's origin).
pub struct CheckpointSigner {
    name: String,
    key: SigningKey,
}

impl CheckpointSigner {
    pub fn new(name: impl Into<String>, key: SigningKey) -> Self {
        Self {
            name: name.into(),
            key,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// The verifier key string `name+hexid+base64(0x01‖key)` that C2SP tools accept.
    pub fn verifier_key(&self) -> String {
        verifier_key_string(&self.name, &self.verifying_key())
    }

    pub fn sign(&self, cp: &Checkpoint) -> SignedCheckpoint {
        let body = cp.body();
        let sig = self.key.sign(body.as_bytes());
        let mut blob = key_id(&self.name, &self.verifying_key()).to_vec();
        blob.extend_from_slice(&sig.to_bytes());
        let text = format!("{body}\n{SIG_PREFIX}{} {}\n", self.name, B64.encode(blob));
        SignedCheckpoint {
            checkpoint: cp.clone(),
            text,
        }
    }
}

pub fn verifier_key_string(name: &str, key: &VerifyingKey) -> String {
    let mut material = vec![ED25519_ALG];
    material.extend_from_slice(key.as_bytes());
    format!(
        "{name}+{}+{}",
        hex_lower(&key_id(name, key)),
        B64.encode(material)
    )
}

fn hex_lower(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A checkpoint with its signed-note text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    pub checkpoint: Checkpoint,
    pub text: String,
}

impl SignedCheckpoint {
    /// Parses a signed note and checks that `name`'s Ed25519 key signed it. Signatures by
    /// other keys (witness cosignatures) are allowed and ignored.
    pub fn open(text: &str, name: &str, key: &VerifyingKey) -> Result<Self, NoteError> {
        let (body, sigs) = split_note(text)?;
        let want_id = key_id(name, key);
        let mut found = false;
        for line in sigs.lines() {
            let rest = line.strip_prefix(SIG_PREFIX).ok_or(NoteError::Malformed(
                "signature line must start with an em dash",
            ))?;
            let (who, b64) = rest.split_once(' ').ok_or(NoteError::Malformed(
                "signature line needs a name and a signature",
            ))?;
            let blob = B64
                .decode(b64)
                .map_err(|_| NoteError::Malformed("signature is not base64"))?;
            if who != name || blob.len() != 4 + 64 || blob[..4] != want_id {
                continue;
            }
            found = true;
            let sig = Signature::from_slice(&blob[4..]).map_err(|_| NoteError::BadSignature)?;
            key.verify(body.as_bytes(), &sig)
                .map_err(|_| NoteError::BadSignature)?;
        }
        if !found {
            return Err(NoteError::NoSignatureByKey(verifier_key_string(name, key)));
        }
        Ok(Self {
            checkpoint: Checkpoint::parse_body(body)?,
            text: text.to_owned(),
        })
    }
}

fn split_note(text: &str) -> Result<(&str, &str), NoteError> {
    let at = text
        .find("\n\n")
        .ok_or(NoteError::Malformed("no blank line before the signatures"))?;
    let (body, sigs) = (&text[..at + 1], &text[at + 2..]);
    if sigs.is_empty() || !sigs.ends_with('\n') {
        return Err(NoteError::Malformed("signatures must end with a newline"));
    }
    Ok((body, sigs))
}

/// Opens a note's text without parsing it as a checkpoint (used for the C2SP known answers).
#[cfg(test)]
fn open_note<'a>(text: &'a str, name: &str, key: &VerifyingKey) -> Result<&'a str, NoteError> {
    let (body, sigs) = split_note(text)?;
    for line in sigs.lines() {
        let Some((who, b64)) = line
            .strip_prefix(SIG_PREFIX)
            .and_then(|r| r.split_once(' '))
        else {
            continue;
        };
        let Ok(blob) = B64.decode(b64) else { continue };
        if who == name && blob.len() == 68 && blob[..4] == key_id(name, key) {
            let sig = Signature::from_slice(&blob[4..]).map_err(|_| NoteError::BadSignature)?;
            key.verify(body.as_bytes(), &sig)
                .map_err(|_| NoteError::BadSignature)?;
            return Ok(body);
        }
    }
    Err(NoteError::NoSignatureByKey(name.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    // The signed-note example of golang.org/x/mod/sumdb/note, used as a known answer.
    const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const PETER_NOTE: &str = "If you think cryptography is the answer to your problem,\n\
then you don't know what your problem is.\n\
\n\
\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

    fn peter_key() -> VerifyingKey {
        let b64 = PETER_VKEY.splitn(3, '+').nth(2).unwrap();
        let raw = B64.decode(b64).unwrap();
        assert_eq!(raw[0], ED25519_ALG);
        VerifyingKey::from_bytes(raw[1..].try_into().unwrap()).unwrap()
    }

    #[test]
    fn go_sumdb_note_known_answer() {
        let key = peter_key();
        assert_eq!(hex_lower(&key_id("PeterNeumann", &key)), "c74f20a3");
        assert_eq!(verifier_key_string("PeterNeumann", &key), PETER_VKEY);
        let body = open_note(PETER_NOTE, "PeterNeumann", &key).unwrap();
        assert!(body.starts_with("If you think"));
        let tampered = PETER_NOTE.replace("cryptography", "cryptographY");
        assert_eq!(
            open_note(&tampered, "PeterNeumann", &key),
            Err(NoteError::BadSignature)
        );
    }

    #[test]
    fn checkpoint_round_trip_and_tamper() {
        let signer =
            CheckpointSigner::new("mamori.example/clinic", SigningKey::from_bytes(&[7u8; 32]));
        let cp = Checkpoint {
            origin: "mamori.example/clinic".into(),
            size: 42,
            root: [9u8; 32],
            extensions: vec!["time 2026-11-23T00:00:00Z".into()],
        };
        let signed = signer.sign(&cp);
        let opened =
            SignedCheckpoint::open(&signed.text, signer.name(), &signer.verifying_key()).unwrap();
        assert_eq!(opened.checkpoint, cp);
        assert_eq!(
            opened.checkpoint.extension("time"),
            Some("2026-11-23T00:00:00Z")
        );
        let bad = signed.text.replace("\n42\n", "\n43\n");
        assert_eq!(
            SignedCheckpoint::open(&bad, signer.name(), &signer.verifying_key()),
            Err(NoteError::BadSignature)
        );
        let other = SigningKey::from_bytes(&[8u8; 32]).verifying_key();
        assert!(matches!(
            SignedCheckpoint::open(&signed.text, signer.name(), &other),
            Err(NoteError::NoSignatureByKey(_))
        ));
    }
}
