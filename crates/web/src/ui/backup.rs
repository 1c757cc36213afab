//! Backups in the browser (管理 › バックアップ): for each target the last success and failure,
//! the last copy taken offline, the last restore drill and its recovery time, and a warning
//! for anything overdue. The administrator can start a backup or a drill and record that a
//! medium was disconnected; the security officer sees the same page read-only.

use mamori_service::ErrorCode;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use mamori_service::backup::{BackupStatus, DrillView, OfflineCopy};
use mamori_service::ledger::audit::jst;
use mamori_service::{Principal, Service, ServiceError};

use crate::error::status_of;
use crate::ui::admin::FormError;
use crate::ui::form::{SignedForm, SignedIn};
use crate::ui::{Layout, error_page, layout, render};

type Svc = State<Arc<Service>>;

pub fn routes() -> axum::Router<Arc<Service>> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/admin/backup", get(page))
        .route("/admin/backup/run", post(run_now))
        .route("/admin/backup/drill", post(drill_now))
        .route("/admin/backup/offline", post(offline))
        .route("/admin/backup/erase", post(erase))
}

pub struct TargetRow {
    pub target: String,
    pub last_ok: String,
    pub snapshot: String,
    pub size: String,
    pub seconds: String,
    pub locked_until: String,
    pub last_failure: String,
    pub error: String,
    pub failing: bool,
}

#[derive(Template)]
#[template(path = "admin_backup.html")]
struct Page {
    layout: Layout,
    tab: &'static str,
    admin: bool,
    running: bool,
    keep: u32,
    warnings: Vec<String>,
    targets: Vec<TargetRow>,
    offline: Option<OfflineCopy>,
    offline_at: String,
    drill: Option<DrillView>,
    drill_at: String,
    drill_seconds: String,
    notice: Option<&'static str>,
    error: Option<FormError>,
    medium: String,
}

fn size(bytes: Option<u64>) -> String {
    match bytes {
        Some(b) if b >= 1 << 30 => format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64),
        Some(b) => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        None => String::new(),
    }
}

fn rows(s: &BackupStatus) -> Vec<TargetRow> {
    s.targets
        .iter()
        .map(|t| TargetRow {
            target: t.target.clone(),
            last_ok: t.last_ok_at.map(jst).unwrap_or_default(),
            snapshot: t.last_snapshot.clone().unwrap_or_default(),
            size: size(t.last_bytes),
            seconds: t
                .last_seconds
                .map(|s| format!("{s:.1}"))
                .unwrap_or_default(),
            locked_until: t.locked_until.clone().unwrap_or_default(),
            last_failure: t.last_failure_at.map(jst).unwrap_or_default(),
            error: t.last_error.clone().unwrap_or_default(),
            failing: t.failing(),
        })
        .collect()
}

async fn show(
    svc: &Arc<Service>,
    headers: &HeaderMap,
    p: &Principal,
    status: StatusCode,
    notice: Option<&'static str>,
    error: Option<&ServiceError>,
    medium: String,
) -> Response {
    let s = match svc.backup_status(p).await {
        Ok(s) => s,
        Err(e) => return error_page(svc, headers, Some(p), &e),
    };
    let layout = layout(svc, headers, Some(p), p.csrf.clone());
    let en = layout.lang == "en";
    let warnings = s
        .warnings
        .iter()
        .map(|w| if en { w.message_en() } else { w.message_ja() })
        .collect();
    render(
        status,
        Page {
            tab: "backup",
            admin: p
                .require(mamori_domain::permission::Action::AdminSettings, None)
                .is_ok(),
            running: s.running,
            keep: s.keep,
            warnings,
            targets: rows(&s),
            offline_at: s
                .last_offline
                .as_ref()
                .map(|o| jst(o.at))
                .unwrap_or_default(),
            offline: s.last_offline.clone(),
            drill_at: s.last_drill.as_ref().map(|d| jst(d.at)).unwrap_or_default(),
            drill_seconds: s
                .last_drill
                .as_ref()
                .map(|d| format!("{:.1}", d.seconds))
                .unwrap_or_default(),
            drill: s.last_drill.clone(),
            notice,
            error: error.and_then(|e| FormError::of(headers, e)),
            medium,
            layout,
        },
    )
}

#[derive(serde::Deserialize)]
struct Started {
    started: Option<String>,
    erased: Option<String>,
}

async fn page(
    State(svc): Svc,
    headers: HeaderMap,
    SignedIn(p): SignedIn,
    Query(q): Query<Started>,
) -> Response {
    let notice = match (q.started.as_deref(), q.erased.as_deref()) {
        (Some("backup"), _) => Some("backup.started"),
        (Some("drill"), _) => Some("backup.drill_started"),
        (_, Some("complete")) => Some("backup.erased"),
        (_, Some("partial")) => Some("backup.erased_partly"),
        _ => None,
    };
    show(
        &svc,
        &headers,
        &p,
        StatusCode::OK,
        notice,
        None,
        String::new(),
    )
    .await
}

/// After a form: back to the page (POST-redirect-GET), or the page with the error.
async fn after(
    svc: &Arc<Service>,
    headers: &HeaderMap,
    p: &Principal,
    result: Result<(), ServiceError>,
    done: &str,
    medium: String,
) -> Response {
    match result {
        Ok(()) => Redirect::to(done).into_response(),
        Err(e) if e.code == ErrorCode::Forbidden => error_page(svc, headers, Some(p), &e),
        Err(e) => show(svc, headers, p, status_of(e.code), None, Some(&e), medium).await,
    }
}

async fn run_now(
    State(svc): Svc,
    headers: HeaderMap,
    SignedForm { p, .. }: SignedForm,
) -> Response {
    let r = svc.backup_now(Some(&p)).await;
    after(
        &svc,
        &headers,
        &p,
        r,
        "/admin/backup?started=backup",
        String::new(),
    )
    .await
}

async fn drill_now(
    State(svc): Svc,
    headers: HeaderMap,
    SignedForm { p, .. }: SignedForm,
) -> Response {
    let r = svc.drill_now(&p).await;
    after(
        &svc,
        &headers,
        &p,
        r,
        "/admin/backup?started=drill",
        String::new(),
    )
    .await
}

async fn offline(
    State(svc): Svc,
    headers: HeaderMap,
    SignedForm { p, fields }: SignedForm,
) -> Response {
    let medium = fields.get("medium");
    let r = svc
        .record_offline_copy(&p, &fields.get("target"), &medium, &fields.get("note"))
        .await
        .map(|_| ());
    after(&svc, &headers, &p, r, "/admin/backup", medium).await
}

async fn erase(
    State(svc): Svc,
    headers: HeaderMap,
    SignedForm { p, fields }: SignedForm,
) -> Response {
    match svc
        .erase_backup_target(&p, &fields.get("erase_target"), &fields.get("confirm"))
        .await
    {
        Ok(r) if r.still_locked.is_empty() => {
            Redirect::to("/admin/backup?erased=complete").into_response()
        }
        Ok(_) => Redirect::to("/admin/backup?erased=partial").into_response(),
        Err(e) => after(&svc, &headers, &p, Err(e), "", String::new()).await,
    }
}
