//! `mamori bench http`: the demo clinic served on 127.0.0.1 by this process, driven by an
//! independent load generator (`wrk`) over real TCP, with a doctor's bearer token. Prints
//! requests/s and p50/p99 per endpoint beside the `/health` ceiling (the same server with no
//! store work), the ledger-only append rate and the process's resident memory, all from one
//! run, so the ratios hold on any machine.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use mamori_domain::audit::{ActorRef, AuditEvent, Outcome, actions};
use mamori_service::{Service, ServiceError};

/// One endpoint's figures, as `wrk --latency` reports them.
#[derive(Debug, Default, Clone)]
pub struct Figures {
    pub requests_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub non_2xx: u64,
    pub errors: u64,
}

/// A wrk latency figure ("1.23ms", "850.00us", "1.02s") in milliseconds.
fn millis(s: &str) -> Option<f64> {
    let s = s.trim();
    let (n, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic())?);
    let n: f64 = n.parse().ok()?;
    Some(match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        _ => return None,
    })
}

/// The figures in wrk's `--latency` output.
pub fn parse_wrk(out: &str) -> Option<Figures> {
    let mut f = Figures::default();
    let mut seen_rate = false;
    for line in out.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Requests/sec:", n] => {
                f.requests_per_sec = n.parse().ok()?;
                seen_rate = true;
            }
            ["50%", v] => f.p50_ms = millis(v)?,
            ["99%", v] => f.p99_ms = millis(v)?,
            ["Non-2xx", "or", "3xx", "responses:", n] => f.non_2xx = n.parse().ok()?,
            ["Socket", "errors:", rest @ ..] => {
                // connect 0, read 0, write 0, timeout 0
                f.errors = rest
                    .iter()
                    .filter_map(|w| w.trim_end_matches(',').parse::<u64>().ok())
                    .sum();
            }
            _ => {}
        }
    }
    seen_rate.then_some(f)
}

fn wrk(
    url: &str,
    token: &str,
    connections: usize,
    seconds: u64,
    script: Option<&Path>,
) -> Result<Figures, String> {
    let threads = connections.clamp(1, 2);
    let mut cmd = Command::new("wrk");
    if let Some(s) = script {
        cmd.arg("-s").arg(s);
    }
    let out = cmd
        .args([
            "-t",
            &threads.to_string(),
            "-c",
            &connections.to_string(),
            "-d",
            &format!("{seconds}s"),
            "--latency",
            "-H",
            &format!("Authorization: Bearer {token}"),
            url,
        ])
        .output()
        .map_err(|e| format!("wrk を起動できません（apt-get install wrk）: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    parse_wrk(&text).ok_or_else(|| format!("wrk の出力を読めません:\n{text}"))
}

/// Resident memory of this process, in MiB.
pub fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

/// Durable ledger appends per second with 64 concurrent writers (the store alone).
async fn ledger_rate(svc: &Arc<Service>, events: usize) -> f64 {
    let start = Instant::now();
    let mut tasks = Vec::new();
    let writers = 64;
    for w in 0..writers {
        let store = svc.store().clone();
        tasks.push(tokio::spawn(async move {
            for i in (w..events).step_by(writers) {
                let ev = AuditEvent::new(
                    1_700_000_000_000 + i as i64,
                    Some(ActorRef {
                        id: 2,
                        login: "bench".into(),
                        role: "doctor".into(),
                    }),
                    actions::RECORD_READ,
                    Outcome::Ok,
                );
                let _ = store
                    .write(move |tx| tx.append(&ev).map_err(ServiceError::from))
                    .await;
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    events as f64 / start.elapsed().as_secs_f64()
}

/// What `mamori bench http` runs besides the read table and the writes.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Keep the instance here instead of a temporary directory.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Then grow the ledger to this many entries and measure the reads again (the ÷small
    /// column: within 10 % is the goal).
    #[arg(long, default_value_t = 0)]
    pub ledger_entries: u64,
    /// Also measure chart reads while a backup, an evidence seal and a full verification run
    /// (goal: at least half the idle rate).
    #[arg(long)]
    pub background: bool,
    /// Also hold this many connections (e.g. 1000) on a chart read for --overload-seconds:
    /// what fails, p99, resident memory.
    #[arg(long, default_value_t = 0)]
    pub overload: usize,
    #[arg(long, default_value_t = 30)]
    pub overload_seconds: u64,
    /// Then move the same demo clinic into this empty PostgreSQL database
    /// (`mamori store migrate`) and measure the same reads and writes there (÷SQLite: against
    /// the table above, same run), e.g. postgres://mamori@127.0.0.1/bench.
    #[arg(long)]
    pub database: Option<String>,
    /// With --database: then serve it from this many nodes (each with its own data directory)
    /// behind nginx (Debian's, apt-get install nginx-light) and compare chart reads through
    /// the proxy with one node read directly, in the same run.
    #[arg(long, default_value_t = 1)]
    pub nodes: usize,
}

/// The table's header; `ratio` names the last-but-one column (what the rates are divided by).
fn header(ratio: &str) {
    println!(
        "{:<28} {:>10} {:>9} {:>9} {:>9} {:>8}",
        "endpoint", "req/s", "p50 ms", "p99 ms", ratio, "non-2xx"
    );
}

fn row(name: &str, f: &Figures, base: f64) {
    println!(
        "{:<28} {:>10.0} {:>9.2} {:>9.2} {:>9.3} {:>8}",
        name,
        f.requests_per_sec,
        f.p50_ms,
        f.p99_ms,
        f.requests_per_sec / base,
        f.non_2xx + f.errors
    );
}

async fn wrk_async(
    url: &str,
    token: &str,
    connections: usize,
    seconds: u64,
    script: Option<PathBuf>,
) -> Result<Figures, String> {
    let (u, tk) = (url.to_owned(), token.to_owned());
    tokio::task::spawn_blocking(move || wrk(&u, &tk, connections, seconds, script.as_deref()))
        .await
        .map_err(|e| e.to_string())?
}

/// Appends `n` ledger entries shaped like a hospital's chart reads (spread over 20,000
/// patients), in large transactions, and indexes them.
/// One piece of background work, run again and again while the reads are measured.
#[derive(Clone, Copy)]
enum Job {
    Backup,
    Seal,
    Verify,
}

impl Job {
    fn name(self) -> &'static str {
        match self {
            Job::Backup => "backup",
            Job::Seal => "evidence seal",
            Job::Verify => "verify now",
        }
    }

    async fn run_once(self, svc: &Arc<Service>) -> Result<(), String> {
        match self {
            Job::Backup => {
                svc.backup_now(None).await.map_err(|e| e.message)?;
                while svc.backup_in_progress().unwrap_or(false) {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
            }
            Job::Seal => {
                svc.evidence_sweep(true).await.map_err(|e| e.message)?;
            }
            Job::Verify => {
                svc.verify_and_record(None).await.map_err(|e| e.message)?;
            }
        }
        Ok(())
    }
}

/// Chart reads while `job` runs over and over; prints the rate beside the idle one.
async fn reads_during(
    svc: &Arc<Service>,
    job: Job,
    url: &str,
    token: &str,
    o: &Options,
    idle: f64,
) -> Result<(), String> {
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (s, st) = (svc.clone(), stop.clone());
    let worker = tokio::spawn(async move {
        let (mut runs, mut busy) = (0u32, 0.0f64);
        while !st.load(std::sync::atomic::Ordering::Relaxed) {
            let t = Instant::now();
            job.run_once(&s).await?;
            busy += t.elapsed().as_secs_f64();
            runs += 1;
        }
        Ok::<_, String>((runs, busy))
    });
    // Let the job get going before the reads are measured.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let f = wrk_async(url, token, o.connections, o.seconds, None).await?;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (runs, busy) = worker.await.map_err(|e| e.to_string())??;
    row(&format!("  during {}", job.name()), &f, idle);
    println!("      ({runs} run(s), {busy:.1} s of work; ÷idle is the share of idle reads kept)");
    println!("      {}", svc.store().stats().summary());
    Ok(())
}

pub fn run(o: &Options) -> Result<(), String> {
    let (connections, seconds) = (o.connections, o.seconds);
    println!("machine: {}", super::machine());
    // wrk and the server each hold one descriptor per connection.
    let nofile = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    if let Some(max) = nofile.maximum {
        let _ = rustix::process::setrlimit(
            rustix::process::Resource::Nofile,
            rustix::process::Rlimit {
                current: Some(max),
                maximum: Some(max),
            },
        );
    }
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let dir = o.dir.clone().unwrap_or_else(|| tmp.path().join("data"));
    let t = Instant::now();
    crate::demo::prepare(&dir, "127.0.0.1:0").map_err(|e| e.message)?;
    // The interactive path alone unless asked: no backup on schedule during the run. The
    // target stays configured for the background measurement.
    let mut cfg = mamori_service::Config::load(&dir).map_err(|e| e.message)?;
    cfg.backup.interval_hours = 0;
    cfg.server.max_connections = cfg.server.max_connections.max(o.overload + 64);
    std::fs::write(dir.join(mamori_service::config::CONFIG_FILE), cfg.to_toml())
        .map_err(|e| e.to_string())?;
    println!("demo clinic prepared in {:.1} s", t.elapsed().as_secs_f64());
    let svc = mamori_service::instance::open(&dir).map_err(|e| e.message)?;
    let rt = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    let mut on_sqlite: Vec<(String, Figures)> = Vec::new();
    let sqlite_figures = &mut on_sqlite;
    let data = dir.clone();
    rt.block_on(async move {
        let Session {
            ok,
            patients,
            patient,
            record,
        } = session(&svc).await?;

        let served = Served::start(&svc).await?;
        let addr = served.addr;
        let base = format!("http://{addr}/api/v1");
        let record_url = format!("{base}/records/{record}");
        let endpoints = endpoints(&base, &patient, record);
        let entries = || {
            svc.store()
                .reader()
                .and_then(|r| r.get().ledger_size())
                .map_err(|e| e.to_string())
        };
        println!(
            "wrk: {connections} connections, {seconds} s per endpoint; ledger: {} entries",
            entries()?
        );
        header("÷health");
        let token = ok.token.clone();
        let mut small = Vec::new();
        for (name, url) in &endpoints {
            let f = wrk_async(url, &token, connections, seconds, None).await?;
            let health = small.first().map_or(f.requests_per_sec, |h: &Figures| h.requests_per_sec);
            row(name, &f, health);
            small.push(f);
        }
        let health = small[0].requests_per_sec;
        // Writes: each request creates a record and finalises it in the same transaction; the
        // version is signed and time-stamped by the in-process development TSA. The records
        // go to another patient, so that the list measured above stays the same size.
        let writes_for = patients.get(1).map_or(&patient, |p| &p.id);
        let script = finalise_script(&dir.with_file_name("bench-finalise.lua"), writes_for)?;
        let f = wrk_async(
            &format!("{base}/records"),
            &token,
            connections,
            seconds,
            Some(script.clone()),
        )
        .await?;
        row("POST /records (finalise)", &f, health);
        let _ = std::fs::remove_file(&script);
        for ((name, _), fig) in endpoints.iter().zip(&small) {
            sqlite_figures.push((name.to_string(), fig.clone()));
        }
        sqlite_figures.push(("POST /records (finalise)".into(), f.clone()));
        println!("resident memory after the runs: {:.0} MiB", rss_mib());
        println!("{}", svc.store().stats().summary());
        let events = (seconds as usize * 5_000).clamp(2_000, 200_000);
        let rate = ledger_rate(&svc, events).await;
        println!("ledger-only durable appends (64 writers): {rate:.0}/s");

        if o.ledger_entries > 0 {
            let have = entries()?;
            if o.ledger_entries > have {
                println!();
                super::grow_ledger(&svc, o.ledger_entries - have).await?;
            }
            println!(
                "the same reads with {} ledger entries (÷small: against the table above)",
                entries()?
            );
            header("÷small");
            for ((name, url), before) in endpoints.iter().zip(&small) {
                let f = wrk_async(url, &token, connections, seconds, None).await?;
                row(name, &f, before.requests_per_sec);
            }
        }

        if o.background {
            println!();
            let idle = wrk_async(&record_url, &token, connections, seconds, None).await?;
            println!(
                "chart reads beside background work ({} entries; ÷idle: against idle reads now)",
                entries()?
            );
            row("GET /records/{id} idle", &idle, idle.requests_per_sec);
            for job in [Job::Backup, Job::Seal, Job::Verify] {
                reads_during(&svc, job, &record_url, &token, o, idle.requests_per_sec).await?;
            }
        }

        if o.overload > 0 {
            println!();
            println!(
                "overload: {} connections for {} s on GET /records/{{id}} (non-2xx are 503 + Retry-After)",
                o.overload, o.overload_seconds
            );
            let f = wrk_async(&record_url, &token, o.overload, o.overload_seconds, None).await?;
            header("÷health");
            row("GET /records/{id}", &f, health);
            println!(
                "  socket errors {}; resident memory {:.0} MiB",
                f.errors,
                rss_mib()
            );
        }
        served.stop().await;
        svc.store().close();
        Ok::<(), String>(())
    })?;
    if let Some(url) = &o.database {
        on_postgres(&rt, &data, url, o, &on_sqlite)?;
    }
    drop(tmp);
    Ok(())
}

/// The endpoints read, named, in the order every table prints them.
fn endpoints(base: &str, patient: &str, record: i64) -> [(&'static str, String); 5] {
    let q = "%E3%82%A4"; // イ
    [
        ("GET /health", format!("{base}/health")),
        ("GET /auth/me", format!("{base}/auth/me")),
        ("GET /records/{id}", format!("{base}/records/{record}")),
        ("GET /patients?q=イ", format!("{base}/patients?q={q}")),
        (
            "GET /patients/{id}/records",
            format!("{base}/patients/{patient}/records"),
        ),
    ]
}

/// One node's HTTP server on a free port of 127.0.0.1, until stopped.
struct Served {
    addr: std::net::SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Served {
    async fn start(svc: &Arc<Service>) -> Result<Self, String> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(mamori_web::serve(svc.clone(), listener, async {
            let _ = stopped.await;
        }));
        Ok(Self { addr, stop, server })
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.server.await;
    }
}

/// The demo doctor signed in, with a patient and one of their records to read.
struct Session {
    ok: mamori_service::access::auth::LoginOk,
    patients: Vec<mamori_store::Patient>,
    patient: String,
    record: i64,
}

async fn session(svc: &std::sync::Arc<mamori_service::Service>) -> Result<Session, String> {
    let ok = svc
        .login("dr.tanaka", crate::demo::DEMO_PASSWORD, None)
        .await
        .map_err(|e| e.message)?;
    let doctor = svc
        .authenticate(&ok.token, None)
        .await
        .map_err(|e| e.message)?;
    let patients = svc
        .search_patients(&doctor, "イ")
        .await
        .map_err(|e| e.message)?;
    let patient = patients.first().ok_or("デモに患者がいません")?.id.clone();
    let records = svc
        .patient_records(&doctor, &patient)
        .await
        .map_err(|e| e.message)?;
    let record = records.first().ok_or("デモの患者に記録がありません")?.id;
    Ok(Session {
        ok,
        patients,
        patient,
        record,
    })
}

/// The wrk script of the write measured: each request creates a record for `patient` and
/// finalises it in the same transaction (signed and time-stamped by the development TSA).
fn finalise_script(path: &std::path::Path, patient: &str) -> Result<std::path::PathBuf, String> {
    let body = serde_json::json!({
        "patient_id": patient,
        "kind": "medical_record",
        "title": "負荷試験",
        "body": "S: 変わりなし\nO: 血圧 128/76\nA: 安定\nP: 継続",
        "finalise": true,
    });
    std::fs::write(
        path,
        format!(
            "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\nwrk.body = {}\n",
            serde_json::to_string(&body.to_string()).expect("json")
        ),
    )
    .map_err(|e| e.to_string())?;
    Ok(path.to_owned())
}

/// The same demo clinic moved into PostgreSQL, the same reads and writes: what a request
/// costs there against SQLite in the same run.
fn on_postgres(
    rt: &tokio::runtime::Runtime,
    dir: &std::path::Path,
    url: &str,
    o: &Options,
    on_sqlite: &[(String, Figures)],
) -> Result<(), String> {
    let t = Instant::now();
    let moved =
        mamori_service::instance::migrate_to_postgres(dir, url, None).map_err(|e| e.message)?;
    println!();
    println!(
        "moved to PostgreSQL in {:.1} s ({} rows; ledger root {} on both sides)",
        t.elapsed().as_secs_f64(),
        moved.copied.rows,
        &moved.ledger_root[..16]
    );
    let svc = mamori_service::instance::open(dir).map_err(|e| e.message)?;
    rt.block_on(async move {
        let Session {
            ok,
            patients,
            patient,
            record,
        } = session(&svc).await?;
        let served = Served::start(&svc).await?;
        let addr = served.addr;
        let base = format!("http://{addr}/api/v1");
        let urls = endpoints(&base, &patient, record);
        println!(
            "the same on PostgreSQL (÷SQLite: against the same endpoint on SQLite above, same run)"
        );
        header("÷SQLite");
        for ((name, before), (_, url)) in on_sqlite.iter().zip(&urls) {
            let f = wrk_async(url, &ok.token, o.connections, o.seconds, None).await?;
            row(name, &f, before.requests_per_sec);
        }
        let writes_for = patients.get(1).map_or(&patient, |p| &p.id);
        let script = finalise_script(&dir.with_file_name("bench-finalise-pg.lua"), writes_for)?;
        let f = wrk_async(
            &format!("{base}/records"),
            &ok.token,
            o.connections,
            o.seconds,
            Some(script.clone()),
        )
        .await?;
        let _ = std::fs::remove_file(&script);
        if let Some((name, before)) = on_sqlite.last() {
            row(name, &f, before.requests_per_sec);
        }
        println!("resident memory after the runs: {:.0} MiB", rss_mib());
        if o.nodes >= 2 {
            behind_proxy(dir, addr.port(), &ok.token, &record, o).await?;
        }
        served.stop().await;
        svc.store().close();
        Ok::<(), String>(())
    })
}

/// Copies a data directory for another node: configuration, keys, certificate, files.
fn copy_tree(from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let target = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_tree(&e.path(), &target)?;
        } else if e.file_name() != "mamori.lock" {
            std::fs::copy(e.path(), &target)?;
        }
    }
    Ok(())
}

/// The chart read again: one node directly, one node through nginx, then `o.nodes` nodes
/// through nginx (the others opened on copies of the data directory, in this process).
async fn behind_proxy(
    dir: &std::path::Path,
    first: u16,
    token: &str,
    record: &i64,
    o: &Options,
) -> Result<(), String> {
    let mut ports = vec![first];
    let mut others = Vec::new();
    for n in 2..=o.nodes {
        let copy = dir.with_file_name(format!("node{n}"));
        copy_tree(dir, &copy).map_err(|e| e.to_string())?;
        let svc = mamori_service::instance::open(&copy).map_err(|e| e.message)?;
        let served = Served::start(&svc).await?;
        ports.push(served.addr.port());
        others.push((svc, served));
    }
    let path = format!("/api/v1/records/{record}");
    let direct = wrk_async(
        &format!("http://127.0.0.1:{first}{path}"),
        token,
        o.connections,
        o.seconds,
        None,
    )
    .await?;
    println!();
    println!(
        "chart reads on PostgreSQL through nginx (÷direct: against one node read directly, same run)"
    );
    header("÷direct");
    row("one node, direct", &direct, direct.requests_per_sec);
    for (label, upstreams) in [
        ("one node, via nginx".to_owned(), &ports[..1]),
        (format!("{} nodes, via nginx", ports.len()), &ports[..]),
    ] {
        let proxy = mamori_testkit::nginx::Proxy::start(upstreams);
        let f = wrk_async(
            &format!("http://127.0.0.1:{}{path}", proxy.port()),
            token,
            o.connections,
            o.seconds,
            None,
        )
        .await?;
        row(&label, &f, direct.requests_per_sec);
    }
    for (svc, served) in others {
        served.stop().await;
        svc.store().close();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wrk_latency_output() {
        let out = "Running 2s test @ http://127.0.0.1:1/api/v1/health\n  2 threads and 8 connections\n  Thread Stats   Avg      Stdev     Max   +/- Stdev\n    Latency   101.00us   20.00us   1.20ms   90.00%\n  Latency Distribution\n     50%   95.00us\n     75%  110.00us\n     90%  130.00us\n     99%    1.02ms\n  123456 requests in 2.00s, 10.00MB read\n  Socket errors: connect 0, read 1, write 0, timeout 2\n  Non-2xx or 3xx responses: 5\nRequests/sec:  61728.00\nTransfer/sec:      5.00MB\n";
        let f = parse_wrk(out).unwrap();
        assert_eq!(f.requests_per_sec, 61728.0);
        assert!((f.p50_ms - 0.095).abs() < 1e-9 && (f.p99_ms - 1.02).abs() < 1e-9);
        assert_eq!((f.non_2xx, f.errors), (5, 3));
        assert_eq!(millis("1.5s"), Some(1500.0));
        assert!(parse_wrk("nothing").is_none());
    }
}
