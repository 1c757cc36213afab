//! Electronic signatures in the browser: per record, the verification of each finalised
//! version's signature, time-stamp and evidence record with a download of the export bundle
//! (記録 › 署名の検証); for administrators and the security officer, the state of the
//! pillar with its warnings and a button to seal and renew now (管理 › 電子署名).

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use mamori_service::evidence::read::VersionEvidence;
use mamori_service::ledger::audit::jst;
use mamori_service::{Principal, Service};

use crate::ui::form::{SignedForm, SignedIn};
use crate::ui::{Layout, error_page, layout, render};

type Svc = State<Arc<Service>>;

pub fn routes() -> axum::Router<Arc<Service>> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/records/{id}/evidence", get(record_page))
        .route("/records/{id}/bundle/encrypted", post(encrypted_bundle))
        .route("/admin/evidence", get(admin_page))
        .route("/admin/evidence/seal", post(seal))
}

pub struct Row {
    pub version: i64,
    pub status: &'static str,
    pub status_class: &'static str,
    pub signer: String,
    pub level: String,
    pub signed: String,
    pub timestamp: String,
    pub tsa: String,
    pub development: bool,
    pub sealed: String,
    pub problems: Vec<String>,
}

fn row(v: &VersionEvidence, en: bool) -> Row {
    let (status, status_class) = match (v.status, en) {
        ("ok", false) => ("正常", "ok"),
        ("ok", true) => ("Valid", "ok"),
        ("pending", false) => ("タイムスタンプ待ち", "pending"),
        ("pending", true) => ("Time-stamp pending", "pending"),
        ("unsigned", false) => ("未署名", "pending"),
        ("unsigned", true) => ("Not signed", "pending"),
        (_, false) => ("検証失敗", "refused"),
        (_, true) => ("Failed", "refused"),
    };
    Row {
        version: v.version_no,
        status,
        status_class,
        signer: v.signer.clone().unwrap_or_default(),
        level: v.level.unwrap_or_default().to_owned(),
        signed: v.signed_at.map(jst).unwrap_or_default(),
        timestamp: v
            .timestamp
            .as_ref()
            .map(|t| jst(t.gen_time))
            .unwrap_or_default(),
        tsa: v
            .timestamp
            .as_ref()
            .map(|t| t.tsa_subject.clone())
            .unwrap_or_default(),
        development: v.timestamp.as_ref().is_some_and(|t| t.development),
        sealed: v
            .sealed
            .as_ref()
            .map(|s| {
                if en {
                    format!(
                        "{} time-stamp(s), {}; proven since {}; renew before {}",
                        s.stamps,
                        s.algorithms.join(" → "),
                        jst(s.proven_since),
                        jst(s.renew_before)
                    )
                } else {
                    format!(
                        "タイムスタンプ {} 件（{}）。{} から存在を証明、{} までに更新",
                        s.stamps,
                        s.algorithms.join(" → "),
                        jst(s.proven_since),
                        jst(s.renew_before)
                    )
                }
            })
            .unwrap_or_default(),
        problems: v.problems.clone(),
    }
}

#[derive(Template)]
#[template(path = "record_evidence.html")]
struct RecordPage {
    layout: Layout,
    record_id: i64,
    patient_id: String,
    rows: Vec<Row>,
    can_export: bool,
    passed: bool,
    /// A fresh random password offered for an encrypted bundle (never stored).
    password: String,
    uploaded: Vec<UploadedRow>,
}

/// A signature found in an uploaded PDF (a patient's マイナンバーカード signature …).
struct UploadedRow {
    version: i64,
    file: String,
    /// The holder's name for a マイナンバーカード signature, else the certificate's subject.
    signer: String,
    jpki: bool,
    test_card: bool,
    time: String,
    error: Option<String>,
}

fn uploaded_rows(rep: &mamori_service::evidence::read::EvidenceReport) -> Vec<UploadedRow> {
    let mut out = Vec::new();
    for u in &rep.uploaded {
        if let Some(e) = &u.error {
            out.push(UploadedRow {
                version: u.version_no,
                file: u.name.clone(),
                signer: String::new(),
                jpki: false,
                test_card: false,
                time: String::new(),
                error: Some(e.clone()),
            });
        }
        for s in &u.signatures {
            out.push(UploadedRow {
                version: u.version_no,
                file: u.name.clone(),
                signer: s.jpki_holder.clone().unwrap_or_else(|| s.signer.clone()),
                jpki: s.jpki_holder.is_some(),
                test_card: s.jpki_test_card,
                time: s.validated_at.map(crate::ui::jst).unwrap_or_default(),
                error: None,
            });
        }
    }
    out
}

async fn record_page(
    State(svc): Svc,
    headers: HeaderMap,
    SignedIn(p): SignedIn,
    Path(id): Path<i64>,
) -> Response {
    let rep = match svc.record_evidence(&p, id).await {
        Ok(r) => r,
        Err(e) => return error_page(&svc, &headers, Some(&p), &e),
    };
    let layout = layout(&svc, &headers, Some(&p), p.csrf.clone());
    let en = layout.lang == "en";
    let patient_id = rep
        .items
        .first()
        .map(|i| i.patient_id.clone())
        .unwrap_or_default();
    // The bundle itself checks the record's kind; the link shows for roles that may export.
    let can_export = p
        .role
        .grants
        .iter()
        .any(|g| g.action == mamori_domain::permission::Action::PrintExport);
    render(
        StatusCode::OK,
        RecordPage {
            record_id: id,
            patient_id,
            rows: rep.items.iter().map(|i| row(i, en)).collect(),
            can_export,
            passed: rep.passed(),
            password: mamori_service::records::export_encrypted::generate_password(),
            uploaded: uploaded_rows(&rep),
            layout,
        },
    )
}

#[derive(Template)]
#[template(path = "admin_evidence.html")]
struct AdminPage {
    layout: Layout,
    tab: &'static str,
    admin: bool,
    tsa: String,
    development: bool,
    /// (TSA certificates named accredited, recent time-stamps checked, of them not accredited)
    accreditation: (usize, usize, usize),
    signing: bool,
    pending: i64,
    unsealed: usize,
    families: usize,
    last_sealed: String,
    next_renewal: String,
    warnings: Vec<String>,
    notice: Option<String>,
}

#[derive(serde::Deserialize)]
struct Done {
    done: Option<String>,
}

async fn admin_page(
    State(svc): Svc,
    headers: HeaderMap,
    SignedIn(p): SignedIn,
    Query(q): Query<Done>,
) -> Response {
    show(&svc, &headers, &p, q.done).await
}

async fn show(
    svc: &Arc<Service>,
    headers: &HeaderMap,
    p: &Principal,
    done: Option<String>,
) -> Response {
    let s = match svc.evidence_status(p).await {
        Ok(s) => s,
        Err(e) => return error_page(svc, headers, Some(p), &e),
    };
    let layout = layout(svc, headers, Some(p), p.csrf.clone());
    let en = layout.lang == "en";
    // `done` is three counts from the sweep: time-stamped, sealed, renewed (it never signs).
    let notice = done.map(|d| {
        let n: Vec<u64> = d.split(',').map(|x| x.parse().unwrap_or(0)).collect();
        let at = |i: usize| n.get(i).copied().unwrap_or(0);
        if en {
            format!(
                "Done: {} time-stamped, {} added to an evidence record, {} renewed.",
                at(0),
                at(1),
                at(2)
            )
        } else {
            format!(
                "実行しました: タイムスタンプ {} 件、証拠記録への追加 {} 件、更新 {} 件。",
                at(0),
                at(1),
                at(2)
            )
        }
    });
    render(
        StatusCode::OK,
        AdminPage {
            tab: "evidence",
            admin: p
                .require(mamori_domain::permission::Action::AdminSettings, None)
                .is_ok(),
            tsa: s.tsa.clone(),
            development: s.development_tsa,
            accreditation: (s.accredited_tsas, s.accreditation_checked, s.not_accredited),
            signing: s.signing,
            pending: s.pending,
            unsealed: s.unsealed,
            families: s.families,
            last_sealed: s.last_sealed_at.map(jst).unwrap_or_default(),
            next_renewal: s.next_renewal.map(jst).unwrap_or_default(),
            warnings: if en { s.warnings_en } else { s.warnings },
            notice,
            layout,
        },
    )
}

async fn seal(State(svc): Svc, headers: HeaderMap, SignedForm { p, .. }: SignedForm) -> Response {
    match svc.seal_now(&p).await {
        Ok(r) => {
            let done = format!(
                "{},{},{}",
                r.timestamped,
                r.sealed.map(|s| s.signatures + s.checkpoints).unwrap_or(0),
                r.renewed.len()
            );
            Redirect::to(&format!("/admin/evidence?done={done}")).into_response()
        }
        Err(e) => error_page(&svc, &headers, Some(&p), &e),
    }
}

/// The record's bundle, encrypted to leave the facility, as a download; the take-out
/// register records why and who approved.
async fn encrypted_bundle(
    State(svc): Svc,
    headers: HeaderMap,
    Path(id): Path<i64>,
    SignedForm { p, fields }: SignedForm,
) -> Response {
    let t = mamori_service::records::export_encrypted::TakeOut {
        password: fields.get("password"),
        purpose: fields.get("purpose"),
        destination: fields.get("destination"),
        approved_by: fields.get("approved_by"),
    };
    match svc
        .export_bundle_encrypted(&p, mamori_service::records::export::Scope::Record(id), t)
        .await
    {
        Ok(bytes) => crate::api::zip_response(bytes, &format!("mamori-record-{id}-encrypted.zip")),
        Err(e) => error_page(&svc, &headers, Some(&p), &e),
    }
}
