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

    /// Whether the key usage (if stated) allows signing certificates (RFC 5280 4.2.1.3).
    pub fn may_sign_certificates(&self) -> bool {
        use x509_cert::ext::pkix::{KeyUsage, KeyUsages};
        match self.extension(ID_CE_KEY_USAGE) {
            None => true,
            Some(v) => KeyUsage::from_der(v).is_ok_and(|k| k.0.contains(KeyUsages::KeyCertSign)),
        }
    }

    /// The pathLenConstraint of a CA certificate, if it states one.
    pub fn path_len(&self) -> Option<u8> {
        use x509_cert::ext::pkix::BasicConstraints;
        self.extension(ID_CE_BASIC_CONSTRAINTS)
            .and_then(|v| BasicConstraints::from_der(v).ok())
            .and_then(|b| b.path_len_constraint)
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

/// Every signature algorithm ring verifies for certificates.
static SIGNATURE_ALGORITHMS: &[&dyn rustls_pki_types::SignatureVerificationAlgorithm] = &[
    webpki::ring::ECDSA_P256_SHA256,
    webpki::ring::ECDSA_P256_SHA384,
    webpki::ring::ECDSA_P384_SHA256,
    webpki::ring::ECDSA_P384_SHA384,
    webpki::ring::ED25519,
    webpki::ring::RSA_PKCS1_2048_8192_SHA256,
    webpki::ring::RSA_PKCS1_2048_8192_SHA384,
    webpki::ring::RSA_PKCS1_2048_8192_SHA512,
    webpki::ring::RSA_PKCS1_2048_8192_SHA256_ABSENT_PARAMS,
    webpki::ring::RSA_PKCS1_2048_8192_SHA384_ABSENT_PARAMS,
    webpki::ring::RSA_PKCS1_2048_8192_SHA512_ABSENT_PARAMS,
    webpki::ring::RSA_PKCS1_3072_8192_SHA384,
    webpki::ring::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
    webpki::ring::RSA_PSS_2048_8192_SHA384_LEGACY_KEY,
    webpki::ring::RSA_PSS_2048_8192_SHA512_LEGACY_KEY,
];

/// What a certificate at the end of a path is for; its extended key usage must allow it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Signing documents: no extended key usage, or one that includes document signing,
    /// e-mail protection (S/MIME, used by many signing certificates) or any purpose. A TLS
    /// certificate does not sign records.
    Signing,
    /// RFC 3161 time-stamping (the leaf's critical EKU is checked by the time-stamp reader).
    TimeStamping,
}

// OID contents (DER without tag and length) of the purposes above.
const EKU_ANY: &[u8] = &[0x55, 0x1d, 0x25, 0x00];
const EKU_EMAIL: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x04];
const EKU_TIME_STAMPING: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x08];
const EKU_DOCUMENT_SIGNING: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x24];
const EKU_MS_DOCUMENT_SIGNING: &[u8] =
    &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x0a, 0x03, 0x0c];
const EKU_ADOBE_AUTHENTIC_DOCUMENTS: &[u8] =
    &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x2f, 0x01, 0x01, 0x05];

// The context-carrying error needs webpki's private types; the plain one says the same.
#[allow(deprecated)]
impl webpki::ExtendedKeyUsageValidator for Purpose {
    fn validate(
        &self,
        iter: webpki::KeyPurposeIdIter<'_, '_>,
    ) -> std::result::Result<(), webpki::Error> {
        let allowed: &[&[u8]] = match self {
            Purpose::Signing => &[
                EKU_ANY,
                EKU_EMAIL,
                EKU_DOCUMENT_SIGNING,
                EKU_MS_DOCUMENT_SIGNING,
                EKU_ADOBE_AUTHENTIC_DOCUMENTS,
            ],
            Purpose::TimeStamping => &[EKU_TIME_STAMPING],
        };
        let mut empty = true;
        for id in iter {
            empty = false;
            let id = id?;
            if allowed.iter().any(|a| id == webpki::KeyPurposeId::new(a)) {
                return Ok(());
            }
        }
        // Applied to every certificate of the path: one without the extension restricts
        // nothing (a CA's, typically).
        if empty {
            Ok(())
        } else {
            Err(webpki::Error::RequiredEkuNotFound)
        }
    }
}

/// Builds a path from `leaf` to one of `anchors` through `pool`, as a browser would
/// (rustls-webpki: backtracking over candidate issuers, basic constraints and path length,
/// unknown critical extensions, extended key usage for `purpose`, each signature over the
/// exact bytes received), valid at `at` — the time a time-stamp proves, not "now". A CA in the
/// path whose key usage is stated must allow certificate signing, and the anchor itself must
/// be valid at `at`. Returns the path, leaf first, anchor last.
pub fn chain_to_anchor(
    leaf: &Cert,
    pool: &[Cert],
    anchors: &[Cert],
    at: UnixMs,
    purpose: Purpose,
) -> Result<Vec<Cert>> {
    use rustls_pki_types::{CertificateDer, UnixTime};
    let at_text = crate::format_time(at);
    let ders: Vec<CertificateDer<'_>> = anchors
        .iter()
        .map(|a| CertificateDer::from(a.der.as_slice()))
        .collect();
    let trust: Vec<(usize, rustls_pki_types::TrustAnchor<'_>)> = ders
        .iter()
        .enumerate()
        .filter_map(|(i, d)| webpki::anchor_from_trusted_cert(d).ok().map(|t| (i, t)))
        .collect();
    // A leaf that is itself an anchor (a self-signed signer trusted as such).
    if anchors.contains(leaf) {
        return if leaf.valid_at(at) {
            Ok(vec![leaf.clone()])
        } else {
            Err(not_valid(leaf, &at_text))
        };
    }
    let only: Vec<rustls_pki_types::TrustAnchor<'_>> =
        trust.iter().map(|(_, t)| t.clone()).collect();
    let intermediates: Vec<CertificateDer<'_>> = pool
        .iter()
        .filter(|c| *c != leaf)
        .map(|c| CertificateDer::from(c.der.as_slice()))
        .collect();
    let leaf_der = CertificateDer::from(leaf.der.as_slice());
    let ee = match webpki::EndEntityCert::try_from(&leaf_der) {
        Ok(ee) => ee,
        Err(webpki::Error::UnsupportedCriticalExtension) if purpose == Purpose::Signing => {
            return policy_critical_path(leaf, anchors, at, &at_text);
        }
        Err(e) => return Err(path_error(leaf, &at_text, &e)),
    };
    let time = UnixTime::since_unix_epoch(std::time::Duration::from_millis(at.max(0) as u64));
    let verified = ee
        .verify_for_usage(
            SIGNATURE_ALGORITHMS,
            &only,
            &intermediates,
            time,
            purpose,
            None,
            None,
        )
        .map_err(|e| path_error(leaf, &at_text, &e))?;
    let mut path = vec![leaf.clone()];
    for c in verified.intermediate_certificates() {
        let der = c.der();
        let found = pool
            .iter()
            .find(|p| p.der.as_slice() == der.as_ref())
            .cloned()
            .ok_or_else(|| EvidenceError::new("cert_path", "証明書の経路を再構成できません"))?;
        path.push(found);
    }
    let anchor_ta = verified.anchor();
    let anchor = trust
        .iter()
        .find(|(_, t)| {
            t.subject == anchor_ta.subject
                && t.subject_public_key_info == anchor_ta.subject_public_key_info
        })
        .map(|(i, _)| anchors[*i].clone())
        .ok_or_else(|| EvidenceError::new("cert_path", "信頼の起点を特定できません"))?;
    if !anchor.valid_at(at) {
        return Err(not_valid(&anchor, &at_text));
    }
    // webpki takes an anchor as a name and a key; what its certificate says of the path
    // below it is checked here.
    let intermediates = path.len() - 1;
    if !anchor.is_ca() {
        return Err(EvidenceError::new(
            "cert_path",
            format!(
                "信頼の起点「{}」は認証局の証明書ではありません",
                anchor.subject()
            ),
        ));
    }
    if anchor
        .path_len()
        .is_some_and(|n| intermediates > n as usize)
    {
        return Err(EvidenceError::new(
            "cert_path",
            format!(
                "証明書「{}」の経路が認証局「{}」の許す階層（pathLenConstraint）を超えています",
                leaf.subject(),
                anchor.subject()
            ),
        ));
    }
    path.push(anchor);
    for ca in &path[1..] {
        if !ca.may_sign_certificates() {
            return Err(EvidenceError::new(
                "cert_path",
                format!(
                    "認証局「{}」の証明書は証明書の署名に使えません（keyUsage に keyCertSign がありません）",
                    ca.subject()
                ),
            ));
        }
    }
    Ok(path)
}

fn not_valid(c: &Cert, at: &str) -> EvidenceError {
    EvidenceError::new(
        "cert_not_valid",
        format!(
            "証明書「{}」はその時点（{at}）で有効期間外です",
            c.subject()
        ),
    )
}

/// What went wrong with a path, in words a person can act on.
/// The one path webpki cannot take: a signer certificate whose certificatePolicies extension
/// is critical, as J-LIS marks its マイナンバーカード signing certificates, issued directly by a
/// trusted root. webpki does no policy processing, so it refuses every critical policy
/// extension; RFC 5280 6.1 with the initial policy set anyPolicy (mamori requires no
/// particular policy) accepts it, which is what this does, for nothing beyond that shape:
/// the leaf signed by an anchor that is a CA allowed to sign certificates, both valid at `at`,
/// the leaf no CA, for signing (no extended key usage, key usage digitalSignature or
/// nonRepudiation), and no other critical extension than those understood here.
fn policy_critical_path(
    leaf: &Cert,
    anchors: &[Cert],
    at: UnixMs,
    at_text: &str,
) -> Result<Vec<Cert>> {
    use der::oid::db::rfc5280::{
        ID_CE_CERTIFICATE_POLICIES, ID_CE_SUBJECT_ALT_NAME, ID_CE_SUBJECT_KEY_IDENTIFIER,
    };
    use x509_cert::ext::pkix::{KeyUsage, KeyUsages};
    let refuse = |why: &str| {
        EvidenceError::new(
            "cert_path",
            format!("証明書「{}」の経路を確認できません: {why}", leaf.subject()),
        )
    };
    let understood = [
        ID_CE_CERTIFICATE_POLICIES,
        ID_CE_KEY_USAGE,
        ID_CE_BASIC_CONSTRAINTS,
        ID_CE_SUBJECT_ALT_NAME,
        ID_CE_SUBJECT_KEY_IDENTIFIER,
    ];
    let exts = leaf
        .parsed
        .tbs_certificate
        .extensions
        .as_deref()
        .unwrap_or_default();
    if exts
        .iter()
        .any(|e| e.critical && !understood.contains(&e.extn_id))
    {
        return Err(refuse("解釈できない重要（critical）拡張があります"));
    }
    if leaf.is_ca() || leaf.extension(ID_CE_EXT_KEY_USAGE).is_some() {
        return Err(refuse("署名用の証明書ではありません"));
    }
    let signs = leaf
        .extension(ID_CE_KEY_USAGE)
        .and_then(|v| KeyUsage::from_der(v).ok())
        .is_some_and(|k| {
            k.0.contains(KeyUsages::DigitalSignature) || k.0.contains(KeyUsages::NonRepudiation)
        });
    if !signs {
        return Err(refuse("鍵用途が署名ではありません"));
    }
    let anchor = anchors
        .iter()
        .find(|a| a.is_ca() && a.may_sign_certificates() && leaf.is_signed_by(a))
        .ok_or_else(|| {
            EvidenceError::new(
                "untrusted",
                format!(
                    "証明書「{}」を信頼できる認証局までたどれません",
                    leaf.subject()
                ),
            )
        })?;
    for c in [leaf, anchor] {
        if !c.valid_at(at) {
            return Err(not_valid(c, at_text));
        }
    }
    Ok(vec![leaf.clone(), anchor.clone()])
}

#[allow(deprecated)]
fn path_error(leaf: &Cert, at: &str, e: &webpki::Error) -> EvidenceError {
    use webpki::Error as E;
    let who = leaf.subject();
    match e {
        E::CertExpired { .. } | E::CertNotValidYet { .. } | E::InvalidCertValidity => {
            EvidenceError::new(
                "cert_not_valid",
                format!("証明書「{who}」の経路に、その時点（{at}）で有効期間外の証明書があります"),
            )
        }
        E::UnknownIssuer
        | E::InvalidSignatureForPublicKey
        | E::UnsupportedSignatureAlgorithmForPublicKey
        | E::UnsupportedSignatureAlgorithm
        | E::UnsupportedSignatureAlgorithmContext(_)
        | E::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => EvidenceError::new(
            "untrusted",
            format!("証明書「{who}」を信頼できる認証局までたどれません"),
        ),
        E::CaUsedAsEndEntity => EvidenceError::new(
            "cert_path",
            format!(
                "証明書「{who}」は認証局の証明書で、署名者・タイムスタンプ局としては使えません"
            ),
        ),
        E::EndEntityUsedAsCa => EvidenceError::new(
            "cert_path",
            format!("証明書「{who}」の経路で、認証局でない証明書が発行者として使われています"),
        ),
        E::PathLenConstraintViolated => EvidenceError::new(
            "cert_path",
            format!("証明書「{who}」の経路が認証局の許す階層（pathLenConstraint）を超えています"),
        ),
        E::UnsupportedCriticalExtension => EvidenceError::new(
            "cert_path",
            format!("証明書「{who}」の経路に、解釈できない重要（critical）拡張があります"),
        ),
        E::RequiredEkuNotFound | E::RequiredEkuNotFoundContext(_) => EvidenceError::new(
            "cert_path",
            format!("証明書「{who}」の拡張鍵用途（extendedKeyUsage）がこの用途を許していません"),
        ),
        other => EvidenceError::new(
            "cert_path",
            format!("証明書「{who}」の経路を検証できません（{other:?}）"),
        ),
    }
}
