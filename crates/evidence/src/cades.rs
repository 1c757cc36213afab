//! Detached CMS signatures (RFC 5652) at CAdES-B-B and B-T (ETSI EN 319 122-1).
//!
//! Signing is three steps so the key can be anywhere: [`prepare`] builds the signed attributes
//! and returns the exact bytes to sign; whoever holds the key signs them (ECDSA or RSA with
//! SHA-256); [`assemble`] checks that signature against the certificate and builds the `.p7s`.
//! [`with_signature_timestamp`] adds the RFC 3161 token over the signature value (B-T);
//! [`with_validation_data`] the signer's chain and its CAs' CRLs, so the signature can be
//! checked offline decades on (B-LT: EN 319 122-1 allows them in `SignedData.certificates`
//! and `SignedData.crls`, which the signature does not cover).

pub use crate::cms::{
    EcdsaP256, Pkcs8Signer, Prepared, RawSigner, assemble, prepare, sign_detached,
};

use cms::content_info::ContentInfo;
use cms::signed_data::SignerInfos;
use der::asn1::SetOfVec;
use der::{Any, Decode, Encode};
use serde::Serialize;
use x509_cert::attr::Attribute;

use crate::asn1::*;
use crate::cert::{Cert, chain_to_anchor};
use crate::cms::{any, attribute, parse};
use crate::tsp::{self, TokenInfo};
use crate::{EvidenceError, Result, UnixMs, sha256};

/// The signature value of a `.p7s` (what a signature time-stamp covers).
pub fn signature_value(p7s: &[u8]) -> Result<Vec<u8>> {
    Ok(parse(p7s, "署名")?.si.signature.as_bytes().to_vec())
}

/// The signer's certificate carried in a `.p7s` (not checked: for showing who signed).
pub fn signer_certificate(p7s: &[u8]) -> Result<Cert> {
    parse(p7s, "署名")?.signer(&[])
}

/// The certificates a `.p7s` carries (the signer's and its chain).
pub fn certificates(p7s: &[u8]) -> Vec<Cert> {
    parse(p7s, "署名")
        .map(|p| p.certificates())
        .unwrap_or_default()
}

/// The signature time-stamp token inside a `.p7s`, if any.
pub fn signature_timestamp(p7s: &[u8]) -> Result<Option<Vec<u8>>> {
    let p = parse(p7s, "署名")?;
    let Some(attrs) = &p.si.unsigned_attrs else {
        return Ok(None);
    };
    Ok(attrs
        .iter()
        .find(|a| a.oid == ID_AA_SIGNATURE_TIME_STAMP_TOKEN)
        .and_then(|a| a.values.get(0))
        .and_then(|v| v.to_der().ok()))
}

/// The CRLs a `.p7s` carries (`SignedData.crls`).
pub fn crls(p7s: &[u8]) -> Vec<crate::crl::Crl> {
    let Ok(p) = parse(p7s, "署名") else {
        return Vec::new();
    };
    p.sd.crls
        .map(|set| {
            set.0
                .iter()
                .filter_map(|c| match c {
                    cms::revocation::RevocationInfoChoice::Crl(list) => list
                        .to_der()
                        .ok()
                        .and_then(|d| crate::crl::Crl::from_der(&d).ok()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Adds `certs` and `crls` to the `.p7s`'s SignedData (those already there are kept once):
/// the validation data of CAdES-B-LT. The signed attributes and the signature are untouched.
pub fn with_validation_data(
    p7s: &[u8],
    certs: &[Cert],
    crls: &[crate::crl::Crl],
) -> Result<Vec<u8>> {
    use cms::cert::CertificateChoices;
    use cms::revocation::{RevocationInfoChoice, RevocationInfoChoices};
    use cms::signed_data::CertificateSet;
    let mut p = parse(p7s, "署名")?;
    let malformed = |e: der::Error| EvidenceError::malformed("署名", e);
    let mut have: Vec<CertificateChoices> =
        p.sd.certificates
            .take()
            .map(|s| s.0.into_vec())
            .unwrap_or_default();
    for c in certs {
        let choice = CertificateChoices::Certificate(c.parsed.clone());
        if !have.contains(&choice) {
            have.push(choice);
        }
    }
    p.sd.certificates = Some(CertificateSet(SetOfVec::try_from(have).map_err(malformed)?));
    let mut lists: Vec<RevocationInfoChoice> =
        p.sd.crls.take().map(|s| s.0.into_vec()).unwrap_or_default();
    for c in crls {
        let choice = RevocationInfoChoice::Crl(c.list.clone());
        if !lists.contains(&choice) {
            lists.push(choice);
        }
    }
    if !lists.is_empty() {
        p.sd.crls = Some(RevocationInfoChoices::try_from(lists).map_err(malformed)?);
    }
    let ci = ContentInfo {
        content_type: ID_SIGNED_DATA,
        content: any(&p.sd)?,
    };
    ci.to_der().map_err(malformed)
}

/// Adds `token` (an RFC 3161 `TimeStampToken` over the signature value) as the unsigned
/// `signatureTimeStampToken` attribute: CAdES-B-T. The signed part is untouched.
pub fn with_signature_timestamp(p7s: &[u8], token: &[u8]) -> Result<Vec<u8>> {
    let mut p = parse(p7s, "署名")?;
    let token_any =
        Any::from_der(token).map_err(|e| EvidenceError::malformed("タイムスタンプ", e))?;
    let attr = attribute(ID_AA_SIGNATURE_TIME_STAMP_TOKEN, token_any)?;
    let mut attrs: Vec<Attribute> =
        p.si.unsigned_attrs
            .take()
            .map(|a| {
                a.into_vec()
                    .into_iter()
                    .filter(|a| a.oid != ID_AA_SIGNATURE_TIME_STAMP_TOKEN)
                    .collect()
            })
            .unwrap_or_default();
    attrs.push(attr);
    p.si.unsigned_attrs =
        Some(SetOfVec::try_from(attrs).map_err(|e| EvidenceError::malformed("属性", e))?);
    p.sd.signer_infos = SignerInfos(
        SetOfVec::try_from(vec![p.si]).map_err(|e| EvidenceError::malformed("署名", e))?,
    );
    let ci = ContentInfo {
        content_type: ID_SIGNED_DATA,
        content: any(&p.sd)?,
    };
    ci.to_der().map_err(|e| EvidenceError::malformed("署名", e))
}

/// What a verified signature proves.
#[derive(Clone, Debug, Serialize)]
pub struct SignatureInfo {
    pub signer_subject: String,
    pub signer_serial: String,
    pub issuer_subject: String,
    /// The time the signer's software claimed (signing-time attribute).
    pub claimed_signing_time: Option<UnixMs>,
    /// The signature time-stamp, if the signature is B-T.
    pub timestamp: Option<TokenInfo>,
    /// The time the certificate chain was checked at: the time-stamp's, else the claimed one.
    pub validated_at: UnixMs,
    pub level: &'static str,
    /// The signer was not revoked as of this CRL date, by a CRL the signature carries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_revoked_as_of: Option<UnixMs>,
    /// The holder, when the signer's certificate is a マイナンバーカード signing certificate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jpki: Option<crate::jpki::JpkiHolder>,
}

/// Verifies a detached `.p7s` over `content`: digest, signature, ESS certificate binding,
/// chain to `anchors` at the signature time-stamp's time (or the claimed signing time),
/// and the signature time-stamp against `tsa_anchors`.
pub fn verify_detached(
    p7s: &[u8],
    content: &[u8],
    anchors: &[Cert],
    tsa_anchors: &[Cert],
) -> Result<SignatureInfo> {
    verify_over(
        p7s,
        &sha256(content),
        anchors,
        tsa_anchors,
        None,
        ["CAdES-B-LT", "CAdES-B-T", "CAdES-B-B"],
    )
}

/// [`verify_detached`] for content known by its SHA-256; `claimed` stands in for a missing
/// signing-time attribute (PAdES keeps it in the PDF); `levels` names the result with and
/// without a signature time-stamp.
pub(crate) fn verify_over(
    p7s: &[u8],
    digest: &[u8; 32],
    anchors: &[Cert],
    tsa_anchors: &[Cert],
    claimed: Option<UnixMs>,
    levels: [&'static str; 3],
) -> Result<SignatureInfo> {
    let p = parse(p7s, "署名")?;
    if p.sd.encap_content_info.econtent.is_some() {
        return Err(EvidenceError::malformed("署名", "分離署名ではありません"));
    }
    if p.content_type_attr() != Some(ID_DATA) {
        return Err(EvidenceError::malformed(
            "署名",
            "content-type 属性が id-data ではありません",
        ));
    }
    if p.message_digest()? != digest.as_slice() {
        return Err(EvidenceError::new(
            "content_mismatch",
            "署名された内容と現在の内容が一致しません（改ざんまたは取り違え）",
        ));
    }
    let signer = p.signer(&[])?;
    p.check_signature(&signer)?;
    let timestamp = match signature_timestamp(p7s)? {
        Some(token) => Some(tsp::verify_token(
            &token,
            &sha256(p.si.signature.as_bytes()),
            tsa_anchors,
        )?),
        None => None,
    };
    let claimed = p.signing_time().or(claimed);
    let validated_at = timestamp
        .as_ref()
        .map(|t| t.gen_time)
        .or(claimed)
        .ok_or_else(|| EvidenceError::malformed("署名", "署名時刻がありません"))?;
    let path = chain_to_anchor(
        &signer,
        &p.certificates(),
        anchors,
        validated_at,
        crate::cert::Purpose::Signing,
    )?;
    // Revocation data carried in the signature (B-LT): a CRL of the signer's CA listing it as
    // revoked at or before the proven time fails the signature.
    let not_revoked_as_of = match crate::crl::status(&signer, &crls(p7s), &path[1..]) {
        crate::crl::Revocation::Revoked { at } if at <= validated_at => {
            return Err(EvidenceError::new(
                "revoked",
                format!(
                    "署名者の証明書は署名の時点で失効しています（{}、署名に同梱の CRL）",
                    crate::format_time(at)
                ),
            ));
        }
        crate::crl::Revocation::NotRevoked { as_of } => Some(as_of),
        _ => None,
    };
    Ok(SignatureInfo {
        signer_subject: signer.subject(),
        signer_serial: signer.serial_hex(),
        issuer_subject: path.get(1).map(|c| c.subject()).unwrap_or_default(),
        claimed_signing_time: claimed,
        level: match (&timestamp, not_revoked_as_of) {
            (Some(_), Some(_)) => levels[0],
            (Some(_), None) => levels[1],
            (None, _) => levels[2],
        },
        not_revoked_as_of,
        jpki: crate::jpki::holder(&signer),
        timestamp,
        validated_at,
    })
}
