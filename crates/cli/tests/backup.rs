//! `mamori backup` and `mamori restore` as an operator runs them: beside a live server, to a
//! directory and to an S3 server on 127.0.0.1 that enforces Object Lock (moto), with restore
//! drills recorded in the ledger and each failure mode named.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use support::*;

fn run(args: &[&str]) -> (bool, String) {
    let o = mamori(args);
    (o.status.success(), text(&o))
}

fn stop(mut server: Child) {
    let _ = Command::new("kill").arg(server.id().to_string()).status();
    let _ = server.wait();
}

/// `mamori backup drill` of the newest snapshot, recorded in `data`'s ledger.
fn drill(target: &str, key: &str, data: &str, scratch: &Path) -> (bool, String) {
    run(&[
        "backup",
        "drill",
        "--target",
        target,
        "--key-file",
        key,
        "--data",
        data,
        "--scratch",
        scratch.to_str().unwrap(),
    ])
}

fn keygen(dir: &Path) -> PathBuf {
    let key = dir.join("backup-key.txt");
    let (ok, out) = run(&["backup", "keygen", "--out", key.to_str().unwrap()]);
    assert!(ok, "{out}");
    assert!(
        out.contains("鍵の儀式") && out.contains("mamori-backup-key v1"),
        "{out}"
    );
    key
}

#[test]
fn directory_backup_beside_a_live_server_restores_and_drills() {
    let dir = tempfile::tempdir().unwrap();
    let data = init_instance(dir.path());
    populate(&data);
    let key = keygen(dir.path());
    let (k, d) = (key.to_str().unwrap(), data.to_str().unwrap());
    let repo = dir.path().join("nas");
    let t = repo.to_str().unwrap();

    let port = free_port();
    let server = serve(&data, port);
    let (ok, out) = run(&["backup", "run", "--data", d, "--target", t, "--key-file", k]);
    assert!(ok, "{out}");
    assert!(out.contains("スナップショット"), "{out}");
    // A second run while serving: nothing changed but the database.
    let (ok, out) = run(&[
        "backup",
        "run",
        "--data",
        d,
        "--target",
        t,
        "--key-file",
        k,
        "--json",
    ]);
    assert!(ok, "{out}");
    let runs: serde_json::Value =
        serde_json::from_str(&out[..out.rfind(']').unwrap() + 1]).unwrap();
    assert!(
        runs[0]["outcome"]["files_unchanged"].as_u64().unwrap() >= 2,
        "{runs}"
    );

    let (ok, out) = drill(t, k, d, dir.path());
    assert!(ok, "{out}");
    assert!(
        out.contains("目録と一致") && out.contains("結果: OK"),
        "{out}"
    );
    let (ok, out) = run(&[
        "backup",
        "verify",
        "--target",
        t,
        "--key-file",
        k,
        "--data",
        d,
    ]);
    assert!(ok && out.contains("検証結果: OK"), "{out}");
    let (ok, out) = run(&[
        "backup",
        "offline",
        "--data",
        d,
        "--target",
        t,
        "--medium",
        "USB-1",
        "--key-file",
        k,
    ]);
    assert!(ok, "{out}");
    wait_for_outbox_to_empty(&data);
    stop(server);

    // The server recorded all of it in the ledger, in order.
    let completed = ledger_actions(&data, "backup.completed");
    assert_eq!(completed.len(), 2);
    let drills = ledger_actions(&data, "backup.drill");
    assert_eq!(drills.len(), 1);
    assert_eq!(drills[0]["detail"]["ok"], true);
    assert_eq!(drills[0]["detail"]["via"], "outbox");
    assert_eq!(
        ledger_actions(&data, "backup.offline")[0]["detail"]["medium"],
        "USB-1"
    );
    assert_eq!(ledger_actions(&data, "backup.verified").len(), 1);

    // Restore the newest snapshot into a new instance: it verifies, with the manifest's ledger.
    let restored = dir.path().join("restored");
    let r = restored.to_str().unwrap();
    let (ok, out) = run(&[
        "restore",
        "--target",
        t,
        "--snapshot",
        "latest",
        "--to",
        r,
        "--key-file",
        k,
    ]);
    assert!(ok, "{out}");
    let (ok, out) = run(&["verify", "--data", r, "--json"]);
    assert!(ok, "{out}");
    let report: serde_json::Value =
        serde_json::from_str(&out[..out.rfind('}').unwrap() + 1]).unwrap();
    let restored_event = &ledger_actions(&restored, "backup.restored")[0]["detail"];
    // The restore itself is the one entry after the snapshot's ledger.
    assert_eq!(
        report["ledger_entries"].as_u64().unwrap(),
        restored_event["ledger_size"].as_u64().unwrap() + 1
    );
    assert_eq!(
        completed[1]["detail"]["ledger_root"],
        restored_event["ledger_root"]
    );
    let versions = |p: &Path| {
        rusqlite::Connection::open(p.join("mamori.db"))
            .unwrap()
            .query_row("SELECT count(*) FROM versions", [], |r| r.get::<_, i64>(0))
            .unwrap()
    };
    assert_eq!(versions(&data), versions(&restored));
    assert!(restored.join("keys/ledger.key").exists());

    // Failure modes: each named, and none of them writes anything.
    let (ok, out) = run(&[
        "restore",
        "--target",
        t,
        "--snapshot",
        "latest",
        "--to",
        r,
        "--key-file",
        k,
    ]);
    assert!(!ok && out.contains("空ではありません"), "{out}");
    std::fs::create_dir_all(dir.path().join("k2")).unwrap();
    let other = keygen(&dir.path().join("k2"));
    let (ok, out) = run(&[
        "backup",
        "list",
        "--target",
        t,
        "--key-file",
        other.to_str().unwrap(),
    ]);
    assert!(!ok && out.contains("鍵が違います"), "{out}");
    let o = Command::new(env!("CARGO_BIN_EXE_mamori"))
        .args(["backup", "list", "--target", t])
        .env_remove("MAMORI_BACKUP_PASSPHRASE")
        .env_remove("MAMORI_BACKUP_KEY_FILE")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        !o.status.success() && text(&o).contains("MAMORI_BACKUP_PASSPHRASE"),
        "{}",
        text(&o)
    );
    // The passphrase way in is a different slot: this repository was made with a key file only.
    let o = Command::new(env!("CARGO_BIN_EXE_mamori"))
        .args(["backup", "list", "--target", t])
        .env(
            "MAMORI_BACKUP_PASSPHRASE",
            "a passphrase that was never set",
        )
        .output()
        .unwrap();
    assert!(text(&o).contains("鍵が違います"), "{}", text(&o));

    // Every pack gone (a single one might hold only chunks the newest snapshot no longer uses).
    let (packs, away) = (repo.join("packs"), repo.join("packs.away"));
    std::fs::rename(&packs, &away).unwrap();
    let gone = dir.path().join("r2");
    let (ok, out) = run(&[
        "restore",
        "--target",
        t,
        "--snapshot",
        "latest",
        "--to",
        gone.to_str().unwrap(),
        "--key-file",
        k,
    ]);
    assert!(!ok && out.contains("見つかりません"), "{out}");
    assert!(!gone.exists());
    let (ok, out) = run(&["backup", "verify", "--target", t, "--key-file", k]);
    assert!(!ok && out.contains("NG"), "{out}");
    let (ok, out) = drill(t, k, d, dir.path());
    assert!(!ok, "{out}");
    let drills = ledger_actions(&data, "backup.drill");
    assert_eq!(
        drills.last().unwrap()["detail"]["ok"],
        false,
        "a failed drill is recorded too"
    );
    std::fs::rename(&away, &packs).unwrap();
    let (ok, out) = run(&[
        "backup",
        "verify",
        "--target",
        t,
        "--key-file",
        k,
        "--quick",
    ]);
    assert!(ok, "{out}");
}

#[test]
fn s3_object_lock_keeps_snapshots_from_deletion_and_overwriting() {
    let moto = Moto::start();
    let (ok, out) = moto.boto(
        "s3.create_bucket(Bucket='worm', ObjectLockEnabledForBucket=True)\ns3.create_bucket(Bucket='plain')",
    );
    assert!(ok, "{out}");
    let dir = tempfile::tempdir().unwrap();
    let data = init_instance(dir.path());
    populate(&data);
    let key = keygen(dir.path());
    let (k, d) = (key.to_str().unwrap(), data.to_str().unwrap());
    let target = format!(
        "s3://worm/clinic?endpoint={}&region=us-east-1&lock_days=2",
        moto.endpoint()
    );

    // A bucket without Object Lock is refused for a write-once repository.
    let plain = format!("s3://plain/x?endpoint={}&region=us-east-1", moto.endpoint());
    let (ok, out) = mamori_s3(&[
        "backup",
        "run",
        "--data",
        d,
        "--target",
        &plain,
        "--key-file",
        k,
    ]);
    assert!(
        !ok && out.contains("オブジェクトロックが有効になっていません"),
        "{out}"
    );

    let (ok, out) = mamori_s3(&[
        "backup",
        "run",
        "--data",
        d,
        "--target",
        &target,
        "--key-file",
        k,
    ]);
    assert!(ok && out.contains("COMPLIANCE"), "{out}");
    let (ok, out) = mamori_s3(&[
        "backup",
        "list",
        "--target",
        &target,
        "--key-file",
        k,
        "--json",
    ]);
    assert!(ok, "{out}");
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    let snap = list[0]["id"].as_str().unwrap().to_owned();
    assert!(list[0]["locked_until"].is_string());

    // The bucket says every object is locked in COMPLIANCE mode (head_object: moto 5.2's
    // GetObjectRetention answers 500 even for objects boto3 itself wrote).
    let (ok, out) = moto.boto(
        "for o in s3.list_objects_v2(Bucket='worm', Prefix='clinic/')['Contents']:\n    h = s3.head_object(Bucket='worm', Key=o['Key'])\n    print(o['Key'], h.get('ObjectLockMode'), h.get('ObjectLockRetainUntilDate'))",
    );
    assert!(ok, "{out}");
    let lines: Vec<&str> = out.lines().filter(|l| l.starts_with("clinic/")).collect();
    assert!(
        lines.len() >= 4 && lines.iter().all(|l| l.contains(" COMPLIANCE 20")),
        "{out}"
    );

    // Someone holding the credentials tries to destroy the backup.
    let attack = format!(
        "key = 'clinic/snapshots/{snap}'\n\
         v = s3.list_object_versions(Bucket='worm', Prefix=key)['Versions'][0]['VersionId']\n\
         try:\n    s3.delete_object(Bucket='worm', Key=key, VersionId=v)\n    print('DELETED')\n\
         except botocore.exceptions.ClientError as e:\n    print('REFUSED', e.response['Error']['Code'])\n\
         s3.put_object(Bucket='worm', Key=key, Body=b'encrypted by ransomware')\n\
         s3.delete_object(Bucket='worm', Key=key)\n\
         body = s3.get_object(Bucket='worm', Key=key, VersionId=v)['Body'].read()\n\
         print('ORIGINAL', len(body))"
    );
    let (ok, out) = moto.boto(&attack);
    assert!(ok, "{out}");
    assert!(
        out.contains("REFUSED AccessDenied") && !out.contains("DELETED"),
        "{out}"
    );
    assert!(
        out.contains("ORIGINAL") && !out.contains("ORIGINAL 23"),
        "{out}"
    );
    // mamori's own prune cannot remove it either.
    let (ok, out) = mamori_s3(&[
        "backup",
        "run",
        "--data",
        d,
        "--target",
        &target,
        "--key-file",
        k,
        "--keep",
        "1",
    ]);
    assert!(ok && out.contains("ロック中のため残した 1 件"), "{out}");

    // Past the overwrite and the delete marker, the original snapshot still restores and drills.
    let restored = dir.path().join("restored");
    let (ok, out) = mamori_s3(&[
        "restore",
        "--target",
        &target,
        "--snapshot",
        &snap,
        "--to",
        restored.to_str().unwrap(),
        "--key-file",
        k,
    ]);
    assert!(ok, "{out}");
    let (ok, out) = run(&["verify", "--data", restored.to_str().unwrap()]);
    assert!(ok, "{out}");
    let (ok, out) = mamori_s3(&[
        "backup",
        "drill",
        "--target",
        &target,
        "--snapshot",
        &snap,
        "--key-file",
        k,
        "--data",
        d,
        "--scratch",
        dir.path().to_str().unwrap(),
    ]);
    assert!(ok && out.contains("結果: OK"), "{out}");
    let (ok, out) = mamori_s3(&["backup", "verify", "--target", &target, "--key-file", k]);
    assert!(ok, "{out}");
    assert_eq!(ledger_actions(&data, "backup.drill").len(), 1);
}
