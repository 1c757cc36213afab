//! The command line follows the audit rule (issue #16/#17): export, prune and restore are in
//! the ledger before their effect is visible, and do not act when they cannot be recorded.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::Digest;
use support::*;

fn run(args: &[&str]) -> (bool, String) {
    let o = mamori(args);
    (o.status.success(), text(&o))
}

fn stop(mut server: std::process::Child) {
    let _ = Command::new("kill").arg(server.id().to_string()).status();
    let _ = server.wait();
}

/// The outbox made unwritable in a way that holds for root too: a file where the directory
/// should be.
fn break_outbox(data: &Path) {
    let _ = std::fs::remove_dir_all(data.join("outbox"));
    std::fs::write(data.join("outbox"), b"not a directory").unwrap();
}

/// A populated instance, a backup key and a directory for its repository.
fn instance_and_repository(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let data = init_instance(dir);
    populate(&data);
    let key = dir.join("key.txt");
    assert!(run(&["backup", "keygen", "--out", key.to_str().unwrap()]).0);
    (data, key, dir.join("nas"))
}

fn snapshot_count(repo: &Path) -> usize {
    std::fs::read_dir(repo.join("snapshots")).unwrap().count()
}

#[test]
fn export_is_recorded_with_its_digest_before_the_file_appears() {
    let dir = tempfile::tempdir().unwrap();
    let data = init_instance(dir.path());
    let ids = populate(&data);
    let d = data.to_str().unwrap();

    let out = dir.path().join("one.zip");
    let (ok, msg) = run(&[
        "export",
        "record",
        &ids[0].to_string(),
        "--data",
        d,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{msg}");
    let bytes = std::fs::read(&out).unwrap();
    let exports = ledger_actions(&data, "record.print_export");
    let e = exports.last().unwrap();
    assert_eq!(
        e["detail"]["bundle_sha256"],
        hex::encode(sha2::Sha256::digest(&bytes)),
        "the ledger names exactly the file that was handed out"
    );
    assert_eq!(e["detail"]["bytes"], bytes.len());
    assert_eq!(e["detail"]["by"], "cli");
    assert_eq!(e["record"], ids[0]);
    assert_eq!(
        e["patient"], "P1",
        "a command-line export appears in the patient's access log"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&out).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o077,
            0,
            "a bundle of a chart is readable by its owner only"
        );
    }

    // Beside a live server whose outbox cannot be written: no record, so no file.
    let port = free_port();
    let server = serve(&data, port);
    break_outbox(&data);
    let refused = dir.path().join("refused.zip");
    let (ok, msg) = run(&[
        "export",
        "patient",
        "P1",
        "--data",
        d,
        "--out",
        refused.to_str().unwrap(),
    ]);
    assert!(!ok && msg.contains("台帳に記録できなかった"), "{msg}");
    assert!(!refused.exists(), "nothing is handed out unrecorded");
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("refused"))
        .collect();
    assert!(left.is_empty(), "no partial file is left: {left:?}");

    // With the outbox back, the export goes through it and the server records it.
    std::fs::remove_file(data.join("outbox")).unwrap();
    let queued = dir.path().join("queued.zip");
    let (ok, msg) = run(&[
        "export",
        "patient",
        "P1",
        "--data",
        d,
        "--out",
        queued.to_str().unwrap(),
    ]);
    assert!(ok && msg.contains("サーバが台帳に記録します"), "{msg}");
    wait_for_outbox_to_empty(&data);
    stop(server);
    let exports = ledger_actions(&data, "record.print_export");
    let e = exports.last().unwrap();
    assert_eq!(e["detail"]["via"], "outbox");
    assert_eq!(e["patient"], "P1");
    assert_eq!(
        e["detail"]["bundle_sha256"],
        hex::encode(sha2::Sha256::digest(std::fs::read(&queued).unwrap()))
    );
}

#[test]
fn prune_records_its_plan_first_and_does_nothing_unrecorded() {
    let dir = tempfile::tempdir().unwrap();
    let (data, key, repo) = instance_and_repository(dir.path());
    let (d, k, t) = (
        data.to_str().unwrap(),
        key.to_str().unwrap(),
        repo.to_str().unwrap(),
    );
    for _ in 0..3 {
        let (ok, msg) = run(&["backup", "run", "--data", d, "--target", t, "--key-file", k]);
        assert!(ok, "{msg}");
    }
    assert_eq!(snapshot_count(&repo), 3);

    // Without an instance to record in, prune does not run.
    let o = Command::new(env!("CARGO_BIN_EXE_mamori"))
        .args([
            "backup",
            "prune",
            "--target",
            t,
            "--keep",
            "1",
            "--key-file",
            k,
        ])
        .env_remove("MAMORI_DATA")
        .output()
        .unwrap();
    assert!(!o.status.success(), "{}", text(&o));
    assert_eq!(snapshot_count(&repo), 3);

    // Beside a server whose outbox cannot be written: nothing deleted.
    let port = free_port();
    let server = serve(&data, port);
    break_outbox(&data);
    let (ok, msg) = run(&[
        "backup",
        "prune",
        "--target",
        t,
        "--keep",
        "1",
        "--key-file",
        k,
        "--data",
        d,
    ]);
    assert!(!ok, "{msg}");
    assert_eq!(
        snapshot_count(&repo),
        3,
        "an unrecorded prune deletes nothing"
    );
    stop(server);
    std::fs::remove_file(data.join("outbox")).unwrap();

    let (ok, msg) = run(&[
        "backup",
        "prune",
        "--target",
        t,
        "--keep",
        "1",
        "--key-file",
        k,
        "--data",
        d,
    ]);
    assert!(ok, "{msg}");
    assert_eq!(snapshot_count(&repo), 1);
    let planned = ledger_actions(&data, "backup.prune_planned");
    let pruned = ledger_actions(&data, "backup.pruned");
    assert_eq!(planned.len(), 1);
    assert_eq!(planned[0]["detail"]["remove"].as_array().unwrap().len(), 2);
    assert_eq!(
        pruned[0]["detail"]["removed"],
        planned[0]["detail"]["remove"]
    );
    assert!(
        planned[0]["ts"].as_i64() <= pruned[0]["ts"].as_i64(),
        "the plan comes first"
    );
    let (ok, msg) = run(&["verify", "--data", d]);
    assert!(ok, "{msg}");
}

#[test]
fn a_restore_is_in_the_restored_ledger_or_its_outbox_before_the_directory_appears() {
    let dir = tempfile::tempdir().unwrap();
    let (data, key, repo) = instance_and_repository(dir.path());
    let (d, k, t) = (
        data.to_str().unwrap(),
        key.to_str().unwrap(),
        repo.to_str().unwrap(),
    );
    let (ok, msg) = run(&[
        "backup",
        "run",
        "--data",
        d,
        "--target",
        t,
        "--key-file",
        k,
        "--no-keys",
    ]);
    assert!(ok, "{msg}");

    // A backup without keys: the restored copy cannot be opened yet, so the restore waits in
    // its outbox and is recorded at the first start, once the keys are back.
    let to = dir.path().join("restored");
    let (ok, msg) = run(&[
        "restore",
        "--target",
        t,
        "--snapshot",
        "latest",
        "--to",
        to.to_str().unwrap(),
        "--key-file",
        k,
    ]);
    assert!(ok && msg.contains("最初に起動したとき"), "{msg}");
    assert_eq!(std::fs::read_dir(to.join("outbox")).unwrap().count(), 1);
    copy_dir(&data.join("keys"), &to.join("keys"));
    let port = free_port();
    let server = serve(&to, port);
    wait_for_outbox_to_empty(&to);
    stop(server);
    let restored = ledger_actions(&to, "backup.restored");
    assert_eq!(restored.len(), 1);
    assert_eq!(restored[0]["detail"]["via"], "outbox");
    let (ok, msg) = run(&["verify", "--data", to.to_str().unwrap()]);
    assert!(ok, "{msg}");
}
