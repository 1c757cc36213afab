//! A CI-sized run of `mamori bench backup`: an instance with records, attachments and a grown
//! ledger, full and incremental backups beside restic, restores of both, and the restored
//! instance verified. The goals themselves are checked by the full benchmark
//! (docs/benchmarks.md), not by a timed test.

mod support;

use support::{assert_prints, mamori};

#[test]
fn bench_backup_prints_every_figure() {
    if std::process::Command::new("restic")
        .arg("version")
        .output()
        .is_err()
    {
        panic!("restic is required (apt-get install restic; .ci/run installs it)");
    }
    let out = mamori(&[
        "bench",
        "backup",
        "--gib",
        "0.02",
        "--records",
        "400",
        "--ledger-entries",
        "40000",
    ]);
    let text = assert_prints(
        &out,
        &[
            "full backup",
            "incremental rounds (s)",
            "incremental     mamori",
            "% of its full",
            "restore",
            "restored instance verifies: OK",
        ],
    );
    // The incremental read only part of the database: the figure is printed, and smaller than
    // the instance (a run that re-read everything would print the whole database).
    let read: f64 = text
        .split("read ")
        .nth(1)
        .and_then(|t| t.split(" MiB").next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no read figure in:\n{text}"));
    assert!(read < 5.0, "incremental read {read} MiB:\n{text}");
}
