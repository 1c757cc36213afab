//! A small PKI made once per process: a CA, a signer and a TSA, so that the seeds of the
//! signature, time-stamp and OCSP targets are well-formed and reach the checks past parsing.

use std::sync::OnceLock;

use mamori_evidence::UnixMs;
use mamori_evidence::cert::Cert;
use mamori_evidence::tsp::DevTsa;
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

pub const DAY: UnixMs = 86_400_000;
/// 2026-11-23 00:00 UTC: a fixed time, so that runs repeat.
pub const NOW: UnixMs = 1_795_392_000_000;

pub struct Holder {
    pub cert: Cert,
    pub pkcs8: Vec<u8>,
}

pub struct Pki {
    pub ca: Cert,
    pub ca_pkcs8: Vec<u8>,
    pub signer: Holder,
    pub tsa: DevTsa,
}

fn odt(ms: UnixMs) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(ms / 1000).expect("a time")
}

fn leaf(name: &str, issuer: &Issuer<'_, KeyPair>, tsa: bool) -> Holder {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("a key");
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
    p.distinguished_name.push(DnType::CommonName, name);
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::ContentCommitment,
    ];
    if tsa {
        // extendedKeyUsage = critical, timeStamping (RFC 3161 §2.3)
        let mut eku = CustomExtension::from_oid_content(
            &[2, 5, 29, 37],
            vec![
                0x30, 0x0a, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x08,
            ],
        );
        eku.set_criticality(true);
        p.custom_extensions = vec![eku];
    }
    p.not_before = odt(NOW - DAY);
    p.not_after = odt(NOW + 365 * DAY);
    p.use_authority_key_identifier_extension = true;
    let cert = p.signed_by(&key, issuer).expect("issued");
    Holder {
        cert: Cert::from_der(cert.der()).expect("parses"),
        pkcs8: key.serialize_der(),
    }
}

pub fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("a key");
        let ca_pkcs8 = key.serialize_der();
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
        p.distinguished_name.push(DnType::CommonName, "ファズ用 CA");
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        p.not_before = odt(NOW - 365 * DAY);
        p.not_after = odt(NOW + 10 * 365 * DAY);
        let cert = p.self_signed(&key).expect("self-signed");
        let ca = Cert::from_der(cert.der()).expect("parses");
        let issuer = Issuer::from_ca_cert_der(cert.der(), key).expect("issuer");
        let signer = leaf("署名者", &issuer, false);
        let t = leaf("TSA", &issuer, true);
        let tsa = DevTsa::new(&t.pkcs8, t.cert, vec![ca.clone()]).expect("a TSA");
        Pki {
            ca,
            ca_pkcs8,
            signer,
            tsa,
        }
    })
}
