//! `mamori ca …`: the facility CA from the command line (the server must be stopped, as for
//! any write outside it). Who can read the instance's key directory may use it; every act is
//! in the ledger.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use mamori_domain::audit::actions;
use mamori_service::access::ca::CertRequest;
use mamori_service::instance::open;
use mamori_service::ledger::operator::Act;

use crate::fail;

#[derive(Subcommand)]
pub enum CaCmd {
    /// Issue a client certificate as a PKCS#12 file, for a device or a staff member.
    Issue {
        #[arg(long, env = "MAMORI_DATA")]
        data: PathBuf,
        /// A device's name (e.g. nurse-station-1).
        #[arg(long, conflicts_with = "user", required_unless_present = "user")]
        device: Option<String>,
        /// A staff member's login ID.
        #[arg(long)]
        user: Option<String>,
        /// The device's own identifier (serial number, MAC address).
        #[arg(long)]
        device_id: Option<String>,
        #[arg(long, default_value_t = 397)]
        days: u32,
        #[arg(long)]
        out: PathBuf,
        /// File holding the PKCS#12 password (or MAMORI_CERT_PASSWORD).
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// List issued certificates.
    List {
        #[arg(long, env = "MAMORI_DATA")]
        data: PathBuf,
    },
    /// Revoke a certificate at once (reason: key_compromise, affiliation_changed, superseded,
    /// cessation_of_operation, unspecified).
    Revoke {
        #[arg(long, env = "MAMORI_DATA")]
        data: PathBuf,
        serial: String,
        #[arg(long)]
        reason: String,
    },
    /// Write a freshly signed CRL (PEM).
    Crl {
        #[arg(long, env = "MAMORI_DATA")]
        data: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// How long relying parties may use it before fetching a new one (1–31 days).
        #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=31))]
        days: u32,
    },
    /// Issue the server's HTTPS certificate for the names and addresses staff type (the
    /// previous one is revoked as superseded); `serve` uses it from its next start.
    ServerCert {
        #[arg(long, env = "MAMORI_DATA")]
        data: PathBuf,
        /// A host name or IP address of this server (repeat for each).
        #[arg(long = "host", required = true)]
        hosts: Vec<String>,
        #[arg(long, default_value_t = mamori_service::access::server_cert::DEFAULT_DAYS)]
        days: u32,
    },
    /// Write the CA certificate (PEM), for clients and for `serve --client-ca`.
    Cert {
        #[arg(long, env = "MAMORI_DATA")]
        data: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
}

/// What an operator needs after a server certificate is issued: the names it covers, until
/// when, and the fingerprint to compare on each PC when installing the CA certificate.
pub(crate) fn server_cert_said(
    info: &mamori_service::access::server_cert::ServerCertInfo,
    data: &Path,
) -> String {
    format!(
        "サーバ証明書を発行しました: {}（有効期限 {}）\n\
         次回の mamori serve から HTTPS で使われます。\n\
         各 PC には認証局の証明書を入れてください（管理 › 証明書 に手順、または mamori ca cert --data {} --out ca.pem）。\n\
         認証局の指紋 (SHA-256): {}",
        info.hosts.join(", "),
        mamori_service::ledger::audit::jst(info.not_after),
        data.display(),
        info.ca_fingerprint
    )
}

pub(crate) fn password(file: Option<&Path>) -> Result<String, String> {
    match file {
        Some(f) => std::fs::read_to_string(f)
            .map(|s| s.trim_end_matches(['\r', '\n']).to_owned())
            .map_err(|e| format!("{} を読めません: {e}", f.display())),
        None => std::env::var("MAMORI_CERT_PASSWORD").map_err(|_| {
            "PKCS#12 のパスワードを --password-file か MAMORI_CERT_PASSWORD で指定してください"
                .to_owned()
        }),
    }
}

pub fn run(cmd: CaCmd) -> ExitCode {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let data = match &cmd {
        CaCmd::Issue { data, .. }
        | CaCmd::List { data }
        | CaCmd::Revoke { data, .. }
        | CaCmd::Crl { data, .. }
        | CaCmd::ServerCert { data, .. }
        | CaCmd::Cert { data, .. } => data.clone(),
    };
    let svc = match open(&data) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let result: Result<String, String> = rt.block_on(async {
        match cmd {
            CaCmd::Issue {
                device,
                user,
                device_id,
                days,
                out,
                password_file,
                ..
            } => {
                let pw = password(password_file.as_deref())?;
                let (kind, name) = match (device, user) {
                    (Some(d), _) => ("device", d),
                    (None, Some(u)) => ("user", u),
                    (None, None) => return Err("--device か --user を指定してください".into()),
                };
                let req = CertRequest {
                    kind: kind.into(),
                    name,
                    device_id,
                    days,
                };
                let issued = svc
                    .issue_certificate(None, req, &pw)
                    .await
                    .map_err(|e| e.to_string())?;
                std::fs::write(&out, &issued.p12)
                    .map_err(|e| format!("{} に書けません: {e}", out.display()))?;
                Ok(format!(
                    "発行しました: シリアル {}（有効期限 {}）→ {}",
                    issued.serial,
                    mamori_service::ledger::audit::jst(issued.not_after),
                    out.display()
                ))
            }
            CaCmd::List { .. } => {
                let list = svc.certificates(None).await.map_err(|e| e.to_string())?;
                let mut s = String::from("serial                            kind    subject              expires           revoked\n");
                for c in list {
                    s.push_str(&format!(
                        "{:<33} {:<7} {:<20} {:<17} {}\n",
                        c.serial,
                        c.kind,
                        c.subject,
                        mamori_service::ledger::audit::jst(c.not_after),
                        c.revoke_reason.unwrap_or_default()
                    ));
                }
                Ok(s.trim_end().to_owned())
            }
            CaCmd::Revoke { serial, reason, .. } => {
                svc.revoke_certificate(None, &serial, &reason)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(format!("失効しました: {serial}（{reason}）"))
            }
            CaCmd::Crl { out, days, .. } => {
                // Signing with the CA key is an act of the key holder: recorded first.
                svc.record_act(Act::new(
                    actions::CERT_CRL_ISSUED,
                    serde_json::json!({"days": days, "out": out.display().to_string()}),
                ))
                .await
                .map_err(|e| e.to_string())?;
                let pem = svc.crl_pem(days).await.map_err(|e| e.to_string())?;
                std::fs::write(&out, pem)
                    .map_err(|e| format!("{} に書けません: {e}", out.display()))?;
                Ok(format!("CRL を書き出しました: {}", out.display()))
            }
            CaCmd::ServerCert { hosts, days, .. } => {
                let info = svc
                    .issue_server_certificate(None, &hosts, days)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(server_cert_said(&info, &data))
            }
            CaCmd::Cert { out, .. } => {
                let pem = svc.ca_certificate().await.map_err(|e| e.to_string())?;
                std::fs::write(&out, pem)
                    .map_err(|e| format!("{} に書けません: {e}", out.display()))?;
                Ok(format!("CA 証明書を書き出しました: {}", out.display()))
            }
        }
    });
    svc.store().close();
    match result {
        Ok(msg) => {
            println!("{msg}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}
