//! A CI-sized run of `mamori bench ledger --database postgres://…` against a throw-away
//! cluster: the PostgreSQL figure is printed beside SQLite's from the same run, the ledger it
//! wrote verifies, and the bench's schema is gone afterwards (a real instance's ledger in the
//! same database is never touched). The ≥ 20,000 events/s goal itself is checked by the full
//! benchmark (docs/benchmarks.md), not by a timed test.

mod support;

use mamori_testkit::postgres::Cluster;
use support::{assert_prints, mamori};

#[test]
fn bench_ledger_on_postgres_prints_both_backends_and_leaves_nothing() {
    let cluster = Cluster::start();
    let url = cluster.database("mamori");
    let out = mamori(&[
        "bench",
        "ledger",
        "--events",
        "4000",
        "--writers",
        "16",
        "--per-row",
        "50",
        "--nodes",
        "2",
        "--database",
        &url,
    ]);
    assert_prints(
        &out,
        &[
            "mamori ledger (group commit):",
            "synchronous_commit=on",
            "mamori ledger on PostgreSQL (2 node(s), 16 writers):",
            "ratio PostgreSQL / SQLite (same run):",
            "verify on PostgreSQL: 4000 entries re-derived",
            "bytes per entry",
            "intact",
        ],
    );
    let out = mamori(&[
        "bench",
        "ledger",
        "--events",
        "3000",
        "--writers",
        "12",
        "--per-row",
        "20",
        "--facilities",
        "3",
        "--database",
        &url,
    ]);
    assert_prints(
        &out,
        &[
            "3 facilities on one PostgreSQL server, 12 writers:",
            "verify on PostgreSQL: facilities 0..3 intact",
        ],
    );
    assert_eq!(
        cluster.psql(
            "mamori",
            "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'mamori_bench_%'"
        ),
        "0"
    );
}
