//! An instance on PostgreSQL through the command line, as an administrator would run it:
//! `init --database`, `verify`, a backup and its restore drill, and `store migrate` of a
//! SQLite instance with the same ledger root on both sides.

mod support;

use mamori_testkit::postgres::Cluster;
use support::*;

fn root_and_size(data: &std::path::Path) -> (String, u64) {
    let o = mamori(&["verify", "--data", data.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    (
        v["root"].as_str().unwrap().to_owned(),
        v["ledger_entries"].as_u64().unwrap(),
    )
}

#[test]
fn an_instance_lives_on_postgresql_is_verified_backed_up_and_migrated_there() {
    let cluster = Cluster::start();
    let dir = tempfile::tempdir().unwrap();

    // init --database: the state goes to PostgreSQL, the directory keeps keys and files.
    let url = cluster.database("clinic");
    let (data, said) = init_instance_with(dir.path(), &["--database", &url]);
    assert!(said.contains("管理者 admin"), "{said}");
    assert!(!data.join("mamori.db").exists());
    assert!(
        std::fs::read_to_string(data.join("mamori.toml"))
            .unwrap()
            .contains(&url)
    );
    let n: i64 = cluster
        .psql("clinic", "SELECT count(*) FROM accounts")
        .parse()
        .unwrap();
    assert_eq!(n, 1);
    populate(&data);
    let o = mamori(&["verify", "--data", data.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("検証結果: OK"), "{}", text(&o));

    // A second instance cannot be made in the same database; nothing is left behind.
    let other = tempfile::tempdir().unwrap();
    let pwf = other.path().join("pw");
    std::fs::write(&pwf, ADMIN_PW).unwrap();
    let o = mamori(&[
        "init",
        "--data",
        other.path().join("data").to_str().unwrap(),
        "--facility",
        "別の診療所",
        "--admin",
        "admin",
        "--admin-password-file",
        pwf.to_str().unwrap(),
        "--database",
        &url,
    ]);
    assert!(!o.status.success());
    assert!(text(&o).contains("既にインスタンス"), "{}", text(&o));
    assert!(!other.path().join("data").exists());

    // A backup is one snapshot of the database; its drill restores, starts and verifies it.
    let (root, size) = root_and_size(&data);
    let key = dir.path().join("backup.key");
    let o = mamori(&["backup", "keygen", "--out", key.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let nas = dir.path().join("nas");
    let o = backup("run", &data, &nas, &key, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let o = backup("drill", &data, &nas, &key, &[]);
    let drill = text(&o);
    assert!(o.status.success(), "{drill}");
    assert!(drill.contains("この世代から復旧できます"), "{drill}");
    // The backup was taken before the entry recording it: its root is the one verified.
    assert!(
        drill.contains(&format!("台帳 {size} 件 root {root}")),
        "{drill}"
    );

    // A SQLite instance moves to an empty database in one step, with the same root there.
    let lite_dir = tempfile::tempdir().unwrap();
    let lite = init_instance(lite_dir.path());
    populate(&lite);
    let (root, size) = root_and_size(&lite);
    // Not into a database that already holds an instance: refused, SQLite untouched.
    let o = mamori(&[
        "store",
        "migrate",
        "--data",
        lite.to_str().unwrap(),
        "--to",
        &url,
    ]);
    assert!(!o.status.success());
    assert!(text(&o).contains("既に mamori のデータ"), "{}", text(&o));
    assert!(lite.join("mamori.db").exists());
    let target = cluster.database("moved");
    let o = mamori(&[
        "store",
        "migrate",
        "--data",
        lite.to_str().unwrap(),
        "--to",
        &target,
    ]);
    let said = assert_prints(&o, &[&format!("台帳 {size} 件、root {root}")]);
    assert!(said.contains("SQLite 側と一致"), "{said}");
    assert!(!lite.join("mamori.db").exists());
    assert!(lite.join("before-postgres/mamori.db").exists());
    // On PostgreSQL now, verified, with one entry more: the migration itself.
    let (_, after) = root_and_size(&lite);
    assert_eq!(after, size + 1);
    let said = ledger_actions(&lite, "store.migrated");
    assert_eq!(said.len(), 1, "{said:?}");
    assert_eq!(said[0]["detail"]["ledger_root"], root.as_str());
    // The server starts on it and its data are there.
    let n: i64 = cluster
        .psql("moved", "SELECT count(*) FROM accounts")
        .parse()
        .unwrap();
    assert_eq!(n, 3);
}
