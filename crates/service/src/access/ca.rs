//! The facility CA (zero-trust access, seed 000): client certificates for devices (bound to a
//! device identifier) and staff, as PKCS#12 bundles to install; revocation with RFC 5280
//! reason codes and a signed CRL. The CA key (ECDSA P-256) lives in `keys/ca.key` beside the
//! ledger key and is made on first use.

use crate::ErrorCode;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mamori_domain::Millis;
use mamori_domain::audit::actions;
use mamori_domain::permission::Action;
use mamori_store::CertificateRow;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevocationReason, RevokedCertParams, SanType, SerialNumber,
};
use serde::{Deserialize, Serialize};

use crate::crypto::random_bytes;
use crate::error::{Result, ServiceError};
use crate::instance::KEY_DIR;
use crate::{Principal, Service, Target};

pub const CA_KEY: &str = "ca.key";
pub const CA_CERT: &str = "ca.pem";
const CA_YEARS: i64 = 20;

#[derive(Debug, Clone, Deserialize)]
pub struct CertRequest {
    /// `device` or `user`.
    pub kind: String,
    /// Device name (device) or login (user).
    pub name: String,
    /// The device's own identifier (serial number, MAC address…), recorded in the
    /// certificate as `urn:mamori:device:<id>`.
    #[serde(default)]
    pub device_id: Option<String>,
    #[serde(default = "default_days")]
    pub days: u32,
}

fn default_days() -> u32 {
    397
}

#[derive(Debug, Clone, Serialize)]
pub struct IssuedCert {
    pub serial: String,
    pub not_after: Millis,
    /// PKCS#12 (certificate, key and the CA), protected by the password given.
    #[serde(skip)]
    pub p12: Vec<u8>,
}

/// RFC 5280 reason codes, by the names people use here.
pub const REASONS: &[(&str, &str)] = &[
    ("key_compromise", "鍵の漏えい・端末の紛失や盗難"),
    ("affiliation_changed", "退職・異動"),
    ("superseded", "再発行による置き換え"),
    ("cessation_of_operation", "端末の廃棄・利用終了"),
    ("unspecified", "その他"),
];

fn reason_code(r: &str) -> Option<RevocationReason> {
    Some(match r {
        "key_compromise" => RevocationReason::KeyCompromise,
        "affiliation_changed" => RevocationReason::AffiliationChanged,
        "superseded" => RevocationReason::Superseded,
        "cessation_of_operation" => RevocationReason::CessationOfOperation,
        "unspecified" => RevocationReason::Unspecified,
        _ => return None,
    })
}

pub(super) fn odt(ms: Millis) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

pub(super) fn ca_err(e: impl std::fmt::Display) -> ServiceError {
    ServiceError::new(ErrorCode::Ca, format!("認証局の処理に失敗しました: {e}"))
}

fn paths(dir: &Path) -> (PathBuf, PathBuf) {
    (
        dir.join(KEY_DIR).join(CA_KEY),
        dir.join(KEY_DIR).join(CA_CERT),
    )
}

/// Makes the CA key and self-signed certificate if the instance has none yet.
fn ensure_ca(dir: &Path, facility: &str, now: Millis) -> Result<bool> {
    let (key_path, cert_path) = paths(dir);
    if key_path.exists() && cert_path.exists() {
        return Ok(false);
    }
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(ca_err)?;
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(ca_err)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, format!("{facility} mamori CA"));
    dn.push(DnType::OrganizationName, facility);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = odt(now - 60_000);
    params.not_after = odt(now + CA_YEARS * 365 * 86_400_000);
    params.serial_number = Some(SerialNumber::from_slice(&random_bytes::<16>()));
    let cert = params.self_signed(&key).map_err(ca_err)?;
    std::fs::write(&key_path, key.serialize_pem()).map_err(ca_err)?;
    mamori_store::restrict_file(&key_path).map_err(ca_err)?;
    std::fs::write(&cert_path, cert.pem()).map_err(ca_err)?;
    Ok(true)
}

/// A certificate the CA has just issued, as recorded: valid from a minute before `now` (the
/// clocks of PCs differ a little), not revoked.
pub(super) fn issued_row(
    serial: &str,
    kind: &str,
    subject: String,
    now: Millis,
    not_after: Millis,
    by: Option<&Principal>,
) -> CertificateRow {
    CertificateRow {
        serial: serial.to_owned(),
        kind: kind.into(),
        subject,
        account_id: None,
        device_id: None,
        not_before: now - 60_000,
        not_after,
        issued_at: now,
        issued_by: by.map(|p| p.account.id),
        revoked_at: None,
        revoke_reason: None,
        revoked_by: None,
    }
}

/// What the ledger entry of an issuance names.
pub(super) fn issued_target(row: &CertificateRow) -> Target {
    let mut t = Target::default();
    t.detail("serial", row.serial.clone());
    t.detail("kind", row.kind.clone());
    t.detail("subject", row.subject.clone());
    t.detail("not_after", row.not_after);
    t
}

pub(super) fn issuer(dir: &Path) -> Result<(Issuer<'static, KeyPair>, String)> {
    let (key_path, cert_path) = paths(dir);
    let key_pem = std::fs::read_to_string(&key_path).map_err(ca_err)?;
    let cert_pem = std::fs::read_to_string(&cert_path).map_err(ca_err)?;
    let key = KeyPair::from_pem(&key_pem).map_err(ca_err)?;
    let issuer = Issuer::from_ca_cert_pem(&cert_pem, key).map_err(ca_err)?;
    Ok((issuer, cert_pem))
}

fn pem_body(pem: &str) -> Result<Vec<u8>> {
    let b64: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .join("");
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(ca_err)
}

impl Service {
    pub(super) async fn ensure_ca_recorded(self: &Arc<Self>) -> Result<()> {
        let (dir, facility, now) = (
            self.data_dir.clone(),
            self.facility().to_owned(),
            self.now(),
        );
        let created = tokio::task::spawn_blocking(move || ensure_ca(&dir, &facility, now))
            .await
            .map_err(ServiceError::internal)??;
        if created {
            let mut t = Target::default();
            t.detail("algorithm", "ECDSA P-256");
            self.write_audited(None, actions::CA_CREATED, t, |_, _, _| Ok(()))
                .await?;
        }
        Ok(())
    }

    /// The CA certificate (PEM), for clients and servers to trust.
    pub async fn ca_certificate(self: &Arc<Self>) -> Result<String> {
        self.ensure_ca_recorded().await?;
        std::fs::read_to_string(paths(&self.data_dir).1).map_err(ca_err)
    }

    /// Issues a client certificate. `p` is None for the command line (whoever can read the
    /// instance's keys), otherwise an administrator.
    pub async fn issue_certificate(
        self: &Arc<Self>,
        p: Option<&Principal>,
        req: CertRequest,
        p12_password: &str,
    ) -> Result<IssuedCert> {
        if let Some(p) = p {
            self.gate(
                p,
                actions::CERT_ISSUED,
                p.require(Action::AdminAccounts, None),
            )
            .await?;
        }
        if p12_password.chars().count() < 8 {
            return Err(ServiceError::invalid(
                "password",
                "証明書ファイルのパスワードは8文字以上にしてください",
            ));
        }
        let name = req.name.trim().to_owned();
        let valid_name = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        if !valid_name {
            return Err(ServiceError::invalid(
                "name",
                "名前は英数字と . _ - で64文字以内にしてください",
            ));
        }
        if !(1..=825).contains(&req.days) {
            return Err(ServiceError::invalid(
                "days",
                "有効期間は1〜825日にしてください",
            ));
        }
        let (account_id, kind) = match req.kind.as_str() {
            "device" => (None, "device"),
            "user" => {
                let login = name.clone();
                let acc = self
                    .store
                    .read(move |r| r.account_by_login(&login))
                    .await?
                    .filter(|a| a.active)
                    .ok_or_else(|| {
                        ServiceError::invalid(
                            "name",
                            "有効なアカウントのログインIDを指定してください",
                        )
                    })?;
                (Some(acc.id), "user")
            }
            _ => {
                return Err(ServiceError::invalid("kind", "種類は device か user です"));
            }
        };
        let device_id = req
            .device_id
            .as_deref()
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(str::to_owned);
        if device_id.as_ref().is_some_and(|d| {
            d.len() > 128
                || !d
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || ":._-".contains(c))
        }) {
            return Err(ServiceError::invalid(
                "device_id",
                "端末の識別子は英数字と : . _ - で128文字以内にしてください",
            ));
        }
        self.ensure_ca_recorded().await?;
        let now = self.now();
        let not_after = now + i64::from(req.days) * 86_400_000;
        let serial_bytes = {
            let mut b = random_bytes::<16>();
            b[0] = (b[0] & 0x7f) | 0x40; // a positive INTEGER, minimal in DER (no leading zero)
            b
        };
        let serial = hex::encode(serial_bytes);
        let (dir, facility) = (self.data_dir.clone(), self.facility().to_owned());
        let (n2, d2, pw) = (name.clone(), device_id.clone(), p12_password.to_owned());
        let p12 =
            tokio::task::spawn_blocking(move || -> Result<Vec<u8>> {
                let (issuer, ca_pem) = issuer(&dir)?;
                let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(ca_err)?;
                let mut params = CertificateParams::new(Vec::<String>::new()).map_err(ca_err)?;
                let mut dn = DistinguishedName::new();
                dn.push(DnType::CommonName, n2.clone());
                dn.push(DnType::OrganizationName, facility);
                dn.push(
                    DnType::OrganizationalUnitName,
                    if kind == "device" { "device" } else { "staff" },
                );
                params.distinguished_name = dn;
                let mut sans = vec![SanType::URI(
                    format!("urn:mamori:{kind}:{n2}")
                        .try_into()
                        .map_err(ca_err)?,
                )];
                if let Some(d) = &d2 {
                    sans.push(SanType::URI(
                        format!("urn:mamori:device-id:{d}")
                            .try_into()
                            .map_err(ca_err)?,
                    ));
                }
                params.subject_alt_names = sans;
                params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
                params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
                params.not_before = odt(now - 60_000);
                params.not_after = odt(not_after);
                params.serial_number = Some(SerialNumber::from_slice(&serial_bytes));
                params.use_authority_key_identifier_extension = true;
                let cert = params.signed_by(&key, &issuer).map_err(ca_err)?;
                let mut store = p12_keystore::KeyStore::new();
                let chain = vec![
                    p12_keystore::Certificate::from_der(cert.der()).map_err(ca_err)?,
                    p12_keystore::Certificate::from_der(&pem_body(&ca_pem)?).map_err(ca_err)?,
                ];
                let key_id = random_bytes::<8>();
                store.add_entry(
                    &n2,
                    p12_keystore::KeyStoreEntry::PrivateKeyChain(
                        p12_keystore::PrivateKeyChain::new(key.serialize_der(), key_id, chain),
                    ),
                );
                store.writer(&pw).write().map_err(ca_err)
            })
            .await
            .map_err(ServiceError::internal)??;
        let row = CertificateRow {
            account_id,
            device_id,
            ..issued_row(&serial, kind, name, now, not_after, p)
        };
        let mut t = issued_target(&row);
        if let Some(d) = &row.device_id {
            t.detail("device_id", d.clone());
        }
        self.write_audited(p, actions::CERT_ISSUED, t, move |_, tx, _| {
            Ok(tx.insert_certificate(&row)?)
        })
        .await?;
        Ok(IssuedCert {
            serial,
            not_after,
            p12,
        })
    }

    pub async fn certificates(
        self: &Arc<Self>,
        p: Option<&Principal>,
    ) -> Result<Vec<CertificateRow>> {
        match p {
            Some(p) => {
                let pc = p.clone();
                self.read_audited(p, actions::CERT_LIST, move |_, r, _| {
                    pc.require(Action::AdminAccounts, None)?;
                    Ok(r.certificates()?)
                })
                .await
            }
            None => Ok(self.store.read(|r| r.certificates()).await?),
        }
    }

    /// Revokes at once: the server refuses the certificate from the next connection, and the
    /// next CRL lists it.
    pub async fn revoke_certificate(
        self: &Arc<Self>,
        p: Option<&Principal>,
        serial: &str,
        reason: &str,
    ) -> Result<()> {
        if reason_code(reason).is_none() {
            return Err(ServiceError::invalid(
                "reason",
                "失効の理由を選んでください（key_compromise, affiliation_changed, superseded, cessation_of_operation, unspecified）",
            ));
        }
        let pc = p.cloned();
        let (serial, reason, now) = (
            serial.trim().to_ascii_lowercase(),
            reason.to_owned(),
            self.now(),
        );
        let mut t = Target::default();
        t.detail("serial", serial.clone());
        t.detail("reason", reason.clone());
        self.write_audited(p, actions::CERT_REVOKED, t, move |_, tx, _| {
            if let Some(p) = &pc {
                p.require(Action::AdminAccounts, None)?;
            }
            if !tx.revoke_certificate(&serial, &reason, pc.as_ref().map(|p| p.account.id), now)? {
                return Err(ServiceError::not_found("失効していない証明書").with_field("serial"));
            }
            Ok(())
        })
        .await
    }

    /// Whether the server must refuse this client certificate serial (unknown or revoked).
    pub async fn certificate_refused(self: &Arc<Self>, serial: &str) -> bool {
        let s = serial.to_owned();
        !matches!(
            self.store.read(move |r| r.certificate_revoked(&s)).await,
            Ok(Some(false))
        )
    }

    /// Every certificate the facility CA issued, by serial: client and server certificates,
    /// and staff signing certificates (a retired one — new key, disabled account, key erased
    /// from a file — is revoked from its retirement on, as superseded).
    pub(crate) async fn issued_certificates(
        self: &Arc<Self>,
    ) -> Result<std::collections::HashMap<String, Issued>> {
        let (certs, signing) = self
            .store
            .read(|r| Ok((r.certificates()?, r.signing_certs()?)))
            .await?;
        let mut all: std::collections::HashMap<String, Issued> = certs
            .into_iter()
            .map(|c| {
                (
                    c.serial.clone(),
                    Issued {
                        revoked_at: c.revoked_at,
                        reason: c.revoke_reason,
                    },
                )
            })
            .collect();
        for c in signing.into_iter().filter(|c| c.source == "facility") {
            all.insert(
                c.serial,
                Issued {
                    revoked_at: c.retired_at,
                    reason: c.retired_at.map(|_| "superseded".to_owned()),
                },
            );
        }
        Ok(all)
    }

    /// A freshly signed CRL (PEM) of every revoked certificate, valid for `days`.
    pub async fn crl_pem(self: &Arc<Self>, days: u32) -> Result<String> {
        self.ensure_ca_recorded().await?;
        let mut revoked: Vec<(String, Issued)> = self
            .issued_certificates()
            .await?
            .into_iter()
            .filter(|(_, c)| c.revoked_at.is_some())
            .collect();
        revoked.sort_by(|a, b| a.0.cmp(&b.0));
        let (dir, now) = (self.data_dir.clone(), self.now());
        tokio::task::spawn_blocking(move || -> Result<String> {
            let (issuer, _) = issuer(&dir)?;
            let params = CertificateRevocationListParams {
                this_update: odt(now - 60_000),
                next_update: odt(now + i64::from(days.max(1)) * 86_400_000),
                crl_number: SerialNumber::from(now as u64),
                issuing_distribution_point: None,
                revoked_certs: revoked
                    .iter()
                    .map(|(serial, c)| -> Result<RevokedCertParams> {
                        Ok(RevokedCertParams {
                            serial_number: SerialNumber::from_slice(
                                &hex::decode(serial).map_err(ca_err)?,
                            ),
                            revocation_time: odt(c.revoked_at.unwrap_or(now)),
                            reason_code: c.reason.as_deref().and_then(reason_code),
                            invalidity_date: None,
                        })
                    })
                    .collect::<Result<_>>()?,
                key_identifier_method: KeyIdMethod::Sha256,
            };
            params
                .signed_by(&issuer)
                .map_err(ca_err)?
                .pem()
                .map_err(ca_err)
        })
        .await
        .map_err(ServiceError::internal)?
    }
}

/// A certificate the facility CA issued, as its CRL and OCSP responder tell it.
pub(crate) struct Issued {
    pub revoked_at: Option<Millis>,
    pub reason: Option<String>,
}

/// A certificate the facility CA issued for mamori's own use (the development TSA), with its
/// new key. Staff signing keys never leave their token ([`issue_for_key`]).
pub(crate) struct Leaf {
    pub cert_der: Vec<u8>,
    pub key_pem: String,
}

/// What a [`Leaf`] is for.
pub(crate) enum LeafPurpose {
    /// Electronic signatures by a person: digitalSignature + nonRepudiation.
    Signing,
    /// An RFC 3161 TSA: digitalSignature, and extendedKeyUsage timeStamping marked critical.
    TimeStamping,
}

/// Issues a leaf certificate from the facility CA (which must exist).
pub(crate) fn issue_leaf(
    dir: &Path,
    subject: &[(DnType, String)],
    purpose: LeafPurpose,
    not_before: Millis,
    not_after: Millis,
) -> Result<Leaf> {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(ca_err)?;
    let serial = leaf_serial();
    let cert_der = certify(
        dir, subject, purpose, not_before, not_after, &key, &serial, None,
    )?;
    Ok(Leaf {
        cert_der,
        key_pem: key.serialize_pem(),
    })
}

/// A random certificate serial, positive and minimal in DER (no sign bit, no leading zero).
pub(crate) fn leaf_serial() -> [u8; 16] {
    let mut b = random_bytes::<16>();
    b[0] = (b[0] & 0x7f) | 0x40;
    b
}

/// A certificate from the facility CA for a key held elsewhere (a PKCS#11 token): `spki` is its
/// DER SubjectPublicKeyInfo, `serial` one of [`leaf_serial`], `hc_role` the qualification the
/// facility states (ISO 17090 hcRole under mamori's own scheme, so never taken for HPKI).
#[allow(clippy::too_many_arguments)]
pub(crate) fn issue_for_key(
    dir: &Path,
    subject: &[(DnType, String)],
    purpose: LeafPurpose,
    not_before: Millis,
    not_after: Millis,
    spki: &[u8],
    serial: &[u8; 16],
    hc_role: Option<&str>,
) -> Result<Vec<u8>> {
    let key = rcgen::SubjectPublicKeyInfo::from_der(spki).map_err(ca_err)?;
    certify(
        dir, subject, purpose, not_before, not_after, &key, serial, hc_role,
    )
}

#[allow(clippy::too_many_arguments)]
fn certify(
    dir: &Path,
    subject: &[(DnType, String)],
    purpose: LeafPurpose,
    not_before: Millis,
    not_after: Millis,
    key: &impl rcgen::PublicKeyData,
    serial: &[u8; 16],
    hc_role: Option<&str>,
) -> Result<Vec<u8>> {
    let (issuer, _) = issuer(dir)?;
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(ca_err)?;
    let mut dn = DistinguishedName::new();
    for (t, v) in subject {
        dn.push(t.clone(), v.clone());
    }
    params.distinguished_name = dn;
    match purpose {
        LeafPurpose::Signing => {
            params.key_usages = vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::ContentCommitment,
            ];
        }
        LeafPurpose::TimeStamping => {
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            // extendedKeyUsage = critical, id-kp-timeStamping (RFC 3161 §2.3); rcgen's own
            // extended_key_usages cannot be marked critical.
            let mut eku = rcgen::CustomExtension::from_oid_content(
                &[2, 5, 29, 37],
                vec![
                    0x30, 0x0a, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x08,
                ],
            );
            eku.set_criticality(true);
            params.custom_extensions = vec![eku];
        }
    }
    params.not_before = odt(not_before);
    params.not_after = odt(not_after);
    if let Some(role) = hc_role {
        // subjectDirectoryAttributes (2.5.29.9), not critical, as HPKI writes it.
        params
            .custom_extensions
            .push(rcgen::CustomExtension::from_oid_content(
                &[2, 5, 29, 9],
                mamori_evidence::hcrole::extension_value(
                    mamori_evidence::hcrole::FACILITY_ROLE,
                    role,
                ),
            ));
    }
    params.serial_number = Some(SerialNumber::from_slice(serial));
    params.use_authority_key_identifier_extension = true;
    let cert = params.signed_by(key, &issuer).map_err(ca_err)?;
    Ok(cert.der().to_vec())
}

impl Service {
    /// Makes sure the facility CA exists (recording its creation in the ledger).
    pub(crate) async fn ensure_ca(self: &Arc<Self>) -> Result<()> {
        self.ensure_ca_recorded().await
    }
}

/// The facility CA certificate (PEM) of an instance, if it has one.
pub fn ca_pem(dir: &Path) -> Option<String> {
    std::fs::read_to_string(paths(dir).1).ok()
}

impl Service {
    /// Answers an OCSP request (RFC 6960) about the facility CA's certificates: good, revoked
    /// (from the moment of revocation, with its reason) or unknown; signed by the CA.
    pub async fn ocsp_respond(self: &Arc<Self>, request: Vec<u8>) -> Result<Vec<u8>> {
        self.ensure_ca_recorded().await?;
        let rows = self.issued_certificates().await?;
        let (dir, now) = (self.data_dir.clone(), self.now());
        tokio::task::spawn_blocking(move || -> Result<Vec<u8>> {
            let (key_path, cert_path) = paths(&dir);
            let key =
                crate::crypto::pkcs8_from_pem(&std::fs::read_to_string(key_path).map_err(ca_err)?)?;
            let key = mamori_evidence::cades::Pkcs8Signer::from_pkcs8(&key).map_err(ca_err)?;
            let ca = mamori_evidence::cert::Cert::from_pem_chain(
                &std::fs::read_to_string(cert_path).map_err(ca_err)?,
            )
            .map_err(ca_err)?
            .pop()
            .ok_or_else(|| ca_err("ca.pem"))?;
            Ok(mamori_evidence::ocsp::respond(
                &request,
                &ca,
                &key,
                now,
                |serial| {
                    use mamori_evidence::ocsp::Status;
                    match rows.get(serial.trim_start_matches("00")) {
                        Some(c) => match c.revoked_at {
                            Some(at) => Status::Revoked {
                                at,
                                reason: c.reason.clone(),
                            },
                            None => Status::Good,
                        },
                        None => Status::Unknown,
                    }
                },
            ))
        })
        .await
        .map_err(ServiceError::internal)?
    }
}
