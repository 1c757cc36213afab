//! A backup reads the database in place while the server writes, and an incremental one
//! re-reads only what the page map says may have changed. Both must give exactly the bytes of
//! the snapshot: a page wrongly taken as unchanged would restore a database that never existed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use mamori_domain::audit::{ActorRef, AuditEvent, Outcome, actions};
use mamori_store::{DatabaseImage, Store, StoreOptions};

const EXTENT: u64 = 64 * 1024;

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// `n` ledger entries for patients all over the index: pages change all over the file.
fn append(store: &Store, rng: &mut Rng, n: usize) {
    let events: Vec<AuditEvent> = (0..n)
        .map(|i| {
            let mut e = AuditEvent::new(
                1_780_000_000_000 + i as i64,
                Some(ActorRef {
                    id: 1 + rng.below(9) as i64,
                    login: "dr".into(),
                    role: "doctor".into(),
                }),
                actions::RECORD_READ,
                Outcome::Ok,
            );
            e.patient = Some(format!("P{:05}", rng.below(5_000)));
            e
        })
        .collect();
    store
        .write_blocking(move |tx| -> Result<(), mamori_store::StoreError> {
            for e in &events {
                tx.append(e)?;
            }
            tx.index_all().map(|_| ())
        })
        .unwrap();
}

fn whole(image: &DatabaseImage) -> Vec<u8> {
    let mut buf = vec![0u8; image.len() as usize];
    for (i, part) in buf.chunks_mut(EXTENT as usize).enumerate() {
        image.read_at(i as u64 * EXTENT, part).unwrap();
    }
    buf
}

fn open(dir: &std::path::Path) -> Store {
    Store::open(
        dir,
        StoreOptions {
            background_indexing: false,
            ..Default::default()
        },
    )
    .unwrap()
}

#[test]
fn an_image_read_in_place_is_the_snapshot_while_the_server_writes_and_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut rng = Rng(7);
    append(&store, &mut rng, 20_000);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (store, stop) = (store.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut rng = Rng(11);
            while !stop.load(Ordering::Relaxed) {
                append(&store, &mut rng, 500);
            }
        })
    };
    for _ in 0..6 {
        let image = DatabaseImage::open(dir.path()).unwrap();
        // Let the log grow and the checkpointer run while the snapshot is held.
        std::thread::sleep(Duration::from_millis(300));
        let read = whole(&image);
        assert!(read == image.to_vec().unwrap(), "the in-place read differs");
        let entries = image.with_reader(|r| r.ledger_size()).unwrap();
        assert!(entries >= 20_000);
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    store.close();
}

#[test]
fn every_extent_that_changed_since_an_earlier_image_is_marked() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut rng = Rng(3);
    append(&store, &mut rng, 30_000);
    std::thread::sleep(Duration::from_millis(400));
    // Only the mark and the bytes are kept: a backup's snapshot ends with the backup, and
    // the log may be copied and restarted before the next.
    let (mut earlier_mark, mut earlier_bytes) = {
        let image = DatabaseImage::open(dir.path()).unwrap();
        (image.mark().expect("a page map"), whole(&image))
    };
    let (mut kept, mut reread) = (0usize, 0usize);
    for round in 0..8 {
        append(&store, &mut rng, 50 + round * 40);
        // Odd rounds leave the change in the log. Even ones let the checkpointer copy it and
        // then write again, which restarts the log: the first change is then known only from
        // the page map.
        if round % 2 == 0 {
            std::thread::sleep(Duration::from_millis(400));
            append(&store, &mut rng, 5);
        }
        let now = DatabaseImage::open(dir.path()).unwrap();
        let changed = now.changed_since(&earlier_mark, EXTENT).expect("same map");
        let bytes = whole(&now);
        for (i, c) in changed.iter().enumerate() {
            let at = i * EXTENT as usize;
            let end = (at + EXTENT as usize).min(bytes.len());
            if *c {
                reread += 1;
            } else {
                assert!(
                    end <= earlier_bytes.len(),
                    "an extent past the old end is unmarked"
                );
                assert!(
                    bytes[at..end] == earlier_bytes[at..end],
                    "round {round}: extent {i} changed but is not marked"
                );
                kept += 1;
            }
        }
        earlier_mark = now.mark().expect("a page map");
        earlier_bytes = bytes;
    }
    assert!(
        kept > reread,
        "kept {kept}, re-read {reread}: the map marks too much"
    );
    store.close();
}

#[test]
fn a_write_behind_the_checkpointers_back_makes_the_next_image_a_full_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    append(&store, &mut Rng(5), 2_000);
    store.close();
    drop(store);
    // With the server stopped the log is still there (no checkpoint on close); an image can
    // be read and marked.
    let before = DatabaseImage::open(dir.path()).unwrap();
    let mark = before.mark().expect("a page map");
    assert!(whole(&before) == before.to_vec().unwrap());
    drop(before);
    // Another SQLite client writes and, closing last, checkpoints into the file.
    let c = rusqlite::Connection::open(dir.path().join("mamori.db")).unwrap();
    c.execute_batch("CREATE TABLE intruder(x); INSERT INTO intruder VALUES (1);")
        .unwrap();
    drop(c);
    let after = DatabaseImage::open(dir.path()).unwrap();
    assert_eq!(after.mark(), None, "the file changed behind the map's back");
    drop(after);
    // The next server start begins a new map: nothing marked under the old one counts.
    let store = open(dir.path());
    let again = DatabaseImage::open(dir.path()).unwrap();
    let new_mark = again.mark().expect("a new map");
    assert_ne!(new_mark.map, mark.map);
    assert_eq!(again.changed_since(&mark, EXTENT), None);
    store.close();
}
