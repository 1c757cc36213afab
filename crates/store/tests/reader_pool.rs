//! The read connections are a bounded pool: however many reads run at once, no more than
//! `readers` connections are ever open, a reader waits for one to come back, and a reader
//! that would otherwise deadlock (holding one while asking for another) still gets one.

use std::time::{Duration, Instant};

use mamori_store::{Store, StoreOptions};

fn store(readers: usize) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        dir.path(),
        StoreOptions {
            readers,
            ..Default::default()
        },
    )
    .unwrap();
    (dir, store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_concurrent_reads_share_a_few_connections() {
    let (_dir, store) = store(3);
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.read(|r| {
                std::thread::sleep(Duration::from_millis(1));
                r.ledger_size()
            })
            .await
            .unwrap()
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert!(
        store.reader_connections() <= 3,
        "{} connections for a pool of 3",
        store.reader_connections()
    );
    assert!(store.reader_connections() >= 1);
    store.close();
}

#[test]
fn a_reader_waits_for_a_connection_to_come_back() {
    let (_dir, store) = store(1);
    let held = store.reader().unwrap();
    let s = store.clone();
    let start = Instant::now();
    let waiter = std::thread::spawn(move || {
        let r = s.reader().unwrap();
        r.get().ledger_size().unwrap();
        start.elapsed()
    });
    std::thread::sleep(Duration::from_millis(200));
    drop(held);
    let waited = waiter.join().unwrap();
    assert!(waited >= Duration::from_millis(150), "{waited:?}");
    assert!(waited < Duration::from_secs(2), "{waited:?}");
    assert_eq!(store.reader_connections(), 1);
    store.close();
}

#[test]
fn a_nested_reader_gets_an_extra_connection_instead_of_a_deadlock() {
    let (_dir, store) = store(1);
    let outer = store.reader().unwrap();
    let inner = store.reader().unwrap();
    assert_eq!(
        outer.get().ledger_size().unwrap(),
        inner.get().ledger_size().unwrap()
    );
    drop(inner);
    drop(outer);
    // The extra connection was closed; the pool still holds one.
    assert_eq!(store.reader_connections(), 1);
    store.close();
}

/// Far past capacity a read is refused as overload after a bounded wait, instead of waiting
/// without end; the reads already running finish normally.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_that_waits_too_long_for_a_connection_is_refused_as_overload() {
    let (_dir, store) = store(1);
    let s = store.clone();
    let long = tokio::spawn(async move {
        s.read(|r| {
            std::thread::sleep(Duration::from_millis(3_000));
            r.ledger_size()
        })
        .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let t = Instant::now();
    let refused = store.read(|r| r.ledger_size()).await;
    assert!(
        matches!(refused, Err(mamori_store::StoreError::Overloaded)),
        "{refused:?}"
    );
    assert!(
        t.elapsed() < Duration::from_millis(2_800),
        "{:?}",
        t.elapsed()
    );
    assert!(long.await.unwrap().is_ok());
    assert!(store.read(|r| r.ledger_size()).await.is_ok());
}
