//! CRLs of the CAs that certify signers: read from PEM or DER, trusted only when signed by the
//! certificate's own issuer, and asked when a certificate was revoked.

use mamori_evidence::cert::Cert;
use mamori_evidence::crl::{self, Crl, Revocation};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType, IsCa, Issuer,
    KeyIdMethod, KeyPair, KeyUsagePurpose, RevocationReason, RevokedCertParams, SerialNumber,
};

const NOW: i64 = 1_780_000_000_000;

fn odt(ms: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(ms / 1000).unwrap()
}

struct Ca {
    cert: Cert,
    issuer: Issuer<'static, KeyPair>,
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, name);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.not_before = odt(NOW - 86_400_000);
    p.not_after = odt(NOW + 86_400_000 * 365);
    let c = p.self_signed(&key).unwrap();
    Ca {
        cert: Cert::from_der(c.der()).unwrap(),
        issuer: Issuer::from_ca_cert_der(c.der(), key).unwrap(),
    }
}

fn leaf(ca: &Ca, serial: u64) -> Cert {
    leaf_and_key(ca, serial).0
}

fn leaf_and_key(ca: &Ca, serial: u64) -> (Cert, KeyPair) {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, "医師 テスト");
    p.serial_number = Some(SerialNumber::from(serial));
    p.not_before = odt(NOW - 86_400_000);
    p.not_after = odt(NOW + 86_400_000 * 30);
    let cert = Cert::from_der(p.signed_by(&key, &ca.issuer).unwrap().der()).unwrap();
    (cert, key)
}

fn crl_pem(ca: &Ca, revoked: &[(u64, i64)]) -> String {
    CertificateRevocationListParams {
        this_update: odt(NOW),
        next_update: odt(NOW + 86_400_000 * 7),
        crl_number: SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs: revoked
            .iter()
            .map(|(serial, at)| RevokedCertParams {
                serial_number: SerialNumber::from(*serial),
                revocation_time: odt(*at),
                reason_code: Some(RevocationReason::KeyCompromise),
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: KeyIdMethod::Sha256,
    }
    .signed_by(&ca.issuer)
    .unwrap()
    .pem()
    .unwrap()
}

#[test]
fn a_listed_certificate_is_revoked_from_its_date_and_only_its_issuers_crl_counts() {
    let hpki = ca("Test HPKI CA");
    let revoked = leaf(&hpki, 7);
    let good = leaf(&hpki, 8);
    let text = crl_pem(&hpki, &[(7, NOW - 3_600_000)]);
    let crls = Crl::from_file_bytes(text.as_bytes()).unwrap();
    assert_eq!(crls.len(), 1);
    assert!(crls[0].is_signed_by(&hpki.cert));
    let issuers = std::slice::from_ref(&hpki.cert);
    assert_eq!(
        crl::status(&revoked, &crls, issuers),
        Revocation::Revoked {
            at: NOW - 3_600_000
        }
    );
    assert_eq!(
        crl::status(&good, &crls, issuers),
        Revocation::NotRevoked { as_of: NOW }
    );
    // DER reads the same; two PEM blocks in one file both count.
    let der = der::pem::decode_vec(text.as_bytes()).unwrap().1;
    assert_eq!(Crl::from_file_bytes(&der).unwrap().len(), 1);
    let two = format!("{text}{}", crl_pem(&hpki, &[(8, NOW)]));
    let both = Crl::from_file_bytes(two.as_bytes()).unwrap();
    assert_eq!(both.len(), 2);
    assert!(matches!(
        crl::status(&good, &both, issuers),
        Revocation::Revoked { .. }
    ));

    // A CRL made by someone else, naming the same serial, counts for nothing.
    let other = ca("Test HPKI CA");
    let forged = Crl::from_file_bytes(crl_pem(&other, &[(8, NOW)]).as_bytes()).unwrap();
    assert!(!forged[0].is_signed_by(&hpki.cert));
    assert_eq!(crl::status(&good, &forged, issuers), Revocation::Unknown);
    // No issuer at hand: unknown.
    assert_eq!(crl::status(&good, &crls, &[]), Revocation::Unknown);
    // Broken files are errors, not empty lists.
    assert!(Crl::from_file_bytes(b"not a crl").is_err());
    assert!(Crl::from_file_bytes(b"-----BEGIN X509 CRL-----\nAAAA\n").is_err());
}

#[test]
fn a_signature_carries_its_cas_crl_and_fails_when_it_lists_the_signer_as_revoked_before() {
    use mamori_evidence::cades;
    let hpki = ca("Test HPKI CA");
    let (cert, key) = leaf_and_key(&hpki, 9);
    let signer = cades::Pkcs8Signer::from_pkcs8(&key.serialize_der()).unwrap();
    let p7s = cades::sign_detached(b"statement", &cert, &[], &signer, NOW).unwrap();
    let anchors = std::slice::from_ref(&hpki.cert);

    // A CRL that does not list it: carried, and the verification says as of when.
    let fresh = Crl::from_file_bytes(crl_pem(&hpki, &[(7, NOW - 3_600_000)]).as_bytes()).unwrap();
    let with = cades::with_validation_data(&p7s, anchors, &fresh).unwrap();
    assert_eq!(cades::crls(&with).len(), 1);
    assert_eq!(
        cades::signature_value(&with).unwrap(),
        cades::signature_value(&p7s).unwrap(),
        "the signature itself is untouched"
    );
    // Added twice, kept once.
    let again = cades::with_validation_data(&with, anchors, &fresh).unwrap();
    assert_eq!(cades::crls(&again).len(), 1);
    assert_eq!(cades::certificates(&again).len(), 2, "signer and its CA");
    let info = cades::verify_detached(&with, b"statement", anchors, &[]).unwrap();
    assert_eq!(info.not_revoked_as_of, Some(NOW));
    assert!(
        cades::verify_detached(&p7s, b"statement", anchors, &[])
            .unwrap()
            .not_revoked_as_of
            .is_none()
    );

    // A CRL listing it from before the signing time fails the signature.
    let listed = Crl::from_file_bytes(crl_pem(&hpki, &[(9, NOW - 60_000)]).as_bytes()).unwrap();
    let revoked = cades::with_validation_data(&p7s, anchors, &listed).unwrap();
    let e = cades::verify_detached(&revoked, b"statement", anchors, &[]).unwrap_err();
    assert_eq!(e.code, "revoked", "{e:?}");
    // Listed from after the signature: the signature stands.
    let later = Crl::from_file_bytes(crl_pem(&hpki, &[(9, NOW + 60_000)]).as_bytes()).unwrap();
    let after = cades::with_validation_data(&p7s, anchors, &later).unwrap();
    assert!(cades::verify_detached(&after, b"statement", anchors, &[]).is_ok());
}
