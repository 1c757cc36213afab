//! The マイナンバーカード 署名用電子証明書 (JPKI, 公的個人認証サービス): how a patient signs a
//! consent form themselves. J-LIS's profile marks the certificate by its policy (signing,
//! production or the test environment's) and carries the holder's 基本4情報 in
//! subjectAltName otherNames; the subject's CN is an opaque number.
//!
//! Only the name is read. Date of birth, sex and address are there too, but nothing mamori
//! does needs them, and a reader that never decodes them cannot leak them.

use der::Decode;
use der::asn1::{ObjectIdentifier as Oid, Utf8StringRef};
use serde::Serialize;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{CertificatePolicies, SubjectAltName};

use crate::cert::Cert;

/// J-LIS 署名用電子証明書 policy (production cards).
pub const SIGNING_POLICY: Oid = Oid::new_unwrap("1.2.392.200149.8.5.1.1.20");
/// The same policy in J-LIS's test environment (test cards).
pub const TEST_SIGNING_POLICY: Oid = Oid::new_unwrap("1.2.392.200149.8.5.1.0.20");
/// subjectAltName otherName: the holder's name (氏名) as registered.
pub const HOLDER_NAME: Oid = Oid::new_unwrap("1.2.392.200149.8.5.5.1");

/// What a JPKI signing certificate says of its holder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct JpkiHolder {
    /// 氏名 as on the card.
    pub name: String,
    /// Issued in J-LIS's test environment, not to a real resident.
    pub test_card: bool,
}

/// The holder, when `cert` is a JPKI signing certificate (by its policy); the name is empty
/// when the certificate does not carry it where the profile puts it.
pub fn holder(cert: &Cert) -> Option<JpkiHolder> {
    let exts = cert.parsed.tbs_certificate.extensions.as_ref()?;
    let ext = |oid: Oid| exts.iter().find(|e| e.extn_id == oid);
    let policies = CertificatePolicies::from_der(
        ext(der::oid::db::rfc5280::ID_CE_CERTIFICATE_POLICIES)?
            .extn_value
            .as_bytes(),
    )
    .ok()?;
    let test_card = if policies
        .0
        .iter()
        .any(|p| p.policy_identifier == SIGNING_POLICY)
    {
        false
    } else if policies
        .0
        .iter()
        .any(|p| p.policy_identifier == TEST_SIGNING_POLICY)
    {
        true
    } else {
        return None;
    };
    let name = ext(der::oid::db::rfc5280::ID_CE_SUBJECT_ALT_NAME)
        .and_then(|e| SubjectAltName::from_der(e.extn_value.as_bytes()).ok())
        .and_then(|san| {
            san.0.into_iter().find_map(|g| match g {
                GeneralName::OtherName(o) if o.type_id == HOLDER_NAME => o
                    .value
                    .decode_as::<Utf8StringRef<'_>>()
                    .ok()
                    .map(|s| s.as_str().to_owned()),
                _ => None,
            })
        })
        .unwrap_or_default();
    Some(JpkiHolder { name, test_card })
}
