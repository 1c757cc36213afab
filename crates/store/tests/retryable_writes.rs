//! Writes are retryable: a backend may undo a request and run it again (PostgreSQL does after
//! a serialization failure), so `Store::write` takes `Fn`, and debug builds — every test of the
//! workspace — rehearse that on every write: the request runs, is undone, and runs again.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use mamori_domain::audit::{AuditEvent, Outcome, actions};
use mamori_store::{Store, StoreError, StoreOptions};

#[tokio::test]
async fn each_write_is_rehearsed_and_only_its_last_run_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let runs = Arc::new(AtomicUsize::new(0));
    let seen = runs.clone();
    let (idx, size_inside) = store
        .write(move |tx| -> Result<_, StoreError> {
            let n = seen.fetch_add(1, Ordering::SeqCst);
            let mut ev = AuditEvent::new(
                1_795_000_000_000,
                None,
                actions::LEDGER_VERIFIED,
                Outcome::Ok,
            );
            ev.detail = serde_json::json!({ "run": n });
            // The row change first, so that it is stated in this entry.
            tx.set_meta("rehearsal", &n.to_string())?;
            let idx = tx.append(&ev)?;
            Ok((idx, tx.ledger_size()))
        })
        .await
        .unwrap();
    assert_eq!(
        runs.load(Ordering::SeqCst),
        2,
        "run, undone, run again (a debug-build check: run the tests in a debug build)"
    );
    // The second run saw a ledger without the first run's entry and got the same index.
    assert_eq!(size_inside, idx + 1);
    let (size, meta, payload) = store
        .read(move |r| {
            Ok((
                r.ledger_size()?,
                r.meta("rehearsal")?,
                r.ledger_row(idx)?.unwrap().payload,
            ))
        })
        .await
        .unwrap();
    assert_eq!(size, idx + 1, "one entry, not two");
    assert_eq!(
        meta.as_deref(),
        Some("1"),
        "the kept write is the second run's"
    );
    let ev: AuditEvent = serde_json::from_slice(&payload).unwrap();
    assert_eq!(ev.detail["run"], 1);
    // The entry states the second run's row, not the first's.
    assert_eq!(
        ev.state.unwrap()[0][2],
        serde_json::json!({ "key": "rehearsal", "value": "1" })
    );
}
