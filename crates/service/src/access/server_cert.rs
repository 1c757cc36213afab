//! The server's own certificate (HTTPS by default): issued by the facility CA for the host
//! names and addresses staff type, kept in `tls/` (key 0600), recorded among the CA's
//! certificates and in the ledger. PCs trust it once the CA certificate is installed on them
//! (the administrator's page shows how and the fingerprint to compare). A new one supersedes
//! the previous one, which is revoked in the same step.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mamori_domain::Millis;
use mamori_domain::audit::actions;
use mamori_domain::permission::Action;
use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, KeyPair,
    KeyUsagePurpose, SanType, SerialNumber,
};
use serde::Serialize;

use super::ca::{ca_err, issued_row, issued_target, issuer, odt};
use crate::crypto::random_bytes;
use crate::error::{Result, ServiceError};
use crate::{Principal, Service};

pub const TLS_DIR: &str = "tls";
/// The server's certificate followed by the facility CA's (the chain a browser is sent).
pub const SERVER_CERT: &str = "server.pem";
pub const SERVER_KEY: &str = "server.key";
/// Within what browsers accept for a certificate from a private CA (Apple: 825 days).
pub const DEFAULT_DAYS: u32 = 397;

/// `tls/server.pem` and `tls/server.key` of the instance in `dir`.
pub fn server_tls_paths(dir: &Path) -> (PathBuf, PathBuf) {
    let tls = dir.join(TLS_DIR);
    (tls.join(SERVER_CERT), tls.join(SERVER_KEY))
}

#[derive(Debug, Clone, Serialize)]
pub struct ServerCertInfo {
    pub serial: String,
    pub hosts: Vec<String>,
    pub not_after: Millis,
    /// SHA-256 of the facility CA certificate, as PCs show it when it is installed.
    pub ca_fingerprint: String,
}

/// The machine's name, `localhost` and the loopback addresses: what `init` uses when it is
/// given no `--host`.
pub fn default_hosts() -> Vec<String> {
    let mut hosts = Vec::new();
    if let Ok(name) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        let name = name.trim().to_ascii_lowercase();
        if check_host(&name).is_ok() && name != "localhost" {
            hosts.push(name);
        }
    }
    hosts.extend(["localhost", "127.0.0.1", "::1"].map(String::from));
    hosts
}

/// A DNS name (letters, digits, hyphens; dot-separated labels) or an IP address.
pub fn check_host(h: &str) -> std::result::Result<SanType, String> {
    if let Ok(ip) = h.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    let ok = !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if !ok {
        return Err(format!(
            "「{h}」はホスト名でも IP アドレスでもありません（例: karte.clinic.local, 192.168.1.10）"
        ));
    }
    h.to_ascii_lowercase()
        .try_into()
        .map(SanType::DnsName)
        .map_err(|e| format!("「{h}」: {e}"))
}

/// The colon-separated upper-case SHA-256 of a DER certificate, as operating systems show it.
pub fn fingerprint(der: &[u8]) -> String {
    mamori_domain::content::sha256_hex(der)
        .to_ascii_uppercase()
        .as_bytes()
        .chunks(2)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(":")
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let mut f = o.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

impl Service {
    /// The facility CA certificate in DER (for PCs: Windows and macOS open `.crt` files).
    pub async fn ca_certificate_der(self: &Arc<Self>) -> Result<Vec<u8>> {
        let pem = self.ca_certificate().await?;
        let certs = mamori_evidence::cert::Cert::from_pem_chain(&pem).map_err(ca_err)?;
        certs
            .into_iter()
            .next()
            .map(|c| c.der)
            .ok_or_else(|| ca_err("CA 証明書がありません"))
    }

    /// Issues the server's certificate for `hosts` and puts it in `tls/`; the previous one is
    /// revoked as superseded. `p` is None for the command line (`init`, `mamori ca
    /// server-cert`), otherwise an administrator. `serve` uses it from its next start.
    pub async fn issue_server_certificate(
        self: &Arc<Self>,
        p: Option<&Principal>,
        hosts: &[String],
        days: u32,
    ) -> Result<ServerCertInfo> {
        if let Some(p) = p {
            self.gate(
                p,
                actions::CERT_ISSUED,
                p.require(Action::AdminSettings, None),
            )
            .await?;
        }
        let mut names: Vec<String> = Vec::new();
        let mut sans = Vec::new();
        for h in hosts.iter().map(|h| h.trim()).filter(|h| !h.is_empty()) {
            let san = check_host(h).map_err(|m| ServiceError::invalid("hosts", m))?;
            let name = h.to_ascii_lowercase();
            if !names.contains(&name) {
                names.push(name);
                sans.push(san);
            }
        }
        if names.is_empty() || names.len() > 32 {
            return Err(ServiceError::invalid(
                "hosts",
                "職員がブラウザに入力するホスト名か IP アドレスを1〜32個指定してください",
            ));
        }
        if !(1..=825).contains(&days) {
            return Err(ServiceError::invalid(
                "days",
                "有効期間は1〜825日にしてください",
            ));
        }
        self.ensure_ca_recorded().await?;
        let now = self.now();
        let not_after = now + i64::from(days) * 86_400_000;
        let serial_bytes = {
            let mut b = random_bytes::<16>();
            b[0] = (b[0] & 0x7f) | 0x40; // a positive INTEGER, minimal in DER
            b
        };
        let serial = hex::encode(serial_bytes);
        let (dir, facility, first) = (
            self.data_dir.clone(),
            self.facility().to_owned(),
            names[0].clone(),
        );
        let (cert_path, key_path) = server_tls_paths(&self.data_dir);
        let (new_cert, new_key) = (
            cert_path.with_extension("pem.new"),
            key_path.with_extension("key.new"),
        );
        let (nc, nk) = (new_cert.clone(), new_key.clone());
        tokio::task::spawn_blocking(move || -> Result<()> {
            let (issuer, ca_pem) = issuer(&dir)?;
            let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(ca_err)?;
            let mut params = CertificateParams::new(Vec::<String>::new()).map_err(ca_err)?;
            let mut dn = DistinguishedName::new();
            dn.push(DnType::CommonName, first);
            dn.push(DnType::OrganizationName, facility);
            dn.push(DnType::OrganizationalUnitName, "server");
            params.distinguished_name = dn;
            params.subject_alt_names = sans;
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
            params.not_before = odt(now - 60_000);
            params.not_after = odt(not_after);
            params.serial_number = Some(SerialNumber::from_slice(&serial_bytes));
            params.use_authority_key_identifier_extension = true;
            let cert = params.signed_by(&key, &issuer).map_err(ca_err)?;
            let tls = dir.join(TLS_DIR);
            std::fs::create_dir_all(&tls).map_err(ca_err)?;
            mamori_store::restrict_dir(&tls).map_err(ca_err)?;
            write_private(&nk, key.serialize_pem().as_bytes()).map_err(ca_err)?;
            write_private(&nc, format!("{}{}", cert.pem(), ca_pem).as_bytes()).map_err(ca_err)?;
            Ok(())
        })
        .await
        .map_err(ServiceError::internal)??;
        let row = issued_row(&serial, "server", names.join(", "), now, not_after, p);
        let mut t = issued_target(&row);
        t.detail("hosts", names.clone());
        let by = p.map(|p| p.account.id);
        let recorded = self
            .write_audited(p, actions::CERT_ISSUED, t, move |_, tx, t| {
                let superseded: Vec<String> = tx
                    .read()
                    .certificates()?
                    .into_iter()
                    .filter(|c| c.kind == "server" && c.revoked_at.is_none())
                    .map(|c| c.serial)
                    .collect();
                for s in &superseded {
                    tx.revoke_certificate(s, "superseded", by, now)?;
                }
                if !superseded.is_empty() {
                    t.detail("superseded", superseded);
                }
                Ok(tx.insert_certificate(&row)?)
            })
            .await;
        if let Err(e) = recorded {
            let _ = std::fs::remove_file(&new_cert);
            let _ = std::fs::remove_file(&new_key);
            return Err(e);
        }
        // The key first: a server starting in between finds the old pair or a new key with
        // the old certificate, which it refuses, never a certificate without its key.
        std::fs::rename(&new_key, &key_path).map_err(ca_err)?;
        std::fs::rename(&new_cert, &cert_path).map_err(ca_err)?;
        if let Some(tls) = cert_path.parent() {
            std::fs::File::open(tls)
                .and_then(|d| d.sync_all())
                .map_err(ca_err)?;
        }
        // The names are answered to from the next start, with the certificate.
        crate::config::Config::edit(&self.data_dir, |c| c.server.allow_hosts(&names))?;
        let ca_fingerprint = fingerprint(&self.ca_certificate_der().await?);
        Ok(ServerCertInfo {
            serial,
            hosts: names,
            not_after,
            ca_fingerprint,
        })
    }

    /// The server certificate in force (the newest unrevoked one with its files present).
    pub async fn server_certificate(self: &Arc<Self>) -> Result<Option<ServerCertInfo>> {
        let (cert_path, _) = server_tls_paths(&self.data_dir);
        if !cert_path.exists() {
            return Ok(None);
        }
        let row = self
            .store
            .read(|r| r.certificates())
            .await?
            .into_iter()
            .find(|c| c.kind == "server" && c.revoked_at.is_none());
        let Some(row) = row else {
            return Ok(None);
        };
        let ca_fingerprint = fingerprint(&self.ca_certificate_der().await?);
        Ok(Some(ServerCertInfo {
            serial: row.serial,
            hosts: row.subject.split(", ").map(str::to_owned).collect(),
            not_after: row.not_after,
            ca_fingerprint,
        }))
    }
}
