//! `mamori backup …` and `mamori restore`: thin over mamori_service::backup. The key comes from
//! `--key-file` or MAMORI_BACKUP_PASSPHRASE and is never asked for interactively, so that the
//! same commands run from cron, systemd timers and the tests.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;

use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use mamori_backup::{KeyFile, Progress};
use mamori_domain::audit::actions;
use mamori_service::backup::{self as svc_backup, target_label};
use mamori_service::ledger::operator::{Act, Journal, Recorded};

use crate::fail;

#[derive(Args, Clone)]
pub struct KeyArgs {
    /// The backup key file (`mamori backup keygen`); or set MAMORI_BACKUP_PASSPHRASE.
    #[arg(long, env = "MAMORI_BACKUP_KEY_FILE")]
    key_file: Option<PathBuf>,
}

impl KeyArgs {
    fn material(&self) -> Result<mamori_backup::KeyMaterial, String> {
        svc_backup::key_material(
            self.key_file.as_deref(),
            std::env::var("MAMORI_BACKUP_PASSPHRASE").ok(),
        )
        .map_err(|e| e.to_string())
    }
}

#[derive(Subcommand)]
pub enum BackupCmd {
    /// Create a backup key file and print it for the key ceremony (store the print offline).
    Keygen {
        #[arg(long)]
        out: PathBuf,
    },
    /// Take a snapshot of the instance (the server may keep running) to each target.
    Run {
        #[arg(long, env = "MAMORI_DATA")]
        data: PathBuf,
        /// A directory or s3://bucket/prefix?endpoint=…&lock_days=…; repeatable. Default: the
        /// targets in mamori.toml.
        #[arg(long)]
        target: Vec<String>,
        #[command(flatten)]
        key: KeyArgs,
        /// Generations to keep afterwards (default: backup.keep in mamori.toml).
        #[arg(long)]
        keep: Option<u32>,
        /// Leave the instance's keys out (they must then be kept and restored separately).
        #[arg(long)]
        no_keys: bool,
        #[arg(long)]
        json: bool,
    },
    /// List the snapshots in a target.
    List {
        #[arg(long)]
        target: String,
        #[command(flatten)]
        key: KeyArgs,
        #[arg(long)]
        json: bool,
    },
    /// Read back and check every chunk (or a random sample with --quick).
    Verify {
        #[arg(long)]
        target: String,
        #[arg(long)]
        snapshot: Option<String>,
        #[arg(long)]
        quick: bool,
        #[command(flatten)]
        key: KeyArgs,
        /// The instance whose ledger records the result.
        #[arg(long, env = "MAMORI_DATA")]
        data: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Restore drill: restore into scratch space, start and verify it, compare with the
    /// manifest, report the recovery time, and record the drill in the ledger.
    Drill {
        #[arg(long)]
        target: String,
        #[arg(long)]
        snapshot: Option<String>,
        #[command(flatten)]
        key: KeyArgs,
        #[arg(long, env = "MAMORI_DATA")]
        data: Option<PathBuf>,
        /// Where to restore for the drill (default: the system's temporary directory).
        #[arg(long)]
        scratch: Option<PathBuf>,
        /// Keep the restored copy for inspection.
        #[arg(long)]
        keep: bool,
        #[arg(long)]
        json: bool,
    },
    /// Keep the newest N snapshots and remove what nothing else needs (locked objects stay).
    Prune {
        #[arg(long)]
        target: String,
        #[arg(long)]
        keep: u32,
        #[command(flatten)]
        key: KeyArgs,
        /// The instance whose ledger records the plan before anything is deleted (required).
        #[arg(long, env = "MAMORI_DATA")]
        data: PathBuf,
    },
    /// Record that the newest snapshot of a target went onto a medium that is now disconnected.
    Offline {
        #[arg(long, env = "MAMORI_DATA")]
        data: PathBuf,
        #[arg(long)]
        target: String,
        /// The medium's label (e.g. "USB-2 月曜").
        #[arg(long)]
        medium: String,
        #[arg(long, default_value = "")]
        note: String,
        #[command(flatten)]
        key: KeyArgs,
    },
}

/// A bar with throughput on a terminal; a summary line otherwise.
struct Bar(Mutex<Option<ProgressBar>>);

impl Bar {
    fn new() -> Self {
        Bar(Mutex::new(None))
    }
}

impl Progress for Bar {
    fn start(&self, what: &str, total: u64) {
        let pb = ProgressBar::new(total);
        pb.set_style(
            ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} 残り {eta}",
            )
            .expect("template")
            .progress_chars("=> "),
        );
        pb.set_message(what.to_owned());
        *self.0.lock().expect("bar") = Some(pb);
    }
    fn advance(&self, bytes: u64) {
        if let Some(pb) = &*self.0.lock().expect("bar") {
            pb.inc(bytes);
        }
    }
    fn finish(&self) {
        if let Some(pb) = self.0.lock().expect("bar").take() {
            pb.finish_and_clear();
        }
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / 1048576.0)
}

/// Records the outcome of what already happened (a run, a check); a failure to record is
/// reported, not hidden.
fn record(data: Option<&Path>, action: &'static str, detail: serde_json::Value) {
    let Some(dir) = data else { return };
    match record_act(dir, action, detail) {
        Ok(Recorded::Outbox) => eprintln!("（稼働中のサーバが台帳に記録します）"),
        Ok(Recorded::Ledger) => eprintln!("台帳に記録しました"),
        Err(e) => eprintln!("注意: 台帳に記録できませんでした: {e}"),
    }
}

fn record_act(
    dir: &Path,
    action: &'static str,
    detail: serde_json::Value,
) -> Result<Recorded, mamori_service::ServiceError> {
    let journal = Journal::open(dir)?;
    let r = journal.record(Act::new(action, detail));
    journal.close();
    r
}

fn print_json(v: &impl serde::Serialize) {
    println!("{}", serde_json::to_string_pretty(v).expect("serialises"));
}

pub fn run(cmd: BackupCmd) -> ExitCode {
    match run_inner(cmd) {
        Ok(code) => code,
        Err(e) => fail(e),
    }
}

fn run_inner(cmd: BackupCmd) -> Result<ExitCode, String> {
    match cmd {
        BackupCmd::Keygen { out } => {
            let key = KeyFile::generate();
            write_new_private(&out, key.to_text().as_bytes())?;
            println!("バックアップ鍵を作りました: {}", out.display());
            println!("鍵の識別子: {}", key.fingerprint());
            println!();
            println!(
                "― 鍵の儀式 ― 次の内容を印刷し、封筒に入れて金庫など施設外からも分かる場所に保管してください。"
            );
            println!("この鍵がなければ、どのバックアップも復元できません。");
            println!();
            print!("{}", key.to_text());
            Ok(ExitCode::SUCCESS)
        }
        BackupCmd::Run {
            data,
            target,
            key,
            keep,
            no_keys,
            json,
        } => {
            let cfg = mamori_service::Config::load(&data).map_err(|e| e.to_string())?;
            let targets = if target.is_empty() {
                cfg.backup.target_list()
            } else {
                target
            };
            if targets.is_empty() {
                return Err(
                    "バックアップ先がありません。--target か mamori.toml の [backup] targets で指定してください"
                        .into(),
                );
            }
            let material = key.material()?;
            let keep = keep.unwrap_or(cfg.backup.keep);
            let mut failed = false;
            let mut runs = Vec::new();
            for t in &targets {
                let label = target_label(t);
                let bar = Bar::new();
                match svc_backup::run_backup(&data, t, &material, !no_keys, Some(keep), &bar) {
                    Ok(run) => {
                        let o = &run.outcome;
                        if !json {
                            println!(
                                "{label}: スナップショット {}  {} ファイル（変更なし {}） {} を {:.1} 秒（{:.0} MiB/秒）、新たに保存 {}",
                                o.snapshot,
                                o.files,
                                o.files_unchanged,
                                mib(o.total_bytes),
                                o.seconds,
                                o.read_bytes as f64 / 1048576.0 / o.seconds.max(0.001),
                                mib(o.stored_bytes)
                            );
                            if let Some(until) = &o.locked_until {
                                println!(
                                    "  書き込み禁止（COMPLIANCE）: {until} まで削除・上書きできません"
                                );
                            }
                            if let Some(p) = &run.pruned
                                && (!p.removed.is_empty() || !p.still_locked.is_empty())
                            {
                                println!(
                                    "  世代管理: {} 世代を保持、{} 件を削除、ロック中のため残した {} 件",
                                    p.kept.len(),
                                    p.removed.len(),
                                    p.still_locked.len()
                                );
                            }
                        }
                        let mut d = run.detail();
                        d["target_spec"] = label.clone().into();
                        record(Some(&data), actions::BACKUP_COMPLETED, d);
                        runs.push(serde_json::to_value(&run).expect("serialises"));
                    }
                    Err(e) => {
                        failed = true;
                        eprintln!("エラー: {label}: {e}");
                        record(
                            Some(&data),
                            actions::BACKUP_FAILED,
                            serde_json::json!({"target": label, "target_spec": label, "error": e.message, "code": e.code}),
                        );
                    }
                }
            }
            if json {
                print_json(&runs);
            }
            Ok(if failed {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        BackupCmd::List { target, key, json } => {
            let repo = svc_backup::open_repository(&target, &key.material()?)
                .map_err(|e| e.to_string())?;
            let list = repo.snapshots().map_err(|e| e.to_string())?;
            if json {
                print_json(&list);
            } else {
                println!(
                    "{:<25} {:<21} {:>6} {:>12} {:>9}  ロック期限",
                    "スナップショット", "作成 (UTC)", "ファイル", "大きさ", "台帳"
                );
                for s in &list {
                    println!(
                        "{:<25} {:<21} {:>6} {:>12} {:>9}  {}",
                        s.id,
                        s.created_at,
                        s.files,
                        mib(s.total_bytes),
                        s.facts["ledger_size"].as_u64().unwrap_or(0),
                        s.locked_until.clone().unwrap_or_else(|| "-".into())
                    );
                }
                println!("{} 世代", list.len());
            }
            Ok(ExitCode::SUCCESS)
        }
        BackupCmd::Verify {
            target,
            snapshot,
            quick,
            key,
            data,
            json,
        } => {
            let repo = svc_backup::open_repository(&target, &key.material()?)
                .map_err(|e| e.to_string())?;
            let bar = Bar::new();
            let out = mamori_backup::verify(&repo, snapshot.as_deref(), quick, None, &bar)
                .map_err(|e| e.to_string())?;
            if json {
                print_json(&out);
            } else {
                println!(
                    "{} スナップショット、パック {}/{}、チャンク {} を確認（{}、{:.1} 秒）",
                    out.snapshots,
                    out.packs_checked,
                    out.packs_total,
                    out.chunks_checked,
                    mib(out.bytes_read),
                    out.seconds
                );
                if out.ok {
                    println!("検証結果: OK");
                } else {
                    println!("検証結果: NG — {} 件の問題:", out.problems.len());
                    for p in &out.problems {
                        println!("  - {p}");
                    }
                }
            }
            record(
                data.as_deref(),
                actions::BACKUP_VERIFIED,
                serde_json::json!({"target": target_label(&target), "ok": out.ok, "quick": quick,
                    "snapshots": out.snapshots, "packs_checked": out.packs_checked,
                    "problems": out.problems.iter().take(20).collect::<Vec<_>>()}),
            );
            Ok(if out.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        BackupCmd::Drill {
            target,
            snapshot,
            key,
            data,
            scratch,
            keep,
            json,
        } => {
            let scratch = scratch.unwrap_or_else(std::env::temp_dir);
            let bar = Bar::new();
            let report = match svc_backup::drill(
                &target,
                snapshot.as_deref(),
                &key.material()?,
                &scratch,
                keep,
                &bar,
            ) {
                Ok(r) => r,
                Err(e) => {
                    record(
                        data.as_deref(),
                        actions::BACKUP_DRILL,
                        serde_json::json!({"ok": false, "target": target_label(&target),
                            "snapshot": snapshot, "problems": [e.message.clone()]}),
                    );
                    return Err(e.to_string());
                }
            };
            if json {
                print_json(&report);
            } else {
                println!(
                    "復元訓練: {} のスナップショット {}（{} 作成）",
                    report.target, report.snapshot, report.snapshot_created_at
                );
                println!(
                    "  復元 {:.1} 秒 → 検証 {:.1} 秒、合計（復旧時間）{:.1} 秒、{} ファイル {}",
                    report.restore_seconds,
                    report.verify_seconds,
                    report.seconds,
                    report.files,
                    mib(report.bytes)
                );
                println!(
                    "  起動: {}  検証: {}  台帳 {} 件 root {}: {}  記録の版: {}",
                    ok_ng(report.started),
                    ok_ng(report.verify_ok),
                    report.ledger_size,
                    report.ledger_root,
                    if report.ledger_matches {
                        "目録と一致"
                    } else {
                        "不一致"
                    },
                    if report.records_match {
                        "目録と一致"
                    } else {
                        "不一致"
                    }
                );
                for p in &report.problems {
                    println!("  - {p}");
                }
                if let Some(at) = &report.kept_at {
                    println!("  復元したコピー: {}", at.display());
                }
                println!(
                    "結果: {}",
                    if report.ok {
                        "OK — この世代から復旧できます"
                    } else {
                        "NG"
                    }
                );
            }
            record(data.as_deref(), actions::BACKUP_DRILL, report.detail());
            Ok(if report.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        BackupCmd::Prune {
            target,
            keep,
            key,
            data,
        } => {
            let (out, unrecorded) =
                svc_backup::prune_recorded(&data, &target, &key.material()?, keep)
                    .map_err(|e| e.to_string())?;
            println!(
                "{} 世代を保持、{} 件を削除、ロック中で残した {} 件、パック {} 個（{}）を削除",
                out.kept.len(),
                out.removed.len(),
                out.still_locked.len(),
                out.packs_removed,
                mib(out.bytes_freed)
            );
            if let Some(e) = unrecorded {
                eprintln!("注意: 削除の計画は台帳にありますが、結果を記録できませんでした: {e}");
                return Ok(ExitCode::from(1));
            }
            Ok(ExitCode::SUCCESS)
        }
        BackupCmd::Offline {
            data,
            target,
            medium,
            note,
            key,
        } => {
            let repo = svc_backup::open_repository(&target, &key.material()?)
                .map_err(|e| e.to_string())?;
            let snapshot = repo.resolve(None).map_err(|e| e.to_string())?;
            let medium = medium.trim().to_owned();
            if medium.is_empty() {
                return Err("--medium に媒体のラベルを指定してください".into());
            }
            // Here the record is the act: it must be in the ledger (or the outbox).
            record_act(
                &data,
                actions::BACKUP_OFFLINE,
                serde_json::json!({"target": target_label(&target), "medium": medium,
                    "snapshot": snapshot, "note": note}),
            )
            .map_err(|e| format!("台帳に記録できませんでした: {e}"))?;
            println!(
                "記録: スナップショット {snapshot} を媒体「{medium}」に保管し、切り離しました"
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn ok_ng(b: bool) -> &'static str {
    if b { "OK" } else { "NG" }
}

/// `mamori restore`: a snapshot into a new instance directory.
pub fn restore(target: &str, snapshot: &str, to: &Path, key: &KeyArgs) -> ExitCode {
    let result = (|| -> Result<(), String> {
        let bar = Bar::new();
        let (out, recorded) =
            svc_backup::restore_recorded(target, snapshot, to, &key.material()?, &bar)
                .map_err(|e| e.to_string())?;
        println!(
            "復元しました: スナップショット {} → {}（{} ファイル、{}、{:.1} 秒）",
            out.snapshot,
            to.display(),
            out.files,
            mib(out.bytes),
            out.seconds
        );
        let facts = &out.manifest.facts;
        println!(
            "目録の台帳: {} 件 root {}",
            facts["ledger_size"],
            facts["ledger_root"].as_str().unwrap_or("")
        );
        match recorded {
            Recorded::Ledger => println!("復元は復元先の台帳に記録しました"),
            Recorded::Outbox => println!(
                "鍵のないバックアップでした。鍵を keys/ に戻して最初に起動したとき、復元が台帳に記録されます"
            ),
        }
        println!("確認: mamori verify --data {}", to.display());
        Ok(())
    })();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

fn write_new_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write;
    let mut f = crate::evidence::create_private(path)
        .map_err(|e| format!("{e}（既にあるなら上書きしません）"))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| format!("{} に書けません: {e}", path.display()))
}
