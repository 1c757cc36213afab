//! The store's writes (not only the ledger's) across a PostgreSQL crash: the server is stopped
//! with `-m immediate` under a load of writers and started again. The node's writer reconnects
//! by itself; every acknowledged write is there exactly once — its row and its ledger entry —
//! and the ledger verifies.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mamori_domain::audit::{AuditEvent, Outcome, actions};
use mamori_domain::permission::Role;
use mamori_store::postgres::parse_url;
use mamori_store::{Store, StoreError, StoreOptions};
use mamori_testkit::postgres::Cluster;

const T0: i64 = 1_790_000_000_000;

#[test]
fn acknowledged_writes_survive_a_database_crash_once_each() {
    let cluster = Cluster::start();
    let url = cluster.database("restart");
    let db = parse_url(&url).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_postgres(dir.path(), &db, StoreOptions::default()).unwrap();
    store
        .write_blocking(|tx| {
            let role = Role {
                code: "clerk".into(),
                name_ja: "事務".into(),
                name_en: "Clerk".into(),
                grants: Default::default(),
                builtin: true,
            };
            tx.save_role(&role, T0)?;
            tx.insert_account("clerk.a", "受付", "clerk", false, None, false, T0, None)?;
            Ok::<_, StoreError>(())
        })
        .unwrap();

    // Eight writers register patients, each write a row and its ledger entry.
    let acknowledged = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let failed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let slowest = Arc::new(std::sync::Mutex::new(Duration::ZERO));
    let stop_at = Instant::now() + Duration::from_secs(4);
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let (store, acked, failed, slowest) = (
                store.clone(),
                acknowledged.clone(),
                failed.clone(),
                slowest.clone(),
            );
            std::thread::spawn(move || {
                let mut n = 0;
                while Instant::now() < stop_at {
                    let id = format!("P{w}-{n}");
                    n += 1;
                    let pid = id.clone();
                    let t = Instant::now();
                    let r = store.write_blocking(move |tx| {
                        tx.insert_patient(
                            &pid,
                            "患者",
                            "カンジャ",
                            "カンジャ",
                            "1970-01-01",
                            "F",
                            T0,
                            1,
                        )?;
                        let mut ev =
                            AuditEvent::new(T0 + 1, None, actions::PATIENT_CREATED, Outcome::Ok);
                        ev.patient = Some(pid.clone());
                        tx.append(&ev)?;
                        Ok::<_, StoreError>(())
                    });
                    let took = t.elapsed();
                    let mut s = slowest.lock().unwrap();
                    *s = (*s).max(took);
                    drop(s);
                    match r {
                        Ok(()) => acked.lock().unwrap().push(id),
                        Err(_) => {
                            failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1200));
    cluster.stop_immediate();
    std::thread::sleep(Duration::from_millis(700));
    cluster.start_again();
    for w in writers {
        w.join().unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() > 100,
        "only {} writes",
        acknowledged.len()
    );
    assert_eq!(
        failed.load(std::sync::atomic::Ordering::Relaxed),
        0,
        "writes failed although the server was back well within the retry time"
    );
    eprintln!(
        "{} writes acknowledged across the crash; slowest {:?}",
        acknowledged.len(),
        slowest.lock().unwrap()
    );

    // Every acknowledged patient is there, and its entry exactly once.
    let mut entries: HashMap<String, usize> = HashMap::new();
    let r = store.reader().unwrap();
    r.get()
        .for_each_ledger_row(|row| {
            if let Some(p) = row.patient_id {
                *entries.entry(p).or_default() += 1;
            }
            Ok(())
        })
        .unwrap();
    for id in &acknowledged {
        assert!(r.get().patient(id).unwrap().is_some(), "{id} is missing");
        assert_eq!(entries.get(id), Some(&1), "{id}'s entry");
    }
    drop(r);
    store.close();

    let check = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let client = mamori_store::postgres::connect(&db).await.unwrap();
        mamori_store::postgres::verify_ledger(&client)
            .await
            .unwrap()
    });
    assert_eq!(check.problems, Vec::<String>::new());
}
