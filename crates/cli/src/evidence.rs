//! `mamori evidence` and `mamori export`: verification of signatures, time-stamps and evidence
//! records, and export bundles. Both read the instance without its writer, so they run beside a
//! live server; what they do is recorded in the ledger (or the outbox `serve` ingests).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use mamori_domain::audit::actions;
use mamori_evidence::tsp::format_time;
use mamori_service::backup::record_from_cli;
use mamori_service::evidence_read::{Anchors, EvidenceReport, verify_evidence};
use mamori_service::export::{Access, BundleInfo, Scope, write_bundle};
use mamori_service::{Config, ServiceError};
use mamori_store::{BlobStore, ReadOnly};

use crate::fail;

#[derive(Subcommand)]
pub enum EvidenceCmd {
    /// Check every finalised version's signature, time-stamp, evidence record and ledger entry
    /// (or one record's). Exit 0 only if nothing failed.
    Verify {
        #[arg(long, env = "MAMORI_DATA")]
        data: PathBuf,
        #[arg(long)]
        record: Option<i64>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Sign what is unsigned, retry time-stamps, seal and renew now (the server does this on
    /// its own every minute; this is for an instance that is not being served).
    Seal {
        #[arg(long, env = "MAMORI_DATA")]
        data: PathBuf,
    },
    /// Import a staff member's signing certificate and key from PKCS#12 (e.g. HPKI); it must
    /// chain to the facility CA or evidence.signer_trust. The server must be stopped.
    ImportKey {
        #[arg(long, env = "MAMORI_DATA")]
        data: PathBuf,
        #[arg(long)]
        login: String,
        #[arg(long)]
        p12: PathBuf,
        /// File holding the PKCS#12 password (never given on the command line).
        #[arg(long)]
        password_file: PathBuf,
    },
}

#[derive(Subcommand)]
pub enum ExportCmd {
    /// One record, every version, as a ZIP that verifies with OpenSSL alone.
    Record {
        id: i64,
        #[arg(long, env = "MAMORI_DATA")]
        data: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// Every record of one patient.
    Patient {
        id: String,
        #[arg(long, env = "MAMORI_DATA")]
        data: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
}

fn now_ms() -> i64 {
    use mamori_domain::Clock;
    mamori_domain::SystemClock.now()
}

fn open(data: &Path) -> Result<(ReadOnly, BlobStore, Anchors, Config), ServiceError> {
    let ro = ReadOnly::open(data)
        .map_err(|e| ServiceError::new("no_instance", format!("データベースを開けません: {e}")))?;
    let blobs = BlobStore::open(data.join("blobs"))?;
    let cfg = Config::load(data)?;
    let anchors = Anchors::load(data, &cfg.evidence)?;
    Ok((ro, blobs, anchors, cfg))
}

fn status_ja(s: &str) -> &'static str {
    match s {
        "ok" => "正常",
        "pending" => "タイムスタンプ待ち",
        "unsigned" => "未署名",
        _ => "失敗",
    }
}

fn print_report(rep: &EvidenceReport) {
    for i in &rep.items {
        let mut line = format!(
            "記録 {} 第{}版（患者 {}）: {}",
            i.record_id,
            i.version_no,
            i.patient_id,
            status_ja(i.status)
        );
        if let Some(s) = &i.signer {
            line.push_str(&format!(" — 署名者 {s}"));
        }
        if let Some(l) = i.level {
            line.push_str(&format!("、{l}"));
        }
        if let Some(t) = &i.timestamp {
            line.push_str(&format!(
                "、タイムスタンプ {}（{}{}）",
                format_time(t.gen_time),
                t.tsa_subject,
                if t.development {
                    "・開発用、法的効力なし"
                } else {
                    ""
                }
            ));
        }
        if let Some(s) = &i.sealed {
            line.push_str(&format!(
                "、証拠記録 {} 件（{}、{} まで有効）",
                s.stamps,
                s.algorithms.join("→"),
                format_time(s.renew_before)
            ));
        }
        println!("{line}");
        for p in &i.problems {
            println!("    ✗ {p}");
        }
    }
    for p in rep
        .checkpoint_problems
        .iter()
        .chain(&rep.missing_signatures)
    {
        println!("✗ {p}");
    }
    println!(
        "\n確定版 {} 件: 正常 {} / タイムスタンプ待ち {} / 未署名 {} / 失敗 {}。証拠記録で保護されたチェックポイント {} 件。",
        rep.checked, rep.ok, rep.pending, rep.unsigned, rep.failed, rep.checkpoints_sealed
    );
    if rep.development_tsa {
        println!("注意: 開発用TSA のタイムスタンプがあります（法的効力なし）。");
    }
    println!(
        "{}",
        if rep.passed() {
            "検証に成功しました。"
        } else {
            "検証に失敗した項目があります。"
        }
    );
}

pub fn run(cmd: EvidenceCmd) -> ExitCode {
    match cmd {
        EvidenceCmd::Verify { data, record, json } => {
            let (ro, blobs, anchors, _) = match open(&data) {
                Ok(x) => x,
                Err(e) => return fail(e),
            };
            let rep = match verify_evidence(&ro.get(), &blobs, &anchors, record, now_ms()) {
                Ok(r) => r,
                Err(e) => return fail(e),
            };
            drop(ro);
            if json {
                println!("{}", serde_json::to_string_pretty(&rep).unwrap_or_default());
            } else {
                print_report(&rep);
            }
            let detail = serde_json::json!({
                "by": "cli",
                "record": record,
                "checked": rep.checked,
                "ok": rep.ok,
                "pending": rep.pending,
                "unsigned": rep.unsigned,
                "failed": rep.failed,
            });
            if let Err(e) = record_from_cli(&data, actions::EVIDENCE_VERIFIED, detail) {
                eprintln!("（台帳への記録に失敗しました: {e}）");
            }
            if rep.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        EvidenceCmd::ImportKey {
            data,
            login,
            p12,
            password_file,
        } => import_key(&data, &login, &p12, &password_file),
        EvidenceCmd::Seal { data } => {
            let swept = with_instance(&data, |svc| async move { svc.evidence_sweep(true).await });
            match swept {
                Ok(r) => {
                    println!(
                        "署名 {} 件、タイムスタンプ {} 件（失敗 {}）、証拠記録の作成 {}、更新 {} 件",
                        r.signed,
                        r.timestamped,
                        r.timestamp_failures,
                        r.sealed
                            .map(|s| format!(
                                "{} 署名・{} チェックポイント",
                                s.signatures, s.checkpoints
                            ))
                            .unwrap_or_else(|| "なし".into()),
                        r.renewed.len()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
    }
}

/// Opens the instance (the server must not be running), runs one service call, closes it.
pub(crate) fn with_instance<T, F, Fut>(data: &Path, f: F) -> Result<T, String>
where
    F: FnOnce(std::sync::Arc<mamori_service::Service>) -> Fut,
    Fut: std::future::Future<Output = Result<T, ServiceError>>,
{
    let svc = match mamori_service::instance::open(data) {
        Ok(s) => s,
        Err(e) if e.code == "locked_instance" => {
            return Err(
                "サーバーが動いています。止めてから実行してください（封印と更新はサーバーが1分ごとに行い、管理 › 電子署名 の「今すぐ実行」も使えます）"
                    .into(),
            );
        }
        Err(e) => return Err(e.to_string()),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let r = rt.block_on(f(svc.clone()));
    svc.store().close();
    r.map_err(|e| e.to_string())
}

fn import_key(data: &Path, login: &str, p12: &Path, password_file: &Path) -> ExitCode {
    let bytes = match std::fs::read(p12) {
        Ok(b) => b,
        Err(e) => return fail(format!("{} を読めません: {e}", p12.display())),
    };
    let password = match crate::ca::password(Some(password_file)) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let login = login.to_owned();
    let imported = with_instance(data, |svc| async move {
        let row = svc
            .import_signing_identity(&login, &bytes, &password)
            .await?;
        Ok((login, row))
    });
    match imported {
        Ok((login, row)) => {
            println!(
                "{login} の署名鍵を取り込みました（シリアル {}、{} まで有効）。以後の確定はこの鍵で署名されます。",
                row.serial,
                format_time(row.not_after)
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

pub fn export(cmd: ExportCmd) -> ExitCode {
    let (data, out, scope) = match cmd {
        ExportCmd::Record { id, data, out } => (data, out, Scope::Record(id)),
        ExportCmd::Patient { id, data, out } => (data, out, Scope::Patient(id)),
    };
    let (ro, blobs, anchors, cfg) = match open(&data) {
        Ok(x) => x,
        Err(e) => return fail(e),
    };
    let file = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&out)
    {
        Ok(f) => f,
        Err(e) => {
            return fail(format!(
                "{} を作れません（既にあるファイルは上書きしません）: {e}",
                out.display()
            ));
        }
    };
    let info = BundleInfo {
        facility: &cfg.facility.name,
        exported_by: "コマンドライン (mamori export)",
        now: now_ms(),
    };
    let allow = |_: &mamori_store::RecordRow| Ok(());
    // From the command line, what the records are: finalised versions, never anyone's draft.
    let sees = |v: &mamori_store::VersionRow| v.state == "finalised";
    let written = write_bundle(
        &ro.get(),
        &blobs,
        &anchors,
        &info,
        &scope,
        &Access {
            allow: &allow,
            sees: &sees,
        },
        std::io::BufWriter::new(file),
    );
    drop(ro);
    let n = match written {
        Ok(n) => n,
        Err(e) => {
            let _ = std::fs::remove_file(&out);
            return fail(e);
        }
    };
    let bytes = std::fs::read(&out).unwrap_or_default();
    let sha = hex::encode(mamori_evidence::sha256(&bytes));
    let (record, patient) = match &scope {
        Scope::Record(id) => (Some(*id), None),
        Scope::Patient(p) => (None, Some(p.clone())),
    };
    let detail = serde_json::json!({
        "by": "cli",
        "format": "evidence_bundle",
        "record": record,
        "patient": patient,
        "records": n,
        "bundle_sha256": sha,
    });
    if let Err(e) = record_from_cli(&data, actions::RECORD_EXPORT, detail) {
        eprintln!("（台帳への記録に失敗しました: {e}）");
    }
    println!(
        "{} に記録 {n} 件の証拠一式を書き出しました（SHA-256 {sha}）。検証: unzip して sh verify.sh",
        out.display()
    );
    ExitCode::SUCCESS
}
