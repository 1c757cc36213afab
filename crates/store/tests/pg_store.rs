//! The store's own writes and reads on PostgreSQL give what they give on SQLite: the same
//! rows, the same ledger entries (the same root), and the same rows stated in the ledger.

use std::collections::BTreeSet;
use std::sync::Arc;

use mamori_domain::audit::{AuditEvent, Outcome, actions};
use mamori_domain::permission::Role;
use mamori_store::postgres::parse_url;
use mamori_store::{Store, StoreError, StoreOptions, VersionRow, WriteTx};
use mamori_testkit::postgres::Cluster;

type Step = Arc<dyn Fn(&mut WriteTx<'_>) -> Result<(), StoreError> + Send + Sync>;

const T0: i64 = 1_790_000_000_000;

fn event(action: &'static str, ts: i64) -> AuditEvent {
    AuditEvent::new(ts, None, action, Outcome::Ok)
}

/// A day of a small clinic, as the service layer would write it.
fn steps() -> Vec<Step> {
    vec![
        Arc::new(|tx| {
            let role = Role {
                code: "doctor".into(),
                name_ja: "医師".into(),
                name_en: "Doctor".into(),
                grants: BTreeSet::new(),
                builtin: true,
            };
            tx.save_role(&role, T0)?;
            tx.save_kind(
                &mamori_domain::kinds::RecordKind {
                    code: "progress".into(),
                    name_ja: "経過記録".into(),
                    name_en: "Progress note".into(),
                    retention_years: 5,
                },
                T0,
            )?;
            tx.insert_account(
                "dr.sato",
                "佐藤 医師",
                "doctor",
                false,
                Some("$argon2id$x"),
                true,
                T0,
                None,
            )?;
            tx.insert_account(
                "dr.ito",
                "伊藤 医師",
                "doctor",
                false,
                None,
                false,
                T0,
                None,
            )?;
            tx.append(&event(actions::ACCOUNT_CREATED, T0))?;
            Ok(())
        }),
        Arc::new(|tx| {
            tx.insert_patient(
                "P0001",
                "山田 太郎",
                "ヤマダ タロウ",
                "ヤマダタロウ",
                "1960-01-02",
                "M",
                T0 + 1,
                1,
            )?;
            tx.insert_patient(
                "P0002",
                "山本 花子",
                "ヤマモト ハナコ",
                "ヤマモトハナコ",
                "1971-03-04",
                "F",
                T0 + 1,
                1,
            )?;
            tx.insert_blob(&"ab".repeat(32), 12, "text/plain", T0 + 2)?;
            let record = tx.insert_record("P0001", "progress", T0 + 2, 1)?;
            tx.insert_version(&VersionRow {
                record_id: record,
                version_no: 1,
                state: "finalised".into(),
                kind: "original".into(),
                author_id: 1,
                enterer_id: 1,
                content_sha256: "ab".repeat(32),
                predecessor: None,
                reason: None,
                created_at: T0 + 2,
                finalised_at: Some(T0 + 2),
                rejection_reason: None,
                ledger_index: 1,
            })?;
            tx.append(&event(actions::FINALISED, T0 + 2))?;
            Ok(())
        }),
        Arc::new(|tx| {
            tx.insert_session(
                &"5e".repeat(32),
                1,
                false,
                None,
                "csrf",
                T0 + 3,
                Some(T0 + 8 * 3_600_000),
                None,
            )?;
            tx.set_login_failures(2, 3, None)?;
            tx.set_meta("facility", "やまだ内科")?;
            tx.append(&event(actions::LOGIN, T0 + 3))?;
            Ok(())
        }),
        // A write whose last change comes after its entry: stated in an entry of its own.
        Arc::new(|tx| {
            tx.append(&event(actions::LOGOUT, T0 + 4))?;
            tx.revoke_session(&"5e".repeat(32), T0 + 4)?;
            Ok(())
        }),
    ]
}

/// What a reader sees, as text, for comparing the backends.
fn seen(r: &mamori_store::Reader<'_>) -> Vec<String> {
    let mut out = vec![
        format!("{:?}", r.account_by_login("dr.sato").unwrap()),
        format!("{:?}", r.account(2).unwrap()),
        format!("{:?}", r.search_patients("", "ヤマ", 10).unwrap()),
        format!("{:?}", r.records_of_patient("P0001").unwrap()),
        format!("{:?}", r.versions(1).unwrap()),
        format!("{:?}", r.session(&"5e".repeat(32)).unwrap()),
        format!("{:?}", r.meta("facility").unwrap()),
    ];
    r.for_each_covered_row(|t, k, v| {
        out.push(format!("{t} {k} {}", serde_json::Value::Object(v)));
        Ok(())
    })
    .unwrap();
    out
}

#[test]
fn the_store_on_postgresql_writes_reads_and_states_rows_as_on_sqlite() {
    let cluster = Cluster::start();
    let url = cluster.database("store");
    let pg_dir = tempfile::tempdir().unwrap();
    let pg = Store::open_postgres(
        pg_dir.path(),
        &parse_url(&url).unwrap(),
        StoreOptions::default(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let lite = Store::open(dir.path(), StoreOptions::default()).unwrap();

    for step in steps() {
        let s = step.clone();
        lite.write_blocking(move |tx| s(tx)).unwrap();
        pg.write_blocking(move |tx| step(tx)).unwrap();
    }

    let on_lite = seen(&lite.reader().unwrap().get());
    let on_pg = seen(&pg.reader().unwrap().get());
    assert_eq!(on_pg, on_lite);

    // The same entries, states included. The entry that states rows changed after a write's
    // last entry is stamped with the time of the write, so its time is left out.
    let rows = |r: &mamori_store::Reader<'_>| {
        let mut v = Vec::new();
        r.for_each_ledger_row(|row| {
            v.push(row);
            Ok(())
        })
        .unwrap();
        v
    };
    let lite_rows = rows(&lite.reader().unwrap().get());
    let pg_rows = rows(&pg.reader().unwrap().get());
    assert_eq!(pg_rows.len(), lite_rows.len());
    assert_eq!(lite_rows.len(), 5);
    let untimed = |payload: &[u8]| {
        let mut v: serde_json::Value = serde_json::from_slice(payload).unwrap();
        v.as_object_mut().unwrap().remove("ts");
        v
    };
    for (a, b) in pg_rows.iter().zip(&lite_rows) {
        if a.action == actions::STATE_RECORDED {
            assert_eq!(untimed(&a.payload), untimed(&b.payload), "entry {}", a.idx);
        } else {
            assert_eq!(a.payload, b.payload, "entry {}", a.idx);
            assert_eq!(a.hashes, b.hashes, "entry {}", a.idx);
        }
    }
    assert_eq!(pg_rows[4].action, actions::STATE_RECORDED);
    // PostgreSQL's ledger verifies on its own (hashes, head, order).
    let check = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let client = mamori_store::postgres::connect(&parse_url(&url).unwrap())
            .await
            .unwrap();
        mamori_store::postgres::verify_ledger(&client)
            .await
            .unwrap()
    });
    assert_eq!(check.problems, Vec::<String>::new());
    assert_eq!(check.size, 5);

    // The database's own rules hold there too.
    let refused = pg.write_blocking(|tx| {
        tx.update_version(&VersionRow {
            reason: Some("後から書き換え".into()),
            ..tx.read().versions(1)?.remove(0)
        })
    });
    assert!(refused.is_err(), "a finalised version was changed");
    let dup = pg.write_blocking(|tx| {
        tx.insert_account(
            "DR.SATO",
            "別人",
            "doctor",
            false,
            None,
            false,
            T0 + 5,
            None,
        )
        .map(|_| ())
    });
    assert!(dup.is_err(), "a login differing only by case was accepted");

    // Outside mamori, a covered row cannot be changed without the capture noticing.
    let out = cluster.try_psql(
        "store",
        "UPDATE accounts SET role = 'doctor', display_name = 'x' WHERE id = 2",
    );
    let refused = out.expect_err("a direct change went through");
    assert!(refused.contains("state_changes"), "{refused}");
}

/// Two nodes of one instance (two stores on one database, each with its own directory) share
/// turns and short-lived values: a turn held on one is refused on the other until dropped,
/// a waiter on the other gets it then, and a value put on one is taken once, on the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_turns_and_short_lived_values() {
    let cluster = Cluster::start();
    let db = parse_url(&cluster.database("shared")).unwrap();
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = {
        let (db1, db2) = (db.clone(), db.clone());
        let (p1, p2) = (d1.path().to_owned(), d2.path().to_owned());
        let a = tokio::task::spawn_blocking(move || {
            Store::open_postgres(&p1, &db1, StoreOptions::default()).unwrap()
        })
        .await
        .unwrap();
        let b = tokio::task::spawn_blocking(move || {
            Store::open_postgres(&p2, &db2, StoreOptions::default()).unwrap()
        })
        .await
        .unwrap();
        (a, b)
    };

    let held = a.try_turn("backup").await.unwrap().expect("free at first");
    assert!(b.try_turn("backup").await.unwrap().is_none(), "held on a");
    let b2 = b.clone();
    assert!(
        tokio::task::spawn_blocking(move || b2.turn_taken("backup"))
            .await
            .unwrap()
            .unwrap()
    );
    // A waiter on b gets the turn once a lets it go.
    let waiter = {
        let b = b.clone();
        tokio::spawn(async move { b.turn("backup").await.map(|_| std::time::Instant::now()) })
    };
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(!waiter.is_finished(), "b waits while a holds the turn");
    let released = std::time::Instant::now();
    drop(held);
    let got = tokio::time::timeout(std::time::Duration::from_secs(10), waiter)
        .await
        .expect("b got the turn")
        .unwrap()
        .unwrap();
    assert!(got >= released);

    a.put_ephemeral("challenge s1", b"get:xyz".to_vec(), T0, T0 + 300_000)
        .await
        .unwrap();
    assert_eq!(
        b.take_ephemeral("challenge s1", T0 + 1).await.unwrap(),
        Some(b"get:xyz".to_vec())
    );
    assert_eq!(
        a.take_ephemeral("challenge s1", T0 + 1).await.unwrap(),
        None
    );
    a.put_ephemeral("challenge s2", b"x".to_vec(), T0, T0 + 10)
        .await
        .unwrap();
    assert_eq!(
        b.take_ephemeral("challenge s2", T0 + 10).await.unwrap(),
        None,
        "expired"
    );
    // Sign-ins to many accounts at once: turns beyond the node's database share wait in
    // memory; the connections to the server stay bounded.
    let mut many = Vec::new();
    for n in 0..120 {
        let a = a.clone();
        many.push(tokio::spawn(async move {
            let t = a.turn(&format!("sign-in {n}")).await.unwrap();
            // Longer than a reader waits before opening a connection beyond the pool.
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            drop(t);
        }));
    }
    let mut connections = 0i64;
    while !many.iter().all(|t| t.is_finished()) {
        let now: i64 = cluster
            .psql(
                "postgres",
                "SELECT count(*) FROM pg_stat_activity WHERE datname = 'shared'",
            )
            .parse()
            .unwrap();
        connections = connections.max(now);
    }
    for t in many {
        t.await.unwrap();
    }
    assert!(
        connections <= 60,
        "{connections} connections during the burst"
    );

    // Neither the values nor the turns are in the ledger.
    assert_eq!(a.reader().unwrap().get().ledger_size().unwrap(), 0);

    // Both nodes write at once: each takes the ledger's edge from the coordinator row when
    // the other appended; every entry once, and the ledger re-derives to the same head.
    let mut writes = Vec::new();
    for n in 0..200i64 {
        let node = if n % 2 == 0 { a.clone() } else { b.clone() };
        writes.push(tokio::spawn(async move {
            node.write(move |tx| tx.append(&event(actions::LOGIN, T0 + n)).map(|_| ()))
                .await
        }));
    }
    for w in writes {
        w.await.unwrap().unwrap();
    }
    let check =
        mamori_store::postgres::verify_ledger(&mamori_store::postgres::connect(&db).await.unwrap())
            .await
            .unwrap();
    assert!(check.problems.is_empty(), "{:?}", check.problems);
    assert_eq!(check.size, 200);
    assert_eq!(b.reader().unwrap().get().ledger_size().unwrap(), 200);
}

/// A database an earlier release made (here: the schema before the signed PDFs) is brought to
/// this release's schema when this release opens it: the new table with its guards and its
/// state capture, in one transaction, recorded as an upgrade.
#[test]
fn an_earlier_releases_database_is_upgraded_in_place() {
    let cluster = Cluster::start();
    let url = cluster.database("older");
    let db = parse_url(&url).unwrap();
    let before = mamori_store::SCHEMA_VERSION - 1;
    mamori_store::postgres::install_release_schema(&db, before).unwrap();
    assert_eq!(
        cluster
            .psql("older", "SELECT to_regclass('signed_pdfs') IS NULL")
            .trim(),
        "t"
    );
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_postgres(dir.path(), &db, StoreOptions::default()).unwrap();
    assert_eq!(store.upgraded_from(), Some(before));
    let triggers = cluster.psql(
        "older",
        "SELECT string_agg(tgname, ',' ORDER BY tgname) FROM pg_trigger WHERE tgrelid = 'signed_pdfs'::regclass AND NOT tgisinternal",
    );
    assert_eq!(
        triggers.trim(),
        "signed_pdfs_never_deleted,signed_pdfs_signer_fixed,state_del,state_ins,state_upd"
    );
    // Its columns typed as SQLite's: times are bigint.
    assert_eq!(
        cluster
            .psql(
                "older",
                "SELECT data_type FROM information_schema.columns WHERE table_name = 'signed_pdfs' AND column_name = 'tsa_not_after'",
            )
            .trim(),
        "bigint"
    );
    assert_eq!(
        cluster
            .psql("older", "SELECT version FROM schema_version")
            .trim(),
        mamori_store::SCHEMA_VERSION.to_string()
    );
    store.close();
    drop(store);
    // Opened again: nothing more to do.
    let store = Store::open_postgres(dir.path(), &db, StoreOptions::default()).unwrap();
    assert_eq!(store.upgraded_from(), None);
    store.close();
}
