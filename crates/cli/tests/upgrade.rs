//! Upgrades never lose data (issue #21): an instance made by an earlier release (commit
//! e366439, kept as a fixture: `init`, a doctor, a patient and a finalised, signed record) is
//! opened by this one. A synced copy of the database as it was goes to `pre-upgrade/` first,
//! every pending migration runs in one transaction, the upgrade is a ledger entry naming the
//! copy, and afterwards `verify`, `evidence verify` and every record's export succeed.

mod support;

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};
use support::*;

const FIXTURE: &str = "instance-before-state-capture.tar.gz";

/// Schema version, ledger size and the newest entry's hash, read without writing.
fn facts(db: &Path) -> (i64, i64, Vec<u8>) {
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let v: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    let (n, h): (i64, Vec<u8>) = conn
        .query_row(
            "SELECT count(*), (SELECT hashes FROM ledger ORDER BY idx DESC LIMIT 1) FROM ledger",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    (v, n, h)
}

fn copies(data: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(data.join("pre-upgrade")) {
        Ok(d) => d.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    }
}

#[test]
fn an_instance_from_an_earlier_release_is_copied_then_migrated_and_still_verifies() {
    let (_dir, data) = unpack_fixture(FIXTURE);
    let d = data.to_str().unwrap();
    let (old_version, old_entries, old_head) = facts(&data.join("mamori.db"));
    assert!(
        (old_version as usize) < mamori_store::SCHEMA_VERSION,
        "the fixture predates this schema"
    );

    let o = mamori(&["evidence", "seal", "--data", d]);
    assert!(o.status.success(), "{}", text(&o));

    // The copy: one whole file (no half-written one), the schema and ledger as they were.
    let c = copies(&data);
    assert_eq!(c.len(), 1, "{c:?}");
    assert!(c[0].extension().is_some_and(|e| e == "db"), "{c:?}");
    assert_eq!(facts(&c[0]), (old_version, old_entries, old_head.clone()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&c[0]).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the copy holds patient data: {mode:o}");
    }

    // The instance: current schema, the old ledger untouched as its prefix, the upgrade said.
    let (new_version, new_entries, _) = facts(&data.join("mamori.db"));
    assert_eq!(new_version as usize, mamori_store::SCHEMA_VERSION);
    assert!(new_entries > old_entries);
    let said = ledger_actions(&data, "instance.upgraded");
    assert_eq!(said.len(), 1, "{said:?}");
    let detail = &said[0]["detail"];
    assert_eq!(detail["schema_from"], old_version);
    assert_eq!(detail["schema_to"], mamori_store::SCHEMA_VERSION);
    assert_eq!(detail["copy_ledger_entries"], old_entries);
    let named = detail["pre_upgrade_copy"].as_str().unwrap();
    assert_eq!(data.join(named), c[0]);
    // Built-in roles the release adds arrive with it (経理担当 with the 電帳法 documents).
    assert_eq!(
        detail["roles_added"],
        serde_json::json!(["accountant"]),
        "{detail}"
    );

    // Everything still proves itself.
    let o = mamori(&["verify", "--data", d]);
    assert!(o.status.success(), "{}", text(&o));
    let o = mamori(&["evidence", "verify", "--data", d]);
    assert!(o.status.success(), "{}", text(&o));
    let conn =
        Connection::open_with_flags(data.join("mamori.db"), OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let ids: Vec<i64> = conn
        .prepare("SELECT id FROM records ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    drop(conn);
    assert!(!ids.is_empty());
    let out = tempfile::tempdir().unwrap();
    for id in ids {
        let zip = out.path().join(format!("{id}.zip"));
        let o = mamori(&[
            "export",
            "record",
            &id.to_string(),
            "--data",
            d,
            "--out",
            zip.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "record {id}: {}", text(&o));
        assert!(std::fs::metadata(&zip).unwrap().len() > 0);
    }

    // Opened again: nothing to migrate, no second copy, no second entry.
    let o = mamori(&["evidence", "seal", "--data", d]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(copies(&data).len(), 1);
    assert_eq!(ledger_actions(&data, "instance.upgraded").len(), 1);
}

#[test]
fn without_room_for_the_copy_nothing_is_migrated() {
    let (_dir, data) = unpack_fixture(FIXTURE);
    let before = facts(&data.join("mamori.db"));
    // Where the copy would go cannot become a directory.
    std::fs::write(data.join("pre-upgrade"), b"in the way").unwrap();
    let o = mamori(&["evidence", "seal", "--data", data.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(text(&o).contains("更新する前の複製"), "{}", text(&o));
    assert_eq!(
        facts(&data.join("mamori.db")),
        before,
        "the instance is as it was"
    );
    std::fs::remove_file(data.join("pre-upgrade")).unwrap();
    let o = mamori(&["evidence", "seal", "--data", data.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(copies(&data).len(), 1);
}
