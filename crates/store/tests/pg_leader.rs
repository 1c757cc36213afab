//! Background work runs on one node at a time and moves when that node dies: two nodes
//! campaign for the same work on a real cluster; exactly one leads; when the leader's
//! connection ends (what the server sees of a node killed with -9 or cut off) the other takes
//! over within seconds, and the old leader, back, does not lead again beside it.

use std::time::{Duration, Instant};

use mamori_store::postgres::{LeaderOptions, Leadership, connect, lock_key, parse_url};
use mamori_testkit::postgres::Cluster;

fn opts() -> LeaderOptions {
    LeaderOptions {
        retry_every: Duration::from_millis(100),
        check_every: Duration::from_millis(100),
    }
}

async fn until(what: &str, mut f: impl FnMut() -> bool) -> Duration {
    let t = Instant::now();
    while !f() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{what}: not within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    t.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_node_leads_and_leadership_moves_when_it_dies() {
    let cluster = Cluster::start();
    let url = cluster.database("mamori");
    let a = Leadership::start(
        parse_url(&format!("{url}?application_name=node-a")).unwrap(),
        "checkpoints",
        opts(),
    );
    let b = Leadership::start(
        parse_url(&format!("{url}?application_name=node-b")).unwrap(),
        "checkpoints",
        opts(),
    );
    // Other work is led independently.
    let other = Leadership::start(parse_url(&url).unwrap(), "evidence-sweep", opts());
    until("someone leads", || a.is_leader() || b.is_leader()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(a.is_leader() ^ b.is_leader(), "exactly one node leads");
    until("the other work has its own leader", || other.is_leader()).await;
    let (leader, follower, name) = if a.is_leader() {
        (&a, &b, "node-a")
    } else {
        (&b, &a, "node-b")
    };

    // The leader's connection ends as it would when its process is killed.
    let admin = connect(&parse_url(&url).unwrap()).await.unwrap();
    let killed = admin
        .query(
            "SELECT pg_terminate_backend(l.pid) FROM pg_locks l JOIN pg_stat_activity s ON s.pid = l.pid
             WHERE l.locktype = 'advisory' AND l.granted AND s.application_name = $1",
            &[&name],
        )
        .await
        .unwrap()
        .len();
    assert_eq!(killed, 1);
    let moved = until("the follower takes over", || follower.is_leader()).await;
    eprintln!(
        "leadership moved {:.2} s after the leader's connection died",
        moved.as_secs_f64()
    );
    until("the old leader notices", || !leader.is_leader()).await;
    // Back and asking again, the old leader stays a follower.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(follower.is_leader() && !leader.is_leader());
    let holders: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND objid = ($1::bigint & 4294967295)::oid",
            &[&lock_key("checkpoints")],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(holders, 1, "one holder of the lock at the server");

    // A node that stops gives the work up at once.
    drop(b);
    until("node a leads after node b stopped", || a.is_leader()).await;
}
