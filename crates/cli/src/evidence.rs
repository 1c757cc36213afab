//! `mamori evidence` and `mamori export`: verification of signatures, time-stamps and evidence
//! records, and export bundles. Both read the instance without its writer, so they run beside a
//! live server; what they do is recorded in the ledger (or the outbox `serve` ingests).

use mamori_service::ErrorCode;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use mamori_domain::audit::actions;
use mamori_evidence::format_time;
use mamori_service::evidence::read::{Anchors, EvidenceReport, verify_evidence};
use mamori_service::ledger::operator::{Act, Journal, Recorded};
use mamori_service::records::export::{Access, BundleInfo, Scope, write_bundle};
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
    /// Retry time-stamps, seal and renew now (the server does this on its own every minute;
    /// this is for an instance that is not being served). It never signs: only a signer does.
    Seal {
        #[arg(long, env = "MAMORI_DATA")]
        data: PathBuf,
    },
    /// Import a staff member's signing certificate and key from PKCS#12 (e.g. HPKI) into a
    /// PKCS#11 token of its own under the holder's signing PIN; it must chain to the facility CA
    /// or evidence.signer_trust. Nothing of the key stays in a file. The server must be stopped.
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
        /// The holder's new signing PIN: a file, or `-` for the holder to type it on standard
        /// input (never given on the command line).
        #[arg(long)]
        pin_file: PathBuf,
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
    /// One finalised version's signed PDF (PAdES), checked before it is written.
    Pdf {
        id: i64,
        #[arg(long)]
        version: i64,
        /// The SHA-256 of an uploaded PDF attachment the author signed (default: the letter).
        #[arg(long)]
        attachment: Option<String>,
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
    let ro = mamori_service::instance::read_only(data).map_err(|e| {
        ServiceError::new(
            ErrorCode::NoInstance,
            format!("データベースを開けません: {e}"),
        )
    })?;
    let blobs = mamori_service::instance::blob_store(data)?;
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
    let pdfs: Vec<&str> = rep
        .items
        .iter()
        .flat_map(|i| {
            i.pdf
                .as_deref()
                .into_iter()
                .chain(i.signed_attachments.iter().map(|a| a.level.as_str()))
        })
        .collect();
    if !pdfs.is_empty() {
        let lta = pdfs.iter().filter(|l| **l == "PAdES-B-LTA").count();
        println!(
            "署名付き PDF {} 件を検証しました（うち PAdES-B-LTA {lta} 件）。",
            pdfs.len()
        );
    }
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
                "record": record,
                "checked": rep.checked,
                "ok": rep.ok,
                "pending": rep.pending,
                "unsigned": rep.unsigned,
                "failed": rep.failed,
            });
            if let Err(e) = Journal::open(&data).and_then(|j| {
                let r = j.record(Act::new(actions::EVIDENCE_VERIFIED, detail));
                j.close();
                r
            }) {
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
            pin_file,
        } => import_key(&data, &login, &p12, &password_file, &pin_file),
        EvidenceCmd::Seal { data } => {
            let swept = with_instance(&data, |svc| async move { svc.evidence_sweep(true).await });
            match swept {
                Ok(r) => {
                    println!(
                        "タイムスタンプ {} 件（失敗 {}）、証拠記録の作成 {}、更新 {} 件",
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
        Err(e) if e.code == ErrorCode::LockedInstance => {
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

fn import_key(
    data: &Path,
    login: &str,
    p12: &Path,
    password_file: &Path,
    pin_file: &Path,
) -> ExitCode {
    let bytes = match std::fs::read(p12) {
        Ok(b) => b,
        Err(e) => return fail(format!("{} を読めません: {e}", p12.display())),
    };
    let password = match crate::ca::password(Some(password_file)) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let pin = if pin_file == Path::new("-") {
        let mut line = String::new();
        eprint!("{login} の署名用 PIN: ");
        match std::io::stdin().read_line(&mut line) {
            Ok(_) => line.trim_end_matches(['\r', '\n']).to_owned(),
            Err(e) => return fail(format!("署名用 PIN を読めません: {e}")),
        }
    } else {
        match crate::ca::password(Some(pin_file)) {
            Ok(p) => p,
            Err(e) => return fail(e),
        }
    };
    let login = login.to_owned();
    let imported = with_instance(data, |svc| async move {
        let row = svc
            .import_signing_identity(&login, &bytes, &password, &pin)
            .await?;
        Ok((login, row))
    });
    match imported {
        Ok((login, row)) => {
            println!(
                "{login} の署名鍵をトークンに取り込みました（シリアル {}、{} まで有効）。本人が署名用 PIN で署名ウィンドウを開くと、この鍵で署名されます。元の PKCS#12 ファイルは安全に保管するか消去してください。",
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
        ExportCmd::Pdf {
            id,
            version,
            attachment,
            data,
            out,
        } => return export_pdf(id, version, attachment.as_deref(), &data, &out),
    };
    match export_recorded(&data, &out, &scope) {
        Ok((n, sha, recorded)) => {
            if recorded == Recorded::Outbox {
                eprintln!("（稼働中のサーバが台帳に記録します）");
            }
            println!(
                "{} に記録 {n} 件の証拠一式を書き出しました（SHA-256 {sha}）。検証: unzip して sh verify.sh",
                out.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

/// The bundle is written beside `out` under a temporary name, recorded in the ledger (or the
/// outbox) with its digest, and only then given its name: if the record cannot be written the
/// bundle never appears.
fn export_recorded(
    data: &Path,
    out: &Path,
    scope: &Scope,
) -> Result<(usize, String, Recorded), String> {
    let journal = Journal::open(data).map_err(|e| {
        format!("台帳に記録できないため書き出しません（記録してから書き出す決まりです）: {e}")
    })?;
    let result = (|| {
        let (ro, blobs, anchors, cfg) = open(data).map_err(|e| e.to_string())?;
        // The name is taken first, so that an existing file is never overwritten.
        reserve(out)?;
        let tmp = partial_name(out);
        let written = (|| -> Result<(usize, Option<String>), String> {
            let file = create_private(&tmp)?;
            let info = BundleInfo {
                facility: &cfg.facility.name,
                exported_by: "コマンドライン (mamori export)",
                now: now_ms(),
            };
            let allow = |_: &mamori_store::RecordRow| Ok(());
            // From the command line, what the records are: finalised versions, never anyone's
            // draft.
            let sees = |v: &mamori_store::VersionRow| v.state == "finalised";
            let r = ro.get();
            let patient = match scope {
                Scope::Record(id) => r
                    .record(*id)
                    .map_err(|e| e.to_string())?
                    .map(|rec| rec.patient_id),
                Scope::Patient(p) => Some(p.clone()),
            };
            let mut w = std::io::BufWriter::new(file);
            let n = write_bundle(
                &r,
                &blobs,
                &anchors,
                &info,
                scope,
                &Access {
                    allow: &allow,
                    sees: &sees,
                },
                &mut w,
            )
            .map_err(|e| e.to_string())?;
            w.into_inner()
                .map_err(|e| e.to_string())?
                .sync_all()
                .map_err(|e| e.to_string())?;
            Ok((n, patient))
        })();
        let (n, patient) = match written {
            Ok(x) => x,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                let _ = std::fs::remove_file(out);
                return Err(e);
            }
        };
        let record = match scope {
            Scope::Record(id) => Some(*id),
            Scope::Patient(_) => None,
        };
        let (sha, recorded) = record_then_name(&journal, &tmp, out, |sha, bytes| Act {
            action: actions::RECORD_EXPORT,
            patient: patient.clone(),
            record,
            detail: serde_json::json!({
                "format": "evidence_bundle",
                "records": n,
                "bundle_sha256": sha,
                "bytes": bytes,
            }),
        })?;
        Ok((n, sha, recorded))
    })();
    journal.close();
    result
}

/// The finished file at `tmp` is hashed, recorded in the ledger (or the outbox) by `act`, and
/// only then given its name `out`; anything that fails removes both.
fn record_then_name(
    journal: &Journal,
    tmp: &Path,
    out: &Path,
    act: impl FnOnce(&str, u64) -> Act,
) -> Result<(String, Recorded), String> {
    let cleanup = || {
        let _ = std::fs::remove_file(tmp);
        let _ = std::fs::remove_file(out);
    };
    let (sha, bytes) = sha256_file(tmp).inspect_err(|_| cleanup())?;
    let recorded = journal.record(act(&sha, bytes)).map_err(|e| {
        cleanup();
        format!("台帳に記録できなかったため、書き出したものを消しました: {e}")
    })?;
    std::fs::rename(tmp, out).map_err(|e| format!("{} に置けません: {e}", out.display()))?;
    Ok((sha, recorded))
}

/// `mamori export pdf`: a version's signed PDF, checked (its hash against the row, every
/// PAdES signature against the facility's anchors) before it is written, and recorded like
/// any export.
pub fn export_pdf(
    id: i64,
    version: i64,
    attachment: Option<&str>,
    data: &Path,
    out: &Path,
) -> ExitCode {
    let source = attachment
        .map(str::to_ascii_lowercase)
        .unwrap_or_else(|| mamori_store::SIGNED_PDF_LETTER.to_owned());
    let done = (|| -> Result<(String, String, Recorded), String> {
        let journal = Journal::open(data).map_err(|e| {
            format!("台帳に記録できないため書き出しません（記録してから書き出す決まりです）: {e}")
        })?;
        let result = (|| {
            let (ro, blobs, anchors, _) = open(data).map_err(|e| e.to_string())?;
            let r = ro.get();
            let rec = r
                .record(id)
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("記録 {id} はありません"))?;
            let row = r
                .signed_pdf(id, version, &source)
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("記録 {id} 第 {version} 版の署名付き PDF はありません"))?;
            let bytes = blobs.get(&row.pdf_sha256).map_err(|e| e.to_string())?;
            if hex::encode(mamori_evidence::sha256(&bytes)) != row.pdf_sha256 {
                return Err("署名付き PDF のファイルが記録と一致しません（改ざんの疑い）".into());
            }
            let signers = anchors.for_pdf(row.attachment().is_some());
            let reports = mamori_evidence::pades::verify(&bytes, &signers, &anchors.tsa)
                .map_err(|e| format!("署名付き PDF の署名を検証できません: {}", e.message))?;
            let level = reports
                .iter()
                .map(|x| x.level.clone())
                .collect::<Vec<_>>()
                .join(" + ");
            reserve(out)?;
            let tmp = partial_name(out);
            let written = (|| -> Result<(), String> {
                let mut f = create_private(&tmp)?;
                std::io::Write::write_all(&mut f, &bytes).map_err(|e| e.to_string())?;
                f.sync_all().map_err(|e| e.to_string())
            })();
            if let Err(e) = written {
                let _ = std::fs::remove_file(&tmp);
                let _ = std::fs::remove_file(out);
                return Err(e);
            }
            let (sha, recorded) = record_then_name(&journal, &tmp, out, |sha, size| Act {
                action: actions::RECORD_EXPORT,
                patient: Some(rec.patient_id.clone()),
                record: Some(id),
                detail: serde_json::json!({
                    "format": "pdf",
                    "version": version,
                    "attachment_sha256": row.attachment(),
                    "pdf_sha256": sha,
                    "bytes": size,
                }),
            })?;
            Ok((sha, level, recorded))
        })();
        journal.close();
        result
    })();
    match done {
        Ok((sha, level, recorded)) => {
            if recorded == Recorded::Outbox {
                eprintln!("（稼働中のサーバが台帳に記録します）");
            }
            println!(
                "{} に記録 {id} 第 {version} 版の署名付き PDF（{level}）を書き出しました（SHA-256 {sha}）",
                out.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

fn reserve(out: &Path) -> Result<(), String> {
    create_private(out)
        .map(drop)
        .map_err(|e| format!("{e}（既にあるファイルは上書きしません）"))
}

fn partial_name(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    out.with_file_name(format!(".{name}.partial"))
}

/// A new file only its owner can read; never an existing one.
pub(crate) fn create_private(path: &Path) -> Result<std::fs::File, String> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path)
        .map_err(|e| format!("{} を作れません: {e}", path.display()))
}

/// The digest of a file read in blocks: a bundle of a long chart need not fit in memory.
fn sha256_file(path: &Path) -> Result<(String, u64), String> {
    use sha2::Digest;
    use std::io::Read;
    let mut f =
        std::fs::File::open(path).map_err(|e| format!("{} を読めません: {e}", path.display()))?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| format!("{} を読めません: {e}", path.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        total += n as u64;
    }
    Ok((hex::encode(h.finalize()), total))
}
