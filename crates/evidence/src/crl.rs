//! Certificate revocation lists (RFC 5280 §5) of the CAs that certify signers (HPKI CAs publish
//! CRLs): read from the files the facility downloads (mamori contacts no one), their signature
//! checked against the issuing CA, and asked whether a certificate was revoked at a time.

use der::{Decode, Encode};
use x509_cert::crl::CertificateList;

use crate::cert::{Cert, verify_raw};
use crate::{EvidenceError, Result, UnixMs};

/// One CRL, parsed.
#[derive(Clone, Debug)]
pub struct Crl {
    pub list: CertificateList,
    pub this_update: UnixMs,
    pub next_update: Option<UnixMs>,
}

fn time_ms(t: &x509_cert::time::Time) -> UnixMs {
    t.to_unix_duration().as_millis() as UnixMs
}

impl Crl {
    pub fn from_der(der: &[u8]) -> Result<Self> {
        let list =
            CertificateList::from_der(der).map_err(|e| EvidenceError::malformed("CRL", e))?;
        Ok(Self {
            this_update: time_ms(&list.tbs_cert_list.this_update),
            next_update: list.tbs_cert_list.next_update.as_ref().map(time_ms),
            list,
        })
    }

    /// The CRL as DER (for a PDF's Document Security Store).
    pub fn to_der(&self) -> Result<Vec<u8>> {
        use der::Encode;
        self.list
            .to_der()
            .map_err(|e| EvidenceError::malformed("CRL", e))
    }

    /// Every CRL in a file: DER, or PEM with one or more `X509 CRL` blocks.
    pub fn from_file_bytes(bytes: &[u8]) -> Result<Vec<Self>> {
        let Ok(text) = std::str::from_utf8(bytes) else {
            return Ok(vec![Self::from_der(bytes)?]);
        };
        if !text.contains("-----BEGIN X509 CRL-----") {
            return Ok(vec![Self::from_der(bytes)?]);
        }
        let mut out = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("-----BEGIN X509 CRL-----") {
            let end = rest[start..]
                .find("-----END X509 CRL-----")
                .ok_or_else(|| EvidenceError::malformed("CRL", "PEM の終わりがありません"))?;
            let block = &rest[start..start + end + "-----END X509 CRL-----".len()];
            let (_, der) = der::pem::decode_vec(block.as_bytes())
                .map_err(|e| EvidenceError::malformed("CRL", e))?;
            out.push(Self::from_der(&der)?);
            rest = &rest[start + end..];
            rest = &rest[rest.find('\n').unwrap_or(rest.len())..];
        }
        Ok(out)
    }

    /// Whether `issuer` issued and signed this CRL.
    pub fn is_signed_by(&self, issuer: &Cert) -> bool {
        if self.list.tbs_cert_list.issuer != issuer.parsed.tbs_certificate.subject {
            return false;
        }
        let (Ok(tbs), Some(sig)) = (
            self.list.tbs_cert_list.to_der(),
            self.list.signature.as_bytes(),
        ) else {
            return false;
        };
        verify_raw(
            issuer.spki(),
            &self.list.signature_algorithm.oid,
            None,
            &tbs,
            sig,
        )
        .is_ok()
    }

    /// When this CRL says `cert` was revoked, if it lists it (same issuer, same serial).
    pub fn revoked_at(&self, cert: &Cert) -> Option<UnixMs> {
        if self.list.tbs_cert_list.issuer != cert.parsed.tbs_certificate.issuer {
            return None;
        }
        let serial = &cert.parsed.tbs_certificate.serial_number;
        self.list
            .tbs_cert_list
            .revoked_certificates
            .as_ref()?
            .iter()
            .find(|r| &r.serial_number == serial)
            .map(|r| time_ms(&r.revocation_date))
    }
}

/// What the CRLs say of a certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Revocation {
    /// A CRL of its issuer, signed by it, lists it: revoked from `at`.
    Revoked { at: UnixMs },
    /// A CRL of its issuer, signed by it, does not list it; the newest such CRL's date.
    NotRevoked { as_of: UnixMs },
    /// No CRL of its issuer (signed by a certificate in `issuers`) is at hand.
    Unknown,
}

/// Checks `cert` against `crls`, taking only CRLs signed by its issuer (one of `issuers`).
pub fn status(cert: &Cert, crls: &[Crl], issuers: &[Cert]) -> Revocation {
    let Some(issuer) = issuers.iter().find(|i| cert.is_signed_by(i)) else {
        return Revocation::Unknown;
    };
    let mut as_of = None;
    for crl in crls.iter().filter(|c| c.is_signed_by(issuer)) {
        if let Some(at) = crl.revoked_at(cert) {
            return Revocation::Revoked { at };
        }
        as_of = Some(as_of.map_or(crl.this_update, |t: UnixMs| t.max(crl.this_update)));
    }
    as_of.map_or(Revocation::Unknown, |as_of| Revocation::NotRevoked {
        as_of,
    })
}
