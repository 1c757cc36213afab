//! The ledger on a real PostgreSQL server (a throw-away cluster per test, see mamori-testkit):
//! several nodes sequence one ledger without ever sharing an index, a database crash under
//! load loses no acknowledged entry and writes none twice, tampering is found, and the root
//! is the one the SQLite ledger has for the same entries.

mod pg_support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use mamori_domain::audit::AuditEvent;
use mamori_store::postgres::{PgLedgerOptions, verify_ledger};
use mamori_store::{Store, StoreOptions};
use mamori_testkit::postgres::Cluster;
use pg_support::{assert_all_present, client, event, load, node, nonces};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_sequence_one_ledger_with_the_root_sqlite_computes() {
    let cluster = Cluster::start();
    let url = cluster.database("mamori");
    let a = node(
        &format!("{url}?application_name=node-a"),
        Default::default(),
    )
    .await;
    let b = node(
        &format!("{url}?application_name=node-b"),
        Default::default(),
    )
    .await;
    let (acked, failed, _) = load(&[a.clone(), b.clone()], 24, 60, Duration::ZERO).await;
    assert_eq!(failed, 0);
    let n = 2 * 24 * 60;
    assert_eq!(acked.len(), n);
    // Both nodes wrote, into one sequence 0..n with no gap.
    assert!((0..n as u64).all(|i| acked.contains_key(&i)));
    assert!(a.stats().batches.load(std::sync::atomic::Ordering::Relaxed) > 0);
    assert!(b.stats().batches.load(std::sync::atomic::Ordering::Relaxed) > 0);
    assert_all_present(&acked, &nonces(&url).await);

    let check = verify_ledger(&client(&url).await).await.unwrap();
    assert!(check.problems.is_empty(), "{:?}", check.problems);
    assert_eq!(check.size, n as u64);

    // The same entries appended to the SQLite ledger give the same root.
    let pg = client(&url).await;
    let events: Vec<AuditEvent> = pg
        .query("SELECT payload FROM ledger ORDER BY idx", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| serde_json::from_slice(r.get::<_, &[u8]>(0)).unwrap())
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let root = sqlite
        .write(move |tx| -> Result<_, mamori_store::StoreError> {
            assert_eq!(tx.ledger_size(), 0);
            for ev in &events {
                tx.append(ev)?;
            }
            Ok(tx.ledger_root())
        })
        .await
        .unwrap();
    assert_eq!(root, check.root);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_crash_under_load_loses_no_acknowledged_entry_and_repeats_none() {
    let cluster = Arc::new(Cluster::start());
    let url = cluster.database("mamori");
    let opts = PgLedgerOptions {
        reconnect_for: Duration::from_secs(60),
        ..Default::default()
    };
    let a = node(&url, opts.clone()).await;
    let b = node(&url, opts).await;
    let crash = {
        let cluster = cluster.clone();
        tokio::task::spawn_blocking(move || {
            std::thread::sleep(Duration::from_millis(400));
            cluster.stop_immediate();
            std::thread::sleep(Duration::from_millis(700));
            cluster.start_again();
        })
    };
    let (acked, failed, slowest) =
        load(&[a.clone(), b.clone()], 16, 150, Duration::from_millis(2)).await;
    crash.await.unwrap();
    eprintln!(
        "database crash: server down 0.7 s; the slowest append waited {:.2} s",
        slowest.as_secs_f64()
    );
    assert_eq!(
        failed, 0,
        "appends failed although the database came back in time"
    );
    let reconnects = a
        .stats()
        .reconnects
        .load(std::sync::atomic::Ordering::Relaxed)
        + b.stats()
            .reconnects
            .load(std::sync::atomic::Ordering::Relaxed);
    assert!(reconnects >= 2, "the crash did not happen during the load");
    let stored = nonces(&url).await;
    assert_all_present(&acked, &stored);
    assert_eq!(stored.len(), acked.len(), "an entry nobody was told about");
    let check = verify_ledger(&client(&url).await).await.unwrap();
    assert!(check.problems.is_empty(), "{:?}", check.problems);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_whose_connection_dies_mid_batch_is_replaced_without_a_gap() {
    let cluster = Cluster::start();
    let url = cluster.database("mamori");
    let a = node(
        &format!("{url}?application_name=victim"),
        Default::default(),
    )
    .await;
    let b = node(
        &format!("{url}?application_name=survivor"),
        Default::default(),
    )
    .await;
    let killer = {
        let url = url.clone();
        tokio::spawn(async move {
            let c = client(&url).await;
            let mut killed = 0u64;
            for _ in 0..20 {
                tokio::time::sleep(Duration::from_millis(25)).await;
                killed += c
                    .query(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'victim'",
                        &[],
                    )
                    .await
                    .unwrap()
                    .len() as u64;
            }
            killed
        })
    };
    let (acked, failed, _) = load(&[a.clone(), b], 16, 120, Duration::from_millis(1)).await;
    assert!(killer.await.unwrap() > 0);
    assert_eq!(failed, 0);
    let stored = nonces(&url).await;
    assert_all_present(&acked, &stored);
    assert_eq!(stored.len(), acked.len());
    assert!(a.stats().retries.load(std::sync::atomic::Ordering::Relaxed) > 0);
    let check = verify_ledger(&client(&url).await).await.unwrap();
    assert!(check.problems.is_empty(), "{:?}", check.problems);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampering_is_refused_or_found() {
    let cluster = Cluster::start();
    let url = cluster.database("mamori");
    let a = node(&url, Default::default()).await;
    for i in 0..100 {
        a.append(event(&format!("e{i}"), 1_795_000_000_000 + i))
            .await
            .unwrap();
    }
    let c = client(&url).await;
    // The append-only trigger refuses changes from the application's own connection.
    for sql in [
        "UPDATE ledger SET action = 'x' WHERE idx = 3",
        "DELETE FROM ledger WHERE idx = 99",
        "TRUNCATE ledger",
    ] {
        let e = c.batch_execute(sql).await.unwrap_err();
        assert!(format!("{e:?}").contains("append-only"), "{sql}: {e:?}");
    }
    let clean = verify_ledger(&c).await.unwrap();
    assert!(clean.problems.is_empty());

    // A superuser can switch the trigger off; verify still finds each kind of change.
    let cases: [(&str, &str); 4] = [
        (
            "UPDATE ledger SET action = 'record.list' WHERE idx = 10",
            "entry 10: 検索用の列",
        ),
        (
            "UPDATE ledger SET payload = convert_to(replace(convert_from(payload, 'UTF8'), '\"e20\"', '\"e2x\"'), 'UTF8') WHERE idx = 20",
            "entry 20: 保存されたハッシュ",
        ),
        ("DELETE FROM ledger WHERE idx = 99", "ledger head says 100"),
        (
            "DELETE FROM ledger WHERE idx = 50",
            "entries 50..50 are missing",
        ),
    ];
    drop((a, c));
    for (i, (sql, found)) in cases.into_iter().enumerate() {
        let db = format!("tampered{i}");
        cluster.psql(
            "postgres",
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'mamori'",
        );
        cluster.psql("postgres", &format!("CREATE DATABASE {db} TEMPLATE mamori"));
        cluster.psql(
            &db,
            &format!("ALTER TABLE ledger DISABLE TRIGGER USER; {sql}; ALTER TABLE ledger ENABLE TRIGGER USER"),
        );
        let check = verify_ledger(&client(&cluster.url(&db)).await)
            .await
            .unwrap();
        assert!(
            check.problems.iter().any(|p| p.contains(found)),
            "{sql}: {:?}",
            check.problems
        );
    }
}

/// A TCP relay between the node and PostgreSQL that, when armed, lets one `COMMIT` through to
/// the server and then cuts the connection before the answer comes back: the node cannot know
/// whether its batch is in.
async fn relay_that_loses_commit_answers(
    server_port: u16,
    armed: Arc<std::sync::atomic::AtomicUsize>,
) -> u16 {
    use std::sync::atomic::Ordering;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let (client, _) = listener.accept().await.unwrap();
            let server = tokio::net::TcpStream::connect(("127.0.0.1", server_port))
                .await
                .unwrap();
            let armed = armed.clone();
            tokio::spawn(async move {
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let back = tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut sr, &mut cw).await;
                    cw
                });
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = match cr.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    let commit = buf[..n].windows(7).any(|w| w == b"COMMIT\0");
                    if commit
                        && armed
                            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |k| k.checked_sub(1))
                            .is_ok()
                    {
                        // Nothing more goes back; the server commits; the node never hears of it.
                        back.abort();
                        let _ = sw.write_all(&buf[..n]).await;
                        tokio::time::sleep(Duration::from_millis(150)).await;
                        return;
                    }
                    if sw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                back.abort();
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_whose_answer_is_lost_is_found_committed_and_not_written_again() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let cluster = Cluster::start();
    cluster.database("mamori");
    let armed = Arc::new(AtomicUsize::new(0));
    let port = relay_that_loses_commit_answers(cluster.port(), armed.clone()).await;
    let url = format!("postgres://postgres@127.0.0.1:{port}/mamori");
    let a = node(&url, Default::default()).await;
    for i in 0..10 {
        a.append(event(&format!("before{i}"), 1_795_000_000_000 + i))
            .await
            .unwrap();
    }
    let mut acked = HashMap::new();
    for i in 0..10 {
        // The first three batches each lose their COMMIT's answer.
        if i < 3 {
            armed.store(1, Ordering::SeqCst);
        }
        let nonce = format!("during{i}");
        let idx = a
            .append(event(&nonce, 1_795_000_001_000 + i))
            .await
            .unwrap();
        acked.insert(idx, nonce);
        assert_eq!(armed.load(Ordering::SeqCst), 0, "the relay lost no answer");
        let recovered = a.stats().recovered.load(Ordering::Relaxed);
        assert_eq!(recovered, (i + 1).min(3) as u64);
    }
    let stored = nonces(&cluster.url("mamori")).await;
    assert_all_present(&acked, &stored);
    assert_eq!(stored.len(), 20);
    let check = verify_ledger(&client(&cluster.url("mamori")).await)
        .await
        .unwrap();
    assert!(check.problems.is_empty(), "{:?}", check.problems);
}
