//! A test PKI made with rcgen: a CA, a signer and a TSA, with chosen validity.
#![allow(dead_code)] // each test binary uses part of it

use mamori_evidence::UnixMs;
use mamori_evidence::cert::Cert;
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

pub const DAY: UnixMs = 86_400_000;
/// 2026-11-23 00:00 UTC.
pub const NOW: UnixMs = 1_795_392_000_000;

fn odt(ms: UnixMs) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(ms / 1000).unwrap()
}

pub struct Pki {
    pub ca: Cert,
    issuer: Issuer<'static, KeyPair>,
    /// Written as the CRL distribution point of the certificates issued from now on.
    pub crl_url: Option<String>,
}

pub struct Holder {
    pub cert: Cert,
    pub pkcs8: Vec<u8>,
}

impl Pki {
    pub fn new(name: &str) -> Self {
        Self::valid_from(name, NOW - 365 * DAY)
    }

    /// A CA valid for thirty years from `from`.
    pub fn valid_from(name: &str, from: UnixMs) -> Self {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, name);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        p.not_before = odt(from);
        p.not_after = odt(from + 30 * 365 * DAY);
        let cert = p.self_signed(&key).unwrap();
        let ca = Cert::from_der(cert.der()).unwrap();
        let issuer = Issuer::from_ca_cert_der(cert.der(), key).unwrap();
        Self {
            ca,
            issuer,
            crl_url: None,
        }
    }

    fn issue(&self, name: &str, from: UnixMs, to: UnixMs, tsa: bool) -> Holder {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
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
        p.not_before = odt(from);
        p.not_after = odt(to);
        p.use_authority_key_identifier_extension = true;
        if let Some(url) = &self.crl_url {
            p.crl_distribution_points = vec![rcgen::CrlDistributionPoint {
                uris: vec![url.clone()],
            }];
        }
        let cert = p.signed_by(&key, &self.issuer).unwrap();
        Holder {
            cert: Cert::from_der(cert.der()).unwrap(),
            pkcs8: key.serialize_der(),
        }
    }

    pub fn signer(&self, name: &str) -> Holder {
        self.issue(name, NOW - DAY, NOW + 2 * 365 * DAY, false)
    }

    pub fn signer_valid(&self, name: &str, from: UnixMs, to: UnixMs) -> Holder {
        self.issue(name, from, to, false)
    }

    pub fn tsa(&self, name: &str, from: UnixMs, to: UnixMs) -> Holder {
        self.issue(name, from, to, true)
    }

    /// The CA's CRL (DER) issued at `at`, valid a week, revoking nothing.
    pub fn crl(&self, at: UnixMs) -> Vec<u8> {
        let params = rcgen::CertificateRevocationListParams {
            this_update: odt(at),
            next_update: odt(at + 7 * DAY),
            crl_number: rcgen::SerialNumber::from(at as u64),
            issuing_distribution_point: None,
            revoked_certs: vec![],
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        };
        params.signed_by(&self.issuer).unwrap().der().to_vec()
    }
}

pub fn write(dir: &std::path::Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// Runs a verifier; returns (success, stdout+stderr).
pub fn run(cmd: &str, args: &[&std::ffi::OsStr]) -> (bool, String) {
    let out = std::process::Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd} is needed for this test ({e}); .ci/run installs it"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Serves `body` to every HTTP request on 127.0.0.1 (a CA's CRL as a verifier fetches it years
/// later); returns the URL.
pub fn serve_forever(body: Vec<u8>) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://127.0.0.1:{}/ca.crl",
        listener.local_addr().unwrap().port()
    );
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/pkix-crl\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(&body);
        }
    });
    url
}
