//! Password hashing (argon2id), random tokens, constant-time comparison, and PKCS #8 keys in
//! PEM.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::{ErrorCode, Result, ServiceError};

fn argon2() -> Argon2<'static> {
    // OWASP's argon2id baseline: 19 MiB, 2 passes, 1 lane.
    Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(19 * 1024, 2, 1, None).expect("valid params"),
    )
}

pub fn hash_password(pw: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(pw.as_bytes(), &salt)
        .expect("argon2 hashing")
        .to_string()
}

/// A signing PIN stretched with argon2id under `salt`, as the token's PIN: a copy of the token
/// files then costs an attacker one argon2id per guess, not one cheap hash.
pub fn stretch_pin(pin: &str, salt: &[u8]) -> String {
    let mut out = [0u8; 32];
    argon2()
        .hash_password_into(pin.as_bytes(), salt, &mut out)
        .expect("argon2 with a 16-byte salt");
    hex::encode(out)
}

/// Verifies in constant time (argon2's comparison is constant-time).
pub fn verify_password(pw: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| argon2().verify_password(pw.as_bytes(), &h).is_ok())
}

/// Spends the same work as a real verification, so an unknown login takes as long as a wrong password.
pub fn burn_verify(pw: &str) {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let h = DUMMY.get_or_init(|| hash_password("mamori-timing-equaliser"));
    let _ = verify_password(pw, h);
}

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    OsRng.fill_bytes(&mut b);
    b
}

/// A one-time recovery code people can copy by hand: `xxxx-xxxx-xxxx`, 60 bits, from an
/// alphabet without look-alike characters.
pub fn recovery_code() -> String {
    grouped_code(b"abcdefghjkmnpqrstuvwxyz23456789", 3)
}

/// `groups` groups of four characters from `alphabet`, joined by hyphens.
pub fn grouped_code(alphabet: &[u8], groups: usize) -> String {
    // Rejection sampling: bytes past the last whole multiple of the alphabet would bias it.
    // (usize: for an alphabet that divides 256 the limit is 256 itself.)
    let limit = 256 / alphabet.len() * alphabet.len();
    let n = groups * 4;
    let mut chars = Vec::with_capacity(n);
    while chars.len() < n {
        for b in random_bytes::<16>() {
            if usize::from(b) < limit && chars.len() < n {
                chars.push(alphabet[b as usize % alphabet.len()] as char);
            }
        }
    }
    chars
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

pub fn random_token() -> String {
    let mut b = [0u8; 32];
    OsRng.fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

pub fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

/// Tokens are stored only as hashes, so a copy of the database does not log anyone in.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

pub fn ct_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// The PKCS#8 DER inside a `PRIVATE KEY` PEM (as rcgen writes and as imports are stored).
pub(crate) fn pkcs8_from_pem(pem: &str) -> Result<Vec<u8>> {
    use base64::Engine;
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body.trim())
        .map_err(|e| {
            ServiceError::new(
                ErrorCode::SigningKeyMissing,
                format!("署名鍵の形式が正しくありません: {e}"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_round_trip() {
        let h = hash_password("桜が咲く春の日に");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("桜が咲く春の日に", &h));
        assert!(!verify_password("桜が咲く春の日", &h));
        assert!(!verify_password("x", "not a hash"));
    }

    #[test]
    fn tokens() {
        assert_ne!(random_token(), random_token());
        assert_eq!(random_token().len(), 43);
        assert!(ct_eq("abc", "abc"));
        assert!(!ct_eq("abc", "abd"));
        assert!(!ct_eq("abc", "abcd"));
    }
}
