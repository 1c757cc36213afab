//! TLS to PostgreSQL: with `sslmode=require&sslrootcert=…` the connection is encrypted and the
//! server's certificate is checked against that CA and the host name in the URL; a server whose
//! certificate another CA issued, or one that offers no TLS, is refused — nothing falls back
//! to plain text.

use mamori_store::postgres::{PgLedger, connect, parse_url, verify_ledger};
use mamori_testkit::postgres::Cluster;

struct Pki {
    ca_pem: String,
    server_pem: String,
    server_key: String,
}

fn pki(names: &[&str]) -> Pki {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "test database CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let cert = params.signed_by(&key, &issuer).unwrap();
    Pki {
        ca_pem: ca_cert.pem(),
        server_pem: cert.pem(),
        server_key: key.serialize_pem(),
    }
}

/// A database on `cluster` and a URL that requires TLS and trusts only `pki`'s CA.
fn trusting(cluster: &Cluster, pki: &Pki) -> (tempfile::TempDir, std::path::PathBuf, String) {
    cluster.database("mamori");
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    let url = format!(
        "postgres://postgres@127.0.0.1:{}/mamori?sslmode=require&sslrootcert={}",
        cluster.port(),
        ca.display()
    );
    (dir, ca, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_is_encrypted_and_the_server_is_checked() {
    let good = pki(&["127.0.0.1"]);
    let cluster = Cluster::start_with_tls(&good.server_pem, &good.server_key);
    let (dir, ca, url) = trusting(&cluster, &good);
    let db = parse_url(&url).unwrap();
    assert!(db.encrypted());
    let client = connect(&db).await.unwrap();
    let ssl: bool = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(ssl, "the server sees an encrypted connection");
    // The ledger works over it.
    let ledger = PgLedger::open(db.clone(), Default::default())
        .await
        .unwrap();
    for i in 0..10 {
        let ev = mamori_domain::audit::AuditEvent::new(
            1_795_000_000_000 + i,
            None,
            mamori_domain::audit::actions::LEDGER_VERIFIED,
            mamori_domain::audit::Outcome::Ok,
        );
        ledger.append(ev).await.unwrap();
    }
    assert!(verify_ledger(&client).await.unwrap().problems.is_empty());

    // A CA that did not issue the server's certificate: refused.
    let other = pki(&["127.0.0.1"]);
    let wrong = dir.path().join("wrong.pem");
    std::fs::write(&wrong, &other.ca_pem).unwrap();
    let e =
        connect(&parse_url(&url.replace(ca.to_str().unwrap(), wrong.to_str().unwrap())).unwrap())
            .await
            .unwrap_err();
    assert!(format!("{e}").contains("certificate"), "{e}");

    // A name the certificate does not carry: refused.
    let e = connect(&parse_url(&url.replace("127.0.0.1", "localhost")).unwrap())
        .await
        .unwrap_err();
    assert!(format!("{e}").contains("not valid for name"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_tls_is_refused_not_used_in_the_clear() {
    let good = pki(&["127.0.0.1"]);
    let cluster = Cluster::start();
    let (_dir, _, url) = trusting(&cluster, &good);
    assert!(connect(&parse_url(&url).unwrap()).await.is_err());
}
