//! WebAuthn Level 2 for passkeys as a second factor: the server side of registration
//! (`navigator.credentials.create`) and of authentication (`navigator.credentials.get`).
//!
//! Only what a second factor needs: ES256 (P-256) credentials, `none` attestation (the
//! facility trusts the person's authenticator as enrolled while signed in, not a vendor
//! certificate), the relying-party ID and origins fixed by configuration (never taken from the
//! request), user presence required, and a signature counter that must move forward when the
//! authenticator keeps one. No I/O, no clock: the caller keeps challenges and credentials.
#![forbid(unsafe_code)]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ciborium::value::Value;
use ring::digest::{SHA256, digest};
use ring::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};
use serde::Deserialize;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasskeyError {
    #[error("応答の形式が正しくありません: {0}")]
    Malformed(&'static str),
    #[error("別の操作の応答です")]
    WrongType,
    #[error("確認の有効期限が切れたか、別の画面の応答です")]
    WrongChallenge,
    #[error("このサイトの応答ではありません（{0}）")]
    WrongOrigin(String),
    #[error("別のサイト向けのパスキーです")]
    WrongRelyingParty,
    #[error("認証器に触れて（本人が操作して）ください")]
    NoUserPresence,
    #[error("このパスキーの種類には対応していません（ES256 のみ）")]
    UnsupportedKey,
    #[error("署名が正しくありません")]
    BadSignature,
    #[error("認証器の使用回数が戻っています（複製の疑い）")]
    CounterWentBack,
}

type Result<T> = std::result::Result<T, PasskeyError>;

/// Where passkeys are valid: the relying-party ID (a host name, never an IP address) and the
/// exact origins pages are served from.
#[derive(Debug, Clone)]
pub struct RelyingParty {
    pub id: String,
    pub origins: Vec<String>,
}

impl RelyingParty {
    /// `origins` empty: `https://{id}` on any port, and `http://localhost[:port]` when the ID
    /// is `localhost` (browsers treat it as a secure context).
    fn allows(&self, origin: &str) -> bool {
        if !self.origins.is_empty() {
            return self.origins.iter().any(|o| o == origin);
        }
        let host_port = |rest: &str| {
            let host = rest.split(':').next().unwrap_or("");
            host == self.id
        };
        match origin.split_once("://") {
            Some(("https", rest)) => host_port(rest),
            Some(("http", rest)) => self.id == "localhost" && host_port(rest),
            _ => false,
        }
    }

    fn id_hash(&self) -> [u8; 32] {
        let d = digest(&SHA256, self.id.as_bytes());
        let mut h = [0u8; 32];
        h.copy_from_slice(d.as_ref());
        h
    }
}

#[derive(Deserialize)]
struct ClientData {
    #[serde(rename = "type")]
    kind: String,
    challenge: String,
    origin: String,
}

fn check_client_data(rp: &RelyingParty, json: &[u8], kind: &str, challenge: &[u8]) -> Result<()> {
    let c: ClientData =
        serde_json::from_slice(json).map_err(|_| PasskeyError::Malformed("clientDataJSON"))?;
    if c.kind != kind {
        return Err(PasskeyError::WrongType);
    }
    let got = B64
        .decode(c.challenge.trim_end_matches('='))
        .map_err(|_| PasskeyError::Malformed("challenge"))?;
    if !bool::from(subtle::ConstantTimeEq::ct_eq(got.as_slice(), challenge)) {
        return Err(PasskeyError::WrongChallenge);
    }
    if !rp.allows(&c.origin) {
        return Err(PasskeyError::WrongOrigin(c.origin));
    }
    Ok(())
}

const FLAG_UP: u8 = 0x01;
const FLAG_UV: u8 = 0x04;
const FLAG_AT: u8 = 0x40;

/// The fixed part of authenticator data: RP ID hash, flags, counter.
struct AuthData<'a> {
    rp_id_hash: &'a [u8],
    flags: u8,
    count: u32,
    rest: &'a [u8],
}

fn auth_data(b: &[u8]) -> Result<AuthData<'_>> {
    if b.len() < 37 {
        return Err(PasskeyError::Malformed("authenticatorData"));
    }
    Ok(AuthData {
        rp_id_hash: &b[..32],
        flags: b[32],
        count: u32::from_be_bytes([b[33], b[34], b[35], b[36]]),
        rest: &b[37..],
    })
}

fn check_auth_data(rp: &RelyingParty, a: &AuthData<'_>) -> Result<()> {
    if a.rp_id_hash != rp.id_hash() {
        return Err(PasskeyError::WrongRelyingParty);
    }
    if a.flags & FLAG_UP == 0 {
        return Err(PasskeyError::NoUserPresence);
    }
    Ok(())
}

fn map_get<'a>(m: &'a [(Value, Value)], key: &Value) -> Option<&'a Value> {
    m.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

/// A COSE_Key (RFC 9053) for ES256 as an uncompressed SEC1 point.
fn cose_es256(v: &Value) -> Result<Vec<u8>> {
    let m = v
        .as_map()
        .ok_or(PasskeyError::Malformed("credentialPublicKey"))?;
    let int = |k: i64| map_get(m, &Value::Integer(k.into()));
    let is = |k: i64, want: i64| {
        int(k)
            .and_then(Value::as_integer)
            .is_some_and(|i| i128::from(i) == i128::from(want))
    };
    // kty EC2 (2), alg ES256 (-7), crv P-256 (1)
    if !(is(1, 2) && is(3, -7) && is(-1, 1)) {
        return Err(PasskeyError::UnsupportedKey);
    }
    let coord = |k: i64| {
        int(k)
            .and_then(Value::as_bytes)
            .filter(|b| b.len() == 32)
            .ok_or(PasskeyError::Malformed("credentialPublicKey"))
    };
    let mut point = vec![0x04];
    point.extend_from_slice(coord(-2)?);
    point.extend_from_slice(coord(-3)?);
    Ok(point)
}

/// A credential accepted at registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub id: Vec<u8>,
    /// Uncompressed P-256 point (65 bytes).
    pub public_key: Vec<u8>,
    pub sign_count: u32,
    pub user_verified: bool,
}

/// Verifies a registration response (`response.clientDataJSON`, `response.attestationObject`)
/// against the challenge the server issued for it.
pub fn verify_registration(
    rp: &RelyingParty,
    challenge: &[u8],
    client_data_json: &[u8],
    attestation_object: &[u8],
) -> Result<Credential> {
    check_client_data(rp, client_data_json, "webauthn.create", challenge)?;
    let att: Value = ciborium::de::from_reader(attestation_object)
        .map_err(|_| PasskeyError::Malformed("attestationObject"))?;
    let m = att
        .as_map()
        .ok_or(PasskeyError::Malformed("attestationObject"))?;
    let raw = map_get(m, &Value::Text("authData".into()))
        .and_then(Value::as_bytes)
        .ok_or(PasskeyError::Malformed("authData"))?;
    let a = auth_data(raw)?;
    check_auth_data(rp, &a)?;
    if a.flags & FLAG_AT == 0 || a.rest.len() < 18 {
        return Err(PasskeyError::Malformed("attestedCredentialData"));
    }
    let len = usize::from(u16::from_be_bytes([a.rest[16], a.rest[17]]));
    let body = &a.rest[18..];
    if body.len() < len || len == 0 || len > 1023 {
        return Err(PasskeyError::Malformed("credentialId"));
    }
    let (id, key_bytes) = body.split_at(len);
    let key: Value = ciborium::de::from_reader(key_bytes)
        .map_err(|_| PasskeyError::Malformed("credentialPublicKey"))?;
    Ok(Credential {
        id: id.to_vec(),
        public_key: cose_es256(&key)?,
        sign_count: a.count,
        user_verified: a.flags & FLAG_UV != 0,
    })
}

/// Verifies an assertion by a registered credential; returns the new signature counter.
pub fn verify_assertion(
    rp: &RelyingParty,
    challenge: &[u8],
    public_key: &[u8],
    stored_count: u32,
    client_data_json: &[u8],
    authenticator_data: &[u8],
    signature: &[u8],
) -> Result<u32> {
    check_client_data(rp, client_data_json, "webauthn.get", challenge)?;
    let a = auth_data(authenticator_data)?;
    check_auth_data(rp, &a)?;
    let mut signed = authenticator_data.to_vec();
    signed.extend_from_slice(digest(&SHA256, client_data_json).as_ref());
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, public_key)
        .verify(&signed, signature)
        .map_err(|_| PasskeyError::BadSignature)?;
    // Authenticators that keep no counter send 0 every time (passkeys synced between devices).
    if (a.count != 0 || stored_count != 0) && a.count <= stored_count {
        return Err(PasskeyError::CounterWentBack);
    }
    Ok(a.count)
}

pub fn b64url(b: &[u8]) -> String {
    B64.encode(b)
}

pub fn from_b64url(s: &str) -> Option<Vec<u8>> {
    B64.decode(s.trim_end_matches('=')).ok()
}

/// A software authenticator (ES256, `none` attestation), for tests.
#[cfg(any(test, feature = "soft-authenticator"))]
pub mod soft {
    use ciborium::value::Value;
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};

    use super::{B64, Engine, FLAG_AT, FLAG_UP, FLAG_UV, SHA256, digest};

    pub struct Authenticator {
        key: EcdsaKeyPair,
        pub credential_id: Vec<u8>,
        pub count: u32,
        rng: SystemRandom,
    }

    fn client_data(kind: &str, challenge: &[u8], origin: &str) -> Vec<u8> {
        serde_json::json!({
            "type": kind,
            "challenge": B64.encode(challenge),
            "origin": origin,
            "crossOrigin": false,
        })
        .to_string()
        .into_bytes()
    }

    impl Default for Authenticator {
        fn default() -> Self {
            Self::new()
        }
    }

    impl Authenticator {
        pub fn new() -> Self {
            let rng = SystemRandom::new();
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
                .expect("key generation");
            let key =
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
                    .expect("key");
            let mut id = [0u8; 16];
            ring::rand::SecureRandom::fill(&rng, &mut id).expect("random");
            Self {
                key,
                credential_id: id.to_vec(),
                count: 0,
                rng,
            }
        }

        fn auth_data(&self, rp_id: &str, flags: u8) -> Vec<u8> {
            let mut a = digest(&SHA256, rp_id.as_bytes()).as_ref().to_vec();
            a.push(flags);
            a.extend_from_slice(&self.count.to_be_bytes());
            a
        }

        /// `(clientDataJSON, attestationObject)` for `navigator.credentials.create`.
        pub fn create(&self, rp_id: &str, origin: &str, challenge: &[u8]) -> (Vec<u8>, Vec<u8>) {
            let mut a = self.auth_data(rp_id, FLAG_UP | FLAG_UV | FLAG_AT);
            a.extend_from_slice(&[0u8; 16]); // AAGUID
            a.extend_from_slice(&(self.credential_id.len() as u16).to_be_bytes());
            a.extend_from_slice(&self.credential_id);
            let p = self.key.public_key().as_ref();
            let cose = Value::Map(vec![
                (Value::Integer(1.into()), Value::Integer(2.into())),
                (Value::Integer(3.into()), Value::Integer((-7).into())),
                (Value::Integer((-1).into()), Value::Integer(1.into())),
                (Value::Integer((-2).into()), Value::Bytes(p[1..33].to_vec())),
                (
                    Value::Integer((-3).into()),
                    Value::Bytes(p[33..65].to_vec()),
                ),
            ]);
            ciborium::ser::into_writer(&cose, &mut a).expect("CBOR");
            let att = Value::Map(vec![
                (Value::Text("fmt".into()), Value::Text("none".into())),
                (Value::Text("attStmt".into()), Value::Map(vec![])),
                (Value::Text("authData".into()), Value::Bytes(a)),
            ]);
            let mut out = Vec::new();
            ciborium::ser::into_writer(&att, &mut out).expect("CBOR");
            (client_data("webauthn.create", challenge, origin), out)
        }

        /// `(clientDataJSON, authenticatorData, signature)` for `navigator.credentials.get`;
        /// advances the counter.
        pub fn get(
            &mut self,
            rp_id: &str,
            origin: &str,
            challenge: &[u8],
        ) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
            self.count += 1;
            let a = self.auth_data(rp_id, FLAG_UP | FLAG_UV);
            let cd = client_data("webauthn.get", challenge, origin);
            let mut signed = a.clone();
            signed.extend_from_slice(digest(&SHA256, &cd).as_ref());
            let sig = self.key.sign(&self.rng, &signed).expect("sign");
            (cd, a, sig.as_ref().to_vec())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::soft::Authenticator;
    use super::*;

    fn rp() -> RelyingParty {
        RelyingParty {
            id: "localhost".into(),
            origins: vec![],
        }
    }

    #[test]
    fn register_then_authenticate() {
        let mut auth = Authenticator::new();
        let ch = b"registration challenge 32 bytes!";
        let (cd, att) = auth.create("localhost", "http://localhost:8080", ch);
        let c = verify_registration(&rp(), ch, &cd, &att).unwrap();
        assert_eq!(c.id, auth.credential_id);
        assert_eq!(c.public_key.len(), 65);
        assert!(c.user_verified);
        let ch2 = b"assertion challenge, 32 bytes ok";
        let (cd, ad, sig) = auth.get("localhost", "http://localhost:8080", ch2);
        let n = verify_assertion(&rp(), ch2, &c.public_key, c.sign_count, &cd, &ad, &sig).unwrap();
        assert_eq!(n, 1);
        // Replaying the same assertion: the counter did not move.
        assert_eq!(
            verify_assertion(&rp(), ch2, &c.public_key, n, &cd, &ad, &sig),
            Err(PasskeyError::CounterWentBack)
        );
    }

    #[test]
    fn refusals() {
        let mut auth = Authenticator::new();
        let ch = b"registration challenge 32 bytes!";
        let (cd, att) = auth.create("localhost", "http://localhost:8080", ch);
        assert_eq!(
            verify_registration(&rp(), b"another challenge..............!", &cd, &att),
            Err(PasskeyError::WrongChallenge)
        );
        let (cd_evil, att_evil) = auth.create("localhost", "https://evil.example", ch);
        assert!(matches!(
            verify_registration(&rp(), ch, &cd_evil, &att_evil),
            Err(PasskeyError::WrongOrigin(_))
        ));
        let (cd_other, att_other) = auth.create("evil.example", "http://localhost:8080", ch);
        assert_eq!(
            verify_registration(&rp(), ch, &cd_other, &att_other),
            Err(PasskeyError::WrongRelyingParty)
        );
        assert!(matches!(
            verify_registration(&rp(), ch, &cd, b"\xff\x00"),
            Err(PasskeyError::Malformed(_))
        ));
        let c = verify_registration(&rp(), ch, &cd, &att).unwrap();
        // An assertion answered for registration's type, or signed by another key.
        let (cd2, ad2, sig2) = auth.get("localhost", "http://localhost:8080", ch);
        assert_eq!(
            verify_assertion(&rp(), ch, &c.public_key, 0, &cd, &ad2, &sig2),
            Err(PasskeyError::WrongType)
        );
        let other = Authenticator::new();
        let (_, other_att) = other.create("localhost", "http://localhost:8080", ch);
        let other_c = verify_registration(&rp(), ch, &cd, &other_att).unwrap();
        assert_eq!(
            verify_assertion(&rp(), ch, &other_c.public_key, 0, &cd2, &ad2, &sig2),
            Err(PasskeyError::BadSignature)
        );
        // Without user presence.
        let mut no_up = ad2.clone();
        no_up[32] &= !FLAG_UP;
        assert_eq!(
            verify_assertion(&rp(), ch, &c.public_key, 0, &cd2, &no_up, &sig2),
            Err(PasskeyError::NoUserPresence)
        );
        // http is accepted only for localhost; configured origins are exact.
        let prod = RelyingParty {
            id: "mamori.clinic.example".into(),
            origins: vec![],
        };
        assert!(prod.allows("https://mamori.clinic.example:8443"));
        assert!(!prod.allows("http://mamori.clinic.example"));
        assert!(!prod.allows("https://mamori.clinic.example.evil"));
        let fixed = RelyingParty {
            id: "clinic.example".into(),
            origins: vec!["https://ehr.clinic.example".into()],
        };
        assert!(
            fixed.allows("https://ehr.clinic.example") && !fixed.allows("https://clinic.example")
        );
    }
}
