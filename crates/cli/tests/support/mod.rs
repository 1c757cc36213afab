#![allow(dead_code)]
//! Drives the real `mamori` binary, and builds instances through the service layer.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use mamori_service::access::accounts::NewAccount;
use mamori_service::records::patients::NewPatient;
use mamori_service::records::{RecordInput, Upload};

pub const ADMIN_PW: &str = "initial passphrase 1";
pub const PW: &str = "correct horse battery 7";

pub fn mamori(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mamori"))
        .args(args)
        .output()
        .expect("run mamori")
}

/// Checks that a command succeeded and printed every one of `lines`; returns what it printed.
pub fn assert_prints(out: &Output, lines: &[&str]) -> String {
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in lines {
        assert!(text.contains(line), "{line:?} missing from:\n{text}");
    }
    text
}

/// `mamori backup <what> --data … --target … --key-file …` and `extra`.
#[allow(dead_code)]
pub fn backup(what: &str, data: &Path, target: &Path, key: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "backup",
        what,
        "--data",
        data.to_str().unwrap(),
        "--target",
        target.to_str().unwrap(),
        "--key-file",
        key.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    mamori(&args)
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `mamori init` through the CLI, exactly as an administrator would.
pub fn init_instance(dir: &Path) -> PathBuf {
    init_instance_with(dir, &[]).0
}

/// `mamori init` with further arguments (`--host`, `--listen`); the data path and what it
/// printed.
pub fn init_instance_with(dir: &Path, extra: &[&str]) -> (PathBuf, String) {
    let data = dir.join("data");
    let pwf = dir.join("admin-password.txt");
    std::fs::write(&pwf, format!("{ADMIN_PW}\n")).unwrap();
    let mut args = vec![
        "init",
        "--data",
        data.to_str().unwrap(),
        "--facility",
        "テスト診療所",
        "--admin",
        "admin",
        "--admin-password-file",
        pwf.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = mamori(&args);
    assert!(o.status.success(), "{}", text(&o));
    (data, text(&o))
}

/// Unpacks `tests/fixtures/<name>` (an instance made by an earlier release, as `data/`);
/// the directory and the data path.
pub fn unpack_fixture(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let st = Command::new("tar")
        .arg("xzf")
        .arg(&fixture)
        .arg("-C")
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(st.success(), "unpacking {}", fixture.display());
    let data = dir.path().join("data");
    (dir, data)
}

/// Adds a doctor, a clerk, a patient and a few finalised records (one with an attachment).
/// The signing PIN of the tests' doctors.
pub const SIGNING_PIN: &str = "署名用 PIN 2468";

pub fn populate(data: &Path) -> Vec<i64> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let svc = mamori_service::instance::open(data).unwrap();
    let ids = rt.block_on(async {
        let ok = svc
            .change_password("admin", ADMIN_PW, PW, None)
            .await
            .unwrap();
        let admin = svc.authenticate(&ok.token, None).await.unwrap();
        for (login, role) in [("dr.a", "doctor"), ("clerk.a", "clerk")] {
            svc.create_account(
                &admin,
                NewAccount {
                    login: login.into(),
                    display_name: login.into(),
                    role: role.into(),
                    password: Some("temporary pass 1234".into()),
                    service: false,
                },
            )
            .await
            .unwrap();
            svc.change_password(login, "temporary pass 1234", PW, None)
                .await
                .unwrap();
        }
        let dr = svc
            .authenticate(&svc.login("dr.a", PW, None).await.unwrap().token, None)
            .await
            .unwrap();
        // dr.a signs as they finalise: a key in its token under the PIN, the window open.
        mamori_testkit::softhsm();
        let change = mamori_service::evidence::PinChange::new_key(SIGNING_PIN, PW);
        svc.set_signing_pin(&dr, &change).await.unwrap();
        svc.open_signing_window(&dr, SIGNING_PIN).await.unwrap();
        svc.create_patient(
            &dr,
            NewPatient {
                id: "P1".into(),
                name_kanji: "試験 太郎".into(),
                name_kana: "シケン タロウ".into(),
                birth_date: "1970-01-01".into(),
                sex: "male".into(),
            },
        )
        .await
        .unwrap();
        let mut ids = Vec::new();
        for n in 0..3 {
            let input = RecordInput {
                patient_id: "P1".into(),
                kind: "medical_record".into(),
                title: format!("記録{n}"),
                body: "本文".into(),
                ..Default::default()
            };
            let ups = if n == 0 {
                vec![Upload {
                    name: "a.pdf".into(),
                    bytes: b"%PDF-1.4\nattachment\n".to_vec(),
                }]
            } else {
                vec![]
            };
            let w = svc.create_record(&dr, input, ups).await.unwrap();
            svc.finalise_record(&dr, w.record_id).await.unwrap();
            svc.record(&dr, w.record_id).await.unwrap();
            ids.push(w.record_id);
        }
        svc.checkpoint_now().await.unwrap();
        ids
    });
    svc.store().close();
    ids
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

pub fn sql(data: &Path, statements: &str) {
    let conn = rusqlite::Connection::open(data.join("mamori.db")).unwrap();
    conn.execute_batch(statements).unwrap();
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn serve(data: &std::path::Path, port: u16) -> Child {
    serve_with(data, port, &[])
}

/// `serve` with further environment (S3 credentials for a node whose files are in a bucket).
pub fn serve_with(data: &std::path::Path, port: u16, env: &[(&str, &str)]) -> Child {
    let child = Command::new(env!("CARGO_BIN_EXE_mamori"))
        .args([
            "serve",
            "--data",
            data.to_str().unwrap(),
            "--listen",
            &format!("127.0.0.1:{port}"),
            // These tests speak HTTP on loopback; HTTPS by default has its own test.
            "--insecure-http",
        ])
        .env("MAMORI_LOCKOUT_FAILURE_DELAY_MS", "0")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if fresh()
            .get(&format!("http://127.0.0.1:{port}/api/v1/health"))
            .call()
            .is_ok()
        {
            return child;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut child = child;
    let _ = child.kill();
    let _ = child.wait();
    panic!("server did not start");
}

/// An agent without pooled connections: the server is killed and restarted on the same port,
/// and a socket kept from before would fail.
pub fn fresh() -> ureq::Agent {
    ureq::AgentBuilder::new().max_idle_connections(0).build()
}

/// The payloads of the ledger entries with `action`, oldest first.
pub fn ledger_actions(data: &Path, action: &str) -> Vec<serde_json::Value> {
    // Through the store, so that an instance on PostgreSQL is read the same way.
    let ro = mamori_service::instance::read_only(data).unwrap();
    let mut out = Vec::new();
    ro.get()
        .for_each_ledger_row(|row| {
            if row.action == action {
                out.push(serde_json::from_slice(&row.payload).unwrap());
            }
            Ok(())
        })
        .unwrap();
    out
}

/// Waits until a running server has recorded what commands left in the outbox.
pub fn wait_for_outbox_to_empty(data: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let left = std::fs::read_dir(data.join("outbox"))
            .map(|d| d.count())
            .unwrap_or(0);
        if left == 0 {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("the server did not record the queued events");
}

#[allow(unused_imports)]
pub use mamori_testkit::moto::Moto;

pub fn s3_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("AWS_ACCESS_KEY_ID", mamori_testkit::moto::ACCESS_KEY),
        ("AWS_SECRET_ACCESS_KEY", mamori_testkit::moto::SECRET_KEY),
    ]
}

/// moto with an empty bucket `files`, and this process's environment holding the S3
/// credentials (for an instance opened in the test that keeps its files there).
///
/// Call it first, from a test that is alone in its binary: it sets the environment.
#[allow(dead_code)]
pub fn moto_with_files_bucket() -> Moto {
    // SAFETY: called before the test starts threads of its own, in a binary of one test.
    unsafe {
        for (k, v) in s3_env() {
            std::env::set_var(k, v);
        }
    }
    let moto = Moto::start();
    let (ok, out) = moto.boto("s3.create_bucket(Bucket='files')");
    assert!(ok, "{out}");
    moto
}

pub fn mamori_s3(args: &[&str]) -> (bool, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_mamori"))
        .args(args)
        .envs(s3_env())
        .output()
        .unwrap();
    (o.status.success(), text(&o))
}
