//! Authenticated encryption of every object, and the chunk format inside packs.
//!
//! Written from now on: AES-256-GCM (on the CRYPTREC 電子政府推奨暗号リスト) under a key of
//! its own per object — derived from the repository key and 128 random bits stored with the
//! object — so that no key ever meets the same nonce twice, however many objects are written
//! on however many machines, with no nonce state to keep. Objects written by earlier releases
//! (XChaCha20-Poly1305 with a random 192-bit nonce) stay readable: an object is opened as the
//! format its first bytes name, and authentication decides.
//!
//! The associated data binds each ciphertext to its name (a chunk to its id, a snapshot to its
//! id), so objects cannot be swapped.

use aes_gcm::Aes256Gcm;
use chacha20poly1305::aead::{Aead, AeadInPlace, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand_core::{OsRng, RngCore};

/// The earlier format's nonce.
pub const NONCE_LEN: usize = 24;
/// The current format: this marker, then the per-object salt, then ciphertext and tag.
const AES_MAGIC: &[u8; 4] = b"mAG1";
const SALT_LEN: usize = 16;
const TAG_LEN: usize = 16;
/// Each object key is used for one encryption only, so a constant nonce never repeats under
/// a key.
const AES_NONCE: [u8; 12] = [0; 12];
const RAW: u8 = 0;
const ZSTD: u8 = 1;
/// Compression is kept only when it saves at least this share (attachments are mostly
/// already-compressed PDF and JPEG, where trying harder only burns time).
const WORTHWHILE: f64 = 0.97;

fn object_cipher(key: &[u8; 32], salt: &[u8]) -> Aes256Gcm {
    let mut hasher = blake3::Hasher::new_derive_key("mamori backup 2026-12 AES-256-GCM object key");
    hasher.update(key);
    hasher.update(salt);
    let k: [u8; 32] = *hasher.finalize().as_bytes();
    Aes256Gcm::new(&k.into())
}

pub fn seal(key: &[u8; 32], plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
    let salt = random_bytes::<SALT_LEN>();
    let ct = object_cipher(key, &salt)
        .encrypt(
            (&AES_NONCE).into(),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .expect("AES-256-GCM encryption cannot fail for in-memory buffers");
    let mut out = Vec::with_capacity(AES_MAGIC.len() + SALT_LEN + ct.len());
    out.extend_from_slice(AES_MAGIC);
    out.extend_from_slice(&salt);
    out.extend_from_slice(&ct);
    out
}

/// The earlier format, kept for tests that prove old repositories stay readable.
#[cfg(test)]
pub(crate) fn seal_xchacha(key: &[u8; 32], plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    OsRng.fill_bytes(&mut nonce);
    let ct = XChaCha20Poly1305::new(key.into())
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .expect("in-memory encryption");
    [nonce.as_slice(), &ct].concat()
}

/// None when the key is wrong or a single bit of the object changed.
pub fn open(key: &[u8; 32], sealed: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
    let head = AES_MAGIC.len() + SALT_LEN;
    if sealed.len() >= head + TAG_LEN && sealed.starts_with(AES_MAGIC) {
        let opened = object_cipher(key, &sealed[AES_MAGIC.len()..head])
            .decrypt(
                (&AES_NONCE).into(),
                Payload {
                    msg: &sealed[head..],
                    aad,
                },
            )
            .ok();
        if opened.is_some() {
            return opened;
        }
        // An earlier object whose random nonce happens to begin with the marker.
    }
    if sealed.len() < NONCE_LEN + TAG_LEN {
        return None;
    }
    let (nonce, ct) = sealed.split_at(NONCE_LEN);
    XChaCha20Poly1305::new(key.into())
        .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad })
        .ok()
}

/// Per-thread buffers for sealing chunks (a compression context and its output).
pub struct Sealer {
    compressor: zstd::bulk::Compressor<'static>,
    scratch: Vec<u8>,
}

impl Default for Sealer {
    fn default() -> Self {
        Sealer {
            compressor: zstd::bulk::Compressor::new(1).expect("zstd level 1"),
            scratch: Vec::new(),
        }
    }
}

/// Bytes sampled to decide whether a chunk is worth compressing.
const SAMPLE: usize = 64 * 1024;

impl Sealer {
    fn compressed(&mut self, data: &[u8]) -> bool {
        let worthwhile = |c: usize, n: usize| (c as f64) < n as f64 * WORTHWHILE;
        // The output goes into spare capacity: nothing is zeroed first.
        let compress = |this: &mut Self, src: &[u8]| {
            this.scratch.clear();
            this.scratch
                .reserve(zstd::zstd_safe::compress_bound(src.len()));
            this.compressor
                .compress_to_buffer(src, &mut this.scratch)
                .ok()
                .is_some_and(|n| worthwhile(n, src.len()))
        };
        // Scans and PDFs are mostly compressed already: a sample tells, at a fraction of the cost.
        if data.len() > 2 * SAMPLE && !compress(self, &data[..SAMPLE]) {
            return false;
        }
        compress(self, data)
    }

    /// Compresses (when worthwhile) and seals one chunk, appending it to `out` (a pack being
    /// filled) with a single copy of the data.
    pub fn seal_into(&mut self, out: &mut Vec<u8>, key: &[u8; 32], id: &[u8; 32], data: &[u8]) {
        let salt = random_bytes::<SALT_LEN>();
        out.extend_from_slice(AES_MAGIC);
        out.extend_from_slice(&salt);
        let start = out.len();
        if self.compressed(data) {
            out.push(ZSTD);
            out.extend_from_slice(&self.scratch);
        } else {
            out.push(RAW);
            out.extend_from_slice(data);
        }
        let tag = object_cipher(key, &salt)
            .encrypt_in_place_detached((&AES_NONCE).into(), id, &mut out[start..])
            .expect("AES-256-GCM encryption cannot fail for in-memory buffers");
        out.extend_from_slice(&tag);
    }
}

/// Opens one chunk; the caller checks that its keyed hash is `id`.
pub fn open_chunk(key: &[u8; 32], id: &[u8; 32], sealed: &[u8], raw_len: usize) -> Option<Vec<u8>> {
    let plain = open(key, sealed, id)?;
    let (flag, body) = plain.split_first()?;
    match *flag {
        RAW => Some(body.to_vec()),
        ZSTD => zstd::bulk::decompress(body, raw_len).ok(),
        _ => None,
    }
}

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    OsRng.fill_bytes(&mut b);
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seal_chunk(key: &[u8; 32], id: &[u8; 32], data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        Sealer::default().seal_into(&mut out, key, id, data);
        out
    }

    #[test]
    fn chunks_round_trip_and_refuse_tampering_or_swapping() {
        let key = random_bytes::<32>();
        let id = [7u8; 32];
        let text = "診療録 ".repeat(2000).into_bytes();
        let sealed = seal_chunk(&key, &id, &text);
        assert!(sealed.len() < text.len() / 4, "text compresses");
        assert_eq!(open_chunk(&key, &id, &sealed, text.len()).unwrap(), text);

        let mut bad = sealed.clone();
        bad[40] ^= 1;
        assert!(open_chunk(&key, &id, &bad, text.len()).is_none());
        assert!(open_chunk(&key, &[8u8; 32], &sealed, text.len()).is_none());
        assert!(open_chunk(&random_bytes::<32>(), &id, &sealed, text.len()).is_none());
        assert!(open_chunk(&key, &id, &sealed[..30], text.len()).is_none());

        let noise = random_bytes::<4096>();
        let sealed = seal_chunk(&key, &id, &noise);
        assert_eq!(
            sealed.len(),
            noise.len() + 1 + AES_MAGIC.len() + SALT_LEN + TAG_LEN,
            "stored raw"
        );
        assert_eq!(open_chunk(&key, &id, &sealed, noise.len()).unwrap(), noise);
    }

    #[test]
    fn new_objects_are_aes_gcm_with_a_key_each_and_old_ones_still_open() {
        let key = random_bytes::<32>();
        let a = seal(&key, b"same text", b"name");
        let b = seal(&key, b"same text", b"name");
        assert!(a.starts_with(AES_MAGIC) && b.starts_with(AES_MAGIC));
        assert_ne!(a, b, "a fresh object key each time");
        assert_eq!(open(&key, &a, b"name").unwrap(), b"same text");
        assert!(open(&key, &a, b"other").is_none());
        let mut bad = a.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(open(&key, &bad, b"name").is_none());

        // Written by an earlier release: XChaCha20-Poly1305, also a chunk inside a pack.
        let old = seal_xchacha(&key, b"from 2025", b"name");
        assert_eq!(open(&key, &old, b"name").unwrap(), b"from 2025");
        let id = [3u8; 32];
        let old_chunk = seal_xchacha(&key, &[[RAW].as_slice(), b"chunk"].concat(), &id);
        assert_eq!(open_chunk(&key, &id, &old_chunk, 5).unwrap(), b"chunk");
        // An old object whose random nonce begins with the new marker still opens.
        let mut nonce = [0u8; NONCE_LEN];
        nonce[..4].copy_from_slice(AES_MAGIC);
        let ct = XChaCha20Poly1305::new((&key).into())
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: b"x".as_slice(),
                    aad: b"n",
                },
            )
            .unwrap();
        let tricky = [nonce.as_slice(), &ct].concat();
        assert_eq!(open(&key, &tricky, b"n").unwrap(), b"x");
    }
}
