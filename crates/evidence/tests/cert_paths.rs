//! Certificate paths are checked as strictly as a browser checks them (issue #17.7): each case
//! here was accepted by the earlier hand-written walk, or refused for the wrong reason.

mod common;

use common::{DAY, NOW};
use mamori_evidence::cert::{Cert, Purpose, chain_to_anchor};
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

fn odt(ms: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(ms / 1000).unwrap()
}

/// One certificate of a test path, and what it can issue with.
struct Node {
    cert: Cert,
    issuer: Issuer<'static, KeyPair>,
}

fn params(name: &str) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, name);
    p.not_before = odt(NOW - 30 * DAY);
    p.not_after = odt(NOW + 365 * DAY);
    p
}

fn ca_params(name: &str, path_len: Option<u8>) -> CertificateParams {
    let mut p = params(name);
    p.is_ca = IsCa::Ca(match path_len {
        Some(n) => BasicConstraints::Constrained(n),
        None => BasicConstraints::Unconstrained,
    });
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p
}

fn signer_params(name: &str) -> CertificateParams {
    let mut p = params(name);
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::ContentCommitment,
    ];
    p
}

fn root(p: CertificateParams) -> Node {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    node(p.self_signed(&key).unwrap(), key)
}

/// Issues `p` with a new key under `by`.
fn issue(p: CertificateParams, by: &Node) -> Node {
    issue_with(
        p,
        by,
        KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap(),
    )
}

fn issue_with(mut p: CertificateParams, by: &Node, key: KeyPair) -> Node {
    p.use_authority_key_identifier_extension = true;
    node(p.signed_by(&key, &by.issuer).unwrap(), key)
}

fn node(cert: rcgen::Certificate, key: KeyPair) -> Node {
    Node {
        cert: Cert::from_der(cert.der()).unwrap(),
        issuer: Issuer::from_ca_cert_der(cert.der(), key).unwrap(),
    }
}

/// The path's subjects, leaf first; or the error's code and message.
fn check(
    leaf: &Node,
    pool: &[&Node],
    anchor: &Node,
    purpose: Purpose,
) -> Result<Vec<String>, String> {
    let pool: Vec<Cert> = pool.iter().map(|n| n.cert.clone()).collect();
    chain_to_anchor(
        &leaf.cert,
        &pool,
        std::slice::from_ref(&anchor.cert),
        NOW,
        purpose,
    )
    .map(|p| p.iter().map(|c| c.subject()).collect())
    .map_err(|e| format!("{}: {}", e.code, e.message))
}

#[test]
fn a_good_path_through_an_intermediate_is_accepted() {
    let r = root(ca_params("Root", None));
    let i = issue(ca_params("Intermediate", Some(0)), &r);
    let leaf = issue(signer_params("医師 一郎"), &i);
    let path = check(&leaf, &[&i], &r, Purpose::Signing).unwrap();
    assert_eq!(path.len(), 3);
    assert!(path[2].contains("Root"), "{path:?}");
}

#[test]
fn a_leaf_used_as_a_ca_is_refused() {
    let r = root(ca_params("Root", None));
    let not_a_ca = issue(signer_params("ただの署名者"), &r);
    let leaf = issue(signer_params("なりすまし"), &not_a_ca);
    let e = check(&leaf, &[&not_a_ca], &r, Purpose::Signing).unwrap_err();
    assert!(
        e.starts_with("cert_path") || e.starts_with("untrusted"),
        "{e}"
    );
}

#[test]
fn a_path_longer_than_the_roots_path_length_is_refused() {
    let r = root(ca_params("Root", Some(0)));
    let i = issue(ca_params("Intermediate", None), &r);
    let leaf = issue(signer_params("医師 一郎"), &i);
    let e = check(&leaf, &[&i], &r, Purpose::Signing).unwrap_err();
    assert!(e.contains("pathLenConstraint"), "{e}");
}

#[test]
fn an_unknown_critical_extension_is_refused() {
    let r = root(ca_params("Root", None));
    let mut p = signer_params("医師 一郎");
    let mut ext =
        CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 99999, 1], vec![0x05, 0x00]);
    ext.set_criticality(true);
    p.custom_extensions = vec![ext];
    let leaf = issue(p, &r);
    let e = check(&leaf, &[], &r, Purpose::Signing).unwrap_err();
    assert!(e.contains("critical"), "{e}");
}

#[test]
fn a_ca_without_key_cert_sign_is_refused() {
    let r = root(ca_params("Root", None));
    let mut p = ca_params("Intermediate", None);
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let i = issue(p, &r);
    let leaf = issue(signer_params("医師 一郎"), &i);
    let e = check(&leaf, &[&i], &r, Purpose::Signing).unwrap_err();
    assert!(e.contains("keyCertSign"), "{e}");
}

#[test]
fn a_cross_signed_path_is_found_by_backtracking() {
    // One intermediate (same name, same key) signed by two roots; only root A is trusted, and
    // the copy under root B is offered first.
    let a = root(ca_params("Root A", None));
    let b = root(ca_params("Root B", None));
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let pem = key.serialize_pem();
    let under_b = issue_with(ca_params("Intermediate", None), &b, key);
    let under_a = issue_with(
        ca_params("Intermediate", None),
        &a,
        KeyPair::from_pem(&pem).unwrap(),
    );
    let leaf = issue(signer_params("医師 一郎"), &under_a);
    let pool = vec![under_b.cert.clone(), under_a.cert.clone()];
    let path = chain_to_anchor(
        &leaf.cert,
        &pool,
        std::slice::from_ref(&a.cert),
        NOW,
        Purpose::Signing,
    )
    .map_err(|e| e.message)
    .unwrap();
    assert!(path[1] == under_a.cert, "the copy under the trusted root");
    assert!(path[2] == a.cert);
}

#[test]
fn a_tls_certificate_does_not_sign_records_and_a_signer_does_not_time_stamp() {
    let r = root(ca_params("Root", None));
    let mut p = signer_params("端末");
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let tls = issue(p, &r);
    let e = check(&tls, &[], &r, Purpose::Signing).unwrap_err();
    assert!(e.contains("extendedKeyUsage"), "{e}");
    let mut p = signer_params("S/MIME の署名者");
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::EmailProtection];
    let smime = issue(p, &r);
    check(&smime, &[], &r, Purpose::Signing).unwrap();
    let e = check(&smime, &[], &r, Purpose::TimeStamping).unwrap_err();
    assert!(e.contains("extendedKeyUsage"), "{e}");
}

#[test]
fn validity_is_checked_at_the_time_given_for_every_certificate_and_the_anchor() {
    let mut p = ca_params("Root", None);
    p.not_after = odt(NOW - DAY);
    let expired_root = root(p);
    let leaf = issue(signer_params("医師 一郎"), &expired_root);
    let e = check(&leaf, &[], &expired_root, Purpose::Signing).unwrap_err();
    assert!(e.starts_with("cert_not_valid"), "{e}");
    let r = root(ca_params("Root", None));
    let mut p = signer_params("医師 一郎");
    p.not_after = odt(NOW - DAY);
    let old = issue(p, &r);
    let e = check(&old, &[], &r, Purpose::Signing).unwrap_err();
    assert!(e.starts_with("cert_not_valid"), "{e}");
    // The same certificate at a time it was valid (the time a time-stamp proves).
    let pool: Vec<Cert> = Vec::new();
    chain_to_anchor(
        &old.cert,
        &pool,
        std::slice::from_ref(&r.cert),
        NOW - 2 * DAY,
        Purpose::Signing,
    )
    .unwrap();
}

/// A マイナンバーカード 署名用電子証明書 as J-LIS writes it: the signing policy (production or
/// test) in a critical certificatePolicies extension, the holder's 氏名 as a SAN otherName.
fn jpki_params(name: &str, policy_last: u8, test_card: bool) -> CertificateParams {
    let mut p = signer_params("20261204123456789012345678AB");
    p.subject_alt_names = vec![rcgen::SanType::OtherName((
        vec![1, 2, 392, 200149, 8, 5, 5, 1],
        name.into(),
    ))];
    let arc = if test_card { 0x00 } else { 0x01 };
    let policy = vec![
        0x30,
        0x0f,
        0x30,
        0x0d,
        0x06,
        0x0b,
        0x2a,
        0x83,
        0x08,
        0x8c,
        0x9b,
        0x55,
        0x08,
        0x05,
        0x01,
        arc,
        policy_last,
    ];
    let mut ext = CustomExtension::from_oid_content(&[2, 5, 29, 32], policy);
    ext.set_criticality(true);
    p.custom_extensions.push(ext);
    p
}

#[test]
fn a_my_number_card_signing_certificate_is_read_and_its_critical_policy_accepted() {
    use mamori_evidence::jpki;
    let r = root(ca_params("JPKI for digital signature", None));
    let card = issue(jpki_params("山田 太郎", 20, false), &r);
    let h = jpki::holder(&card.cert).unwrap();
    assert_eq!((h.name.as_str(), h.test_card), ("山田 太郎", false));
    let path = check(&card, &[], &r, Purpose::Signing).unwrap();
    assert_eq!(path.len(), 2, "{path:?}");
    let test = issue(jpki_params("試験 花子", 20, true), &r);
    assert!(jpki::holder(&test.cert).unwrap().test_card);
    // Another policy is not JPKI's signing certificate (the 利用者証明用, 30, for one).
    let auth = issue(jpki_params("山田 太郎", 30, false), &r);
    assert_eq!(jpki::holder(&auth.cert), None);
    // A staff certificate is no JPKI certificate.
    assert_eq!(jpki::holder(&issue(signer_params("医師"), &r).cert), None);
}

#[test]
fn the_critical_policy_path_takes_nothing_beyond_its_one_shape() {
    let r = root(ca_params("JPKI for digital signature", None));
    let other = root(ca_params("Someone else", None));
    // Issued by a root nobody configured.
    let stranger = issue(jpki_params("山田 太郎", 20, false), &other);
    assert!(
        check(&stranger, &[], &r, Purpose::Signing)
            .unwrap_err()
            .starts_with("untrusted")
    );
    // Under an intermediate: webpki's shape, not this one.
    let i = issue(ca_params("Intermediate", None), &r);
    let deep = issue(jpki_params("山田 太郎", 20, false), &i);
    assert!(check(&deep, &[&i], &r, Purpose::Signing).is_err());
    // Another critical extension nobody understands.
    let mut p = jpki_params("山田 太郎", 20, false);
    let mut odd =
        CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 32473, 9], vec![0x05, 0x00]);
    odd.set_criticality(true);
    p.custom_extensions.push(odd);
    let e = check(&issue(p, &r), &[], &r, Purpose::Signing).unwrap_err();
    assert!(e.contains("critical"), "{e}");
    // Not for signing: an extended key usage, or no signing key usage.
    let mut p = jpki_params("山田 太郎", 20, false);
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    assert!(check(&issue(p, &r), &[], &r, Purpose::Signing).is_err());
    let mut p = jpki_params("山田 太郎", 20, false);
    p.key_usages = vec![KeyUsagePurpose::KeyEncipherment];
    assert!(check(&issue(p, &r), &[], &r, Purpose::Signing).is_err());
    // Outside its validity at the time asked about.
    let mut p = jpki_params("山田 太郎", 20, false);
    p.not_after = odt(NOW - DAY);
    let e = check(&issue(p, &r), &[], &r, Purpose::Signing).unwrap_err();
    assert!(e.starts_with("cert_not_valid"), "{e}");
    // Never a time-stamping authority.
    let card = issue(jpki_params("山田 太郎", 20, false), &r);
    assert!(check(&card, &[], &r, Purpose::TimeStamping).is_err());
}
