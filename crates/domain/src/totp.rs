//! Second factor by time-based one-time password (RFC 6238: HMAC-SHA1, 6 digits, 30 s), as
//! every authenticator app implements it. One step either side is accepted for clock drift;
//! a code is accepted once (the step of the last accepted code is remembered).

use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, Secret, TOTP};

use crate::Millis;

pub const STEP_SECONDS: u64 = 30;
pub const DIGITS: usize = 6;
/// Bytes of secret: 160 bits, the HMAC-SHA1 block RFC 4226 recommends.
pub const SECRET_BYTES: usize = 20;

fn totp(secret: &[u8]) -> TOTP {
    TOTP::new_unchecked(Algorithm::SHA1, DIGITS, 1, STEP_SECONDS, secret.to_vec())
}

pub fn step_at(now: Millis) -> i64 {
    now.div_euclid(1000) / STEP_SECONDS as i64
}

/// The code for time step `step` (what the person's app shows).
pub fn code_at_step(secret: &[u8], step: i64) -> String {
    totp(secret).generate(step.max(0) as u64 * STEP_SECONDS)
}

/// Base32 (RFC 4648, no padding), as apps expect to see the secret typed in.
pub fn encode_secret(secret: &[u8]) -> String {
    match Secret::Raw(secret.to_vec()).to_encoded() {
        Secret::Encoded(s) => s.trim_end_matches('=').to_owned(),
        Secret::Raw(_) => unreachable!("to_encoded returns Encoded"),
    }
}

pub fn decode_secret(b32: &str) -> Option<Vec<u8>> {
    Secret::Encoded(b32.to_owned()).to_bytes().ok()
}

/// `otpauth://` URI for the QR code; issuer and account are percent-encoded.
pub fn otpauth_uri(issuer: &str, account: &str, secret_b32: &str) -> String {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    };
    format!(
        "otpauth://totp/{}:{}?secret={secret_b32}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
        enc(issuer),
        enc(account),
        enc(issuer)
    )
}

/// The step of `code` if it is right for now (±1 step) and newer than `last_step`.
pub fn accept(secret: &[u8], code: &str, now: Millis, last_step: i64) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now_step = step_at(now);
    // Check every candidate (no early exit) so timing does not tell which step matched.
    let mut found = None;
    for step in [now_step - 1, now_step, now_step + 1] {
        let ok: bool = code_at_step(secret, step)
            .as_bytes()
            .ct_eq(code.as_bytes())
            .into();
        if ok && step > last_step {
            found = Some(step);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, SHA-1 rows (8 digits there; the last 6 are the 6-digit code).
    #[test]
    fn rfc6238_known_answers() {
        let secret = b"12345678901234567890";
        for (t, eight) in [
            (59u64, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            let step = (t / STEP_SECONDS) as i64;
            assert_eq!(code_at_step(secret, step), eight[2..], "T = {t}");
        }
    }

    #[test]
    fn drift_window_and_no_replay() {
        let secret = [7u8; SECRET_BYTES];
        let now: Millis = 1_795_482_000_000;
        let step = step_at(now);
        let code = code_at_step(&secret, step);
        assert_eq!(accept(&secret, &code, now, 0), Some(step));
        assert_eq!(accept(&secret, &code, now, step), None, "replay refused");
        let prev = code_at_step(&secret, step - 1);
        assert_eq!(accept(&secret, &prev, now, 0), Some(step - 1));
        let old = code_at_step(&secret, step - 2);
        assert_eq!(accept(&secret, &old, now, 0), None, "too old");
        assert_eq!(accept(&secret, "12345", now, 0), None);
        assert_eq!(accept(&secret, "abcdef", now, 0), None);
        let spaced = format!("{} {}", &code[..3], &code[3..]);
        assert_eq!(accept(&secret, &spaced, now, 0), Some(step));
    }

    #[test]
    fn secrets_round_trip_through_base32() {
        let secret: Vec<u8> = (0..SECRET_BYTES as u8).collect();
        let b32 = encode_secret(&secret);
        assert!(!b32.contains('='));
        assert_eq!(decode_secret(&b32).unwrap(), secret);
        let uri = otpauth_uri("守りクリニック", "dr.tanaka", &b32);
        assert!(uri.starts_with("otpauth://totp/%E5%AE%88"));
        assert!(uri.contains(&format!("secret={b32}&")));
    }
}
