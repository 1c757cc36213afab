//! A CI-sized run of `mamori bench http`: the command builds the demo clinic, serves it, drives
//! it with wrk and prints every figure. The goals themselves are checked by the full benchmark
//! (docs/benchmarks.md), not by a timed test.

mod support;

use support::mamori;

#[test]
fn bench_http_prints_every_figure() {
    if std::process::Command::new("wrk")
        .arg("--version")
        .output()
        .is_err()
    {
        panic!("wrk is required (apt-get install wrk; .ci/run installs it)");
    }
    let out = mamori(&[
        "bench",
        "http",
        "--connections",
        "4",
        "--seconds",
        "1",
        "--ledger-entries",
        "30000",
        "--background",
        "--overload",
        "50",
        "--overload-seconds",
        "1",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for endpoint in [
        "GET /health",
        "GET /auth/me",
        "GET /records/{id}",
        "GET /patients?q=イ",
        "GET /patients/{id}/records",
        "POST /records (finalise)",
    ] {
        let line = text
            .lines()
            .find(|l| l.starts_with(endpoint))
            .unwrap_or_else(|| panic!("{endpoint} missing:\n{text}"));
        let cols: Vec<&str> = line[endpoint.len()..].split_whitespace().collect();
        let rate: f64 = cols[0].parse().unwrap();
        assert!(rate > 0.0, "{line}");
        // Every request was answered with success: the token and the ids are right.
        assert_eq!(cols[4], "0", "non-2xx or socket errors: {line}");
    }
    // The large-instance table, the reads beside each background job, the overload run.
    assert!(
        text.contains("the same reads with 30000 ledger entries"),
        "{text}"
    );
    for job in ["during backup", "during evidence seal", "during verify now"] {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(job))
            .unwrap_or_else(|| panic!("{job} missing:\n{text}"));
        let cols: Vec<&str> = line.trim_start()[job.len()..].split_whitespace().collect();
        assert!(cols[0].parse::<f64>().unwrap() > 0.0, "{line}");
        assert_eq!(cols[4], "0", "{line}");
    }
    assert!(text.contains("overload: 50 connections"), "{text}");
    assert!(text.contains("resident memory"), "{text}");
    assert!(text.contains("ledger-only durable appends"), "{text}");
}
