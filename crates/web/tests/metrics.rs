//! `GET /api/v1/metrics`: Prometheus text for the administrator only (a refusal is a ledger
//! entry), requests counted under their route pattern (never a path an attacker chose), and
//! the vitals an alert needs.

mod common;

use common::*;
use serde_json::json;

#[test]
fn the_administrator_reads_prometheus_metrics_and_nobody_else_does() {
    let s = start(|c| c.backup.targets = "/nonexistent/mamori-backup-target".into());
    let admin = s.admin_token();
    let (_, doctor) = s.user(&admin, "dr.metrics", "doctor");
    // Traffic to count: a record read, a wrong password, a path nobody routes.
    let r = s.call(
        "POST",
        "/patients",
        Some(&doctor),
        Some(
            json!({"id": "P900", "name_kanji": "測定 太郎", "name_kana": "ソクテイ タロウ",
                    "birth_date": "1980-01-01", "sex": "male"}),
        ),
    );
    assert_eq!(r.status, 201, "{:?}", r.body);
    let r = s.call(
        "POST",
        "/records",
        Some(&doctor),
        Some(record_body("P900", "medical_record", "測定", None)),
    );
    let id = r.body["record_id"].as_i64().unwrap();
    assert_eq!(
        s.call("GET", &format!("/records/{id}"), Some(&doctor), None)
            .status,
        200
    );
    let bad = s.call(
        "POST",
        "/auth/login",
        None,
        Some(json!({"login": "dr.metrics", "password": "wrong password 123"})),
    );
    assert_eq!(bad.status, 401);
    assert_eq!(
        s.call("GET", "/secret-probe-8f3a", Some(&doctor), None)
            .status,
        404
    );

    // The doctor is refused, and the refusal is in the ledger.
    let before = s.ledger_size();
    let r = s.call("GET", "/metrics", Some(&doctor), None);
    assert_eq!(r.status, 403);
    let ev = s.recent_events(s.ledger_size() - before);
    assert!(
        ev.iter()
            .any(|e| e["action"] == "ops.metrics" && e["outcome"] == "denied"),
        "{ev:?}"
    );
    assert_eq!(s.call("GET", "/metrics", None, None).status, 401);

    let before = s.ledger_size();
    let r = s.call("GET", "/metrics", Some(&admin), None);
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("application/openmetrics-text")),
        "{:?}",
        r.headers
    );
    assert_eq!(s.ledger_size(), before, "a scrape is not a ledger entry");
    assert!(
        r.header("x-request-id").is_some_and(|id| id.len() == 16),
        "every answer carries its request ID"
    );
    let text = r.body.as_str().unwrap().to_owned();
    for line in [
        // Counters are per process (other tests in this binary count too): labels, not totals.
        "mamori_http_requests_total{method=\"GET\",route=\"/api/v1/records/{id}\",status=\"200\"} ",
        "mamori_http_requests_total{method=\"POST\",route=\"/api/v1/auth/login\",status=\"401\"} ",
        "route=\"unmatched\",status=\"404\"} ",
        "mamori_http_request_duration_seconds_bucket{",
        "mamori_failed_logins_24h 1",
        "mamori_backup_never_succeeded{target=",
        "mamori_evidence_unsealed_signatures ",
        "mamori_writer_commits_total ",
        "# EOF",
    ] {
        assert!(text.contains(line), "{line:?} missing from:\n{text}");
    }
    assert!(
        !text.contains("secret-probe"),
        "a raw path became a label:\n{text}"
    );
    let ledger: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("mamori_ledger_entries "))
        .and_then(|v| v.trim().parse().ok())
        .expect("mamori_ledger_entries");
    assert_eq!(ledger as u64, s.ledger_size());
}

/// Every metric the sample alert rules use (docs/prometheus-alerts.yml) is one mamori serves,
/// once a verification and a clock check have run.
#[test]
fn the_sample_alert_rules_name_only_metrics_that_exist() {
    let backups = tempfile::tempdir().unwrap();
    let key = backups.path().join("key.txt");
    std::fs::write(&key, mamori_service::backup::KeyFile::generate().to_text()).unwrap();
    let target = backups.path().join("nas");
    let s = start(|c| {
        c.backup.targets = target.display().to_string();
        c.backup.key_file = key.display().to_string();
    });
    let admin = s.admin_token();
    assert_eq!(
        s.call("POST", "/backup/run", Some(&admin), None).status,
        202
    );
    for _ in 0..300 {
        let st = s.call("GET", "/backup/status", Some(&admin), None).body;
        if st["running"] == false {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    s.rt.block_on(s.svc.verify_and_record(None)).unwrap();
    let _ = s.rt.block_on(s.svc.check_clock());
    let _ = s.call("GET", "/secret-probe", Some(&admin), None);
    let text = s.call("GET", "/metrics", Some(&admin), None).body;
    let text = text.as_str().unwrap();
    let rules = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/prometheus-alerts.yml"),
    )
    .unwrap();
    let mut named = std::collections::BTreeSet::new();
    for (i, _) in rules.match_indices("mamori_") {
        let name: String = rules[i..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        named.insert(name);
    }
    assert!(named.len() >= 8, "{named:?}");
    for name in &named {
        // A family without samples yet (no backup has succeeded) is still declared.
        assert!(
            text.lines().any(|l| l.starts_with(name.as_str()))
                || text.contains(&format!("# TYPE {name} ")),
            "{name} is in the alert rules but not served:\n{text}"
        );
    }
}
