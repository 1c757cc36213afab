//! `mamori bench backup`: builds an instance with a realistic mix (many small records, some
//! multi-megabyte scans and PDFs), then in one run backs it up with mamori and with restic to
//! local directories, changes 1 % of the records, backs up again, and restores both.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use mamori_backup::engine::NoProgress;
use mamori_service::access::accounts::NewAccount;
use mamori_service::instance::{InitParams, init, open_with};
use mamori_service::records::patients::NewPatient;
use mamori_service::records::{RecordInput, Upload};
use mamori_service::{Principal, Service};
use mamori_store::{Durability, StoreOptions};
use rand_like::Lcg;

const PW: &str = "benchmark passphrase 1";
const RESTIC_PASSWORD: &str = "benchmark restic password";

type R<T> = Result<T, String>;

fn e(x: impl std::fmt::Display) -> String {
    x.to_string()
}

/// A small deterministic generator: the same instance on every run, without a dependency.
mod rand_like {
    pub struct Lcg(pub u64);
    impl Lcg {
        pub fn next(&mut self) -> u64 {
            // xorshift64*: fast, and its output does not compress.
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        pub fn fill(&mut self, buf: &mut [u8]) {
            for chunk in buf.chunks_mut(8) {
                let v = self.next().to_le_bytes();
                chunk.copy_from_slice(&v[..chunk.len()]);
            }
        }
    }
}

fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let p = entry.path();
            if p.is_dir() {
                total += dir_size(&p);
            } else if let Ok(m) = entry.metadata() {
                total += m.len();
            }
        }
    }
    total
}

fn gib(bytes: u64) -> String {
    format!("{:.2} GiB", bytes as f64 / (1u64 << 30) as f64)
}

/// A scanned page (JPEG: incompressible) or a PDF (text with embedded compressed streams).
fn attachment(rng: &mut Lcg, i: usize, size: usize) -> Upload {
    let mut bytes = vec![0u8; size];
    rng.fill(&mut bytes);
    if i.is_multiple_of(2) {
        bytes[..3].copy_from_slice(&[0xFF, 0xD8, 0xFF]);
        Upload {
            name: format!("scan-{i}.jpg"),
            bytes,
        }
    } else {
        let text = format!("%PDF-1.7\n% 紹介状 {i}\n").repeat(1 + size / 400);
        let n = (size * 4 / 10).min(text.len());
        bytes[..n].copy_from_slice(&text.as_bytes()[..n]);
        Upload {
            name: format!("letter-{i}.pdf"),
            bytes,
        }
    }
}

async fn fill(svc: &Arc<Service>, records: usize, attach_bytes: u64) -> R<(Principal, Vec<i64>)> {
    let ok = svc
        .change_password("admin", "initial passphrase 1", PW, None)
        .await
        .map_err(e)?;
    let admin = svc.authenticate(&ok.token, None).await.map_err(e)?;
    svc.create_account(
        &admin,
        NewAccount {
            login: "dr.bench".into(),
            display_name: "医師".into(),
            role: "doctor".into(),
            password: Some("temporary pass 1234".into()),
            service: false,
        },
    )
    .await
    .map_err(e)?;
    svc.change_password("dr.bench", "temporary pass 1234", PW, None)
        .await
        .map_err(e)?;
    let dr = svc
        .authenticate(
            &svc.login("dr.bench", PW, None).await.map_err(e)?.token,
            None,
        )
        .await
        .map_err(e)?;
    let patients = (records / 40).max(1);
    for p in 0..patients {
        svc.create_patient(
            &dr,
            NewPatient {
                id: format!("P{p:05}"),
                name_kanji: format!("患者 {p}"),
                name_kana: "カンジャ".into(),
                birth_date: "1960-04-01".into(),
                sex: if p % 2 == 0 { "male" } else { "female" }.into(),
            },
        )
        .await
        .map_err(e)?;
    }
    // Attachments of 1–6 MiB on every k-th record until the size is reached.
    let mut rng = Lcg(0x9E37_79B9_7F4A_7C15);
    let mut attached = 0u64;
    let mut ids = Vec::with_capacity(records);
    let workers = 8;
    let per = records.div_ceil(workers);
    let every = (records as u64 * 3_500_000 / attach_bytes.max(1)).max(1) as usize;
    let mut plans: Vec<Vec<(usize, Option<Upload>)>> = vec![Vec::new(); workers];
    for i in 0..records {
        let up = if i % every == 0 && attached < attach_bytes {
            let size = 1_048_576 + (rng.next() % (5 * 1_048_576)) as usize;
            attached += size as u64;
            Some(attachment(&mut rng, i, size))
        } else {
            None
        };
        plans[i / per].push((i, up));
    }
    let mut tasks = Vec::new();
    for plan in plans {
        let (svc, dr) = (svc.clone(), dr.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for (i, up) in plan {
                let input = RecordInput {
                    patient_id: format!("P{:05}", i % patients),
                    kind: "medical_record".into(),
                    title: format!("外来記録 {i}"),
                    body: format!(
                        "S: 咳嗽と微熱が{}日続く。\\nO: 体温 37.{}℃、咽頭発赤あり、肺音清。\\nA: 急性上気道炎。\\nP: 対症療法、{}日後に再診。",
                        i % 7 + 1,
                        i % 10,
                        i % 5 + 2
                    )
                    .repeat(1 + i % 6),
                    ..Default::default()
                };
                let w = svc
                    .create_record(&dr, input, up.into_iter().collect())
                    .await
                    .map_err(e)?;
                svc.finalise_record(&dr, w.record_id).await.map_err(e)?;
                out.push(w.record_id);
            }
            Ok::<_, String>(out)
        }));
    }
    for t in tasks {
        ids.extend(t.await.map_err(e)??);
    }
    Ok((dr, ids))
}

fn restic(args: &[&str], repo: &Path, cache: &Path) -> R<f64> {
    let t = Instant::now();
    let o = Command::new("restic")
        .args(args)
        .arg("--repo")
        .arg(repo)
        .arg("--quiet")
        .env("RESTIC_PASSWORD", RESTIC_PASSWORD)
        .env("RESTIC_CACHE_DIR", cache)
        .output()
        .map_err(|x| format!("restic (apt-get install restic): {x}"))?;
    if !o.status.success() {
        return Err(format!(
            "restic {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        ));
    }
    Ok(t.elapsed().as_secs_f64())
}

fn sync_disks() {
    let _ = Command::new("sync").status();
}

/// Drops `dir`'s files from the page cache (after a sync, so nothing dirty is lost): a restore
/// after an incident reads a repository nobody has touched for days. Without this, restic's
/// repository (written through the cache) would be read from memory and mamori's (written
/// past it) from disk.
fn evict(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let p = entry.path();
            if p.is_dir() {
                evict(&p);
            } else if let Ok(f) = std::fs::File::open(&p) {
                let _ = rustix::fs::fadvise(&f, 0, None, rustix::fs::Advice::DontNeed);
            }
        }
    }
}

pub fn run(attach_gib: f64, records: usize, keep: Option<PathBuf>, ledger_entries: u64) -> R<()> {
    println!("machine: {}", super::machine());
    let restic_version = Command::new("restic")
        .arg("version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .map_err(|x| {
            format!("restic is needed for the comparison (apt-get install restic): {x}")
        })?;
    println!("compared with: {restic_version}");
    let tmp = tempfile::tempdir().map_err(e)?;
    let root = keep.unwrap_or_else(|| tmp.path().to_owned());
    std::fs::create_dir_all(&root).map_err(e)?;
    let data = root.join("instance");
    let (m_repo, r_repo, cache) = (
        root.join("mamori-repo"),
        root.join("restic-repo"),
        root.join("restic-cache"),
    );
    for d in [&data, &m_repo, &r_repo, &cache] {
        let _ = std::fs::remove_dir_all(d);
    }

    // 1. The instance.
    let t = Instant::now();
    init(
        &data,
        &InitParams {
            facility: "ベンチマーク病院",
            admin_login: "admin",
            admin_password: "initial passphrase 1",
        },
    )
    .map_err(e)?;
    let svc = open_with(
        &data,
        Arc::new(mamori_domain::SystemClock),
        StoreOptions {
            durability: Durability::Normal,
            ..Default::default()
        },
        None,
    )
    .map_err(e)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(e)?;
    let attach_bytes = (attach_gib * (1u64 << 30) as f64) as u64;
    let (dr, ids) = rt.block_on(fill(&svc, records, attach_bytes))?;
    let have = svc
        .store()
        .reader()
        .map_err(e)?
        .get()
        .ledger_size()
        .map_err(e)?;
    if ledger_entries > have {
        rt.block_on(super::grow_ledger(&svc, ledger_entries - have))?;
    }
    rt.block_on(svc.checkpoint_now()).map_err(e)?;
    sync_disks();
    let size = dir_size(&data);
    println!(
        "instance: {} records, {} in all ({} database, {} attachment files), built in {:.0} s",
        ids.len(),
        gib(size),
        gib(std::fs::metadata(data.join("mamori.db"))
            .map(|m| m.len())
            .unwrap_or(0)),
        gib(dir_size(&data.join("blobs"))),
        t.elapsed().as_secs_f64()
    );

    // 2. Full backups. mamori runs beside the open instance, as it does in production.
    let key = mamori_backup::KeyMaterial {
        passphrase: None,
        key_file: Some(mamori_backup::KeyFile::generate()),
    };
    let target = m_repo.to_str().ok_or("path")?;
    // Timed from the command's start: the consistent database copy and the file listing count.
    let t = Instant::now();
    mamori_service::backup::run_backup(&data, target, &key, true, None, &NoProgress).map_err(e)?;
    let m_full = t.elapsed().as_secs_f64();
    sync_disks();
    restic(&["init"], &r_repo, &cache)?;
    let r_full = restic(&["backup", data.to_str().ok_or("path")?], &r_repo, &cache)?;
    sync_disks();
    let tp = |secs: f64| size as f64 / (1u64 << 20) as f64 / secs;
    println!();
    println!(
        "full backup     mamori {m_full:>7.2} s  {:>7.0} MiB/s   restic {r_full:>7.2} s  {:>7.0} MiB/s   mamori/restic throughput {:.2}x (goal >= 1.5x)",
        tp(m_full),
        tp(r_full),
        r_full / m_full
    );
    println!(
        "repository      mamori {}   restic {}",
        gib(dir_size(&m_repo)),
        gib(dir_size(&r_repo))
    );

    // 3. Three rounds of: 1 % of the records change (amended: a new version each), then an
    // incremental backup with each tool. The median round counts.
    let n_change = (ids.len() / 100).max(1);
    let (mut m_incrs, mut r_incrs, mut stored, mut read) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 0..3 {
        rt.block_on(async {
            for (k, id) in ids
                .iter()
                .skip(round * 7)
                .step_by(100)
                .take(n_change)
                .enumerate()
            {
                let input = RecordInput {
                    title: format!("外来記録（修正 {round}-{k}）"),
                    body: "A: 急性気管支炎に訂正。P: 抗菌薬を追加。".into(),
                    reason: Some("診断の訂正".into()),
                    ..Default::default()
                };
                svc.amend_record(&dr, *id, input, vec![]).await.map_err(e)?;
            }
            svc.checkpoint_now().await.map_err(e)?;
            Ok::<_, String>(())
        })?;
        sync_disks();
        let t = Instant::now();
        let incr = mamori_service::backup::run_backup(&data, target, &key, true, None, &NoProgress)
            .map_err(e)?;
        m_incrs.push(t.elapsed().as_secs_f64());
        stored.push(incr.outcome.stored_bytes);
        read.push(incr.outcome.read_bytes);
        sync_disks();
        r_incrs.push(restic(
            &["backup", data.to_str().ok_or("path")?],
            &r_repo,
            &cache,
        )?);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let rounds = |v: &[f64]| {
        v.iter()
            .map(|s| format!("{s:.2}"))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    println!(
        "incremental rounds (s)   mamori {}   restic {}",
        rounds(&m_incrs),
        rounds(&r_incrs)
    );
    let (m_incr, r_incr) = (median(&mut m_incrs), median(&mut r_incrs));
    let mean_mib = |v: &[u64]| v.iter().sum::<u64>() as f64 / v.len() as f64 / 1048576.0;
    println!(
        "incremental     mamori {m_incr:>7.2} s ({:.1} % of its full; goal < 5 %), read {:.1} MiB, stored {:.1} MiB   restic {r_incr:>7.2} s ({:.1} % of its full)   ({n_change} records amended per round; median of 3 rounds)",
        m_incr / m_full * 100.0,
        mean_mib(&read),
        mean_mib(&stored),
        r_incr / r_full * 100.0
    );
    svc.store().close();
    drop(svc);

    // 4. Restores of the newest snapshot into empty directories, cold (nothing cached),
    // alternating the two tools twice; the faster of each pair counts.
    let m_to = root.join("restore-mamori");
    let r_to = root.join("restore-restic");
    let repo = mamori_service::backup::open_repository(target, &key).map_err(e)?;
    let latest = repo.resolve(None).map_err(e)?;
    drop(repo);
    let (mut m_restore, mut r_restore) = (f64::MAX, f64::MAX);
    for _ in 0..2 {
        for d in [&m_to, &r_to] {
            let _ = std::fs::remove_dir_all(d);
        }
        sync_disks();
        evict(&m_repo);
        evict(&r_repo);
        let repo = mamori_service::backup::open_repository(target, &key).map_err(e)?;
        let t = Instant::now();
        mamori_backup::restore(&repo, &latest, &m_to, None, &NoProgress).map_err(e)?;
        m_restore = m_restore.min(t.elapsed().as_secs_f64());
        sync_disks();
        evict(&r_repo);
        let r = restic(
            &[
                "restore",
                "latest",
                "--target",
                r_to.to_str().ok_or("path")?,
            ],
            &r_repo,
            &cache,
        )?;
        sync_disks();
        r_restore = r_restore.min(r);
    }
    println!(
        "restore         mamori {m_restore:>7.2} s  {:>7.0} MiB/s   restic {r_restore:>7.2} s  {:>7.0} MiB/s   mamori/restic throughput {:.2}x (goal >= 1x; best of 2 each, cold cache)",
        tp(m_restore),
        tp(r_restore),
        r_restore / m_restore
    );
    let v = mamori_service::ledger::verify::verify(
        &m_to,
        &mamori_service::ledger::verify::VerifyOptions {
            external_checkpoint: None,
            trusted_key: None,
            skip_blobs: false,
        },
    )
    .map_err(e)?;
    println!(
        "restored instance verifies: {} ({} ledger entries)",
        if v.ok { "OK" } else { "NG" },
        v.ledger_entries
    );
    Ok(())
}
