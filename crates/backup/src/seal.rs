//! Authenticated encryption of every object, and the chunk format inside packs.
//!
//! XChaCha20-Poly1305 with a fresh random 192-bit nonce per object: no nonce state has to
//! survive between runs, machines or targets. The associated data binds each ciphertext to
//! its name (a chunk to its id, a snapshot to its id), so objects cannot be swapped.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
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

/// Compresses (when worthwhile) and seals one chunk.
pub fn seal_chunk(key: &[u8; 32], id: &[u8; 32], data: &[u8]) -> Vec<u8> {
    let mut plain = Vec::with_capacity(data.len() + 1);
    plain.push(ZSTD);
    match zstd::bulk::compress(data, 1) {
        Ok(c) if (c.len() as f64) < data.len() as f64 * WORTHWHILE => plain.extend_from_slice(&c),
        _ => {
            plain[0] = RAW;
            plain.extend_from_slice(data);
        }
    }
    seal(key, &plain, id)
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
