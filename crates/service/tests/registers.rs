//! The facility registers (disposal, take-out, training, outside storage): who may keep them,
//! how each entry is checked, what their observations say both ways, and erasing a backup
//! target, which records itself in the disposal register.

mod common;

use std::collections::BTreeMap;

use common::*;
use mamori_compliance::Answer;
use mamori_compliance::registers::{Entry, Register};
use mamori_domain::Clock;
use mamori_service::{ErrorCode, Principal};

fn entry(pairs: &[(&str, &str)], people: &[&str]) -> Entry {
    Entry {
        fields: pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<BTreeMap<_, _>>(),
        people: people.iter().map(|p| (*p).to_owned()).collect(),
    }
}

async fn observed(f: &Fixture, p: &Principal, key: &str) -> mamori_compliance::Observation {
    f.svc
        .observations(p)
        .await
        .unwrap()
        .remove(key)
        .unwrap_or_else(|| panic!("no observation {key}"))
}

#[tokio::test]
async fn registers_are_kept_by_the_officer_checked_and_observed() {
    let target = "s3://clinic-backup/mamori?endpoint=http://127.0.0.1:9&region=ap-northeast-1";
    let f = fixture_with(|c| c.backup.targets = target.into()).await;
    let admin = f.admin().await;
    let auditor = f.user(&admin, "audit.r", "auditor").await;
    let doctor = f.user(&admin, "dr.r", "doctor").await;

    // Training: none in the last year is いいえ; a session everyone attended is only part
    // of the item (what was taught is the officer's to say).
    assert_eq!(observed(&f, &auditor, "training").await.answer, Answer::No);
    let session = entry(
        &[
            (
                "held_on",
                &mamori_service::ledger::audit::jst_date(f.clock.now()),
            ),
            ("title", "個人情報保護と標的型メール"),
            ("kind", "periodic"),
            ("topics", "パスワード、USB の扱い"),
        ],
        &["admin", "dr.r"],
    );
    let refused = f
        .svc
        .save_register_entry(&doctor, Register::Training, None, session.clone(), None)
        .await
        .unwrap_err();
    assert_eq!(refused.code, ErrorCode::Forbidden);
    let mut unknown = session.clone();
    unknown.people.push("nobody".into());
    let e = f
        .svc
        .save_register_entry(&auditor, Register::Training, None, unknown, None)
        .await
        .unwrap_err();
    assert_eq!(e.field, Some("people"));
    let pdf = b"%PDF-1.4\n%%EOF\n".to_vec();
    let id = f
        .svc
        .save_register_entry(
            &auditor,
            Register::Training,
            None,
            session.clone(),
            Some(("研修資料.pdf".into(), pdf.clone())),
        )
        .await
        .unwrap();
    let o = observed(&f, &auditor, "training").await;
    assert_eq!(o.answer, Answer::No, "audit.r did not attend: {o:?}");
    assert!(o.evidence_ja.contains("audit.r"));
    let mut all = session.clone();
    all.people.push("audit.r".into());
    f.svc
        .save_register_entry(&auditor, Register::Training, Some(id), all, None)
        .await
        .unwrap();
    let o = observed(&f, &auditor, "training").await;
    assert!(o.is_partial_yes(), "{o:?}");
    // Editing kept the file, and both versions are in the ledger.
    let (name, media, bytes) = f.svc.register_file(&auditor, id).await.unwrap();
    assert_eq!(
        (name.as_str(), media.as_str(), bytes),
        ("研修資料.pdf", "application/pdf", pdf)
    );
    let saved = f.events("register.");
    assert_eq!(saved.iter().filter(|e| e["outcome"] == "ok").count(), 2);
    assert!(
        saved.iter().any(|e| e["outcome"] == "denied"),
        "the doctor's attempt"
    );
    // A year on, the session no longer counts.
    f.clock.advance(366 * 86_400_000);
    assert_eq!(observed(&f, &auditor, "training").await.answer, Answer::No);

    // Outside storage: the S3 target needs an entry saying the data stay in Japan.
    let o = observed(&f, &auditor, "outsourcing").await;
    assert_eq!(o.answer, Answer::No);
    assert!(o.evidence_ja.contains("s3://clinic-backup/mamori"), "{o:?}");
    assert!(
        !o.evidence_ja.contains("127.0.0.1"),
        "settings are not shown"
    );
    let contract = entry(
        &[
            ("provider", "例クラウド株式会社"),
            ("service", "S3 互換オブジェクトストレージ"),
            ("target", "s3://clinic-backup/mamori"),
            ("region", "東京リージョン"),
            ("in_japan", "yes"),
            ("japanese_law", "yes"),
            (
                "responsibility",
                "鍵の管理と復元訓練は医療機関、保管と可用性は事業者",
            ),
        ],
        &[],
    );
    f.svc
        .save_register_entry(&auditor, Register::Outsourcing, None, contract, None)
        .await
        .unwrap();
    assert!(observed(&f, &auditor, "outsourcing").await.is_partial_yes());

    // Take-out: an unencrypted USB stick is a fault; a bad date is refused with its field.
    let usb = |encrypted: &str| {
        entry(
            &[
                ("taken_on", "2026-11-20"),
                ("what", "検査結果の写し"),
                ("medium", "usb"),
                ("encrypted", encrypted),
                ("purpose", "学会発表（匿名化済み）"),
                ("taken_by", "dr.r"),
                ("approved_by", "院長"),
                ("returned_on", "2026-11-21"),
            ],
            &[],
        )
    };
    let mut bad = usb("yes");
    bad.fields.insert("taken_on".into(), "2026-13-01".into());
    let e = f
        .svc
        .save_register_entry(&auditor, Register::TakeOut, None, bad, None)
        .await
        .unwrap_err();
    assert_eq!(e.field, Some("taken_on"));
    let plain = f
        .svc
        .save_register_entry(&auditor, Register::TakeOut, None, usb("no"), None)
        .await
        .unwrap();
    assert_eq!(observed(&f, &auditor, "take_out").await.answer, Answer::No);
    f.svc
        .save_register_entry(&auditor, Register::TakeOut, Some(plain), usb("yes"), None)
        .await
        .unwrap();
    assert!(observed(&f, &auditor, "take_out").await.is_partial_yes());
}

fn files_under(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| {
                    if e.path().is_dir() {
                        files_under(&e.path())
                    } else {
                        1
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

#[tokio::test]
async fn erasing_a_backup_target_leaves_nothing_and_records_itself() {
    let backups = tempfile::tempdir().unwrap();
    let key = backups.path().join("key.txt");
    std::fs::write(&key, mamori_service::backup::KeyFile::generate().to_text()).unwrap();
    let target = backups.path().join("usb-disk");
    let f = fixture_with(|c| {
        c.backup.targets = target.display().to_string();
        c.backup.key_file = key.display().to_string();
    })
    .await;
    let admin = f.admin().await;
    let auditor = f.user(&admin, "audit.e", "auditor").await;
    f.svc.backup_now(Some(&admin)).await.unwrap();
    f.backups_idle(&admin).await;
    let before = files_under(&target);
    assert!(before >= 5, "{before}");
    let spec = target.display().to_string();

    // Only an administrator, only with the name typed again, only a repository of ours.
    let e = f
        .svc
        .erase_backup_target(&auditor, &spec, &spec)
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::Forbidden);
    let e = f
        .svc
        .erase_backup_target(&admin, &spec, "usb")
        .await
        .unwrap_err();
    assert_eq!(e.field, Some("confirm"));
    let stranger = backups.path().join("photos");
    std::fs::create_dir_all(&stranger).unwrap();
    std::fs::write(stranger.join("family.jpg"), b"not a repository").unwrap();
    let s = stranger.display().to_string();
    let e = f.svc.erase_backup_target(&admin, &s, &s).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::BackupNoRepository);
    assert!(stranger.join("family.jpg").exists());
    assert_eq!(files_under(&target), before, "nothing deleted yet");

    let report = f
        .svc
        .erase_backup_target(&admin, &spec, &spec)
        .await
        .unwrap();
    assert_eq!(report.objects, report.deleted);
    assert!(report.still_locked.is_empty());
    assert_eq!(files_under(&target), 0);

    // The plan came before the outcome; the disposal register has it with a PDF record.
    let actions: Vec<String> = f
        .events("backup.erase")
        .iter()
        .filter(|e| e["outcome"] == "ok")
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(actions, ["backup.erased", "backup.erase_planned"]);
    let rows = f
        .svc
        .register_entries(&auditor, Register::Disposal)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].id, report.register_entry);
    assert_eq!(rows[0].source, "mamori");
    assert_eq!(rows[0].entry.get("method"), "crypto_erase");
    let (name, media, pdf) = f.svc.register_file(&auditor, rows[0].id).await.unwrap();
    assert!(name.ends_with(".pdf") && media == "application/pdf" && pdf.starts_with(b"%PDF"));
    // No confirming person yet: the disposal item says so until someone signs it off.
    assert_eq!(observed(&f, &auditor, "disposal").await.answer, Answer::No);
    let mut confirmed = rows[0].entry.clone();
    confirmed
        .fields
        .insert("confirmed_by".into(), "事務長 中村".into());
    f.svc
        .save_register_entry(
            &auditor,
            Register::Disposal,
            Some(rows[0].id),
            confirmed,
            None,
        )
        .await
        .unwrap();
    assert!(observed(&f, &auditor, "disposal").await.is_partial_yes());
    // The backup page no longer shows the erased snapshots as current.
    let st = f.svc.backup_status(&admin).await.unwrap();
    assert!(st.targets.iter().all(|t| t.last_ok_at.is_none()), "{st:?}");
}
