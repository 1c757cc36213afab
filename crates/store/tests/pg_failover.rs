//! Failure trial 3 of issue #22: the primary is lost while nodes write, with a synchronous
//! streaming standby (two clusters on this machine). The standby is promoted; the nodes reach
//! it by themselves through a multi-host URL with `target_session_attrs=read-write`; no
//! acknowledged entry is lost, none is written twice, and the ledger verifies on the new
//! primary. The time from the crash to the first entry acknowledged by the new primary is
//! printed (docs/operations.md records it).

mod pg_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use mamori_store::postgres::{PgLedgerOptions, verify_ledger};
use mamori_testkit::postgres::Cluster;
use pg_support::{assert_all_present, client, event, load, node, nonces};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn losing_the_primary_loses_no_acknowledged_entry_after_promoting_the_synchronous_standby() {
    let primary = Arc::new(Cluster::start());
    primary.database("mamori");
    let standby = Arc::new(primary.standby());
    primary.require_synchronous_standby();
    let url = format!(
        "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/mamori?target_session_attrs=read-write&connect_timeout=2",
        primary.port(),
        standby.port()
    );
    let opts = PgLedgerOptions {
        reconnect_for: Duration::from_secs(60),
        ..Default::default()
    };
    let a = node(&url, opts.clone()).await;
    let b = node(&url, opts).await;

    let crashed_at = Arc::new(std::sync::Mutex::new(None::<Instant>));
    let failover = {
        let (primary, standby, crashed_at) = (primary.clone(), standby.clone(), crashed_at.clone());
        tokio::task::spawn_blocking(move || {
            std::thread::sleep(Duration::from_millis(500));
            *crashed_at.lock().unwrap() = Some(Instant::now());
            primary.stop_immediate();
            // An operator (or a cluster manager) notices and promotes the standby.
            std::thread::sleep(Duration::from_millis(500));
            standby.promote();
        })
    };
    // A probe that appends every 10 ms tells when writes resumed.
    let probe = {
        let a = a.clone();
        let crashed_at = crashed_at.clone();
        tokio::spawn(async move {
            for i in 0.. {
                a.append(event(&format!("probe{i}"), 1_795_000_000_000))
                    .await
                    .unwrap();
                let crash = *crashed_at.lock().unwrap();
                if let Some(at) = crash {
                    let since = at.elapsed();
                    if since > Duration::from_millis(50) {
                        return (i, since);
                    }
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            unreachable!()
        })
    };
    let (mut acked, failed, _) =
        load(&[a.clone(), b.clone()], 16, 200, Duration::from_millis(3)).await;
    failover.await.unwrap();
    let (probes, recovered_after) = probe.await.unwrap();
    assert_eq!(
        failed, 0,
        "appends failed although the standby took over in time"
    );
    eprintln!(
        "failover: first entry acknowledged by the promoted standby {:.2} s after the primary died",
        recovered_after.as_secs_f64()
    );

    let new_primary = format!("postgres://postgres@127.0.0.1:{}/mamori", standby.port());
    let stored = nonces(&new_primary).await;
    // The probe's entries are in too, each once.
    let probe_entries = stored.values().filter(|n| n.starts_with("probe")).count();
    assert_eq!(probe_entries, probes + 1);
    acked.retain(|_, n| !n.starts_with("probe"));
    assert_all_present(&acked, &stored);
    assert_eq!(stored.len(), acked.len() + probe_entries);
    let check = verify_ledger(&client(&new_primary).await).await.unwrap();
    assert!(check.problems.is_empty(), "{:?}", check.problems);
    assert!(
        a.stats()
            .reconnects
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1
    );
}
