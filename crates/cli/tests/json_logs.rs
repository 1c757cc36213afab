//! `MAMORI_LOG_FORMAT=json`: every line the server logs is one JSON object (for journald or a
//! log collector), and a password sent to it appears in none of them.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

#[test]
fn json_logs_are_one_object_per_line_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let data = init_instance(dir.path());
    let log = dir.path().join("server.log");
    let port = free_port();
    let mut server = Command::new(env!("CARGO_BIN_EXE_mamori"))
        .args([
            "serve",
            "--data",
            data.to_str().unwrap(),
            "--listen",
            &format!("127.0.0.1:{port}"),
            // These tests speak HTTP on loopback; HTTPS by default has its own test.
            "--insecure-http",
        ])
        .env("MAMORI_LOG_FORMAT", "json")
        .env("MAMORI_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}/api/v1");
    let deadline = Instant::now() + Duration::from_secs(20);
    while fresh().get(&format!("{base}/health")).call().is_err() {
        assert!(Instant::now() < deadline, "the server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let secret = "a-password-that-must-not-be-logged-42";
    let _ = fresh()
        .post(&format!("{base}/auth/login"))
        .send_json(serde_json::json!({"login": "admin", "password": secret}));
    let _ = Command::new("kill").arg(server.id().to_string()).status();
    let _ = server.wait();
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "no log lines:\n{text}");
    for l in &lines {
        let v: serde_json::Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        assert!(v["level"].is_string() && v["timestamp"].is_string(), "{l}");
    }
    assert!(!text.contains(secret), "the password was logged:\n{text}");
}
