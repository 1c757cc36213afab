//! An OCSP responder (RFC 6960) for the facility CA: answers each request about a certificate
//! the CA issued with good, revoked (time and reason) or unknown, signed by the CA itself.

use der::asn1::{BitString, GeneralizedTime, Null, OctetString};
use der::{Decode, Encode};
use sha2::Digest;
use spki::AlgorithmIdentifierOwned;
use x509_cert::ext::pkix::CrlReason;
use x509_ocsp::{
    BasicOcspResponse, CertId, CertStatus, OcspGeneralizedTime, OcspRequest, OcspResponse,
    OcspResponseStatus, ResponderId, ResponseBytes, ResponseData, RevokedInfo, SingleResponse,
    Version,
};

use crate::asn1::*;
use crate::cades::RawSigner;
use crate::cert::Cert;
use crate::{EvidenceError, Result, UnixMs};

const ID_SHA1: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
const ID_PKIX_OCSP_BASIC: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.1");
const ID_PKIX_OCSP_NONCE: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.2");

/// What the CA knows of one serial number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    Good,
    /// `reason`: an RFC 5280 reason by mamori's names (`key_compromise`, `affiliation_changed`,
    /// `superseded`, `cessation_of_operation`, `unspecified`).
    Revoked {
        at: UnixMs,
        reason: Option<String>,
    },
    Unknown,
}

fn time(ms: UnixMs) -> Result<OcspGeneralizedTime> {
    GeneralizedTime::from_unix_duration(std::time::Duration::from_secs((ms.max(0) / 1000) as u64))
        .map(OcspGeneralizedTime)
        .map_err(|e| EvidenceError::malformed("時刻", e))
}

fn hash(alg: &der::asn1::ObjectIdentifier, data: &[u8]) -> Option<Vec<u8>> {
    match *alg {
        ID_SHA1 => Some(sha1::Sha1::digest(data).to_vec()),
        ID_SHA256 => Some(sha2::Sha256::digest(data).to_vec()),
        _ => None,
    }
}

/// Whether `id` names a certificate issued by `ca` (issuer name and key hashes).
fn issued_by(id: &CertId, ca: &Cert) -> bool {
    let Ok(name) = ca.parsed.tbs_certificate.subject.to_der() else {
        return false;
    };
    let Some(key) = ca.spki().subject_public_key.as_bytes() else {
        return false;
    };
    hash(&id.hash_algorithm.oid, &name).as_deref() == Some(id.issuer_name_hash.as_bytes())
        && hash(&id.hash_algorithm.oid, key).as_deref() == Some(id.issuer_key_hash.as_bytes())
}

fn crl_reason(name: &str) -> CrlReason {
    match name {
        "key_compromise" => CrlReason::KeyCompromise,
        "affiliation_changed" => CrlReason::AffiliationChanged,
        "superseded" => CrlReason::Superseded,
        "cessation_of_operation" => CrlReason::CessationOfOperation,
        _ => CrlReason::Unspecified,
    }
}

fn status_response(status: OcspResponseStatus) -> Vec<u8> {
    OcspResponse {
        response_status: status,
        response_bytes: None,
    }
    .to_der()
    .unwrap_or_default()
}

/// The DER `OCSPResponse` to a DER `OCSPRequest`. `status` looks a serial number (lower-case
/// hex) up among the certificates the CA issued.
pub fn respond(
    request: &[u8],
    ca: &Cert,
    key: &dyn RawSigner,
    now: UnixMs,
    status: impl Fn(&str) -> Status,
) -> Vec<u8> {
    let Ok(req) = OcspRequest::from_der(request) else {
        return status_response(OcspResponseStatus::MalformedRequest);
    };
    match sign(&req, ca, key, now, status) {
        Ok(der) => der,
        Err(_) => status_response(OcspResponseStatus::InternalError),
    }
}

fn sign(
    req: &OcspRequest,
    ca: &Cert,
    key: &dyn RawSigner,
    now: UnixMs,
    status: impl Fn(&str) -> Status,
) -> Result<Vec<u8>> {
    let bad = |e: der::Error| EvidenceError::malformed("OCSP", e);
    let mut responses = Vec::new();
    for r in &req.tbs_request.request_list {
        let id = &r.req_cert;
        let st = if issued_by(id, ca) {
            status(&hex::encode(id.serial_number.as_bytes()))
        } else {
            Status::Unknown
        };
        let cert_status = match st {
            Status::Good => CertStatus::Good(Null),
            Status::Revoked { at, reason } => CertStatus::Revoked(RevokedInfo {
                revocation_time: time(at)?,
                revocation_reason: reason.as_deref().map(crl_reason),
            }),
            Status::Unknown => CertStatus::Unknown(Null),
        };
        responses.push(SingleResponse {
            cert_id: id.clone(),
            cert_status,
            this_update: time(now)?,
            // Revocations take effect at once; a client should ask again within the hour.
            next_update: Some(time(now + 3_600_000)?),
            single_extensions: None,
        });
    }
    // The client's nonce comes back, so a replayed answer cannot pass for a fresh one.
    let nonce = req
        .tbs_request
        .request_extensions
        .as_ref()
        .and_then(|l| l.iter().find(|e| e.extn_id == ID_PKIX_OCSP_NONCE).cloned());
    let key_hash = sha1::Sha1::digest(
        ca.spki()
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| EvidenceError::malformed("CA", "公開鍵"))?,
    );
    let data = ResponseData {
        version: Version::V1,
        responder_id: ResponderId::ByKey(OctetString::new(key_hash.to_vec()).map_err(bad)?),
        produced_at: time(now)?,
        responses,
        response_extensions: nonce.map(|n| vec![n]),
    };
    let tbs = data.to_der().map_err(bad)?;
    let signature = key.sign(&tbs)?;
    let basic = BasicOcspResponse {
        tbs_response_data: data,
        signature_algorithm: AlgorithmIdentifierOwned {
            oid: key.algorithm(),
            parameters: None,
        },
        signature: BitString::from_bytes(&signature).map_err(bad)?,
        certs: None,
    };
    OcspResponse {
        response_status: OcspResponseStatus::Successful,
        response_bytes: Some(ResponseBytes {
            response_type: ID_PKIX_OCSP_BASIC,
            response: OctetString::new(basic.to_der().map_err(bad)?).map_err(bad)?,
        }),
    }
    .to_der()
    .map_err(bad)
}
