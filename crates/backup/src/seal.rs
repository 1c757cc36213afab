//! Authenticated encryption of every object, and the chunk format inside packs.
//!
//! XChaCha20-Poly1305 with a fresh random 192-bit nonce per object: no nonce state has to
//! survive between runs, machines or targets. The associated data binds each ciphertext to
//! its name (a chunk to its id, a snapshot to its id), so objects cannot be swapped.

use chacha20poly1305::aead::{Aead, AeadInPlace, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand_core::{OsRng, RngCore};

pub const NONCE_LEN: usize = 24;
const RAW: u8 = 0;
const ZSTD: u8 = 1;
/// Compression is kept only when it saves at least this share (attachments are mostly
/// already-compressed PDF and JPEG, where trying harder only burns time).
const WORTHWHILE: f64 = 0.97;

pub fn seal(key: &[u8; 32], plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
    let cipher = XChaCha20Poly1305::new(key.into());
    let mut nonce = [0u8; NONCE_LEN];
    OsRng.fill_bytes(&mut nonce);
    let ct = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .expect("XChaCha20-Poly1305 encryption cannot fail for in-memory buffers");
    let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    out
}

/// None when the key is wrong or a single bit of the object changed.
pub fn open(key: &[u8; 32], sealed: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < NONCE_LEN + 16 {
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
        let start = out.len();
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        out.extend_from_slice(&nonce);
        if self.compressed(data) {
            out.push(ZSTD);
            out.extend_from_slice(&self.scratch);
        } else {
            out.push(RAW);
            out.extend_from_slice(data);
        }
        let tag = XChaCha20Poly1305::new(key.into())
            .encrypt_in_place_detached(
                XNonce::from_slice(&nonce),
                id,
                &mut out[start + NONCE_LEN..],
            )
            .expect("XChaCha20-Poly1305 encryption cannot fail for in-memory buffers");
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
        assert_eq!(sealed.len(), noise.len() + 1 + NONCE_LEN + 16, "stored raw");
        assert_eq!(open_chunk(&key, &id, &sealed, noise.len()).unwrap(), noise);
    }
}
