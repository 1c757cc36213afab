//! Two nodes serving one instance on PostgreSQL: the background work on the shared state runs
//! on one of them at a time, and moves to the other when the first stops.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mamori_service::instance::{InitParams, init_with_database, open_with};
use mamori_service::scheduler::Background;
use mamori_store::StoreOptions;
use mamori_testkit::postgres::Cluster;

/// A node's own data directory: the instance's configuration, keys and certificate.
fn second_node(from: &Path, to: &Path) {
    for sub in ["", "keys", "tls"] {
        if !from.join(sub).exists() {
            continue;
        }
        std::fs::create_dir_all(to.join(sub)).unwrap();
        for e in std::fs::read_dir(from.join(sub)).unwrap().flatten() {
            let name = e.file_name();
            if e.file_type().unwrap().is_file() && name != "mamori.lock" {
                std::fs::copy(e.path(), to.join(sub).join(&name)).unwrap();
            }
        }
    }
}

fn until(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < Duration::from_secs(20), "{what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn background_work_runs_on_one_node_and_moves_when_it_stops() {
    let cluster = Cluster::start();
    let url = cluster.database("clinic");
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    init_with_database(
        &a,
        &InitParams {
            facility: "テスト病院",
            admin_login: "admin",
            admin_password: "initial passphrase 1",
        },
        Some(&url),
        None,
    )
    .unwrap();
    second_node(&a, &b);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _guard = rt.enter();
    let clock = Arc::new(mamori_domain::SystemClock);
    let node_a = open_with(&a, clock.clone(), StoreOptions::default(), None).unwrap();
    let node_b = open_with(&b, clock, StoreOptions::default(), None).unwrap();

    let bg_a = Background::start(&node_a);
    let bg_b = Background::start(&node_b);
    until("one node takes the lead", || {
        bg_a.leading() || bg_b.leading()
    });
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        bg_a.leading() != bg_b.leading(),
        "exactly one node leads (a: {}, b: {})",
        bg_a.leading(),
        bg_b.leading()
    );
    // The leader stops (its process ends): the other takes over.
    let (leader, other) = if bg_a.leading() {
        (bg_a, bg_b)
    } else {
        (bg_b, bg_a)
    };
    drop(leader);
    until("the other node takes over", || other.leading());
}
