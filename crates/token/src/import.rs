//! A PKCS#8 private key as a PKCS#11 object template (imported identities: an HPKI or other
//! certificate's key from a PKCS#12 file). Nothing of the key stays outside the token.

use cryptoki::object::{Attribute, KeyType, ObjectClass};
use der::asn1::{ObjectIdentifier as Oid, OctetStringRef, UintRef};
use der::{Decode, Encode};

const EC_PUBLIC_KEY: Oid = Oid::new_unwrap("1.2.840.10045.2.1");
const RSA_ENCRYPTION: Oid = Oid::new_unwrap("1.2.840.113549.1.1.1");
const P256: Oid = Oid::new_unwrap("1.2.840.10045.3.1.7");
const P384: Oid = Oid::new_unwrap("1.3.132.0.34");

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("秘密鍵を PKCS#8 として読めません: {0}")]
    Malformed(String),
    #[error("この鍵の形式には対応していません（ECDSA P-256/P-384 または RSA）")]
    Unsupported,
}

fn malformed(e: impl std::fmt::Display) -> ImportError {
    ImportError::Malformed(e.to_string())
}

/// RFC 5915 ECPrivateKey, only what the token needs.
#[derive(der::Sequence)]
struct EcPrivateKey<'a> {
    version: UintRef<'a>,
    private_key: OctetStringRef<'a>,
    #[asn1(context_specific = "0", optional = "true")]
    parameters: Option<Oid>,
    #[asn1(context_specific = "1", optional = "true")]
    public_key: Option<der::asn1::BitStringRef<'a>>,
}

/// RFC 8017 RSAPrivateKey (two primes).
#[derive(der::Sequence)]
struct RsaPrivateKey<'a> {
    version: UintRef<'a>,
    modulus: UintRef<'a>,
    public_exponent: UintRef<'a>,
    private_exponent: UintRef<'a>,
    prime1: UintRef<'a>,
    prime2: UintRef<'a>,
    exponent1: UintRef<'a>,
    exponent2: UintRef<'a>,
    coefficient: UintRef<'a>,
}

/// The `C_CreateObject` template of a private key: token, private, sensitive, not extractable,
/// usable for signing only, found by `id`.
pub(crate) fn private_key_template(pkcs8: &[u8], id: &[u8]) -> Result<Vec<Attribute>, ImportError> {
    let info = pkcs8::PrivateKeyInfo::from_der(pkcs8).map_err(malformed)?;
    let mut t = vec![
        Attribute::Class(ObjectClass::PRIVATE_KEY),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
        Attribute::Label(id.to_vec()),
        Attribute::Id(id.to_vec()),
    ];
    match info.algorithm.oid {
        EC_PUBLIC_KEY => {
            let key = EcPrivateKey::from_der(info.private_key).map_err(malformed)?;
            let curve = info
                .algorithm
                .parameters_oid()
                .ok()
                .or(key.parameters)
                .ok_or(ImportError::Unsupported)?;
            if curve != P256 && curve != P384 {
                return Err(ImportError::Unsupported);
            }
            t.push(Attribute::KeyType(KeyType::EC));
            t.push(Attribute::EcParams(curve.to_der().map_err(malformed)?));
            t.push(Attribute::Value(key.private_key.as_bytes().to_vec()));
        }
        RSA_ENCRYPTION => {
            let k = RsaPrivateKey::from_der(info.private_key).map_err(malformed)?;
            let b = |u: UintRef<'_>| u.as_bytes().to_vec();
            t.push(Attribute::KeyType(KeyType::RSA));
            t.push(Attribute::Modulus(b(k.modulus)));
            t.push(Attribute::PublicExponent(b(k.public_exponent)));
            t.push(Attribute::PrivateExponent(b(k.private_exponent)));
            t.push(Attribute::Prime1(b(k.prime1)));
            t.push(Attribute::Prime2(b(k.prime2)));
            t.push(Attribute::Exponent1(b(k.exponent1)));
            t.push(Attribute::Exponent2(b(k.exponent2)));
            t.push(Attribute::Coefficient(b(k.coefficient)));
        }
        _ => return Err(ImportError::Unsupported),
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broken_or_foreign_key_is_refused_with_a_reason() {
        assert!(matches!(
            private_key_template(b"not a key", b"x"),
            Err(ImportError::Malformed(_))
        ));
        // An Ed25519 PKCS#8 key (RFC 8410 example).
        let ed = hex_literal(
            "302e020100300506032b657004220420d4ee72dbf913584ad5b6d8f1f769f8ad3afe7c28cbf1d4fbe097a88f44755842",
        );
        assert!(matches!(
            private_key_template(&ed, b"x"),
            Err(ImportError::Unsupported)
        ));
    }

    fn hex_literal(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }
}
