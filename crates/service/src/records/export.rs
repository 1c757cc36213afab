//! Export bundles (見読性・保存性): a self-contained ZIP of a record or a patient's records that
//! stays verifiable without mamori — every version's content and attachments, a readable HTML
//! rendering, the signed statements with their `.p7s`, signature time-stamps, evidence
//! records with each archive time-stamp and the digest it covers, ledger inclusion proofs
//! with the signed checkpoint, the trust anchors, and a README and `verify.sh` that check it
//! all with OpenSSL alone.

use crate::ErrorCode;
use std::fmt::Write as _;
use std::io::{Seek, Write};

use mamori_domain::Millis;
use mamori_domain::content::RecordContent;
use mamori_evidence::cades;
use mamori_evidence::ers::{self, HashAlg};
use mamori_ledger::{inclusion_proof, leaf_hash, root_at};
use mamori_store::{BlobStore, Reader, RecordRow, SignatureRow, VersionRow};
use zip::write::SimpleFileOptions;

use crate::error::{Result, ServiceError};
use crate::evidence::Member;
use crate::evidence::read::{Anchors, check_version, evidence_record};

/// What to export.
#[derive(Debug, Clone)]
pub enum Scope {
    Record(i64),
    Patient(String),
}

/// Who exports, and for which facility (shown in the bundle).
pub struct BundleInfo<'a> {
    pub facility: &'a str,
    pub exported_by: &'a str,
    pub now: Millis,
}

fn zip_err(e: impl std::fmt::Display) -> ServiceError {
    ServiceError::new(
        ErrorCode::Export,
        format!("エクスポートの作成に失敗しました: {e}"),
    )
}

use mamori_domain::html::escape as esc;

fn time_jst(ms: Millis) -> String {
    format!("{} JST", crate::ledger::audit::jst(ms))
}

/// A file name from an attachment's name: no directories, nothing odd.
fn safe_name(name: &str) -> String {
    let n: String = name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    n.trim_start_matches('.').chars().take(100).collect()
}

struct Writer<W: Write + Seek> {
    zip: zip::ZipWriter<W>,
    /// Lines of verify.sh.
    script: String,
}

impl<W: Write + Seek> Writer<W> {
    fn file(&mut self, path: &str, bytes: &[u8]) -> Result<()> {
        let opts = SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .large_file(bytes.len() as u64 > u32::MAX as u64);
        self.zip.start_file(path, opts).map_err(zip_err)?;
        self.zip.write_all(bytes).map_err(zip_err)
    }

    fn check(&mut self, what: &str, cmd: &str) {
        let _ = writeln!(self.script, "check {:?} {cmd}", what);
    }
}

/// Writes the bundle for `scope` into `out`. Read-only: it can run beside a live server.
/// What the reader of a bundle may have: which records (an error refuses the whole bundle)
/// and, of those, which versions (others are left out as if they did not exist).
pub struct Access<'a> {
    pub allow: &'a dyn Fn(&RecordRow) -> Result<()>,
    pub sees: &'a dyn Fn(&VersionRow) -> bool,
}

pub fn write_bundle<W: Write + Seek>(
    r: &Reader<'_>,
    blobs: &BlobStore,
    anchors: &Anchors,
    info: &BundleInfo<'_>,
    scope: &Scope,
    access: &Access<'_>,
    out: W,
) -> Result<usize> {
    let (allow, sees) = (access.allow, access.sees);
    let records: Vec<RecordRow> = match scope {
        Scope::Record(id) => vec![
            r.record(*id)?
                .ok_or_else(|| ServiceError::not_found("記録"))?,
        ],
        Scope::Patient(pid) => {
            if r.patient(pid)?.is_none() {
                return Err(ServiceError::not_found("患者"));
            }
            r.records_of_patient(pid)?
        }
    };
    for rec in &records {
        allow(rec)?;
    }
    // A bundle holds what its reader may read: someone else's draft or pending proxy entry is
    // not a record yet, and a record with nothing visible is left out as if it did not exist.
    let mut visible: Vec<(RecordRow, Vec<VersionRow>)> = Vec::new();
    for rec in records {
        let vs: Vec<VersionRow> = r
            .versions(rec.id)?
            .into_iter()
            .filter(|v| sees(v))
            .collect();
        if !vs.is_empty() {
            visible.push((rec, vs));
        }
    }
    if visible.is_empty() && matches!(scope, Scope::Record(_)) {
        return Err(ServiceError::not_found("記録"));
    }
    let records: Vec<RecordRow> = visible.iter().map(|(r, _)| r.clone()).collect();
    let patient_id = records
        .first()
        .map(|r| r.patient_id.clone())
        .or(match scope {
            Scope::Patient(p) => Some(p.clone()),
            Scope::Record(_) => None,
        })
        .unwrap_or_default();
    let patient = r.patient(&patient_id)?;
    let accounts = r.accounts()?;
    let name_of = |id: i64| {
        accounts
            .iter()
            .find(|a| a.id == id)
            .map(|a| format!("{} ({})", a.display_name, a.login))
            .unwrap_or_else(|| format!("#{id}"))
    };
    let checkpoint = r.checkpoints()?.pop();
    let mut w = Writer {
        zip: zip::ZipWriter::new(out),
        script: String::new(),
    };

    w.file("trust/tsa-roots.pem", pem_all(&anchors.tsa).as_bytes())?;
    w.file(
        "trust/signer-roots.pem",
        pem_all(&anchors.signers).as_bytes(),
    )?;
    if let Some(cp) = &checkpoint {
        w.file("ledger/checkpoint.txt", cp.note.as_bytes())?;
    }
    if let Some(k) = r.meta("verifier_key")? {
        w.file("ledger/verifier-key.txt", format!("{k}\n").as_bytes())?;
    }

    let mut html = String::new();
    let _ = write!(
        html,
        "<!doctype html><html lang=\"ja\"><meta charset=\"utf-8\"><title>診療記録 {pid}</title>\
         <style>body{{font-family:sans-serif;max-width:60em;margin:2em auto;line-height:1.6}}\
         pre{{white-space:pre-wrap;background:#f6f6f6;padding:.8em}}\
         .meta{{color:#333;font-size:.9em}}h2{{border-bottom:2px solid #1f4e79}}</style>\
         <h1>{facility} 診療記録（エクスポート）</h1>\
         <p class=\"meta\">患者 ID: {pid}{pname}<br>出力: {when}（{by}）</p>",
        pid = esc(&patient_id),
        facility = esc(info.facility),
        pname = patient
            .as_ref()
            .map(|p| format!(
                " / {}（{}）生年月日 {}",
                esc(&p.name_kanji),
                esc(&p.name_kana),
                esc(&p.birth_date)
            ))
            .unwrap_or_default(),
        when = time_jst(info.now),
        by = esc(info.exported_by),
    );

    for (rec, versions) in &visible {
        let kind = r
            .kind(&rec.kind)?
            .map(|k| k.name_ja)
            .unwrap_or(rec.kind.clone());
        let _ = write!(html, "<h2>記録 {} — {}</h2>", rec.id, esc(&kind));
        let sigs: Vec<SignatureRow> = r.signatures_of(rec.id)?;
        for v in versions.iter().cloned() {
            let base = format!("records/{}/v{}", rec.id, v.version_no);
            let content_bytes = blobs.get(&v.content_sha256)?;
            w.file(&format!("{base}/content.json"), &content_bytes)?;
            let content: RecordContent = serde_json::from_slice(&content_bytes).map_err(|e| {
                ServiceError::new(ErrorCode::Corrupt, format!("本文を読めません: {e}"))
            })?;
            let mut att_html = String::new();
            for a in &content.attachments {
                let name = format!("{}-{}", &a.sha256[..12], safe_name(&a.name));
                w.file(
                    &format!("{base}/attachments/{name}"),
                    &blobs.get(&a.sha256)?,
                )?;
                let _ = write!(
                    att_html,
                    "<li><a href=\"{base}/attachments/{n}\">{}</a>（{}、{} バイト、SHA-256 {}）</li>",
                    esc(&a.name),
                    esc(&a.media_type),
                    a.size,
                    a.sha256,
                    n = esc(&name)
                );
            }
            let sig = sigs.iter().find(|s| s.version_no == v.version_no);
            let sig_html = match sig {
                Some(s) => write_signature(&mut w, r, blobs, anchors, rec, &v, s, &base, info.now)?,
                None if v.state == "finalised" => "<p>電子署名: なし</p>".into(),
                None => String::new(),
            };
            if let Some(cp) = &checkpoint {
                write_ledger_proof(&mut w, r, &v, cp, &base)?;
            }
            let _ = write!(
                html,
                "<h3>第{no}版（{state}{kind}）</h3>\
                 <p class=\"meta\">作成者: {author} / 入力者: {enterer}<br>作成 {created}{fin}{reason}</p>\
                 <h4>{title}</h4><pre>{body}</pre>{atts}{sig}",
                no = v.version_no,
                state = match v.state.as_str() {
                    "finalised" => "確定",
                    "pending_approval" => "承認待ち",
                    _ => "下書き",
                },
                kind = match v.kind.as_str() {
                    "amendment" => "・修正",
                    "entered_in_error" => "・誤記録",
                    _ => "",
                },
                author = esc(&name_of(v.author_id)),
                enterer = esc(&name_of(v.enterer_id)),
                created = time_jst(v.created_at),
                fin = v
                    .finalised_at
                    .map(|f| format!(" / 確定 {}", time_jst(f)))
                    .unwrap_or_default(),
                reason = v
                    .reason
                    .as_ref()
                    .map(|r| format!("<br>理由: {}", esc(r)))
                    .unwrap_or_default(),
                title = esc(&content.title),
                body = esc(&content.body),
                atts = if att_html.is_empty() {
                    String::new()
                } else {
                    format!("<ul>{att_html}</ul>")
                },
                sig = sig_html,
            );
        }
    }
    html.push_str("<p class=\"meta\">検証の方法は README.txt を参照してください。</p></html>\n");
    w.file("index.html", html.as_bytes())?;
    w.file("README.txt", readme(info, &patient_id).as_bytes())?;
    let script = format!("{}{}{}", SCRIPT_HEAD, w.script, SCRIPT_TAIL);
    let opts = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .unix_permissions(0o755);
    w.zip.start_file("verify.sh", opts).map_err(zip_err)?;
    w.zip.write_all(script.as_bytes()).map_err(zip_err)?;
    w.zip.finish().map_err(zip_err)?;
    Ok(records.len())
}

impl crate::Service {
    /// The export bundle of a record or a patient's records, for someone who may print and
    /// export them; recorded in the ledger with the bundle's SHA-256.
    pub async fn export_bundle(
        self: &std::sync::Arc<Self>,
        p: &crate::Principal,
        scope: Scope,
    ) -> Result<Vec<u8>> {
        use mamori_domain::permission::Action;
        self.checkpoint_now().await?;
        let anchors = Anchors::load(&self.data_dir, &self.config.evidence)?;
        let pc = p.clone();
        self.read_audited(
            p,
            mamori_domain::audit::actions::RECORD_EXPORT,
            move |svc, r, t| {
                t.detail("format", "evidence_bundle");
                match &scope {
                    Scope::Record(id) => {
                        let rec = crate::Service::readable_for_export(r, &pc, *id, t)?;
                        t.patient = Some(rec.patient_id);
                    }
                    // Every record of the patient must be one the caller may print and export
                    // (checked below): a bundle never leaves out what the caller cannot see
                    // without saying so.
                    Scope::Patient(pid) => t.patient = Some(pid.clone()),
                }
                let allow = |rec: &RecordRow| -> Result<()> {
                    pc.require(Action::PrintExport, Some(&rec.kind))?;
                    pc.require(Action::Read, Some(&rec.kind))
                };
                let me = pc.account.id;
                let sees = move |v: &VersionRow| {
                    mamori_domain::version::VersionState::parse(&v.state).is_some_and(|s| {
                        mamori_domain::version::version_visible_to(me, s, v.author_id, v.enterer_id)
                    })
                };
                let info = BundleInfo {
                    facility: svc.facility(),
                    exported_by: &format!("{} ({})", pc.account.display_name, pc.account.login),
                    now: svc.now(),
                };
                let mut out = std::io::Cursor::new(Vec::new());
                let n = write_bundle(
                    r,
                    svc.store.blobs(),
                    &anchors,
                    &info,
                    &scope,
                    &Access {
                        allow: &allow,
                        sees: &sees,
                    },
                    &mut out,
                )?;
                let bytes = out.into_inner();
                t.detail("records", n);
                t.detail(
                    "bundle_sha256",
                    hex::encode(mamori_evidence::sha256(&bytes)),
                );
                t.detail("bytes", bytes.len());
                Ok(bytes)
            },
        )
        .await
    }
}

fn pem_all(certs: &[mamori_evidence::cert::Cert]) -> String {
    certs.iter().map(|c| c.to_pem()).collect()
}

/// A signed PDF of the version (its letter, or an uploaded attachment the author signed), and a
/// check of the author's signature with OpenSSL alone: the two byte ranges cut out of the file
/// with `head`/`tail`, the CMS beside it.
fn write_signed_pdf<W: Write + Seek>(
    w: &mut Writer<W>,
    blobs: &BlobStore,
    row: &mamori_store::SignedPdfRow,
    base: &str,
    signed_at: Millis,
) -> Result<()> {
    let sha256 = &row.pdf_sha256;
    let bytes = blobs.get(sha256)?;
    // An attachment may carry earlier signatures (a patient's); the author's is the first
    // made after the file as uploaded.
    let (given_len, name, what) = match row.attachment() {
        None => (0, "signed".to_owned(), "署名付き PDF".to_owned()),
        Some(a) => (
            blobs.get(a).map(|b| b.len()).unwrap_or(0),
            format!("signed-attachment-{}", &a[..12]),
            format!("署名した添付 PDF {}", &a[..12]),
        ),
    };
    let corrupt = |m: String| ServiceError::new(ErrorCode::Corrupt, format!("署名付き PDF: {m}"));
    if hex::encode(mamori_evidence::sha256(&bytes)) != *sha256 {
        return Err(corrupt("ファイルが記録と一致しません".into()));
    }
    let sig = mamori_pdf::signatures(&bytes)
        .map_err(|e| corrupt(e.to_string()))?
        .into_iter()
        .find(|s| s.kind == mamori_pdf::SignatureKind::Signature && s.revision_len() > given_len)
        .ok_or_else(|| corrupt("作成者の署名がありません".into()))?;
    w.file(&format!("{base}/{name}.pdf"), &bytes)?;
    w.file(&format!("{base}/{name}-pdf.p7s"), &sig.contents)?;
    let [_, b, c, d] = sig.byte_range;
    w.check(
        &format!("{base}: {what} の電子署名 (PAdES)"),
        &format!(
            "'{{ head -c {b} {base}/{name}.pdf; tail -c +{} {base}/{name}.pdf | head -c {d}; }} > {base}/{name}-pdf.range \
             && openssl cms -verify -binary -inform DER -purpose any -in {base}/{name}-pdf.p7s \
             -content {base}/{name}-pdf.range -CAfile trust/signer-roots.pem -attime {} -out /dev/null'",
            c + 1,
            signed_at / 1000
        ),
    );
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn write_signature<W: Write + Seek>(
    w: &mut Writer<W>,
    r: &Reader<'_>,
    blobs: &BlobStore,
    anchors: &Anchors,
    rec: &RecordRow,
    v: &VersionRow,
    s: &SignatureRow,
    base: &str,
    now: Millis,
) -> Result<String> {
    let statement = s.statement.clone();
    w.file(&format!("{base}/statement.json"), &statement)?;
    w.file(&format!("{base}/statement.json.p7s"), &s.p7s)?;
    let check = check_version(r, blobs, anchors, rec, v, Some(s), now);
    // Certificates are checked at the time the time-stamp proves (-attime), as long-term
    // validation requires: years later the signer's and the TSA's certificates have expired,
    // and the renewals are what prove they were valid when used.
    let signed_at = check
        .timestamp
        .as_ref()
        .map(|t| t.gen_time)
        .unwrap_or(s.signed_at);
    // A signature that carries its CA's CRL (B-LT) is also checked against it, offline.
    let crl_check = if cades::crls(&s.p7s).is_empty() {
        ""
    } else {
        " -crl_check"
    };
    w.check(
        &format!("{base}: 電子署名 (CMS/CAdES)"),
        &format!(
            "openssl cms -verify -binary -inform DER -purpose any{crl_check} -in {base}/statement.json.p7s \
             -content {base}/statement.json -CAfile trust/signer-roots.pem -attime {} -out /dev/null",
            signed_at / 1000
        ),
    );
    let sv = cades::signature_value(&s.p7s)
        .map_err(|e| ServiceError::new(ErrorCode::Corrupt, e.message))?;
    if let Some(token) = cades::signature_timestamp(&s.p7s)
        .map_err(|e| ServiceError::new(ErrorCode::Corrupt, e.message))?
    {
        w.file(&format!("{base}/signature-value.bin"), &sv)?;
        w.file(&format!("{base}/signature.tst"), &token)?;
        w.check(
            &format!("{base}: 署名タイムスタンプ (RFC 3161)"),
            &format!(
                "openssl ts -verify -token_in -in {base}/signature.tst \
                 -data {base}/signature-value.bin -CAfile trust/tsa-roots.pem -attime {}",
                signed_at / 1000
            ),
        );
    }
    for pdf in r.signed_pdfs_of_version(v.record_id, v.version_no)? {
        write_signed_pdf(w, blobs, &pdf, base, signed_at)?;
    }
    if let (Some(family), Some(pos)) = (s.evidence_family, s.evidence_position) {
        let member = Member::Signature {
            statement: statement.clone(),
            p7s: s.p7s.clone(),
        };
        let der = evidence_record(r, family, pos, &member)?;
        w.file(&format!("{base}/evidence.ers"), &der)?;
        let (steps, covered) = explain_record(&der, &member)?;
        w.file(&format!("{base}/evidence-path.txt"), steps.as_bytes())?;
        for (name, token, digest) in covered {
            let at = mamori_evidence::tsp::peek(&token)
                .map(|(t, _)| t / 1000)
                .unwrap_or_default();
            w.file(&format!("{base}/evidence/{name}.tst"), &token)?;
            w.file(
                &format!("{base}/evidence/{name}.digest"),
                format!("{digest}\n").as_bytes(),
            )?;
            w.check(
                &format!("{base}: 証拠記録 {name} (RFC 4998)"),
                &format!(
                    "openssl ts -verify -token_in -in {base}/evidence/{name}.tst \
                     -digest $(cat {base}/evidence/{name}.digest) -CAfile trust/tsa-roots.pem -attime {at}"
                ),
            );
        }
    }
    let mut html = format!(
        "<p>電子署名: {} — {}、署名 {}",
        esc(&s.signer_subject),
        check.level.unwrap_or("検証できません"),
        time_jst(s.signed_at)
    );
    if let Some(t) = &check.timestamp {
        let _ = write!(
            html,
            "、タイムスタンプ {}（{}{}）",
            time_jst(t.gen_time),
            esc(&t.tsa_subject),
            if t.development {
                "・開発用、法的効力なし"
            } else {
                ""
            }
        );
    }
    if let Some(sealed) = &check.sealed {
        let _ = write!(
            html,
            "、証拠記録 {} 件のタイムスタンプ（{}）",
            sealed.stamps,
            sealed.algorithms.join(" → ")
        );
    }
    let _ = write!(
        html,
        "。エクスポート時の検証: {}</p>",
        match check.status {
            "ok" => "正常".to_owned(),
            "pending" => "タイムスタンプ待ち".to_owned(),
            _ => format!("問題あり（{}）", esc(&check.problems.join(" / "))),
        }
    );
    Ok(html)
}

/// Walks an evidence record and returns a human-readable account of every hash step, and
/// for each archive time-stamp the digest it must cover (for `openssl ts -verify -digest`).
/// An archive time-stamp as the bundle stores it: file name, token, and the hex digest it covers.
type CoveredStamp = (String, Vec<u8>, String);

fn explain_record(der: &[u8], member: &Member) -> Result<(String, Vec<CoveredStamp>)> {
    let er = ers::decode(der).map_err(|e| ServiceError::new(ErrorCode::Corrupt, e.message))?;
    let mut text = String::from(
        "証拠記録 (RFC 4998) の検証手順 / How the evidence record covers this signature\n\
         Each step: sort the listed hashes as bytes, concatenate them, hash the result.\n\
         (printf '%s' HEX1HEX2… | xxd -r -p | openssl dgst -sha256)\n\n",
    );
    let mut covered = Vec::new();
    for (ci, chain) in er.archive_time_stamp_sequence.iter().enumerate() {
        let alg = chain[0]
            .digest_algorithm
            .as_ref()
            .map(|a| HashAlg::from_oid(&a.oid))
            .transpose()
            .map_err(|e| ServiceError::new(ErrorCode::Corrupt, e.message))?
            .unwrap_or(HashAlg::Sha256);
        let previous = &er.archive_time_stamp_sequence[..ci];
        let hashes = member.hashes(alg, previous)?;
        let _ = writeln!(text, "chain {} ({}):", ci + 1, alg.name());
        if ci > 0 {
            let _ = writeln!(
                text,
                "  hash-tree renewal: each object hash is {}(sort({}(object), {}(DER of chains 1..{}))).",
                alg.name(),
                alg.name(),
                alg.name(),
                ci
            );
        }
        for (i, h) in hashes.iter().enumerate() {
            let _ = writeln!(text, "  object {} hash: {}", i + 1, hex::encode(h));
        }
        let mut prev: Option<Vec<u8>> = None;
        for (si, ats) in chain.iter().enumerate() {
            let start = match &prev {
                None => hashes[0].clone(),
                Some(tok) => {
                    let d = alg.digest(tok);
                    let _ = writeln!(
                        text,
                        "  time-stamp renewal {si}: {}(previous token) = {}",
                        alg.name(),
                        hex::encode(&d)
                    );
                    d
                }
            };
            let reduced: Option<Vec<Vec<Vec<u8>>>> = ats.reduced_hashtree.as_ref().map(|l| {
                l.iter()
                    .map(|p| p.iter().map(|o| o.as_bytes().to_vec()).collect())
                    .collect()
            });
            if let Some(lists) = &reduced {
                let mut cur: Option<Vec<u8>> = None;
                for (li, list) in lists.iter().enumerate() {
                    let mut items: Vec<Vec<u8>> = list.clone();
                    if let Some(c) = &cur {
                        items.push(c.clone());
                    }
                    let refs: Vec<&[u8]> = items.iter().map(Vec::as_slice).collect();
                    let h = alg.sorted(&refs);
                    let _ = writeln!(
                        text,
                        "  step {}: [{}] -> {}",
                        li + 1,
                        items.iter().map(hex::encode).collect::<Vec<_>>().join(", "),
                        hex::encode(&h)
                    );
                    cur = Some(h);
                }
            }
            let digest = ers::walk(alg, &start, reduced.as_deref())
                .map_err(|e| ServiceError::new(ErrorCode::Evidence, e.message))?;
            let token = ers::token_der(ats)
                .map_err(|e| ServiceError::new(ErrorCode::Corrupt, e.message))?;
            let name = format!("ats-{}-{}", ci + 1, si + 1);
            let _ = writeln!(text, "  {name}.tst covers {}\n", hex::encode(&digest));
            covered.push((name, token.clone(), hex::encode(&digest)));
            prev = Some(token);
        }
    }
    Ok((text, covered))
}

fn write_ledger_proof<W: Write + Seek>(
    w: &mut Writer<W>,
    r: &Reader<'_>,
    v: &VersionRow,
    cp: &mamori_store::CheckpointRow,
    base: &str,
) -> Result<()> {
    let index = v.ledger_index as u64;
    if index >= cp.size {
        return Ok(());
    }
    let Some(row) = r.ledger_row(index)? else {
        return Ok(());
    };
    let hashes = r.hashes();
    let proof = inclusion_proof(&hashes, index, cp.size).map_err(|e| {
        ServiceError::new(ErrorCode::Corrupt, format!("台帳の証明を作れません: {e}"))
    })?;
    let root = root_at(&hashes, cp.size).map_err(ServiceError::internal)?;
    let doc = serde_json::json!({
        "about": "RFC 6962 inclusion proof of the ledger entry that recorded this version, against ledger/checkpoint.txt (leaf = SHA-256(0x00 || event), node = SHA-256(0x01 || left || right))",
        "index": index,
        "tree_size": cp.size,
        "root": hex::encode(root),
        "event": serde_json::from_slice::<serde_json::Value>(&row.payload).unwrap_or_default(),
        "event_bytes_hex": hex::encode(&row.payload),
        "leaf_hash": hex::encode(leaf_hash(&row.payload)),
        "proof": proof.iter().map(hex::encode).collect::<Vec<_>>(),
    });
    w.file(
        &format!("{base}/ledger-proof.json"),
        &serde_json::to_vec_pretty(&doc).map_err(ServiceError::internal)?,
    )
}

const SCRIPT_HEAD: &str = r#"#!/bin/sh
# Checks every signature, time-stamp and evidence record in this bundle with OpenSSL alone.
# このバンドルの電子署名・タイムスタンプ・証拠記録を OpenSSL だけで検証します。
cd "$(dirname "$0")" || exit 2
failed=0
check() {
  what=$1; shift
  if out=$(sh -c "$*" 2>&1); then
    echo "OK   $what"
  else
    echo "FAIL $what"; echo "$out" | sed 's/^/     /'; failed=1
  fi
}
"#;

const SCRIPT_TAIL: &str = r#"if [ "$failed" = 0 ]; then echo "すべて検証できました / all checks passed"; else echo "検証に失敗した項目があります / some checks FAILED"; fi
exit $failed
"#;

fn readme(info: &BundleInfo<'_>, patient_id: &str) -> String {
    format!(
        "mamori 証拠一式（エクスポート）/ mamori evidence bundle\n\
         =====================================================\n\n\
         施設 / Facility: {facility}\n患者 ID / Patient: {patient_id}\n\
         出力 / Exported: {when} by {by}\n\n\
         このファイルは mamori がなくても読み、検証できます。\n\
         This bundle can be read and verified without mamori.\n\n\
         読む / Read: index.html をブラウザで開いてください (open index.html).\n\n\
         すべてを検証する / Verify everything:  sh verify.sh   (OpenSSL 1.1 or later)\n\n\
         中身 / Contents (records/<記録>/v<版>/):\n\
         - content.json            版の本文（保存されているバイト列そのまま）/ the version's content as stored\n\
         - attachments/            添付ファイル（名前の先頭は SHA-256）/ attachments, named by SHA-256 prefix\n\
         - statement.json          作成者が電子署名した文書：版の事実と本文 / the exact bytes the author signed\n\
         - statement.json.p7s      分離形式の CMS 署名 (CAdES-B-T) / detached CMS signature\n\
         - signature-value.bin     署名値 / the signature value the time-stamp covers\n\
         - signature.tst           署名タイムスタンプ (RFC 3161) / signature time-stamp token\n\
         - signed.pdf              署名付き PDF (PAdES、PDF の閲覧ソフトで署名を確認できます) / the signed PDF, where the kind has one\n\
         - signed-attachment-*.pdf 作成者が署名した添付 PDF / uploaded PDFs the author signed\n\
         - signed-pdf.p7s          その作成者の署名 (CMS) / its author's CMS signature, checked by verify.sh over the PDF's byte ranges\n\
         - evidence.ers            証拠記録 (RFC 4998 EvidenceRecord, DER)\n\
         - evidence/ats-C-S.tst    証拠記録のタイムスタンプ（連鎖 C の S 番目）と、それが覆うハッシュ値 (.digest)\n\
         - evidence-path.txt       ハッシュ木をたどる手順 / the hash steps from this signature to each .digest\n\
         - ledger-proof.json       改ざん検知台帳への包含証明 (RFC 6962) / ledger inclusion proof\n\
         trust/signer-roots.pem    署名者の信頼点（施設の認証局など）/ signer trust anchors\n\
         trust/tsa-roots.pem       タイムスタンプ局の信頼点 / TSA trust anchors\n\
         ledger/checkpoint.txt     署名付きチェックポイント (Ed25519, ledger/verifier-key.txt)\n\n\
         手作業での検証 / By hand:\n\
         証明書はいずれ期限が切れるため、各検証はタイムスタンプの時刻で行います（OpenSSL の\n\
         -attime <秒>。verify.sh の各行にその値があります）。更新されたタイムスタンプの連鎖が、\n\
         古い証明書が使われた時点で有効だったことを証明します。\n\
         Certificates expire, so each check runs at the time its time-stamp proves (-attime;\n\
         see verify.sh for the values); the chain of renewals proves they were valid then.\n\n\
         1. 署名: openssl cms -verify -binary -inform DER -purpose any -in statement.json.p7s \\\n\
            -content statement.json -CAfile trust/signer-roots.pem -out /dev/null\n\
         2. 本文: statement.json の content_sha256 と content.json の SHA-256 (sha256sum) が同じこと、\n\
            statement.json の \"content\" が content.json と同じ内容であること。\n\
         3. 署名タイムスタンプ: openssl ts -verify -token_in -in signature.tst -data signature-value.bin \\\n\
            -CAfile trust/tsa-roots.pem\n\
         4. 証拠記録: evidence-path.txt の手順で .digest の値になることを確かめ、\n\
            openssl ts -verify -token_in -in evidence/ats-1-1.tst -digest $(cat evidence/ats-1-1.digest) \\\n\
            -CAfile trust/tsa-roots.pem\n\
            更新されたタイムスタンプ (ats-1-2…) は、一つ前のトークン (.tst) のハッシュを覆います。\n\
         5. 台帳: ledger-proof.json の証明で ledger/checkpoint.txt の根 (root) に届くこと。\n\n\
         「開発用TSA（法的効力なし）」の時刻は試験用です。本番の記録は総務大臣認定の\n\
         タイムスタンプ局の時刻を持ちます。\n\
         Time-stamps from the \"開発用TSA\" (development TSA) carry no legal weight.\n",
        facility = info.facility,
        when = time_jst(info.now),
        by = info.exported_by,
    )
}
