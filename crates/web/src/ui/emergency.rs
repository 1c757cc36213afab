//! Break-glass in the browser: the form on the chart, the red banner's "end" button, and the
//! security officers' review queue under 監査.

use mamori_service::ErrorCode;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use mamori_service::Service;
use mamori_service::access::emergency::EmergencyView;
use mamori_service::ledger::audit::jst;
use serde::Deserialize;

use crate::error::status_of;
use crate::ui::form::{SignedForm, SignedIn};
use crate::ui::{Layout, error_page, layout, render, say, show_patient};

type Svc = State<Arc<Service>>;

pub fn routes() -> axum::Router<Arc<Service>> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/patients/{id}/emergency", post(start))
        .route("/emergency/{id}/end", post(end))
        .route("/audit/emergency", get(queue_page))
        .route("/audit/emergency/{id}/review", post(review))
}

async fn start(
    State(svc): Svc,
    headers: HeaderMap,
    Path(pid): Path<String>,
    SignedForm { p, fields }: SignedForm,
) -> Response {
    let reason = fields.get("reason");
    match svc.start_emergency(&p, &pid, &reason).await {
        Ok(_) => Redirect::to(&format!("/patients/{pid}")).into_response(),
        Err(e) if e.code == ErrorCode::Forbidden => error_page(&svc, &headers, Some(&p), &e),
        Err(e) => {
            let msg = say(&headers, &e);
            show_patient(
                &svc,
                &headers,
                &p,
                &pid,
                status_of(e.code),
                Some(msg),
                reason,
            )
            .await
        }
    }
}

async fn end(
    State(svc): Svc,
    headers: HeaderMap,
    Path(id): Path<i64>,
    SignedForm { p, .. }: SignedForm,
) -> Response {
    match svc.end_emergency(&p, id).await {
        Ok(()) => Redirect::to("/").into_response(),
        Err(e) => error_page(&svc, &headers, Some(&p), &e),
    }
}

pub struct QueueRow {
    pub v: EmergencyView,
    pub started: String,
    pub until: String,
    pub reviewed: String,
    pub active: bool,
}

#[derive(Template)]
#[template(path = "audit_emergency.html")]
struct QueuePage {
    layout: Layout,
    tab: &'static str,
    rows: Vec<QueueRow>,
    all: bool,
    error: Option<(i64, String)>,
}

#[derive(Deserialize, Default)]
pub struct AllQuery {
    all: Option<String>,
}

async fn show_queue(
    svc: &Arc<Service>,
    headers: &HeaderMap,
    p: &mamori_service::Principal,
    all: bool,
    status: StatusCode,
    error: Option<(i64, String)>,
) -> Response {
    let list = match svc.emergency_queue(p, all).await {
        Ok(l) => l,
        Err(e) => return error_page(svc, headers, Some(p), &e),
    };
    let now = svc.now();
    let rows = list
        .into_iter()
        .map(|v| QueueRow {
            started: jst(v.row.started_at),
            until: jst(v.row.ended_at.unwrap_or(v.row.expires_at)),
            reviewed: v.row.reviewed_at.map(jst).unwrap_or_default(),
            active: v.row.active_at(now),
            v,
        })
        .collect();
    render(
        status,
        QueuePage {
            layout: layout(svc, headers, Some(p), p.csrf.clone()),
            tab: "emergency",
            rows,
            all,
            error,
        },
    )
}

async fn queue_page(
    State(svc): Svc,
    headers: HeaderMap,
    SignedIn(p): SignedIn,
    Query(q): Query<AllQuery>,
) -> Response {
    show_queue(&svc, &headers, &p, q.all.is_some(), StatusCode::OK, None).await
}

async fn review(
    State(svc): Svc,
    headers: HeaderMap,
    Path(id): Path<i64>,
    SignedForm { p, fields }: SignedForm,
) -> Response {
    match svc.review_emergency(&p, id, &fields.get("comment")).await {
        Ok(()) => Redirect::to("/audit/emergency").into_response(),
        Err(e) if e.code == ErrorCode::Forbidden => error_page(&svc, &headers, Some(&p), &e),
        Err(e) => {
            let msg = say(&headers, &e);
            show_queue(
                &svc,
                &headers,
                &p,
                false,
                status_of(e.code),
                Some((id, msg)),
            )
            .await
        }
    }
}
