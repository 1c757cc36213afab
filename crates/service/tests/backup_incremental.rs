//! Incremental backups of a live instance read the database pages that changed, not the whole
//! file (issue #20), and what they store restores to an instance that verifies: ledger, every
//! table re-derived from it, SQLite's own integrity check. Also with the server stopped, when
//! the write-ahead log is left beside the database.

mod common;

use std::path::Path;

use common::*;
use mamori_backup::engine::NoProgress;
use mamori_backup::{KeyFile, KeyMaterial};
use mamori_domain::audit::{ActorRef, AuditEvent, Outcome, actions};
use mamori_service::backup::{open_repository, run_backup};
use mamori_service::ledger::verify::{VerifyOptions, verify};
use mamori_service::records::RecordInput;
use mamori_service::records::patients::NewPatient;

fn backup(data: &Path, target: &str, key: &KeyMaterial) -> mamori_service::backup::BackupRun {
    run_backup(data, target, key, true, None, &NoProgress).unwrap()
}

/// Restores `snapshot` and checks the copy as an inspector would.
fn restores_and_verifies(target: &str, key: &KeyMaterial, snapshot: &str, to: &Path) -> u64 {
    let repo = open_repository(target, key).unwrap();
    mamori_backup::restore(&repo, snapshot, to, None, &NoProgress).unwrap();
    let db = rusqlite::Connection::open(to.join("mamori.db")).unwrap();
    let check: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    drop(db);
    let report = verify(
        to,
        &VerifyOptions {
            external_checkpoint: None,
            trusted_key: None,
            skip_blobs: false,
        },
    )
    .unwrap();
    assert!(report.ok, "{:?}", report.problems);
    report.ledger_entries
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incremental_reads_the_changed_pages_and_restores_an_instance_that_verifies() {
    if mamori_testkit::postgres::suite_on_postgresql(
        "incremental backups",
        "the pages read are SQLite's; a PostgreSQL instance is backed up as a whole snapshot (cli/tests/postgres_instance.rs)",
    ) {
        return;
    }
    let f = fixture().await;
    let admin = f.admin().await;
    let dr = f.user(&admin, "dr.incr", "doctor").await;
    for p in 0..20 {
        f.svc
            .create_patient(
                &dr,
                NewPatient {
                    id: format!("P{p:05}"),
                    name_kanji: format!("患者 {p}"),
                    name_kana: "カンジャ".into(),
                    birth_date: "1970-01-01".into(),
                    sex: "female".into(),
                },
            )
            .await
            .unwrap();
    }
    let mut ids = Vec::new();
    for i in 0..200 {
        let w = f
            .svc
            .create_record(
                &dr,
                RecordInput {
                    patient_id: format!("P{:05}", i % 20),
                    kind: "medical_record".into(),
                    title: format!("外来記録 {i}"),
                    body: "S: 咳嗽。O: 咽頭発赤。A: 上気道炎。P: 対症療法。".repeat(20),
                    ..Default::default()
                },
                vec![],
            )
            .await
            .unwrap();
        if i < 3 {
            f.svc.finalise_record(&dr, w.record_id).await.unwrap();
        }
        ids.push(w.record_id);
    }
    // Years of chart reads: the database grows to tens of megabytes.
    f.svc
        .store()
        .write(|tx| -> Result<(), mamori_store::StoreError> {
            for i in 0..60_000i64 {
                let mut e = AuditEvent::new(
                    t0() + i,
                    Some(ActorRef {
                        id: 2,
                        login: "dr.incr".into(),
                        role: "doctor".into(),
                    }),
                    actions::RECORD_READ,
                    Outcome::Ok,
                );
                e.patient = Some(format!("P{:05}", i % 20));
                tx.append(&e)?;
            }
            tx.index_all().map(|_| ())
        })
        .await
        .unwrap();

    // Pages the checkpointer has not recorded yet when a backup starts are recorded in a later
    // round and read again by the next backup (never too few, sometimes a little too many):
    // let a round pass, as the minutes between two scheduled backups do.
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    let data = f.data();
    let target = f.dir.path().join("nas");
    let t = target.to_str().unwrap().to_owned();
    let key = KeyMaterial {
        passphrase: None,
        key_file: Some(KeyFile::generate()),
    };
    let (d, t2, k) = (data.clone(), t.clone(), key.clone());
    let full = tokio::task::spawn_blocking(move || backup(&d, &t2, &k))
        .await
        .unwrap();
    let db_size = std::fs::metadata(data.join("mamori.db")).unwrap().len();
    assert!(db_size > 20 << 20, "{db_size}");
    assert!(full.outcome.read_bytes >= db_size);

    // A few amendments, copied into the file by the checkpointer, then more writes: part of
    // the change is known only from the page map, part is still in the log.
    for id in &ids[..3] {
        f.svc
            .amend_record(
                &dr,
                *id,
                RecordInput {
                    title: "外来記録（修正）".into(),
                    body: "A: 急性気管支炎に訂正。".into(),
                    reason: Some("診断の訂正".into()),
                    ..Default::default()
                },
                vec![],
            )
            .await
            .unwrap();
    }
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    f.svc.record(&dr, ids[5]).await.unwrap();
    let (d, t2, k) = (data.clone(), t.clone(), key.clone());
    let incr = tokio::task::spawn_blocking(move || backup(&d, &t2, &k))
        .await
        .unwrap();
    println!(
        "incremental read {} of a {db_size}-byte database",
        incr.outcome.read_bytes
    );
    assert!(
        incr.outcome.read_bytes < db_size / 10,
        "read {} of a {db_size}-byte database",
        incr.outcome.read_bytes
    );
    let restored = restores_and_verifies(
        &t,
        &key,
        &incr.outcome.snapshot,
        &f.dir.path().join("restored"),
    );
    assert_eq!(restored, incr.ledger_size);

    // The server stops (the log stays beside the database) and is backed up offline.
    f.svc.record(&dr, ids[6]).await.unwrap();
    let live = f.svc.store().reader().unwrap().get().ledger_size().unwrap();
    f.svc.store().close();
    let (d, t2, k) = (data.clone(), t.clone(), key.clone());
    let offline = tokio::task::spawn_blocking(move || backup(&d, &t2, &k))
        .await
        .unwrap();
    assert!(offline.outcome.read_bytes < db_size / 10);
    let restored = restores_and_verifies(
        &t,
        &key,
        &offline.outcome.snapshot,
        &f.dir.path().join("restored-offline"),
    );
    assert_eq!(restored, live);
}
