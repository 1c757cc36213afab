//! Certificates: parsing, signature checks with ring, and a simple chain walk at a point in
//! time (the time a time-stamp proves, not "now": a signature stays valid after its
//! certificate expires if it was time-stamped while the certificate was valid).

use der::asn1::ObjectIdentifier as Oid;
use der::{Decode, DecodePem, Encode};
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::Certificate;

use crate::asn1::*;
use crate::{EvidenceError, Result, UnixMs, sha256};

/// A parsed certificate and its exact DER bytes.
#[derive(Clone, Debug)]
pub struct Cert {
    pub der: Vec<u8>,
    pub parsed: Certificate,
}

impl PartialEq for Cert {
    fn eq(&self, other: &Self) -> bool {
        self.der == other.der
    }
}

impl Cert {
    pub fn from_der(der: &[u8]) -> Result<Self> {
        let parsed =
            Certificate::from_der(der).map_err(|e| EvidenceError::malformed("証明書", e))?;
        Ok(Self {
            der: der.to_vec(),
            parsed,
        })
    }

    pub fn from_parsed(parsed: Certificate) -> Result<Self> {
        let der = parsed
            .to_der()
            .map_err(|e| EvidenceError::malformed("証明書", e))?;
        Ok(Self { der, parsed })
    }

    /// Every certificate in a PEM text (a chain or a trust list).
    pub fn from_pem_chain(pem: &str) -> Result<Vec<Self>> {
        let mut out = Vec::new();
        for block in pem.split_inclusive("-----END CERTIFICATE-----") {
            let Some(start) = block.find("-----BEGIN CERTIFICATE-----") else {
                continue;
            };
            let parsed = Certificate::from_pem(&block[start..])
                .map_err(|e| EvidenceError::malformed("PEM 証明書", e))?;
            out.push(Self::from_parsed(parsed)?);
        }
        Ok(out)
    }

    pub fn to_pem(&self) -> String {
        use std::fmt::Write;
        let b64 = base64_lines(&self.der);
        let mut s = String::from("-----BEGIN CERTIFICATE-----\n");
        let _ = write!(s, "{b64}");
        s.push_str("-----END CERTIFICATE-----\n");
        s
    }

    pub fn subject(&self) -> String {
        self.parsed.tbs_certificate.subject.to_string()
    }

    pub fn issuer(&self) -> String {
        self.parsed.tbs_certificate.issuer.to_string()
    }

    pub fn serial_hex(&self) -> String {
        hex::encode(self.parsed.tbs_certificate.serial_number.as_bytes())
    }

    pub fn not_before(&self) -> UnixMs {
        let t = self.parsed.tbs_certificate.validity.not_before;
        t.to_unix_duration().as_millis() as UnixMs
    }

    pub fn not_after(&self) -> UnixMs {
        let t = self.parsed.tbs_certificate.validity.not_after;
        t.to_unix_duration().as_millis() as UnixMs
    }

    pub fn valid_at(&self, at: UnixMs) -> bool {
        self.not_before() <= at && at <= self.not_after()
    }

    pub fn sha256(&self) -> [u8; 32] {
        sha256(&self.der)
    }

    pub fn spki(&self) -> &SubjectPublicKeyInfoOwned {
        &self.parsed.tbs_certificate.subject_public_key_info
    }

    fn extension(&self, oid: Oid) -> Option<&[u8]> {
        self.parsed
            .tbs_certificate
            .extensions
            .as_ref()?
            .iter()
            .find(|e| e.extn_id == oid)
            .map(|e| e.extn_value.as_bytes())
    }

    /// Whether the extended key usage lists `purpose`.
    pub fn has_eku(&self, purpose: Oid) -> bool {
        let Some(v) = self.extension(ID_CE_EXT_KEY_USAGE) else {
            return false;
        };
        Vec::<Oid>::from_der(v).is_ok_and(|l| l.contains(&purpose))
    }

    /// Whether the extended key usage extension is marked critical (RFC 3161 asks it of TSAs).
    pub fn eku_critical(&self) -> bool {
        self.parsed
            .tbs_certificate
            .extensions
            .as_ref()
            .and_then(|l| l.iter().find(|e| e.extn_id == ID_CE_EXT_KEY_USAGE))
            .is_some_and(|e| e.critical)
    }

    pub fn is_ca(&self) -> bool {
        use x509_cert::ext::pkix::BasicConstraints;
        self.extension(ID_CE_BASIC_CONSTRAINTS)
            .and_then(|v| BasicConstraints::from_der(v).ok())
            .is_some_and(|b| b.ca)
    }

    /// Whether `issuer` signed this certificate (name and signature).
    pub fn is_signed_by(&self, issuer: &Cert) -> bool {
        if self.parsed.tbs_certificate.issuer != issuer.parsed.tbs_certificate.subject {
            return false;
        }
        let Ok(tbs) = self.parsed.tbs_certificate.to_der() else {
            return false;
        };
        let Some(sig) = self.parsed.signature.as_bytes() else {
            return false;
        };
        verify_raw(
            issuer.spki(),
            &self.parsed.signature_algorithm.oid,
            None,
            &tbs,
            sig,
        )
        .is_ok()
    }
}

fn base64_lines(der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::new();
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out
}

/// Verifies `sig` over `msg` with the key in `spki`. `sig_alg` is the signature algorithm;
/// for CMS signer infos that name only `rsaEncryption`, `digest` says which hash was used.
pub fn verify_raw(
    spki: &SubjectPublicKeyInfoOwned,
    sig_alg: &Oid,
    digest: Option<&Oid>,
    msg: &[u8],
    sig: &[u8],
) -> Result<()> {
    use ring::signature as s;
    let key = spki
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| EvidenceError::malformed("公開鍵", "bit string"))?;
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.decode_as::<Oid>().ok());
    let alg: &dyn s::VerificationAlgorithm = if spki.algorithm.oid == ID_EC_PUBLIC_KEY {
        match (curve, *sig_alg) {
            (Some(SECP256R1), ECDSA_WITH_SHA256) => &s::ECDSA_P256_SHA256_ASN1,
            (Some(SECP256R1), ECDSA_WITH_SHA384) => &s::ECDSA_P256_SHA384_ASN1,
            (Some(SECP384R1), ECDSA_WITH_SHA256) => &s::ECDSA_P384_SHA256_ASN1,
            (Some(SECP384R1), ECDSA_WITH_SHA384) => &s::ECDSA_P384_SHA384_ASN1,
            _ => return Err(unsupported()),
        }
    } else if spki.algorithm.oid == RSA_ENCRYPTION {
        let alg = if *sig_alg == RSA_ENCRYPTION {
            match digest {
                Some(&ID_SHA256) => SHA256_WITH_RSA,
                Some(&ID_SHA384) => SHA384_WITH_RSA,
                Some(&ID_SHA512) => SHA512_WITH_RSA,
                _ => return Err(unsupported()),
            }
        } else {
            *sig_alg
        };
        match alg {
            SHA256_WITH_RSA => &s::RSA_PKCS1_2048_8192_SHA256,
            SHA384_WITH_RSA => &s::RSA_PKCS1_2048_8192_SHA384,
            SHA512_WITH_RSA => &s::RSA_PKCS1_2048_8192_SHA512,
            _ => return Err(unsupported()),
        }
    } else {
        return Err(unsupported());
    };
    s::UnparsedPublicKey::new(alg, key)
        .verify(msg, sig)
        .map_err(|_| EvidenceError::new("bad_signature", "署名値が公開鍵と一致しません"))
}

fn unsupported() -> EvidenceError {
    EvidenceError::new(
        "unsupported_algorithm",
        "対応していない署名アルゴリズムです（ECDSA P-256/P-384 または RSA PKCS#1 v1.5）",
    )
}

/// Builds the path from `leaf` to one of `anchors` through `pool` and checks every link and
/// every certificate's validity at `at`. Returns the path, leaf first, anchor last.
pub fn chain_to_anchor(
    leaf: &Cert,
    pool: &[Cert],
    anchors: &[Cert],
    at: UnixMs,
) -> Result<Vec<Cert>> {
    let mut path = vec![leaf.clone()];
    loop {
        let current = path.last().expect("path starts with the leaf");
        if !current.valid_at(at) {
            return Err(EvidenceError::new(
                "cert_not_valid",
                format!(
                    "証明書「{}」はその時点（{}）で有効期間外です",
                    current.subject(),
                    crate::tsp::format_time(at)
                ),
            ));
        }
        if anchors.contains(current) {
            return Ok(path);
        }
        if path.len() > 8 {
            break;
        }
        let next = anchors
            .iter()
            .chain(pool.iter())
            .find(|c| *c != current && c.is_ca() && current.is_signed_by(c))
            .cloned();
        match next {
            Some(c) => path.push(c),
            None => break,
        }
    }
    Err(EvidenceError::new(
        "untrusted",
        format!(
            "証明書「{}」を信頼できる認証局までたどれません",
            leaf.subject()
        ),
    ))
}
