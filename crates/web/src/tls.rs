//! HTTPS with client certificates (zero trust, seed 000): the facility CA's certificates are
//! checked at the TLS layer against the CA and its CRL (rustls `WebPkiClientVerifier`), then —
//! because a CRL is only as fresh as its last reload — every connection's certificate serial is
//! checked against the live revocation list, so a revocation takes effect at the next
//! connection. The certificate travels with each request and is named in every ledger entry.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use mamori_domain::audit::actions;
use mamori_service::Service;
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientCerts {
    /// TLS only.
    Off,
    /// A certificate is checked if presented; connections without one are accepted.
    Optional,
    /// Every connection must present a valid, unrevoked certificate of the facility CA.
    Required,
}

impl std::str::FromStr for ClientCerts {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" | "off" => Ok(Self::Off),
            "optional" => Ok(Self::Optional),
            "required" => Ok(Self::Required),
            _ => Err(format!(
                "--client-cert は required / optional / none です（{s}）"
            )),
        }
    }
}

pub struct TlsOptions {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_certs: ClientCerts,
}

/// How `serve` is to speak: with the certificate files given, or as the instance decides.
pub enum Transport {
    Given(TlsOptions),
    Instance {
        client_certs: ClientCerts,
        insecure_http: bool,
    },
}

/// What `serve` speaks (the same rule `serve_with` warns by): HTTPS with the instance's own certificate when it has one; plain HTTP only where nothing
/// else can listen in (loopback) or when the operator insists (`--insecure-http`).
pub fn choose(
    data: &std::path::Path,
    transport: Transport,
    local: std::net::SocketAddr,
) -> Result<Option<TlsOptions>, String> {
    let (client_certs, insecure_http) = match transport {
        Transport::Given(t) => return Ok(Some(t)),
        Transport::Instance {
            client_certs,
            insecure_http,
        } => (client_certs, insecure_http),
    };
    let (cert, key) = mamori_service::access::server_cert::server_tls_paths(data);
    if !insecure_http && cert.exists() && key.exists() {
        return Ok(Some(TlsOptions {
            cert,
            key,
            client_certs,
        }));
    }
    if client_certs != ClientCerts::Off {
        return Err(
            "クライアント証明書の確認には HTTPS が必要です（--insecure-http とは併用できません）"
                .into(),
        );
    }
    if insecure_http || local.ip().is_loopback() {
        return Ok(None);
    }
    Err(format!(
        "{local} は他の端末から届くアドレスなので、暗号化しない HTTP では起動しません。\n\
         サーバ証明書を発行してください: mamori ca server-cert --data {} --host <職員が入力するホスト名や IP アドレス>\n\
         （どうしても HTTP で動かす場合は --insecure-http。すべての画面に警告が出ます）",
        data.display()
    ))
}

/// The client certificate of a connection, attached to each of its requests.
#[derive(Clone, Debug)]
pub struct PeerCert {
    pub serial: String,
    pub subject: String,
}

fn io_err(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

fn peer_cert(der: &CertificateDer<'_>) -> Option<PeerCert> {
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    let serial = hex::encode(cert.raw_serial())
        .trim_start_matches("00")
        .to_owned();
    let subject = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .unwrap_or("")
        .to_owned();
    Some(PeerCert { serial, subject })
}

async fn server_config(
    svc: &Arc<Service>,
    tls: &TlsOptions,
) -> std::io::Result<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&tls.cert)
        .map_err(io_err)?
        .collect::<Result<_, _>>()
        .map_err(io_err)?;
    let key = PrivateKeyDer::from_pem_file(&tls.key).map_err(io_err)?;
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(io_err)?;
    let builder = match tls.client_certs {
        ClientCerts::Off => builder.with_no_client_auth(),
        mode => {
            let ca = svc.ca_certificate().await.map_err(io_err)?;
            let mut roots = RootCertStore::empty();
            for c in CertificateDer::pem_slice_iter(ca.as_bytes()) {
                roots.add(c.map_err(io_err)?).map_err(io_err)?;
            }
            let crl = svc.crl_pem(7).await.map_err(io_err)?;
            let crl =
                CertificateRevocationListDer::from_pem_slice(crl.as_bytes()).map_err(io_err)?;
            let mut v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .with_crls(vec![crl]);
            if mode == ClientCerts::Optional {
                v = v.allow_unauthenticated();
            }
            builder.with_client_cert_verifier(v.build().map_err(io_err)?)
        }
    };
    let mut cfg = builder.with_single_cert(certs, key).map_err(io_err)?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(cfg)
}

/// Records a refused connection (a certificate revoked since the CRL was loaded, or unknown).
async fn refused(svc: &Arc<Service>, addr: SocketAddr, cert: &PeerCert) {
    tracing::warn!(serial = %cert.serial, client = %addr, "client certificate refused");
    let _ = svc
        .record_system_event(
            actions::TLS_REFUSED,
            serde_json::json!({ "serial": cert.serial, "subject": cert.subject, "client": addr.ip().to_string() }),
        )
        .await;
}

/// The TLS side of a connection: the handshake (bounded in time) and the per-connection check
/// of the client certificate against the live revocation list.
#[derive(Clone)]
pub struct TlsAcceptor(tokio_rustls::TlsAcceptor);

impl TlsAcceptor {
    pub async fn new(svc: &Arc<Service>, tls: &TlsOptions) -> std::io::Result<Self> {
        Ok(Self(tokio_rustls::TlsAcceptor::from(Arc::new(
            server_config(svc, tls).await?,
        ))))
    }

    /// The handshake, within `timeout`; `None` when it fails, times out or the certificate is
    /// refused (recorded).
    pub(crate) async fn handshake(
        &self,
        svc: &Arc<Service>,
        tcp: tokio::net::TcpStream,
        addr: SocketAddr,
        timeout: std::time::Duration,
    ) -> Option<(
        tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
        Option<PeerCert>,
    )> {
        // Unknown CAs, expired or CRL-listed certificates fail here, in the handshake.
        let stream = tokio::time::timeout(timeout, self.0.accept(tcp))
            .await
            .ok()?
            .ok()?;
        let peer = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .and_then(peer_cert);
        if let Some(p) = &peer
            && svc.certificate_refused(&p.serial).await
        {
            refused(svc, addr, p).await;
            return None;
        }
        Some((stream, peer))
    }
}
