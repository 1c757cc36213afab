//! Content files in an S3-compatible bucket (moto on 127.0.0.1) beside a PostgreSQL database,
//! through the command line: `init --blobs`, attachments stored in the bucket and not in the
//! data directory, `verify` reading them there, a backup whose drill restores them, failure
//! trial 4 (the bucket unreachable: uploads refused with nothing kept, text records go on), and
//! `store migrate --blobs` moving a SQLite instance's files up with the same ledger root.

mod support;

use mamori_service::records::{RecordInput, Upload};
use mamori_testkit::postgres::Cluster;
use support::*;

fn bucket_url(moto: &Moto, prefix: &str) -> String {
    format!(
        "s3://files/{prefix}?endpoint={}&region=us-east-1",
        moto.endpoint()
    )
}

/// Objects under `prefix` in the test bucket.
fn objects(moto: &Moto, prefix: &str) -> usize {
    let (ok, out) = moto.boto(&format!(
        "print(s3.list_objects_v2(Bucket='files', Prefix='{prefix}/').get('KeyCount', 0))"
    ));
    assert!(ok, "{out}");
    out.trim().lines().last().unwrap().parse().unwrap()
}

fn files_on_disk(data: &std::path::Path) -> usize {
    walk(&data.join("blobs"))
}

fn walk(p: &std::path::Path) -> usize {
    let Ok(rd) = std::fs::read_dir(p) else {
        return 0;
    };
    rd.flatten()
        .map(|e| {
            if e.file_type().unwrap().is_dir() {
                walk(&e.path())
            } else {
                1
            }
        })
        .sum()
}

/// The JSON document a command printed (stdout first; logs may follow on stderr).
fn json_in(out: &str) -> serde_json::Value {
    let start = out.find('{').unwrap_or_else(|| panic!("no JSON in: {out}"));
    let mut de = serde_json::Deserializer::from_str(&out[start..]).into_iter();
    de.next().unwrap().unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn verified(data: &std::path::Path) -> serde_json::Value {
    let (ok, out) = mamori_s3(&["verify", "--data", data.to_str().unwrap(), "--json"]);
    assert!(ok, "{out}");
    json_in(&out)
}

#[test]
fn content_files_live_in_a_bucket_are_verified_backed_up_and_survive_its_loss() {
    let moto = moto_with_files_bucket();
    let cluster = Cluster::start();
    let dir = tempfile::tempdir().unwrap();
    let url = cluster.database("clinic");

    // Refused before anything is written: a bucket without a database, a prefix in use.
    let pwf = dir.path().join("pw");
    std::fs::write(&pwf, ADMIN_PW).unwrap();
    let refused = |extra: &[&str]| {
        let other = dir.path().join("refused");
        let mut args = vec![
            "init",
            "--data",
            other.to_str().unwrap(),
            "--facility",
            "診療所",
            "--admin",
            "admin",
            "--admin-password-file",
            pwf.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let (ok, out) = mamori_s3(&args);
        assert!(!ok, "{args:?}: {out}");
        assert!(!other.exists(), "nothing is left behind");
        out
    };
    let out = refused(&["--blobs", &bucket_url(&moto, "alone")]);
    assert!(out.contains("PostgreSQL に置くインスタンスだけ"), "{out}");
    // Another instance's file (the only kind the orphan sweep would touch).
    let (ok, o) = moto.boto(&format!(
        "s3.put_object(Bucket='files', Key='used/ab/{}', Body=b'x')",
        "c".repeat(62)
    ));
    assert!(ok, "{o}");
    let out = refused(&["--database", &url, "--blobs", &bucket_url(&moto, "used")]);
    assert!(out.contains("既に 1 個のファイル"), "{out}");
    let n: i64 = cluster
        .psql(
            "clinic",
            "SELECT count(*) FROM pg_tables WHERE tablename = 'accounts'",
        )
        .parse()
        .unwrap();
    assert_eq!(n, 0, "the database was not touched");

    // init --database --blobs: the attachment goes to the bucket, nothing into the directory.
    let blobs = bucket_url(&moto, "clinic");
    let (data, _) = {
        let d = dir.path().join("node1");
        std::fs::create_dir_all(&d).unwrap();
        init_instance_with(&d, &["--database", &url, "--blobs", &blobs])
    };
    let ids = populate(&data);
    // A scan larger than SMALL_FILE goes to the bucket; record texts and small files stay in
    // the database.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let scan = |tag: &str| {
        let mut pdf = format!("%PDF-1.4\n% {tag}\n").into_bytes();
        pdf.resize(mamori_store::postgres::SMALL_FILE + 1000, b' ');
        Upload {
            name: "scan.pdf".into(),
            bytes: pdf,
        }
    };
    let input = |title: &str| RecordInput {
        patient_id: "P1".into(),
        kind: "medical_record".into(),
        title: title.into(),
        body: "本文".into(),
        ..Default::default()
    };
    {
        let svc = mamori_service::instance::open(&data).unwrap();
        rt.block_on(async {
            let dr = svc
                .authenticate(&svc.login("dr.a", PW, None).await.unwrap().token, None)
                .await
                .unwrap();
            svc.create_record(&dr, input("紹介状"), vec![scan("referral")])
                .await
                .unwrap();
        });
        svc.store().close();
    }
    assert_eq!(files_on_disk(&data), 0);
    assert_eq!(objects(&moto, "clinic"), 1, "the scan is in the bucket");
    let v = verified(&data);
    assert_eq!(v["ok"], true, "{v}");
    let files = v["blobs"].as_u64().unwrap() as usize;
    assert!(
        files >= 5,
        "texts and the small attachment in the database too: {v}"
    );

    // A backup takes the files from the bucket; its drill restores a SQLite instance with
    // them in its own directory and verifies it (the files re-hashed).
    let key = dir.path().join("backup.key");
    let o = mamori(&["backup", "keygen", "--out", key.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let nas = dir.path().join("nas");
    // The process's environment holds the S3 credentials (moto_with_files_bucket).
    let o = backup("run", &data, &nas, &key, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let scratch = dir.path().join("scratch");
    let o = backup(
        "drill",
        &data,
        &nas,
        &key,
        &["--keep", "--json", "--scratch", scratch.to_str().unwrap()],
    );
    let drill = text(&o);
    assert!(o.status.success(), "{drill}");
    let report = json_in(&drill);
    assert_eq!(report["ok"], true, "{report}");
    let restored = std::path::PathBuf::from(report["kept_at"].as_str().unwrap());
    assert_eq!(files_on_disk(&restored), files, "every file came back");

    // Trial 4: the bucket cannot be reached. An upload is refused as such and keeps nothing
    // (no version, no ledger entry); a text record is written and read as before.
    let port = moto.port();
    drop(moto);
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "moto is gone"
    );
    let svc = mamori_service::instance::open(&data).unwrap();
    let before = ledger_actions(&data, "record.draft_created");
    rt.block_on(async {
        let dr = svc
            .authenticate(&svc.login("dr.a", PW, None).await.unwrap().token, None)
            .await
            .unwrap();
        let started = std::time::Instant::now();
        let e = svc
            .create_record(&dr, input("紹介状の取り込み"), vec![scan("lost")])
            .await
            .unwrap_err();
        assert_eq!(e.code, "storage_unreachable", "{e:?}");
        assert!(
            e.message.contains("何も保存されていません"),
            "{}",
            e.message
        );
        let waited = started.elapsed();
        eprintln!("upload refused after {waited:?}");
        assert!(waited < std::time::Duration::from_secs(10), "{waited:?}");
        // An earlier record, its text and its small attachment, still opens.
        let earlier = svc.record(&dr, ids[0]).await.unwrap();
        assert_eq!(earlier.title(), "記録0");
        let w = svc.create_record(&dr, input("経過記録"), vec![]).await;
        let w = w.unwrap_or_else(|e| panic!("a text record is still written: {e:?}"));
        let shown = svc.record(&dr, w.record_id).await.unwrap();
        assert_eq!(shown.title(), "経過記録");
    });
    svc.store().close();
    // The refused upload is in the ledger as refused (with why); only the text record was made.
    let created = ledger_actions(&data, "record.draft_created");
    let ok = |v: &[serde_json::Value]| v.iter().filter(|e| e["outcome"] == "ok").count();
    assert_eq!(
        ok(&created),
        ok(&before) + 1,
        "only the text record was made"
    );
    assert_eq!(
        created.len() - ok(&created),
        before.len() - ok(&before) + 1,
        "the refused upload is recorded as refused"
    );

    // A SQLite instance moves up with its files: same root, files in the bucket, the
    // directory's copies kept aside.
    let moto = Moto::start();
    let (ok, out) = moto.boto("s3.create_bucket(Bucket='files')");
    assert!(ok, "{out}");
    let lite_dir = tempfile::tempdir().unwrap();
    let lite = init_instance(lite_dir.path());
    populate(&lite);
    let on_disk = files_on_disk(&lite);
    assert!(on_disk >= 1);
    let before = verified(&lite);
    let (ok, out) = mamori_s3(&[
        "store",
        "migrate",
        "--data",
        lite.to_str().unwrap(),
        "--to",
        &cluster.database("moved"),
        "--blobs",
        &bucket_url(&moto, "moved"),
    ]);
    assert!(ok, "{out}");
    assert_eq!(objects(&moto, "moved"), on_disk);
    assert_eq!(files_on_disk(&lite), 0);
    assert_eq!(walk(&lite.join("before-postgres/blobs")), on_disk);
    let after = verified(&lite);
    assert_eq!(after["ok"], true, "{after}");
    assert_eq!(after["blobs"], before["blobs"], "{after}");
    let moved = ledger_actions(&lite, "store.migrated");
    assert_eq!(moved[0]["detail"]["ledger_root"], before["root"]);
    assert_eq!(moved[0]["detail"]["files_to_bucket"], on_disk as u64);
}
