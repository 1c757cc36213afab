//! A node killed with -9 in the middle of a write load (a real process, not a dropped
//! connection): the other node goes on appending, every entry either node acknowledged is in
//! the ledger exactly once, the killed node's unfinished batch left nothing behind, and the
//! ledger verifies. The node is this test binary run again as a child (`child_node`), which
//! prints each acknowledgement as it gets it.

mod pg_support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mamori_store::postgres::verify_ledger;
use mamori_testkit::postgres::Cluster;
use pg_support::{assert_all_present, client, event, load, node, nonces};

const CHILD_URL: &str = "MAMORI_TEST_CHILD_NODE_URL";

/// The child node: appends until killed, printing `ack <index> <nonce>` after each durable
/// append. Ignored unless the parent test runs it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by a_node_killed_with_sigkill_loses_nothing_it_acknowledged as its child"]
async fn child_node() {
    use std::io::Write;
    let url = std::env::var(CHILD_URL).expect("run by the parent test");
    let ledger = node(&url, Default::default()).await;
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..8 {
        let ledger = ledger.clone();
        tasks.spawn(async move {
            for k in 0.. {
                let nonce = format!("child-w{w}-{k}");
                let idx = ledger
                    .append(event(&nonce, 1_795_000_000_000 + k))
                    .await
                    .unwrap();
                let mut out = std::io::stdout().lock();
                writeln!(out, "ack {idx} {nonce}").unwrap();
                out.flush().unwrap();
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_killed_with_sigkill_loses_nothing_it_acknowledged() {
    let cluster = Cluster::start();
    let url = cluster.database("mamori");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_node",
            "--ignored",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD_URL, &url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut acked = HashMap::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let mut parts = line.split_whitespace();
            if parts.next() == Some("ack")
                && let (Some(idx), Some(nonce)) = (parts.next(), parts.next())
            {
                acked.insert(idx.parse::<u64>().unwrap(), nonce.to_owned());
            }
        }
        acked
    });
    // The survivor writes throughout; the child is killed while both are busy.
    let survivor = node(&url, Default::default()).await;
    let killer = tokio::task::spawn_blocking(move || {
        let t = Instant::now();
        std::thread::sleep(Duration::from_millis(800));
        // SIGKILL: no destructor, no goodbye to the server; its socket is simply gone.
        child.kill().unwrap();
        child.wait().unwrap();
        t.elapsed()
    });
    let (ours, failed, slowest) = load(
        std::slice::from_ref(&survivor),
        16,
        150,
        Duration::from_millis(5),
    )
    .await;
    killer.await.unwrap();
    let theirs = reader.join().unwrap();
    assert!(
        !theirs.is_empty(),
        "the child acknowledged nothing before it was killed"
    );
    assert_eq!(failed, 0, "the survivor's appends failed");
    eprintln!(
        "node killed: the child had {} entries acknowledged; the survivor's slowest append {:.3} s",
        theirs.len(),
        slowest.as_secs_f64()
    );
    let stored = nonces(&url).await;
    let mut acked = ours;
    for (idx, nonce) in theirs {
        assert!(
            acked.insert(idx, nonce).is_none(),
            "index {idx} given to both nodes"
        );
    }
    assert_all_present(&acked, &stored);
    // Whatever the child had in flight either committed whole or not at all.
    let check = verify_ledger(&client(&url).await).await.unwrap();
    assert!(check.problems.is_empty(), "{:?}", check.problems);
    assert_eq!(check.size as usize, stored.len());
}
