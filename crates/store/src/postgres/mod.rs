//! PostgreSQL: the store for sites that run several mamori nodes against one database
//! (issue #22). SQLite stays the default; nothing here is used unless a `postgres://` URL is
//! configured.
//!
//! The ledger is sequenced the way Tessera sequences a log on MySQL or Spanner: each node
//! commits its batch in one transaction that first locks the single coordinator row
//! (`ledger_head`: size, newest time, the tree's right edge), computes the Merkle hashes from
//! that stored edge, inserts the entries and moves the head. Two nodes can therefore never
//! assign the same index, and an index is only ever seen by others once its transaction
//! committed. Each batch carries a random id stored in the same transaction, so a node that
//! lost its connection during `COMMIT` finds out afterwards whether the batch is in — an
//! acknowledged entry is never missing and an entry is never written twice.

mod leader;
mod ledger;
mod schema;
mod small_blobs;
mod store;
mod store_schema;
mod store_writer;
mod verify;

use std::str::FromStr;

pub use leader::{LeaderOptions, Leadership, lock_key};
pub use ledger::{PgLedger, PgLedgerOptions, PgLedgerStats};
pub(crate) use small_blobs::BLOB_BYTES_DDL;
pub use small_blobs::{PgBlobs, SMALL_FILE, Tiered};
pub use tokio_postgres::Config;

pub(crate) use store::PgStore;
#[doc(hidden)]
pub use store::install_release_schema;
pub(crate) use store::{CAPTURE_TABLE, install};
pub(crate) use store_schema::{in_reference_order, numbers_rows};
pub use verify::{LedgerCheck, verify_ledger};

use crate::StoreError;
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::error::SqlState;

/// Where the database is and how to reach it: the driver's settings, and the TLS settings
/// when the connection is encrypted.
#[derive(Clone)]
pub struct Database {
    pub config: Config,
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
}

impl Database {
    /// Another session setting for every connection (e.g. `-c search_path=…`).
    pub fn with_options(mut self, options: &str) -> Self {
        self.config.options(options);
        self
    }

    pub fn encrypted(&self) -> bool {
        self.tls.is_some()
    }
}

/// Parses a `postgres://` URL (or `key=value` string). Patient data never travels in the clear
/// to another machine, nor may a connection silently fall back to it:
///
/// - a host other than loopback or a Unix socket needs `sslmode=require` with `sslrootcert=`
///   (the CA that issued the server's certificate; the name in the URL is checked against the
///   certificate), or an explicit `sslmode=disable` (a private network the operator vouches
///   for);
/// - `sslmode=require` anywhere means TLS with that verification; `prefer` (the driver's
///   default, which falls back to plain text) is refused for remote hosts.
pub fn parse_url(url: &str) -> Result<Database, StoreError> {
    let (url, root) = take_param(url, "sslrootcert");
    let config = Config::from_str(&url)
        .map_err(|e| StoreError::Schema(format!("データベースの URL を読み取れません: {e}")))?;
    if config.get_hosts().is_empty() {
        return Err(StoreError::Schema(
            "データベースの URL にホストがありません（postgres://ユーザー@ホスト:5432/データベース）".into(),
        ));
    }
    let remote = config.get_hosts().iter().any(|h| match h {
        Host::Tcp(name) => !is_loopback(name),
        #[cfg(unix)]
        Host::Unix(_) => false,
    });
    let tls = match (config.get_ssl_mode(), root) {
        (SslMode::Require, Some(path)) => Some(tls_to(&path)?),
        (SslMode::Require, None) => {
            return Err(StoreError::Schema(
                "sslmode=require には、データベースサーバーの証明書を確かめる CA 証明書 sslrootcert=<ファイル> も指定してください"
                    .into(),
            ));
        }
        (SslMode::Disable, _) => None,
        (_, Some(_)) => {
            return Err(StoreError::Schema(
                "sslrootcert を指定したときは sslmode=require も指定してください（暗号化なしの接続に戻らないように）".into(),
            ));
        }
        (_, None) if remote => {
            return Err(StoreError::Schema(
                "別のマシンのデータベースには sslmode=require&sslrootcert=<CA 証明書ファイル> を指定してください\
                 （mamori とデータベースの間が閉じたネットワークなら sslmode=disable）"
                    .into(),
            ));
        }
        (_, None) => None,
    };
    let mut config = config;
    if tls.is_none() {
        // Loopback, a socket, or disable: never attempt (and half-trust) TLS.
        config.ssl_mode(SslMode::Disable);
    }
    Ok(Database { config, tls })
}

/// Removes `key=value` from a URL's query (or a `key=value` string) and returns its value:
/// the driver does not know libpq's `sslrootcert`.
fn take_param(url: &str, key: &str) -> (String, Option<String>) {
    let prefix = format!("{key}=");
    let mut found = None;
    let mut keep = |part: &&str| match part.strip_prefix(&prefix) {
        Some(v) => {
            found = Some(v.to_owned());
            false
        }
        None => true,
    };
    let rest = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        match url.split_once('?') {
            None => url.to_owned(),
            Some((base, query)) => {
                let kept: Vec<&str> = query.split('&').filter(&mut keep).collect();
                if kept.is_empty() {
                    base.to_owned()
                } else {
                    format!("{base}?{}", kept.join("&"))
                }
            }
        }
    } else {
        let kept: Vec<&str> = url.split_whitespace().filter(&mut keep).collect();
        kept.join(" ")
    };
    (rest, found)
}

/// TLS that trusts only the CA certificates in `path` (PEM).
fn tls_to(path: &str) -> Result<tokio_postgres_rustls::MakeRustlsConnect, StoreError> {
    use rustls_pki_types::pem::PemObject;
    let bad = |why: String| StoreError::Schema(format!("CA 証明書 {path} を使えません: {why}"));
    let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_slice_iter(&pem) {
        roots
            .add(cert.map_err(|e| bad(e.to_string()))?)
            .map_err(|e| bad(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(bad("証明書が含まれていません".into()));
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| bad(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|a| a.is_loopback())
}

/// Opens one connection; its I/O runs on a task of its own until the client is dropped.
pub async fn connect(db: &Database) -> Result<tokio_postgres::Client, StoreError> {
    match &db.tls {
        Some(tls) => open(db.config.connect(tls.clone()).await),
        None => open(db.config.connect(tokio_postgres::NoTls).await),
    }
}

fn open<S, T>(
    connected: Result<
        (tokio_postgres::Client, tokio_postgres::Connection<S, T>),
        tokio_postgres::Error,
    >,
) -> Result<tokio_postgres::Client, StoreError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (client, connection) = connected.map_err(|e| {
        // The driver's message alone says "error performing TLS handshake"; why is in its
        // sources.
        let mut msg = e.to_string();
        let mut cause = std::error::Error::source(&e);
        while let Some(c) = cause {
            msg.push_str(": ");
            msg.push_str(&c.to_string());
            cause = c.source();
        }
        StoreError::Unreachable(msg)
    })?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "PostgreSQL connection ended");
        }
    });
    Ok(client)
}

/// Whether a failed statement is worth running again on a fresh connection: the connection
/// broke, the server is restarting or failing over (a standby that is not yet primary answers
/// read-only), or the transaction lost a serialization race. Anything else is an answer.
pub(crate) fn retryable(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        None => true, // I/O: the connection itself failed
        Some(code) => [
            SqlState::T_R_SERIALIZATION_FAILURE,
            SqlState::T_R_DEADLOCK_DETECTED,
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CRASH_SHUTDOWN,
            SqlState::CANNOT_CONNECT_NOW,
            SqlState::READ_ONLY_SQL_TRANSACTION,
            SqlState::CONNECTION_FAILURE,
            SqlState::CONNECTION_EXCEPTION,
        ]
        .contains(code),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_that_would_leave_the_machine_in_the_clear_are_refused() {
        let ca = std::env::temp_dir().join(format!("mamori-test-ca-{}.pem", std::process::id()));
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(Vec::<String>::new())
            .unwrap()
            .self_signed(&key)
            .unwrap();
        std::fs::write(&ca, cert.pem()).unwrap();
        let with_ca = format!(
            "postgres://mamori@db.clinic.local/mamori?sslmode=require&sslrootcert={}",
            ca.display()
        );
        let db = parse_url(&with_ca).unwrap();
        assert!(db.encrypted());
        assert!(!parse_url("postgres://m@127.0.0.1/m").unwrap().encrypted());
        for ok in [
            "postgres://mamori@127.0.0.1:5432/mamori",
            "postgres://mamori@localhost/mamori",
            "postgres://mamori@[::1]:5432/mamori",
            "postgres://mamori@db.clinic.local/mamori?sslmode=disable",
            "host=/run/postgresql dbname=mamori user=mamori",
            "postgres://m@127.0.0.1:5432,127.0.0.1:5433/m?target_session_attrs=read-write",
        ] {
            parse_url(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in [
            "postgres://mamori@db.clinic.local/mamori",
            "postgres://mamori@10.0.0.5/mamori?sslmode=prefer",
            "postgres://m@127.0.0.1:5432,10.0.0.6:5432/m",
            "postgres://",
            "mysql://x",
            "postgres://mamori@db.clinic.local/mamori?sslmode=require",
            "postgres://mamori@127.0.0.1/mamori?sslrootcert=/etc/ssl/x.pem",
            "postgres://mamori@db.clinic.local/mamori?sslmode=require&sslrootcert=/nonexistent.pem",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
        let _ = std::fs::remove_file(ca);
    }

    proptest::proptest! {
        /// Whatever an operator writes is read or refused with a message, never a panic.
        #[test]
        fn any_database_url_is_read_or_refused(
            tail in ".{0,120}",
            scheme in proptest::sample::select(vec!["", "postgres://", "postgresql://", "host="]),
        ) {
            if let Err(e) = parse_url(&format!("{scheme}{tail}")) {
                proptest::prop_assert!(!e.to_string().is_empty());
            }
        }
    }

    #[test]
    fn refusals_say_what_to_write_in_japanese() {
        let e = parse_url("postgres://mamori@db.clinic.local/mamori")
            .err()
            .unwrap();
        assert!(e.to_string().contains("sslmode=require&sslrootcert"), "{e}");
        assert!(e.to_string().contains("別のマシン"), "{e}");
    }

    #[test]
    fn sslrootcert_is_taken_out_of_either_form() {
        assert_eq!(
            take_param(
                "postgres://a@h/d?sslmode=require&sslrootcert=/x.pem&application_name=n",
                "sslrootcert"
            ),
            (
                "postgres://a@h/d?sslmode=require&application_name=n".into(),
                Some("/x.pem".into())
            )
        );
        assert_eq!(
            take_param("postgres://a@h/d?sslrootcert=/x.pem", "sslrootcert"),
            ("postgres://a@h/d".into(), Some("/x.pem".into()))
        );
        assert_eq!(
            take_param("host=h sslrootcert=/x.pem dbname=d", "sslrootcert"),
            ("host=h dbname=d".into(), Some("/x.pem".into()))
        );
    }
}
