//! Maintenance work windows in the browser (管理 › 保守作業): record a vendor's work request,
//! approve or reject it, read the work report and acknowledge it.

use mamori_service::ErrorCode;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use mamori_service::access::maintenance::{
    MAINTENANCE_ROLE, WindowRequest, WindowView, WorkReport,
};
use mamori_service::ledger::audit::{jst, parse_local_time};
use mamori_service::{Principal, Service, ServiceError};

use crate::error::status_of;
use crate::ui::admin::FormError;
use crate::ui::form::{SignedForm, SignedIn};
use crate::ui::{Layout, error_page, layout, render, say};

type Svc = State<Arc<Service>>;

pub fn routes() -> axum::Router<Arc<Service>> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/admin/maintenance", get(list_page).post(request))
        .route("/admin/maintenance/{id}", get(report_page))
        .route("/admin/maintenance/{id}/decide", post(decide))
        .route("/admin/maintenance/{id}/acknowledge", post(acknowledge))
}

pub struct WindowRow {
    pub v: WindowView,
    pub starts: String,
    pub ends: String,
    pub state: &'static str,
}

fn state_key(v: &WindowView, now: i64) -> &'static str {
    let w = &v.window;
    match w.status.as_str() {
        "requested" => "maint.requested",
        "rejected" => "maint.rejected",
        _ if w.acknowledged_at.is_some() => "maint.acknowledged",
        _ if now >= w.ends_at => "maint.ended",
        _ if now >= w.starts_at => "maint.open",
        _ => "maint.approved",
    }
}

/// What the request form sent, shown again if it was refused.
#[derive(Default)]
pub struct RequestForm {
    pub account_id: String,
    pub starts_at: String,
    pub ends_at: String,
    pub purpose: String,
    pub personal_info: bool,
}

#[derive(Template)]
#[template(path = "admin_maintenance.html")]
struct ListPage {
    layout: Layout,
    tab: &'static str,
    rows: Vec<WindowRow>,
    engineers: Vec<(i64, String)>,
    form: RequestForm,
    error: Option<FormError>,
}

async fn show_list(
    svc: &Arc<Service>,
    headers: &HeaderMap,
    p: &Principal,
    status: StatusCode,
    form: RequestForm,
    error: Option<&ServiceError>,
) -> Response {
    let list = match svc.maintenance_windows(p).await {
        Ok(l) => l,
        Err(e) => return error_page(svc, headers, Some(p), &e),
    };
    let lang = crate::ui::lang_of(headers);
    let now = svc.now();
    let engineers = svc
        .list_accounts(p)
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|a| a.active && a.role == MAINTENANCE_ROLE)
        .map(|a| (a.id, format!("{}（{}）", a.display_name, a.login)))
        .collect();
    let rows = list
        .into_iter()
        .map(|v| WindowRow {
            starts: jst(v.window.starts_at),
            ends: jst(v.window.ends_at),
            state: crate::i18n::t(lang, state_key(&v, now)),
            v,
        })
        .collect();
    render(
        status,
        ListPage {
            layout: layout(svc, headers, Some(p), p.csrf.clone()),
            tab: "maintenance",
            rows,
            engineers,
            form,
            error: error.and_then(|e| FormError::of(headers, e)),
        },
    )
}

async fn list_page(State(svc): Svc, headers: HeaderMap, SignedIn(p): SignedIn) -> Response {
    show_list(
        &svc,
        &headers,
        &p,
        StatusCode::OK,
        RequestForm::default(),
        None,
    )
    .await
}

async fn request(
    State(svc): Svc,
    headers: HeaderMap,
    SignedForm { p, fields: f }: SignedForm,
) -> Response {
    let form = RequestForm {
        account_id: f.get("account_id"),
        starts_at: f.get("starts_at"),
        ends_at: f.get("ends_at"),
        purpose: f.get("purpose"),
        personal_info: f.get("personal_info") == "on",
    };
    let time = |s: &str, field: &'static str| {
        parse_local_time(s).ok_or_else(|| {
            ServiceError::invalid(field, "日時を入力してください（例：2026-12-01 09:00）")
        })
    };
    let req = (|| -> Result<WindowRequest, ServiceError> {
        Ok(WindowRequest {
            account_id: form
                .account_id
                .parse()
                .map_err(|_| ServiceError::invalid("account_id", "保守要員を選んでください"))?,
            starts_at: time(&form.starts_at, "starts_at")?,
            ends_at: time(&form.ends_at, "ends_at")?,
            purpose: form.purpose.clone(),
            personal_info: form.personal_info,
        })
    })();
    let result = match req {
        Ok(r) => svc.request_maintenance(&p, r).await.map(|_| ()),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Redirect::to("/admin/maintenance").into_response(),
        Err(e) if e.code == ErrorCode::Forbidden => error_page(&svc, &headers, Some(&p), &e),
        Err(e) => show_list(&svc, &headers, &p, status_of(e.code), form, Some(&e)).await,
    }
}

async fn decide(
    State(svc): Svc,
    headers: HeaderMap,
    Path(id): Path<i64>,
    SignedForm { p, fields }: SignedForm,
) -> Response {
    let approve = fields.get("decision") == "approve";
    match svc.decide_maintenance(&p, id, approve).await {
        Ok(()) => Redirect::to("/admin/maintenance").into_response(),
        Err(e) => error_page(&svc, &headers, Some(&p), &e),
    }
}

pub struct EntryRow {
    pub time: String,
    pub action: String,
    pub outcome: String,
    pub refused: bool,
    pub patient: String,
    pub record: String,
}

#[derive(Template)]
#[template(path = "admin_maintenance_report.html")]
struct ReportPage {
    layout: Layout,
    tab: &'static str,
    r: WorkReport,
    starts: String,
    ends: String,
    first: String,
    last: String,
    ack_at: String,
    entries: Vec<EntryRow>,
    error: Option<String>,
}

async fn show_report(
    svc: &Arc<Service>,
    headers: &HeaderMap,
    p: &Principal,
    id: i64,
    status: StatusCode,
    error: Option<String>,
) -> Response {
    let r = match svc.maintenance_report(p, id).await {
        Ok(r) => r,
        Err(e) => return error_page(svc, headers, Some(p), &e),
    };
    let lang = crate::ui::lang_of(headers);
    let entries = r
        .entries
        .iter()
        .map(|e| EntryRow {
            time: jst(e.ts),
            action: crate::ui::audit::action_label(lang, &e.action),
            refused: e.outcome != "ok",
            outcome: crate::ui::audit::outcome_label(lang, &e.outcome).to_owned(),
            patient: e.patient_id.clone().unwrap_or_default(),
            record: e.record_id.map(|x| x.to_string()).unwrap_or_default(),
        })
        .collect();
    render(
        status,
        ReportPage {
            layout: layout(svc, headers, Some(p), p.csrf.clone()),
            tab: "maintenance",
            starts: jst(r.window.window.starts_at),
            ends: jst(r.window.window.ends_at),
            first: r.first_at.map(jst).unwrap_or_default(),
            last: r.last_at.map(jst).unwrap_or_default(),
            ack_at: r.window.window.acknowledged_at.map(jst).unwrap_or_default(),
            entries,
            r,
            error,
        },
    )
}

async fn report_page(
    State(svc): Svc,
    headers: HeaderMap,
    Path(id): Path<i64>,
    SignedIn(p): SignedIn,
) -> Response {
    show_report(&svc, &headers, &p, id, StatusCode::OK, None).await
}

async fn acknowledge(
    State(svc): Svc,
    headers: HeaderMap,
    Path(id): Path<i64>,
    SignedForm { p, fields }: SignedForm,
) -> Response {
    match svc
        .acknowledge_maintenance(&p, id, &fields.get("comment"))
        .await
    {
        Ok(()) => Redirect::to(&format!("/admin/maintenance/{id}")).into_response(),
        Err(e) if e.code == ErrorCode::Forbidden => error_page(&svc, &headers, Some(&p), &e),
        Err(e) => {
            let msg = say(&headers, &e);
            show_report(&svc, &headers, &p, id, status_of(e.code), Some(msg)).await
        }
    }
}
