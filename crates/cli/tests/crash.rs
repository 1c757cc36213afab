//! kill -9 the server while many clients write: every acknowledged write is there after a
//! restart, and `mamori verify` passes.

mod support;

use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::*;

fn login(port: u16) -> String {
    let r: serde_json::Value = fresh()
        .post(&format!("http://127.0.0.1:{port}/api/v1/auth/login"))
        .send_json(serde_json::json!({ "login": "dr.a", "password": PW }))
        .unwrap()
        .into_json()
        .unwrap();
    r["token"].as_str().unwrap().to_owned()
}

#[derive(Clone, Debug)]
struct Acked {
    record: i64,
    sha: String,
    finalised: bool,
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let data = init_instance(dir.path());
    populate(&data);
    let port = free_port();
    let mut server = serve(&data, port);
    let token = login(port);
    let acked: Arc<Mutex<Vec<Acked>>> = Arc::default();
    let base = format!("http://127.0.0.1:{port}/api/v1");
    let mut writers = Vec::new();
    for w in 0..12 {
        let (acked, base, token) = (acked.clone(), base.clone(), token.clone());
        writers.push(std::thread::spawn(move || {
            let agent = ureq::AgentBuilder::new()
                .timeout(Duration::from_secs(5))
                .build();
            for n in 0.. {
                let body = serde_json::json!({
                    "patient_id": "P1", "kind": "medical_record",
                    "title": format!("writer {w} note {n}"), "body": "kill -9 test"
                });
                let Ok(r) = agent
                    .post(&format!("{base}/records"))
                    .set("Authorization", &format!("Bearer {token}"))
                    .send_json(body)
                else {
                    return;
                };
                let v: serde_json::Value = r.into_json().unwrap();
                let record = v["record_id"].as_i64().unwrap();
                let sha = v["content_sha256"].as_str().unwrap().to_owned();
                acked.lock().unwrap().push(Acked {
                    record,
                    sha: sha.clone(),
                    finalised: false,
                });
                if n % 2 == 0 {
                    let r = agent
                        .post(&format!("{base}/records/{record}/finalize"))
                        .set("Authorization", &format!("Bearer {token}"))
                        .call();
                    match r {
                        Ok(_) => acked.lock().unwrap().push(Acked {
                            record,
                            sha,
                            finalised: true,
                        }),
                        Err(_) => return,
                    }
                }
            }
        }));
    }
    // A backup while the writes run: the parent of the incremental after the crash.
    std::thread::sleep(Duration::from_millis(500));
    let key = dir.path().join("backup-key.txt");
    let o = mamori(&["backup", "keygen", "--out", key.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let nas = dir.path().join("nas");
    let backup = |what: &str| {
        let o = mamori(&[
            "backup",
            "run",
            "--data",
            data.to_str().unwrap(),
            "--target",
            nas.to_str().unwrap(),
            "--key-file",
            key.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{what}: {}", text(&o));
    };
    backup("before the kill");
    std::thread::sleep(Duration::from_millis(1000));
    server.kill().unwrap(); // SIGKILL: no shutdown, no final checkpoint
    server.wait().unwrap();
    for w in writers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 50,
        "only {} writes were acknowledged before the kill",
        acked.len()
    );

    let mut server = serve(&data, port);
    let token = login(port);
    for a in &acked {
        let v: serde_json::Value = fresh()
            .get(&format!("{base}/records/{}", a.record))
            .set("Authorization", &format!("Bearer {token}"))
            .call()
            .unwrap_or_else(|e| panic!("acknowledged record {} is gone: {e}", a.record))
            .into_json()
            .unwrap();
        let head = &v["versions"][0];
        assert_eq!(
            head["content_sha256"].as_str().unwrap(),
            a.sha,
            "record {}",
            a.record
        );
        if a.finalised {
            assert_eq!(
                head["state"], "finalised",
                "acknowledged finalisation of {} lost",
                a.record
            );
        }
    }
    // An incremental backup after the crash takes from its parent only what the page map says
    // is unchanged: the instance it restores verifies, with every acknowledged record in it.
    backup("after the restart");
    // A clean stop (SIGTERM) signs a final checkpoint; then everything verifies.
    unsafe_sigterm(&server);
    let _ = server.wait();
    let o = mamori(&["verify", "--data", data.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let restored = dir.path().join("restored");
    let o = mamori(&[
        "restore",
        "--target",
        nas.to_str().unwrap(),
        "--snapshot",
        "latest",
        "--to",
        restored.to_str().unwrap(),
        "--key-file",
        key.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let o = mamori(&["verify", "--data", restored.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let db = rusqlite::Connection::open(restored.join("mamori.db")).unwrap();
    for a in &acked {
        let n: i64 = db
            .query_row(
                "SELECT count(*) FROM versions WHERE record_id = ?1",
                [a.record],
                |r| r.get(0),
            )
            .unwrap();
        assert!(
            n >= 1,
            "record {} missing from the restored instance",
            a.record
        );
    }
}

fn unsafe_sigterm(child: &Child) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
}
