//! 電子署名: the signer's own page — their key in its token, the signing PIN, the signing window
//! and what waits for their signature. Plain forms; nothing here needs JavaScript.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use mamori_service::evidence::SigningStatus;
use mamori_service::{ErrorCode, Principal, Service, ServiceError};
use serde::Deserialize;

use crate::error::status_of;
use crate::ui::form::{SignedForm, SignedIn};
use crate::ui::{Layout, error_page, layout, render, say};
use mamori_service::ledger::audit::jst;

type Svc = State<Arc<Service>>;

pub fn routes() -> axum::Router<Arc<Service>> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/signing", get(page))
        .route("/signing/pin", post(set_pin))
        .route("/signing/open", post(open))
        .route("/signing/sign", post(sign))
        .route("/signing/close", post(close))
}

#[derive(Template)]
#[template(path = "signing.html")]
struct SigningPage {
    layout: Layout,
    status: SigningStatus,
    subject: String,
    not_after: String,
    /// JST, empty while the window is closed.
    window_until: String,
    /// (finalised at, patient, record, version, kind)
    awaiting: Vec<(String, String, i64, i64, String)>,
    notice: Option<String>,
    error: Option<String>,
    error_field: &'static str,
}

#[derive(Deserialize, Default)]
pub struct Done {
    pin: Option<String>,
    opened: Option<usize>,
    signed: Option<usize>,
    remaining: Option<usize>,
    closed: Option<String>,
}

impl Done {
    fn say(&self, en: bool) -> Option<String> {
        let rest = |n: usize| match (n, en) {
            (0, _) => String::new(),
            (n, false) => format!("（まだ {n} 件あります。もう一度「署名する」を押してください）"),
            (n, true) => format!(" ({n} more: press Sign again.)"),
        };
        let remaining = self.remaining.unwrap_or(0);
        if let Some(n) = self.opened {
            return Some(if en {
                format!("Signing window opened; {n} signed.{}", rest(remaining))
            } else {
                format!(
                    "署名ウィンドウを開き、{n} 件に署名しました。{}",
                    rest(remaining)
                )
            });
        }
        if let Some(n) = self.signed {
            return Some(if en {
                format!("{n} signed.{}", rest(remaining))
            } else {
                format!("{n} 件に署名しました。{}", rest(remaining))
            });
        }
        if self.closed.is_some() {
            return Some(
                if en {
                    "Signing window closed."
                } else {
                    "署名ウィンドウを閉じました。"
                }
                .into(),
            );
        }
        self.pin.as_deref().map(|p| {
            match (p, en) {
                ("new", false) => "署名鍵を作成し、署名用 PIN を設定しました。",
                ("new", true) => "Your signing key was created under your new signing PIN.",
                (_, false) => "署名用 PIN を変更しました。",
                (_, true) => "Your signing PIN was changed.",
            }
            .to_owned()
        })
    }
}

async fn show(
    svc: &Arc<Service>,
    headers: &HeaderMap,
    p: &Principal,
    status_code: StatusCode,
    notice: Option<String>,
    error: Option<(&ServiceError, &'static str)>,
) -> Response {
    let status = match svc.signing_status(p).await {
        Ok(s) => s,
        Err(e) => return error_page(svc, headers, Some(p), &e),
    };
    let en = crate::ui::lang_of(headers) == crate::i18n::Lang::En;
    let kinds = svc.kinds(p).await.unwrap_or_default();
    let kind_name = |code: String| {
        kinds
            .iter()
            .find(|k| k.code == code)
            .map(|k| {
                if en {
                    k.name_en.clone()
                } else {
                    k.name_ja.clone()
                }
            })
            .unwrap_or(code)
    };
    let awaiting = svc
        .awaiting_signature(p)
        .await
        .unwrap_or_default()
        .into_iter()
        .take(200)
        .map(|a| {
            (
                a.finalised_at.map(jst).unwrap_or_default(),
                a.patient_id,
                a.record_id,
                a.version_no,
                kind_name(a.kind),
            )
        })
        .collect();
    let page = SigningPage {
        layout: layout(svc, headers, Some(p), p.csrf.clone()),
        subject: status.subject.clone().unwrap_or_default(),
        not_after: status.not_after.map(jst).unwrap_or_default(),
        window_until: status.window_until.map(jst).unwrap_or_default(),
        status,
        awaiting,
        notice,
        error: error.map(|(e, _)| say(headers, e)),
        error_field: error.map_or("", |(_, f)| f),
    };
    render(status_code, page)
}

async fn page(
    State(svc): Svc,
    headers: HeaderMap,
    SignedIn(p): SignedIn,
    Query(done): Query<Done>,
) -> Response {
    let en = crate::ui::lang_of(&headers) == crate::i18n::Lang::En;
    show(&svc, &headers, &p, StatusCode::OK, done.say(en), None).await
}

/// A refusal shown on the page (the role's, on the error page).
async fn refused(
    svc: &Arc<Service>,
    headers: &HeaderMap,
    p: &Principal,
    e: ServiceError,
    field: &'static str,
) -> Response {
    if e.code == ErrorCode::Forbidden {
        return error_page(svc, headers, Some(p), &e);
    }
    show(svc, headers, p, status_of(e.code), None, Some((&e, field))).await
}

async fn set_pin(
    State(svc): Svc,
    headers: HeaderMap,
    SignedForm { p, fields }: SignedForm,
) -> Response {
    let (pin, again) = (fields.get("pin"), fields.get("pin2"));
    let current = fields.get("current_pin");
    let new_key = fields.get("new_key") == "1";
    if pin != again {
        let e = ServiceError::invalid("pin", "確認のため入力した PIN が一致しません");
        return refused(&svc, &headers, &p, e, "pin").await;
    }
    let had_key = svc.signing_status(&p).await.is_ok_and(|s| s.has_key);
    let change = mamori_service::evidence::PinChange {
        pin,
        current_pin: Some(current),
        new_key,
        password: Some(fields.get("password")),
    };
    match svc.set_signing_pin(&p, &change).await {
        Ok(_) => {
            let what = if had_key && !new_key {
                "changed"
            } else {
                "new"
            };
            Redirect::to(&format!("/signing?pin={what}")).into_response()
        }
        Err(e) => {
            let field = e.field.unwrap_or("pin");
            refused(&svc, &headers, &p, e, field).await
        }
    }
}

fn after_signing(kind: &str, r: mamori_service::evidence::SignReport) -> Response {
    Redirect::to(&format!(
        "/signing?{kind}={}&remaining={}",
        r.signed, r.remaining
    ))
    .into_response()
}

async fn open(
    State(svc): Svc,
    headers: HeaderMap,
    SignedForm { p, fields }: SignedForm,
) -> Response {
    match svc.open_signing_window(&p, &fields.get("pin")).await {
        Ok(r) => after_signing("opened", r),
        Err(e) => refused(&svc, &headers, &p, e, "open").await,
    }
}

async fn sign(State(svc): Svc, headers: HeaderMap, SignedForm { p, .. }: SignedForm) -> Response {
    match svc.sign_pending(&p).await {
        Ok(r) => after_signing("signed", r),
        Err(e) => refused(&svc, &headers, &p, e, "").await,
    }
}

async fn close(State(svc): Svc, headers: HeaderMap, SignedForm { p, .. }: SignedForm) -> Response {
    match svc.close_signing_window(&p).await {
        Ok(()) => Redirect::to("/signing?closed=1").into_response(),
        Err(e) => refused(&svc, &headers, &p, e, "").await,
    }
}
