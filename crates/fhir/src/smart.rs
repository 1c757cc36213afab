//! SMART Backend Services (SMART App Launch 2.x, "client-confidential-asymmetric"): the scopes
//! an integration may hold (`system/DocumentReference.write`, `system/Patient.rs`, …) and the
//! check of the signed JWT it authenticates with at the token endpoint (RFC 7523 client
//! assertion, `private_key_jwt`).
//!
//! The JWT is checked here on ring rather than with a JWT crate: mamori accepts exactly three
//! asymmetric algorithms bound to the one public key the administrator registered, reads the
//! claims into typed fields (a claim of the wrong JSON type refuses the assertion — the class of
//! bug behind CVE-2026-25537 in `jsonwebtoken` < 10.3), and the maintained `jsonwebtoken`
//! releases would bring a second crypto stack (RustCrypto's `rsa`, `p256`, `p384`, or aws-lc)
//! beside the ring the workspace already uses.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{self, UnparsedPublicKey};
use serde::Deserialize;
use serde_json::Value;

/// `client_assertion_type` of a signed-JWT client authentication (RFC 7523).
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// The signing algorithms accepted (SMART requires RS384 and ES384 of servers).
pub const ALGORITHMS: &[&str] = &["ES384", "RS384", "ES256"];
/// How long an access token lives (seconds).
pub const TOKEN_LIFETIME_S: i64 = 300;
/// How far in the future an assertion may expire (SMART: at most five minutes).
pub const MAX_ASSERTION_LIFETIME_S: i64 = 300;
/// Clock difference tolerated between the client and mamori (seconds).
const SKEW_S: i64 = 60;

/// One permission a scope grants on a resource type (SMART 2: `c r u d s`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permission {
    Create,
    Read,
    Update,
    Delete,
    Search,
}

impl Permission {
    const fn bit(self) -> u8 {
        match self {
            Self::Create => 1,
            Self::Read => 2,
            Self::Update => 4,
            Self::Delete => 8,
            Self::Search => 16,
        }
    }

    /// The permission an interaction needs: GET of `/Type/id…` reads, of `/Type` searches.
    pub fn of_request(method: &str, has_id: bool) -> Option<Self> {
        match method {
            "GET" | "HEAD" if has_id => Some(Self::Read),
            "GET" | "HEAD" => Some(Self::Search),
            "POST" => Some(Self::Create),
            "PUT" | "PATCH" => Some(Self::Update),
            "DELETE" => Some(Self::Delete),
            _ => None,
        }
    }
}

/// A `system/` scope: a resource type (or `*`) and the permissions it grants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scope {
    resource: String,
    permissions: u8,
}

impl Scope {
    /// Reads `system/Type.read|write|*` (SMART 1) or `system/Type.cruds` (SMART 2, letters in
    /// that order). Patient- and user-level scopes are not for backend services.
    pub fn parse(s: &str) -> Option<Self> {
        let rest = s.strip_prefix("system/")?;
        let (resource, perms) = rest.split_once('.')?;
        let resource_ok = resource == "*"
            || (resource.len() <= 64
                && resource.starts_with(|c: char| c.is_ascii_uppercase())
                && resource.chars().all(|c| c.is_ascii_alphanumeric()));
        if !resource_ok {
            return None;
        }
        let all = Permission::Create.bit()
            | Permission::Read.bit()
            | Permission::Update.bit()
            | Permission::Delete.bit()
            | Permission::Search.bit();
        let permissions = match perms {
            "read" => Permission::Read.bit() | Permission::Search.bit(),
            "write" => {
                Permission::Create.bit() | Permission::Update.bit() | Permission::Delete.bit()
            }
            "*" => all,
            letters => {
                let order = ['c', 'r', 'u', 'd', 's'];
                let mut bits = 0u8;
                let mut at = 0;
                for ch in letters.chars() {
                    let i = order[at..].iter().position(|&o| o == ch)? + at;
                    bits |= 1 << i;
                    at = i + 1;
                }
                if bits == 0 {
                    return None;
                }
                bits
            }
        };
        Some(Self {
            resource: resource.to_owned(),
            permissions,
        })
    }

    pub fn permits(&self, resource: &str, p: Permission) -> bool {
        (self.resource == "*" || self.resource == resource) && self.permissions & p.bit() != 0
    }

    /// Whether everything `other` grants, this grants too.
    pub fn covers(&self, other: &Scope) -> bool {
        (self.resource == "*" || self.resource == other.resource)
            && other.permissions & !self.permissions == 0
    }
}

/// Whether a token's scopes grant `p` on `resource`.
pub fn permits(scopes: &[String], resource: &str, p: Permission) -> bool {
    scopes
        .iter()
        .filter_map(|s| Scope::parse(s))
        .any(|s| s.permits(resource, p))
}

/// Whether a scope string is a SMART system scope (a token holding one is an OAuth token,
/// valid on `/fhir/r4` only).
pub fn is_system_scope(s: &str) -> bool {
    s.starts_with("system/")
}

/// The scopes granted for a request: each requested scope that one of the client's registered
/// scopes covers. A requested scope that is not SMART syntax is an error (`invalid_scope`);
/// one the client may not have is left out, as OAuth allows; nothing granted is an error.
pub fn grant(requested: &str, registered: &[String]) -> Result<Vec<String>, String> {
    let allowed: Vec<Scope> = registered.iter().filter_map(|s| Scope::parse(s)).collect();
    let mut granted = Vec::new();
    for s in requested.split_ascii_whitespace() {
        let Some(scope) = Scope::parse(s) else {
            return Err(format!(
                "スコープ「{}」は読めません（system/リソース型.read|write|cruds の形で指定してください）",
                clip(s)
            ));
        };
        if allowed.iter().any(|a| a.covers(&scope)) && !granted.iter().any(|g| g == s) {
            granted.push(s.to_owned());
        }
    }
    if granted.is_empty() {
        return Err(
            "求められたスコープは、このクライアントに登録されたスコープに含まれません".into(),
        );
    }
    Ok(granted)
}

/// A client's registered public key (a JWK without any private part).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublicKey {
    /// P-256 or P-384: the uncompressed point.
    Ec { curve: Curve, point: Vec<u8> },
    /// RSA of at least 2048 bits.
    Rsa { n: Vec<u8>, e: Vec<u8> },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Curve {
    P256,
    P384,
}

impl PublicKey {
    /// Reads a public JWK (RFC 7517); a key with private parts is refused, so that no
    /// private key is ever registered (and kept) by mistake.
    pub fn from_jwk(jwk: &Value) -> Result<Self, String> {
        let field = |name: &str| -> Result<Vec<u8>, String> {
            let s = jwk[name]
                .as_str()
                .ok_or_else(|| format!("JWK に {name} がありません"))?;
            URL_SAFE_NO_PAD
                .decode(s)
                .map_err(|_| format!("JWK の {name} が base64url ではありません"))
        };
        if ["d", "p", "q", "dp", "dq", "qi"]
            .iter()
            .any(|k| jwk.get(k).is_some())
        {
            return Err(
                "秘密鍵を含む JWK です。公開鍵だけを登録してください（秘密鍵はクライアントから出さないでください）".into(),
            );
        }
        match jwk["kty"].as_str() {
            Some("EC") => {
                let (curve, len) = match jwk["crv"].as_str() {
                    Some("P-256") => (Curve::P256, 32),
                    Some("P-384") => (Curve::P384, 48),
                    _ => return Err("EC の JWK は crv を P-256 か P-384 にしてください".into()),
                };
                let (x, y) = (field("x")?, field("y")?);
                if x.len() != len || y.len() != len {
                    return Err("JWK の x / y の長さが曲線と合いません".into());
                }
                let mut point = vec![4u8];
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                Ok(Self::Ec { curve, point })
            }
            Some("RSA") => {
                let (n, e) = (field("n")?, field("e")?);
                let bits = n.iter().skip_while(|b| **b == 0).count() * 8;
                if bits < 2048 {
                    return Err("RSA の鍵は 2048 ビット以上にしてください".into());
                }
                Ok(Self::Rsa { n, e })
            }
            _ => Err("JWK の kty は EC か RSA にしてください".into()),
        }
    }

    /// The one algorithm this key signs assertions with.
    pub fn algorithm(&self) -> &'static str {
        match self {
            Self::Ec {
                curve: Curve::P256, ..
            } => "ES256",
            Self::Ec {
                curve: Curve::P384, ..
            } => "ES384",
            Self::Rsa { .. } => "RS384",
        }
    }

    fn verify(&self, message: &[u8], sig: &[u8]) -> bool {
        match self {
            Self::Ec { curve, point } => {
                let alg = match curve {
                    Curve::P256 => &signature::ECDSA_P256_SHA256_FIXED,
                    Curve::P384 => &signature::ECDSA_P384_SHA384_FIXED,
                };
                UnparsedPublicKey::new(alg, point)
                    .verify(message, sig)
                    .is_ok()
            }
            Self::Rsa { n, e } => signature::RsaPublicKeyComponents { n, e }
                .verify(&signature::RSA_PKCS1_2048_8192_SHA384, message, sig)
                .is_ok(),
        }
    }
}

/// Why an assertion was refused: the OAuth error and the reason in Japanese.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// `invalid_client` (the signature or the claims) or `invalid_request` (not a JWT).
    pub error: &'static str,
    pub reason: String,
}

fn refused(error: &'static str, reason: impl Into<String>) -> Refused {
    Refused {
        error,
        reason: reason.into(),
    }
}

/// What a verified assertion states that the server keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assertion {
    /// Its unique ID, kept until it expires so that it is used once.
    pub jti: String,
    /// When it expires (seconds since the epoch).
    pub exp: i64,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    crit: Option<Value>,
}

/// The claims, typed: a claim of the wrong JSON type fails the parse and refuses the assertion.
#[derive(Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    aud: Audience,
    exp: i64,
    jti: String,
    #[serde(default)]
    nbf: Option<i64>,
    #[serde(default)]
    iat: Option<i64>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

/// The `iss` of an assertion, read without verifying anything: which client claims to send it
/// (to find its key). Nothing else of an unverified assertion is trusted.
pub fn claimed_client(jwt: &str) -> Option<String> {
    let payload = jwt.split('.').nth(1)?;
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    claims["iss"].as_str().map(clip)
}

/// Checks a client assertion: compact JWS with the key's algorithm, signed by `key`; `iss` and
/// `sub` are `client_id`; `aud` is the token endpoint; it expires within five minutes from
/// `now` (seconds), is not from the future, and has a `jti`.
pub fn verify_assertion(
    jwt: &str,
    key: &PublicKey,
    client_id: &str,
    audience: &str,
    now: i64,
) -> Result<Assertion, Refused> {
    let parts: Vec<&str> = jwt.split('.').collect();
    let [h, p, s] = parts[..] else {
        return Err(refused(
            "invalid_request",
            "client_assertion が JWT（ヘッダー.クレーム.署名）の形ではありません",
        ));
    };
    let decode = |part: &str, what: &str| {
        URL_SAFE_NO_PAD.decode(part).map_err(|_| {
            refused(
                "invalid_request",
                format!("JWT の{what}が base64url ではありません"),
            )
        })
    };
    let header: Header = serde_json::from_slice(&decode(h, "ヘッダー")?)
        .map_err(|_| refused("invalid_request", "JWT のヘッダーが読めません"))?;
    if header.crit.is_some() {
        return Err(refused(
            "invalid_client",
            "JWT の crit ヘッダーには対応していません",
        ));
    }
    if header.alg != key.algorithm() {
        return Err(refused(
            "invalid_client",
            format!(
                "JWT の alg「{}」は登録された鍵のアルゴリズム（{}）と違います",
                clip(&header.alg),
                key.algorithm()
            ),
        ));
    }
    let sig = decode(s, "署名")?;
    if !key.verify(format!("{h}.{p}").as_bytes(), &sig) {
        return Err(refused(
            "invalid_client",
            "JWT の署名が登録された公開鍵で検証できません",
        ));
    }
    let claims: Claims = serde_json::from_slice(&decode(p, "クレーム")?).map_err(|e| {
        refused(
            "invalid_client",
            format!(
                "JWT のクレームが読めません（iss, sub, aud, exp, jti が必要で、exp は数値）: {e}"
            ),
        )
    })?;
    if claims.iss != client_id || claims.sub != client_id {
        return Err(refused(
            "invalid_client",
            "JWT の iss と sub はどちらも client_id にしてください",
        ));
    }
    let aud_ok = match &claims.aud {
        Audience::One(a) => a == audience,
        Audience::Many(list) => list.iter().any(|a| a == audience),
    };
    if !aud_ok {
        return Err(refused(
            "invalid_client",
            format!("JWT の aud はトークンエンドポイント {audience} にしてください"),
        ));
    }
    if claims.exp <= now - SKEW_S {
        return Err(refused(
            "invalid_client",
            "JWT の有効期限（exp）が過ぎています",
        ));
    }
    if claims.exp > now + MAX_ASSERTION_LIFETIME_S + SKEW_S {
        return Err(refused(
            "invalid_client",
            "JWT の有効期限（exp）は5分以内にしてください",
        ));
    }
    if claims.nbf.is_some_and(|t| t > now + SKEW_S) || claims.iat.is_some_and(|t| t > now + SKEW_S)
    {
        return Err(refused(
            "invalid_client",
            "JWT の nbf / iat が未来の時刻です",
        ));
    }
    if claims.jti.is_empty() || claims.jti.len() > 256 {
        return Err(refused(
            "invalid_client",
            "JWT の jti を 1〜256 文字で指定してください",
        ));
    }
    Ok(Assertion {
        jti: claims.jti,
        exp: claims.exp,
    })
}

/// The client side, for an operator testing an integration (`mamori fhir assertion`) and for
/// the tests: a P-384 key (ES384), its public JWK to register, and signed assertions.
pub struct ClientKey {
    pair: signature::EcdsaKeyPair,
}

impl ClientKey {
    /// A new key and its PKCS#8 DER (to keep on the client).
    pub fn generate() -> (Self, Vec<u8>) {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = signature::EcdsaKeyPair::generate_pkcs8(
            &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
            &rng,
        )
        .expect("the system's random source");
        let der = pkcs8.as_ref().to_vec();
        (Self::from_pkcs8(&der).expect("a key just made"), der)
    }

    /// A P-384 key from its PKCS#8 DER.
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, String> {
        signature::EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
            der,
            &ring::rand::SystemRandom::new(),
        )
        .map(|pair| Self { pair })
        .map_err(|_| "P-384 の PKCS#8 秘密鍵ではありません".to_owned())
    }

    /// The public key as a JWK, to register with the server.
    pub fn public_jwk(&self) -> Value {
        use ring::signature::KeyPair;
        let point = self.pair.public_key().as_ref();
        serde_json::json!({
            "kty": "EC", "crv": "P-384",
            "x": URL_SAFE_NO_PAD.encode(&point[1..49]),
            "y": URL_SAFE_NO_PAD.encode(&point[49..]),
        })
    }

    /// A client assertion for `client_id` at the token endpoint `audience`, valid for
    /// `lifetime` seconds from `now`.
    pub fn assertion(
        &self,
        client_id: &str,
        audience: &str,
        jti: &str,
        now: i64,
        lifetime: i64,
    ) -> String {
        let header = serde_json::json!({ "alg": "ES384", "typ": "JWT" });
        let claims = serde_json::json!({
            "iss": client_id, "sub": client_id, "aud": audience,
            "exp": now + lifetime, "iat": now, "jti": jti,
        });
        let signing = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let sig = self
            .pair
            .sign(&ring::rand::SystemRandom::new(), signing.as_bytes())
            .expect("signing with a valid key");
        format!("{signing}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
    }
}

/// A fresh assertion ID (128 random bits, hex).
pub fn random_jti() -> String {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut b)
        .expect("the system's random source");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// At most 64 characters of something a client sent, for messages and the ledger.
pub fn clip(s: &str) -> String {
    s.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    use serde_json::json;

    fn b64(b: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(b)
    }

    #[test]
    fn the_client_side_makes_assertions_the_server_side_accepts() {
        let (key, der) = ClientKey::generate();
        let again = ClientKey::from_pkcs8(&der).unwrap();
        let public = PublicKey::from_jwk(&again.public_jwk()).unwrap();
        let jwt = key.assertion("ehr-1", AUD, "j-9", NOW, 120);
        assert_eq!(
            verify_assertion(&jwt, &public, "ehr-1", AUD, NOW)
                .unwrap()
                .jti,
            "j-9"
        );
        assert!(ClientKey::from_pkcs8(b"not a key").is_err());
    }

    fn client_key() -> (EcdsaKeyPair, PublicKey) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &rng).unwrap();
        let kp = EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let point = kp.public_key().as_ref().to_vec();
        let jwk =
            json!({ "kty": "EC", "crv": "P-384", "x": b64(&point[1..49]), "y": b64(&point[49..]) });
        (kp, PublicKey::from_jwk(&jwk).unwrap())
    }

    fn jwt(kp: &EcdsaKeyPair, header: &Value, claims: &Value) -> String {
        let signing = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let sig = kp.sign(&SystemRandom::new(), signing.as_bytes()).unwrap();
        format!("{signing}.{}", b64(sig.as_ref()))
    }

    const AUD: &str = "https://clinic.example/fhir/r4/auth/token";
    const NOW: i64 = 1_800_000_000;

    fn claims() -> Value {
        json!({ "iss": "ehr-1", "sub": "ehr-1", "aud": AUD, "exp": NOW + 240, "jti": "a-1" })
    }

    #[test]
    fn a_well_formed_assertion_verifies_and_each_wrong_claim_refuses_it() {
        let (kp, key) = client_key();
        let h = json!({ "alg": "ES384", "typ": "JWT" });
        let ok = verify_assertion(&jwt(&kp, &h, &claims()), &key, "ehr-1", AUD, NOW).unwrap();
        assert_eq!(ok.jti, "a-1");
        let cases: Vec<(Value, Value)> = vec![
            (json!({ "alg": "RS384" }), claims()),
            (json!({ "alg": "none" }), claims()),
            (json!({ "alg": "ES384", "crit": ["x"] }), claims()),
            (h.clone(), {
                let mut c = claims();
                c["iss"] = json!("other");
                c
            }),
            (h.clone(), {
                let mut c = claims();
                c["sub"] = json!("other");
                c
            }),
            (h.clone(), {
                let mut c = claims();
                c["aud"] = json!("https://elsewhere/token");
                c
            }),
            (h.clone(), {
                let mut c = claims();
                c["exp"] = json!(NOW - 120);
                c
            }),
            (h.clone(), {
                let mut c = claims();
                c["exp"] = json!(NOW + 3_600);
                c
            }),
            // The wrong JSON type of a claim refuses; it is never read as "absent".
            (h.clone(), {
                let mut c = claims();
                c["exp"] = json!("99999999999");
                c
            }),
            (h.clone(), {
                let mut c = claims();
                c["nbf"] = json!("99999999999");
                c
            }),
            (h.clone(), {
                let mut c = claims();
                c["nbf"] = json!(NOW + 3_600);
                c
            }),
            (h.clone(), {
                let mut c = claims();
                c.as_object_mut().unwrap().remove("jti");
                c
            }),
            (h.clone(), {
                let mut c = claims();
                c["jti"] = json!("");
                c
            }),
        ];
        for (header, claims) in cases {
            let r = verify_assertion(&jwt(&kp, &header, &claims), &key, "ehr-1", AUD, NOW);
            assert!(r.is_err(), "accepted {header} {claims}");
        }
        // Another key's signature, a changed claim, garbage.
        let (other, _) = client_key();
        assert!(verify_assertion(&jwt(&other, &h, &claims()), &key, "ehr-1", AUD, NOW).is_err());
        let good = jwt(&kp, &h, &claims());
        let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
        let mut c = claims();
        c["sub"] = json!("ehr-1 ");
        parts[1] = b64(c.to_string().as_bytes());
        assert!(verify_assertion(&parts.join("."), &key, "ehr-1", AUD, NOW).is_err());
        for junk in ["", "a.b", "a.b.c.d", "%%%.%%%.%%%"] {
            assert_eq!(
                verify_assertion(junk, &key, "ehr-1", AUD, NOW)
                    .unwrap_err()
                    .error,
                "invalid_request"
            );
        }
    }

    #[test]
    fn private_keys_weak_rsa_and_unknown_curves_are_not_registered() {
        let (_, _) = client_key();
        let priv_ec = json!({ "kty": "EC", "crv": "P-256", "x": b64(&[1; 32]), "y": b64(&[2; 32]), "d": b64(&[3; 32]) });
        assert!(
            PublicKey::from_jwk(&priv_ec)
                .unwrap_err()
                .contains("秘密鍵")
        );
        let weak = json!({ "kty": "RSA", "n": b64(&[0xff; 128]), "e": "AQAB" });
        assert!(PublicKey::from_jwk(&weak).is_err());
        let strong = json!({ "kty": "RSA", "n": b64(&[0xff; 256]), "e": "AQAB" });
        assert_eq!(PublicKey::from_jwk(&strong).unwrap().algorithm(), "RS384");
        let secp256k1 =
            json!({ "kty": "EC", "crv": "secp256k1", "x": b64(&[1; 32]), "y": b64(&[2; 32]) });
        assert!(PublicKey::from_jwk(&secp256k1).is_err());
        assert!(PublicKey::from_jwk(&json!({ "kty": "oct", "k": "AAAA" })).is_err());
    }

    #[test]
    fn scopes_in_both_smart_grammars() {
        let w = Scope::parse("system/DocumentReference.write").unwrap();
        assert!(w.permits("DocumentReference", Permission::Create));
        assert!(!w.permits("DocumentReference", Permission::Read));
        assert!(!w.permits("Patient", Permission::Create));
        let rs = Scope::parse("system/Patient.rs").unwrap();
        assert!(rs.permits("Patient", Permission::Search));
        assert!(!rs.permits("Patient", Permission::Create));
        assert!(
            Scope::parse("system/*.read")
                .unwrap()
                .permits("AuditEvent", Permission::Read)
        );
        for bad in [
            "patient/Patient.read",
            "user/*.read",
            "system/Patient",
            "system/Patient.sr",
            "system/Patient.x",
            "system/patient.read",
            "system/.read",
            "system/Pa-tient.read",
            "openid",
        ] {
            assert!(Scope::parse(bad).is_none(), "{bad}");
        }
        let registered = vec![
            "system/DocumentReference.cruds".to_owned(),
            "system/Patient.read".to_owned(),
        ];
        assert_eq!(
            grant(
                "system/DocumentReference.write system/Patient.rs system/AuditEvent.read",
                &registered
            )
            .unwrap(),
            ["system/DocumentReference.write", "system/Patient.rs"]
        );
        assert!(grant("system/AuditEvent.read", &registered).is_err());
        assert!(grant("system/Patient.write", &registered).is_err());
        assert!(grant("launch/patient", &registered).is_err());
        assert!(grant("", &registered).is_err());
        assert!(permits(&registered, "Patient", Permission::Read));
        assert!(!permits(&registered, "Patient", Permission::Create));
    }
}
