//! The ledger on PostgreSQL under the same load as the SQLite run before it (issue #22's goal:
//! ≥ 20,000 durable events/s with 64 writers, `synchronous_commit = on`).

use std::time::{Duration, Instant};

use mamori_store::StoreError;
use mamori_store::postgres::{
    Database, PgLedger, PgLedgerOptions, connect, parse_url, verify_ledger,
};

use super::{event, pct};

pub(super) async fn ledger(
    url: &str,
    events: usize,
    writers: usize,
    nodes: usize,
    facilities: usize,
    sqlite_rate: f64,
) -> Result<(), StoreError> {
    let nodes = nodes.max(1);
    let facilities = facilities.max(1);
    let config = parse_url(url)?;
    let admin = connect(&config).await?;
    let settings = admin
        .query_one(
            "SELECT current_setting('server_version'), current_setting('fsync'),
                    current_setting('synchronous_commit'), current_setting('synchronous_standby_names')",
            &[],
        )
        .await?;
    let (version, fsync, sync_commit, standbys): (String, String, String, String) = (
        settings.get(0),
        settings.get(1),
        settings.get(2),
        settings.get(3),
    );
    println!(
        "\nPostgreSQL {version}: fsync={fsync} synchronous_commit={sync_commit} synchronous_standby_names='{standbys}'"
    );
    if fsync != "on" || sync_commit == "off" || sync_commit == "local" && !standbys.is_empty() {
        println!(
            "  note: commits are not fully durable with these settings; the figure is not comparable"
        );
    }
    // Schemas of the bench's own (one per facility), so that a real instance's ledger in the
    // same database is never touched, and nothing is left behind.
    let schemas: Vec<String> = (0..facilities)
        .map(|f| format!("mamori_bench_{}_{f}", std::process::id()))
        .collect();
    let mut configs = Vec::new();
    for schema in &schemas {
        admin
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .await?;
        configs.push(
            config
                .clone()
                .with_options(&format!("-c search_path={schema}")),
        );
    }
    let config = configs[0].clone();
    let result = if facilities == 1 {
        run(&config, events, writers, nodes, sqlite_rate).await
    } else {
        shared(&configs, events, writers).await
    };
    for schema in &schemas {
        admin
            .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
            .await?;
    }
    result
}

/// Many facilities on one server (a vendor's shared cluster): each facility its own ledger and
/// node, the writers spread over them. What counts is the server's total.
async fn shared(configs: &[Database], events: usize, writers: usize) -> Result<(), StoreError> {
    let facilities = configs.len();
    let writers = writers.max(facilities);
    let mut ledgers = Vec::new();
    for c in configs {
        ledgers.push(PgLedger::open(c.clone(), PgLedgerOptions::default()).await?);
    }
    let Load {
        latencies,
        elapsed,
        transactions: batches,
    } = drive(&ledgers, events, writers).await?;
    let n = latencies.len();
    println!(
        "{facilities} facilities on one PostgreSQL server, {writers} writers: {:>10.0} events/s in all   ({n} events in {elapsed:.2} s, {:.0} transactions/s, {:.1} entries each)",
        n as f64 / elapsed,
        batches as f64 / elapsed,
        n as f64 / batches.max(1) as f64
    );
    for (f, c) in configs.iter().enumerate().take(3) {
        let check = verify_ledger(&connect(c).await?).await?;
        if !check.problems.is_empty() {
            return Err(StoreError::Corrupt(format!(
                "facility {f}: {:?}",
                check.problems
            )));
        }
    }
    println!("verify on PostgreSQL: facilities 0..3 intact");
    Ok(())
}

async fn run(
    config: &Database,
    events: usize,
    writers: usize,
    nodes: usize,
    sqlite_rate: f64,
) -> Result<(), StoreError> {
    let mut ledgers = Vec::new();
    for _ in 0..nodes {
        ledgers.push(PgLedger::open(config.clone(), PgLedgerOptions::default()).await?);
    }
    let Load {
        latencies: lat,
        elapsed,
        transactions: batches,
    } = drive(&ledgers, events, writers).await?;
    let n = lat.len();
    let rate = n as f64 / elapsed;
    println!(
        "mamori ledger on PostgreSQL ({nodes} node(s), {writers} writers): {rate:>10.0} events/s   p50 {:.2} ms   p99 {:.2} ms   ({n} events in {elapsed:.2} s, {batches} transactions, {:.1} entries each)  (goal: ≥ 20,000/s)",
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        n as f64 / batches.max(1) as f64
    );
    println!(
        "ratio PostgreSQL / SQLite (same run): {:.2}x",
        rate / sqlite_rate
    );
    let c = connect(config).await?;
    let bytes: i64 = c
        .query_one("SELECT pg_total_relation_size('ledger')", &[])
        .await?
        .get(0);
    println!(
        "stored: {:.0} bytes per entry (table, primary key and TOAST; {} MiB in all)",
        bytes as f64 / n.max(1) as f64,
        bytes >> 20
    );
    let t = Instant::now();
    let check = verify_ledger(&c).await?;
    println!(
        "verify on PostgreSQL: {} entries re-derived in {:.2} s, {}",
        check.size,
        t.elapsed().as_secs_f64(),
        if check.problems.is_empty() {
            "intact".to_owned()
        } else {
            format!("{} problems", check.problems.len())
        }
    );
    Ok(())
}

/// What one load over a set of nodes did.
struct Load {
    /// Each append's wait for its acknowledgement, sorted.
    latencies: Vec<Duration>,
    elapsed: f64,
    transactions: u64,
}

/// `writers` tasks, spread over `ledgers` in turn, each appending its share of `events` and
/// waiting for each acknowledgement.
async fn drive(ledgers: &[PgLedger], events: usize, writers: usize) -> Result<Load, StoreError> {
    let per_writer = events / writers.max(1);
    let t0 = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for w in 0..writers {
        let ledger = ledgers[w % ledgers.len()].clone();
        set.spawn(async move {
            let mut lat = Vec::with_capacity(per_writer);
            for k in 0..per_writer {
                let i = w * per_writer + k;
                let ev = event(i, 1_795_000_000_000 + i as i64, 20_000);
                let s = Instant::now();
                ledger.append(ev).await?;
                lat.push(s.elapsed());
            }
            Ok::<_, StoreError>(lat)
        });
    }
    let mut latencies: Vec<Duration> = Vec::new();
    while let Some(r) = set.join_next().await {
        latencies.extend(r.map_err(|e| StoreError::Corrupt(e.to_string()))??);
    }
    let elapsed = t0.elapsed().as_secs_f64();
    latencies.sort();
    let transactions = ledgers
        .iter()
        .map(|l| l.stats().batches.load(std::sync::atomic::Ordering::Relaxed))
        .sum();
    Ok(Load {
        latencies,
        elapsed,
        transactions,
    })
}
