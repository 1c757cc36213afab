//! What the PostgreSQL ledger tests share: events that name themselves, a load of concurrent
//! writers over several nodes, and the check that every acknowledged entry is in exactly once.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use mamori_domain::audit::{ActorRef, AuditEvent, Outcome, actions};
use mamori_store::postgres::{PgLedger, PgLedgerOptions, parse_url};

/// An event that names itself (`detail.nonce`), so the test can find each one in the ledger.
pub fn event(nonce: &str, ts: i64) -> AuditEvent {
    let mut e = AuditEvent::new(
        ts,
        Some(ActorRef {
            id: 7,
            login: "dr.tanaka".into(),
            role: "doctor".into(),
        }),
        actions::RECORD_READ,
        Outcome::Ok,
    );
    e.patient = Some(format!("P{:05}", nonce.len() * 37 % 1000));
    e.record = Some(42);
    e.detail = serde_json::json!({ "nonce": nonce });
    e
}

pub async fn node(url: &str, opts: PgLedgerOptions) -> PgLedger {
    PgLedger::open(parse_url(url).unwrap(), opts).await.unwrap()
}

pub async fn client(url: &str) -> tokio_postgres::Client {
    mamori_store::postgres::connect(&parse_url(url).unwrap())
        .await
        .unwrap()
}

/// Every entry's nonce, by index.
pub async fn nonces(url: &str) -> HashMap<u64, String> {
    let c = client(url).await;
    let rows = c
        .query("SELECT idx, payload FROM ledger ORDER BY idx", &[])
        .await
        .unwrap();
    rows.iter()
        .map(|r| {
            let ev: AuditEvent = serde_json::from_slice(r.get::<_, &[u8]>(1)).unwrap();
            (
                r.get::<_, i64>(0) as u64,
                ev.detail["nonce"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// Starts `writers` tasks per node, each appending `each` events; returns what was
/// acknowledged (index → nonce), how many appends failed, and the slowest append (what a user
/// waited at worst across a failure).
pub async fn load(
    nodes: &[PgLedger],
    writers: usize,
    each: usize,
    pause: Duration,
) -> (HashMap<u64, String>, usize, Duration) {
    let mut tasks = tokio::task::JoinSet::new();
    for (n, ledger) in nodes.iter().enumerate() {
        for w in 0..writers {
            let ledger = ledger.clone();
            tasks.spawn(async move {
                let mut acked = Vec::new();
                let mut failed = 0;
                let mut slowest = Duration::ZERO;
                for k in 0..each {
                    let nonce = format!("n{n}-w{w}-{k}");
                    let t = std::time::Instant::now();
                    let r = ledger
                        .append(event(&nonce, 1_795_000_000_000 + k as i64))
                        .await;
                    slowest = slowest.max(t.elapsed());
                    match r {
                        Ok(idx) => acked.push((idx, nonce)),
                        Err(_) => failed += 1,
                    }
                    if !pause.is_zero() {
                        tokio::time::sleep(pause).await;
                    }
                }
                (acked, failed, slowest)
            });
        }
    }
    let mut acked = HashMap::new();
    let mut failed = 0;
    let mut slowest = Duration::ZERO;
    while let Some(r) = tasks.join_next().await {
        let (a, f, s) = r.unwrap();
        failed += f;
        slowest = slowest.max(s);
        for (idx, nonce) in a {
            assert!(
                acked.insert(idx, nonce).is_none(),
                "index {idx} acknowledged twice"
            );
        }
    }
    (acked, failed, slowest)
}

pub fn assert_all_present(acked: &HashMap<u64, String>, stored: &HashMap<u64, String>) {
    for (idx, nonce) in acked {
        assert_eq!(
            stored.get(idx),
            Some(nonce),
            "acknowledged entry {idx} ({nonce}) is not in the ledger"
        );
    }
    let mut seen = HashSet::new();
    for nonce in stored.values() {
        assert!(seen.insert(nonce), "entry {nonce} is in the ledger twice");
    }
}
