//! Benchmarks. Each prints its figures together with the comparison run in the same process,
//! so ratios are meaningful on whatever machine runs them.

mod backup;
mod evidence;
mod http;
mod postgres;

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Subcommand;
use mamori_domain::audit::{ActorRef, AuditEvent, Outcome, actions};
use mamori_store::{Durability, Store, StoreError, StoreOptions};

#[derive(Subcommand)]
pub enum Which {
    /// Durable ledger appends from concurrent writers (group commit) vs raw SQLite inserts.
    Ledger {
        #[arg(long, default_value_t = 200_000)]
        events: usize,
        #[arg(long, default_value_t = 64)]
        writers: usize,
        /// Rows for the one-transaction-per-row comparison (each costs an fsync).
        #[arg(long, default_value_t = 2_000)]
        per_row: usize,
        /// Distinct patients the events are spread over (2,000 ≈ a large hospital's day).
        #[arg(long, default_value_t = 2_000)]
        patients: usize,
        /// Also append the same load to the ledger on this PostgreSQL database (in a schema of
        /// its own, dropped afterwards), e.g. postgres://mamori@127.0.0.1/mamori.
        #[arg(long)]
        database: Option<String>,
        /// Nodes sequencing into the PostgreSQL ledger at once (each its own connection and
        /// group commit), the writers spread over them.
        #[arg(long, default_value_t = 1)]
        nodes: usize,
        /// Facilities sharing the PostgreSQL server, each with a ledger of its own (a vendor
        /// hosting many clinics), the writers spread over them.
        #[arg(long, default_value_t = 1)]
        facilities: usize,
    },
    /// `verify` throughput over a ledger of N entries.
    Verify {
        #[arg(long, default_value_t = 1_000_000)]
        entries: usize,
    },
    /// Per-patient access counts over a 30-day window among N events.
    Access {
        #[arg(long, default_value_t = 10_000_000)]
        events: usize,
    },
    /// Full backup, incremental backup after 1 % of records change, and restore: mamori vs
    /// restic (Debian package) on the same instance, in the same run.
    Backup {
        /// Size of the attachments in GiB (records and database come on top).
        #[arg(long, default_value_t = 2.0)]
        gib: f64,
        /// Small text records (each one version, some amended later).
        #[arg(long, default_value_t = 20_000)]
        records: usize,
        /// Keep the working directory (instance, repositories) here instead of a temporary one.
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
        /// Grow the ledger to this many entries before the first backup (issue #20: an
        /// incremental must stay small however large the ledger grows).
        #[arg(long, default_value_t = 0)]
        ledger_entries: u64,
    },
    /// Chart reads through HTTP (wrk against the demo clinic on 127.0.0.1): requests/s and
    /// p50/p99 per endpoint beside /health, the ledger-only append rate, resident memory.
    Http(http::Options),
    /// Finalisations per second with and without signatures + time-stamps, and the time to
    /// build and stamp one evidence record over N versions.
    Evidence {
        #[arg(long, default_value_t = 1_000_000)]
        versions: usize,
        #[arg(long, default_value_t = 2_000)]
        finalisations: usize,
    },
}

pub(crate) fn event(i: usize, ts: i64, patients: usize) -> AuditEvent {
    let actor = ActorRef {
        id: (i % 200) as i64 + 2,
        login: format!("staff{:03}", i % 200),
        role: "doctor".into(),
    };
    let mut e = AuditEvent::new(ts, Some(actor), actions::RECORD_READ, Outcome::Ok);
    e.patient = Some(format!("P{:06}", (i * 7919) % patients));
    e.record = Some((i % 100_000) as i64);
    e.client = Some("192.0.2.10".into());
    e.detail = serde_json::json!({ "kind": "medical_record" });
    e
}

/// Appends `n` chart-read entries in large transactions, then indexes them: a ledger of the
/// size a hospital reaches in years, built in a minute or two.
pub(crate) async fn grow_ledger(svc: &Arc<mamori_service::Service>, n: u64) -> Result<(), String> {
    let t = Instant::now();
    let ts = svc.now();
    let chunk = 20_000u64;
    let mut done = 0u64;
    while done < n {
        let upto = (done + chunk).min(n);
        let from = done;
        svc.store()
            .write(move |tx| -> Result<(), mamori_store::StoreError> {
                for i in from..upto {
                    tx.append(&event(i as usize / 8, ts, 20_000))?;
                }
                Ok(())
            })
            .await
            .map_err(|e| e.to_string())?;
        done = upto;
        if done.is_multiple_of(1_000_000) {
            println!(
                "  … {done} entries appended ({:.0} s)",
                t.elapsed().as_secs_f64()
            );
        }
    }
    svc.store()
        .write(|tx| tx.index_all())
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "ledger grown by {n} entries and indexed in {:.0} s",
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

pub(crate) fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

pub fn run(which: Which) -> ExitCode {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let r = match which {
        Which::Ledger {
            events,
            writers,
            per_row,
            patients,
            database,
            nodes,
            facilities,
        } => rt.block_on(async {
            let sqlite = ledger(events, writers, per_row, patients).await?;
            match database {
                Some(url) => {
                    postgres::ledger(&url, events, writers, nodes, facilities, sqlite).await
                }
                None => Ok(()),
            }
        }),
        Which::Verify { entries } => verify(entries),
        Which::Access { events } => access(events),
        Which::Http(o) => http::run(&o).map_err(StoreError::Corrupt),
        Which::Backup {
            gib,
            records,
            dir,
            ledger_entries,
        } => backup::run(gib, records, dir, ledger_entries).map_err(StoreError::Corrupt),
        Which::Evidence {
            versions,
            finalisations,
        } => rt
            .block_on(evidence::run(versions, finalisations))
            .map_err(|e| StoreError::Corrupt(e.message)),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench failed: {e}");
            ExitCode::from(2)
        }
    }
}

pub(crate) fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    format!("{cpu}, {cores} cores")
}

/// Returns the group-commit rate, for the PostgreSQL comparison in the same run.
async fn ledger(
    events: usize,
    writers: usize,
    per_row: usize,
    patients: usize,
) -> Result<f64, StoreError> {
    println!("machine: {}", machine());
    println!(
        "ledger append: {events} chart-access events over {patients} patients, {writers} concurrent writers, synchronous=FULL (fsync per commit)"
    );
    let dir = tempfile::tempdir()?;
    let store = Store::open(
        dir.path(),
        StoreOptions {
            durability: Durability::Full,
            max_batch: 4096,
            ..Default::default()
        },
    )?;
    let per_writer = events / writers.max(1);
    let t0 = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for w in 0..writers {
        let store = store.clone();
        set.spawn(async move {
            let mut lat = Vec::with_capacity(per_writer);
            for k in 0..per_writer {
                let ev = event(
                    w * per_writer + k,
                    1_795_000_000_000 + (w * per_writer + k) as i64,
                    20_000,
                );
                let s = Instant::now();
                store.write(move |tx| tx.append(&ev).map(|_| ())).await?;
                lat.push(s.elapsed());
            }
            Ok::<_, StoreError>(lat)
        });
    }
    let mut lat = Vec::new();
    while let Some(r) = set.join_next().await {
        lat.extend(r.map_err(|e| StoreError::Corrupt(e.to_string()))??);
    }
    let elapsed = t0.elapsed().as_secs_f64();
    // Sustained throughput includes bringing the query indexes up to date.
    store.write(|tx| tx.index_all()).await?;
    let with_index = t0.elapsed().as_secs_f64();
    lat.sort();
    let n = lat.len();
    let rate = n as f64 / elapsed;
    println!(
        "mamori ledger (group commit): {:>10.0} events/s   p50 {:.2} ms   p99 {:.2} ms   ({n} events in {elapsed:.2} s)",
        rate,
        pct(&lat, 0.5),
        pct(&lat, 0.99)
    );
    println!(
        "  including the query indexes: {:>10.0} events/s   ({with_index:.2} s until fully indexed)",
        n as f64 / with_index
    );
    println!("{}", store.stats().summary());
    store.close();
    drop(store);

    // The same rows, raw, into the same kind of table with the same durability.
    let raw_dir = tempfile::tempdir()?;
    let conn = rusqlite::Connection::open(raw_dir.path().join("raw.db"))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "wal_autocheckpoint", 16_000)?;
    conn.execute_batch(
        "CREATE TABLE ledger (idx INTEGER PRIMARY KEY, ts INTEGER NOT NULL, actor_id INTEGER, action TEXT NOT NULL,
            outcome TEXT NOT NULL, patient_id TEXT, record_id INTEGER, payload BLOB NOT NULL);",
    )?;
    let insert = |conn: &rusqlite::Connection, i: usize| -> Result<(), StoreError> {
        let e = event(i, 1_795_000_000_000 + i as i64, patients);
        conn.prepare_cached("INSERT INTO ledger VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")?
            .execute(rusqlite::params![
                i as i64,
                e.ts,
                e.actor.as_ref().map(|a| a.id),
                e.action,
                "ok",
                e.patient,
                e.record,
                e.to_bytes()
            ])?;
        Ok(())
    };
    let t = Instant::now();
    for i in 0..per_row {
        conn.execute_batch("BEGIN")?;
        insert(&conn, i)?;
        conn.execute_batch("COMMIT")?;
    }
    let one = per_row as f64 / t.elapsed().as_secs_f64();
    println!("raw SQLite, one transaction per row: {one:>10.0} rows/s   ({per_row} rows)");
    let t = Instant::now();
    let batch = 1000;
    let mut i = per_row;
    while i < per_row + events {
        conn.execute_batch("BEGIN")?;
        for _ in 0..batch.min(per_row + events - i) {
            insert(&conn, i)?;
            i += 1;
        }
        conn.execute_batch("COMMIT")?;
    }
    let batched = events as f64 / t.elapsed().as_secs_f64();
    println!("raw SQLite, batched 1000 per transaction: {batched:>10.0} rows/s   ({events} rows)");
    println!("ratio mamori / raw one-per-row: {:.1}x", rate / one);
    println!(
        "ratio raw batched / mamori:     {:.2}x  (goal: ≤ 2x)",
        batched / rate
    );
    Ok(rate)
}

/// Fills a store with `n` events quickly (large batches), for the verify and query benches.
fn fill(dir: &Path, n: usize, patients: usize, span_days: i64) -> Result<(), StoreError> {
    let store = Store::open(
        dir,
        StoreOptions {
            durability: Durability::Normal,
            max_batch: 1,
            ..Default::default()
        },
    )?;
    let start = 1_795_000_000_000i64 - span_days * 86_400_000;
    let step = (span_days * 86_400_000) / n.max(1) as i64;
    let chunk = 20_000;
    let t = Instant::now();
    let mut done = 0;
    while done < n {
        let upto = (done + chunk).min(n);
        let from = done;
        store.write_blocking(move |tx| -> Result<(), StoreError> {
            for i in from..upto {
                // Accesses come in bursts per visit: consecutive events share a patient.
                tx.append(&event(i / 8, start + i as i64 * step, patients))?;
            }
            Ok(())
        })?;
        done = upto;
    }
    let filled = t.elapsed().as_secs_f64();
    let t = Instant::now();
    store.write_blocking(|tx| tx.index_all())?;
    println!(
        "(filled {n} events in {filled:.1} s; indexing the rest took {:.1} s)",
        t.elapsed().as_secs_f64()
    );
    store.close();
    Ok(())
}

fn verify(entries: usize) -> Result<(), StoreError> {
    println!("machine: {}", machine());
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "verify bench passphrase")?;
    mamori_service::instance::init(
        &data,
        &mamori_service::instance::InitParams {
            facility: "bench",
            admin_login: "admin",
            admin_password: "verify bench passphrase",
        },
    )
    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    fill(&data, entries, 20_000, 365)?;
    let svc =
        mamori_service::instance::open(&data).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    svc.checkpoint_blocking()
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    svc.store().close();
    drop(svc);
    // Flush the fill to disk first, so the kernel's write-back does not run during the timing.
    std::fs::File::open(data.join("mamori.db"))?.sync_all()?;
    let opts = mamori_service::ledger::verify::VerifyOptions {
        external_checkpoint: None,
        trusted_key: None,
        skip_blobs: false,
    };
    let rep = mamori_service::ledger::verify::verify(&data, &opts)
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    // The comparison: reading the same rows and hashing each payload once, nothing more.
    let ro = mamori_store::ReadOnly::open(&data)?;
    let t = Instant::now();
    let mut n = 0u64;
    ro.get().for_each_ledger_row(|row| {
        std::hint::black_box(mamori_ledger::leaf_hash(&row.payload));
        n += 1;
        Ok(())
    })?;
    let floor = n as f64 / t.elapsed().as_secs_f64();
    let rate = rep.ledger_entries as f64 / rep.seconds;
    println!(
        "mamori verify: {} entries (+{} stored hashes) in {:.2} s = {:.0} entries/s  (ok = {})",
        rep.ledger_entries, rep.stored_hashes, rep.seconds, rate, rep.ok
    );
    println!("read + hash each row only:                    {floor:.0} rows/s");
    println!(
        "ratio floor / verify: {:.2}x   (goal: verify ≥ 1,000,000 entries/s)",
        floor / rate
    );
    Ok(())
}

fn access(events: usize) -> Result<(), StoreError> {
    println!("machine: {}", machine());
    let dir = tempfile::tempdir()?;
    let patients = 20_000;
    fill(dir.path(), events, patients, 365)?;
    let store = Store::open(dir.path(), StoreOptions::default())?;
    let guard = store.reader()?;
    let r = guard.get();
    let end = 1_795_000_000_000i64;
    let from = end - 30 * 86_400_000 - 3_600_000; // not day-aligned: exercises the edges too
    let mut times = Vec::new();
    let mut rows = 0;
    for _ in 0..5 {
        let t = Instant::now();
        rows = r.access_counts(from, end, None)?.len();
        times.push(t.elapsed());
    }
    times.sort();
    println!(
        "all patients' access counts, 30-day window, {events} events: {rows} patients, median {:.1} ms (goal < 100 ms)",
        pct(&times, 0.5)
    );
    let mut one = Vec::new();
    for k in 0..20 {
        let t = Instant::now();
        std::hint::black_box(r.access_counts(from, end, Some(&format!("P{:06}", k * 37)))?);
        one.push(t.elapsed());
    }
    one.sort();
    println!(
        "one patient's access counts, same window: median {:.2} ms",
        pct(&one, 0.5)
    );
    // The comparison: the same question answered by scanning the raw ledger.
    let t = Instant::now();
    let raw: i64 = {
        let f = mamori_store::AuditFilter {
            from: Some(from),
            to: Some(end),
            limit: 10_000,
            ..Default::default()
        };
        std::hint::black_box(r.audit_events(&f)?.len() as i64)
    };
    let _ = raw;
    println!(
        "(for scale: fetching 10,000 raw events of the window took {:.1} ms)",
        t.elapsed().as_secs_f64() * 1000.0
    );
    drop(guard);
    store.close();
    let _ = Arc::new(());
    Ok(())
}
