//! kill -9 the server while many clients write: every acknowledged write is there after a
//! restart, and `mamori verify` passes.

mod support;

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::*;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn serve(data: &std::path::Path, port: u16) -> Child {
    let child = Command::new(env!("CARGO_BIN_EXE_mamori"))
        .args([
            "serve",
            "--data",
            data.to_str().unwrap(),
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .env("MAMORI_LOCKOUT_FAILURE_DELAY_MS", "0")
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
    std::thread::sleep(Duration::from_millis(1500));
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
    // A clean stop (SIGTERM) signs a final checkpoint; then everything verifies.
    unsafe_sigterm(&server);
    let _ = server.wait();
    let o = mamori(&["verify", "--data", data.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
}

fn unsafe_sigterm(child: &Child) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
}

/// An agent without pooled connections: the server is killed and restarted on the same port,
/// and a socket kept from before would fail.
fn fresh() -> ureq::Agent {
    ureq::AgentBuilder::new().max_idle_connections(0).build()
}
