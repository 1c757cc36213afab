//! Someone with access to the files changes one byte, one row, or removes the newest
//! entries: `mamori verify` exits non-zero and names what was changed.

mod support;

use std::path::Path;

use support::*;

fn verify(data: &Path, extra: &[&str]) -> (bool, String) {
    let mut args = vec!["verify", "--data", data.to_str().unwrap()];
    args.extend_from_slice(extra);
    let o = mamori(&args);
    (o.status.success(), text(&o))
}

struct Case {
    _dir: tempfile::TempDir,
    data: std::path::PathBuf,
    checkpoint: std::path::PathBuf,
    records: Vec<i64>,
}

/// A populated instance and a checkpoint exported (as an outside party would keep it).
fn case() -> Case {
    let dir = tempfile::tempdir().unwrap();
    let data = init_instance(dir.path());
    let records = populate(&data);
    let o = mamori(&["checkpoint", "--data", data.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let checkpoint = dir.path().join("checkpoint.txt");
    std::fs::write(&checkpoint, &o.stdout).unwrap();
    let (ok, out) = verify(&data, &["--checkpoint", checkpoint.to_str().unwrap()]);
    assert!(ok, "a fresh instance must verify:\n{out}");
    Case {
        _dir: dir,
        data,
        checkpoint,
        records,
    }
}

#[test]
fn one_changed_byte_in_a_blob_is_named() {
    let c = case();
    let conn = rusqlite::Connection::open(c.data.join("mamori.db")).unwrap();
    let sha: String = conn
        .query_row(
            "SELECT sha256 FROM blobs WHERE media_type = 'application/pdf'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    drop(conn);
    let path = c.data.join("blobs").join(&sha[..2]).join(&sha[2..]);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[10] ^= 0x01;
    std::fs::write(&path, bytes).unwrap();
    let (ok, out) = verify(&c.data, &[]);
    assert!(!ok);
    assert!(out.contains(&format!("blob {sha}")), "{out}");
}

#[test]
fn a_changed_version_row_is_named() {
    let c = case();
    // The attacker first removes the database's own guard.
    sql(
        &c.data,
        &format!(
            "DROP TRIGGER versions_finalised_immutable;
             UPDATE versions SET author_id = (SELECT id FROM accounts WHERE login = 'clerk.a') WHERE record_id = {};",
            c.records[1]
        ),
    );
    let (ok, out) = verify(&c.data, &[]);
    assert!(!ok);
    assert!(
        out.contains(&format!("version {}/1", c.records[1])),
        "{out}"
    );
}

#[test]
fn a_deleted_version_row_is_named() {
    let c = case();
    sql(
        &c.data,
        &format!(
            // The attacker removes the version's signature too (it refers to the version).
            "DROP TRIGGER versions_never_deleted; DROP TRIGGER signatures_never_deleted;
             DELETE FROM signatures WHERE record_id = {0}; DELETE FROM versions WHERE record_id = {0};",
            c.records[2]
        ),
    );
    let (ok, out) = verify(&c.data, &[]);
    assert!(!ok);
    assert!(
        out.contains(&format!("version {}/1", c.records[2])) && out.contains("削除"),
        "{out}"
    );
}

#[test]
fn a_changed_ledger_row_is_named() {
    let c = case();
    sql(
        &c.data,
        "DROP TRIGGER ledger_no_update;
         UPDATE ledger SET payload = CAST(replace(CAST(payload AS TEXT), 'dr.a', 'dr.b') AS BLOB) WHERE idx = 20;",
    );
    let (ok, out) = verify(&c.data, &[]);
    assert!(!ok);
    assert!(out.contains("ledger entry 20"), "{out}");
}

#[test]
fn a_hidden_access_in_the_index_columns_is_named() {
    let c = case();
    // Rewriting only the searchable column would hide an access from audit queries.
    sql(
        &c.data,
        "DROP TRIGGER ledger_no_update; UPDATE ledger SET patient_id = 'P999' WHERE patient_id = 'P1' AND action = 'record.read';",
    );
    let (ok, out) = verify(&c.data, &[]);
    assert!(!ok);
    assert!(out.contains("index columns"), "{out}");
}

#[test]
fn removed_newest_entries_are_caught_by_an_exported_checkpoint() {
    let c = case();
    let conn = rusqlite::Connection::open(c.data.join("mamori.db")).unwrap();
    let n: i64 = conn
        .query_row("SELECT COUNT(*) FROM ledger", [], |r| r.get(0))
        .unwrap();
    drop(conn);
    let keep = n - 3;
    // A careful attacker removes the last entries, their hashes and the server's own checkpoints.
    sql(
        &c.data,
        &format!(
            "DROP TRIGGER ledger_no_delete;
             DELETE FROM ledger WHERE idx >= {keep};
             DELETE FROM checkpoints WHERE size > {keep};
             UPDATE meta SET value = '{keep}' WHERE key = 'indexed_upto' AND CAST(value AS INTEGER) > {keep};"
        ),
    );
    let (ok, out) = verify(&c.data, &["--checkpoint", c.checkpoint.to_str().unwrap()]);
    assert!(!ok, "{out}");
    assert!(out.contains("ledger truncated"), "{out}");
    assert!(
        out.contains(&format!("{n} 件")) && out.contains(&format!("{keep} 件")),
        "{out}"
    );
}

#[test]
fn a_removed_middle_entry_is_named() {
    let c = case();
    sql(
        &c.data,
        "DROP TRIGGER ledger_no_delete; DELETE FROM ledger WHERE idx = 7;",
    );
    let (ok, out) = verify(&c.data, &[]);
    assert!(!ok);
    assert!(out.contains("ledger entries 7..7 are missing"), "{out}");
}

#[test]
fn a_checkpoint_from_another_key_is_refused() {
    let c = case();
    let text = std::fs::read_to_string(&c.checkpoint).unwrap();
    let forged = text
        .lines()
        .map(|l| {
            if l.starts_with('\u{2014}') {
                "\u{2014} mamori.local/x AAAA"
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n";
    let f = c.data.parent().unwrap().join("forged.txt");
    std::fs::write(&f, forged).unwrap();
    let (ok, out) = verify(&c.data, &["--checkpoint", f.to_str().unwrap()]);
    assert!(!ok);
    assert!(out.contains("指定されたチェックポイント"), "{out}");
}

#[test]
fn a_removed_entry_of_the_patient_index_is_named() {
    let c = case();
    // Hiding one chart opening from "who opened P1's chart?" without touching the ledger.
    sql(
        &c.data,
        "DELETE FROM audit_by_patient WHERE idx = (SELECT MAX(idx) FROM audit_by_patient);",
    );
    let (ok, out) = verify(&c.data, &[]);
    assert!(!ok);
    assert!(out.contains("audit_by_patient"), "{out}");
}

/// The verifier key `mamori checkpoint` prints for an instance.
fn verifier_key(data: &Path) -> String {
    let o = mamori(&["checkpoint", "--data", data.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8_lossy(&o.stderr)
        .lines()
        .find_map(|l| l.strip_prefix("検証鍵: "))
        .expect("the verifier key is printed")
        .trim()
        .to_owned()
}

#[test]
fn an_outside_verifier_needs_only_the_public_key_and_a_copy_of_the_data() {
    let c = case();
    let vkey = verifier_key(&c.data);
    let copy = c.data.parent().unwrap().join("auditor-copy");
    copy_dir(&c.data, &copy);
    std::fs::remove_dir_all(copy.join("keys")).unwrap();
    let cp = c.checkpoint.to_str().unwrap();
    let (ok, out) = verify(&copy, &["--trusted-key", &vkey, "--checkpoint", cp]);
    assert!(ok, "{out}");
    // Without the public key the copy cannot be checked (and says why).
    let (ok, out) = verify(&copy, &[]);
    assert!(!ok && out.contains("ledger.key"), "{out}");
    // Another instance's key: nothing verifies against it.
    let other = tempfile::tempdir().unwrap();
    let other_key = verifier_key(&init_instance(other.path()));
    let (ok, out) = verify(&copy, &["--trusted-key", &other_key]);
    assert!(!ok, "{out}");
    assert!(out.contains("--trusted-key"), "{out}");
}
