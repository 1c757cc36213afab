//! The person's own security settings and the second step of signing in: TOTP enrolment with
//! a QR code and recovery codes, and the code page after the password.

use mamori_service::ErrorCode;
use std::sync::Arc;

use askama::Template;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use mamori_service::access::second_factor::SecondFactorStatus;
use mamori_service::{Principal, Service, ServiceError};

use crate::error::status_of;
use crate::extract::{SESSION_COOKIE, client_of};
use crate::ui::form::Fields;
use crate::ui::{Layout, error_page, layout, render, say};

type Svc = State<Arc<Service>>;

pub fn routes() -> axum::Router<Arc<Service>> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/login/second-factor", get(code_page).post(code_submit))
        .route("/account/second-factor", get(settings_page))
        .route("/account/second-factor/begin", post(begin))
        .route("/account/second-factor/confirm", post(confirm))
        .route("/account/second-factor/remove", post(remove))
        .route("/account/passkeys/{id}/remove", post(remove_passkey))
}

/// A signed-in person, also one whose session still waits for the second factor (these
/// pages are where they complete or set it up).
pub struct Pending(pub Principal);

impl FromRequestParts<Arc<Service>> for Pending {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        svc: &Arc<Service>,
    ) -> Result<Self, Self::Rejection> {
        let token = crate::ui::cookie(&parts.headers, SESSION_COOKIE)
            .ok_or_else(|| Redirect::to("/login").into_response())?;
        match svc.authenticate_pending(&token, client_of(parts)).await {
            Ok(p) if p.locked => Err(Redirect::to("/lock").into_response()),
            Ok(p) => Ok(Pending(p)),
            Err(_) => Err(Redirect::to("/login?expired=1").into_response()),
        }
    }
}

/// A form of these pages, CSRF-checked.
async fn form(
    svc: &Service,
    p: &Principal,
    body: &axum::body::Bytes,
) -> Result<Fields, ServiceError> {
    let f = Fields::parse(body);
    f.check_csrf(svc, p)?;
    Ok(f)
}

#[derive(Template)]
#[template(path = "second_factor_code.html")]
struct CodePage {
    layout: Layout,
    error: Option<String>,
    /// The person has passkeys: offer them beside the code.
    passkey: bool,
    /// The person has an authenticator app (otherwise the code field takes recovery codes).
    totp: bool,
}

/// (has passkeys, has TOTP)
async fn factors(svc: &Arc<Service>, p: &Principal) -> (bool, bool) {
    svc.second_factor_status(p)
        .await
        .map_or((false, true), |s| (s.passkeys > 0, s.totp_enabled))
}

async fn code_page(State(svc): Svc, headers: HeaderMap, Pending(p): Pending) -> Response {
    if !p.second_factor_pending {
        return Redirect::to("/").into_response();
    }
    let (passkey, totp) = factors(&svc, &p).await;
    render(
        StatusCode::OK,
        CodePage {
            layout: layout(&svc, &headers, Some(&p), p.csrf.clone()),
            error: None,
            passkey,
            totp,
        },
    )
}

async fn code_submit(
    State(svc): Svc,
    headers: HeaderMap,
    Pending(p): Pending,
    body: axum::body::Bytes,
) -> Response {
    let result = match form(&svc, &p, &body).await {
        Ok(f) => svc.complete_second_factor(&p, &f.get("code")).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Redirect::to("/").into_response(),
        Err(e) if e.code == ErrorCode::AccountLocked => crate::ui::login_form(
            &svc,
            &headers,
            status_of(e.code),
            Some(say(&headers, &e)),
            String::new(),
            None,
        ),
        Err(e) => {
            let (passkey, totp) = factors(&svc, &p).await;
            render(
                status_of(e.code),
                CodePage {
                    layout: layout(&svc, &headers, Some(&p), p.csrf.clone()),
                    error: Some(say(&headers, &e)),
                    passkey,
                    totp,
                },
            )
        }
    }
}

#[derive(Template)]
#[template(path = "second_factor.html")]
struct SettingsPage {
    layout: Layout,
    status: SecondFactorStatus,
    /// An enrolment in progress: the QR code (SVG data URI) and the secret to type by hand.
    enrolment: Option<(String, String)>,
    recovery_codes: Vec<String>,
    error: Option<String>,
    error_field: String,
    notice: Option<&'static str>,
    /// Registered passkeys: id, name, registered, last used.
    passkeys: Vec<(i64, String, String, String)>,
}

fn qr_data_uri(text: &str) -> String {
    let svg = qrcode::QrCode::new(text.as_bytes())
        .map(|c| {
            c.render::<qrcode::render::svg::Color<'_>>()
                .min_dimensions(200, 200)
                .quiet_zone(true)
                .build()
        })
        .unwrap_or_default();
    format!(
        "data:image/svg+xml;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(svg)
    )
}

#[allow(clippy::too_many_arguments)]
async fn show_settings(
    svc: &Arc<Service>,
    headers: &HeaderMap,
    p: &Principal,
    status: StatusCode,
    enrolment: Option<(String, String)>,
    recovery_codes: Vec<String>,
    error: Option<&ServiceError>,
    notice: Option<&'static str>,
) -> Response {
    let st = match svc.second_factor_status(p).await {
        Ok(s) => s,
        Err(e) => return error_page(svc, headers, Some(p), &e),
    };
    render(
        status,
        SettingsPage {
            layout: layout(svc, headers, Some(p), p.csrf.clone()),
            status: st,
            enrolment,
            recovery_codes,
            error: error.map(|e| say(headers, e)),
            error_field: error.and_then(|e| e.field).unwrap_or("").to_owned(),
            notice,
            passkeys: svc
                .passkeys(p)
                .await
                .unwrap_or_default()
                .into_iter()
                .map(|k| {
                    (
                        k.id,
                        k.name,
                        mamori_service::ledger::audit::jst(k.created_at),
                        k.last_used_at
                            .map(mamori_service::ledger::audit::jst)
                            .unwrap_or_default(),
                    )
                })
                .collect(),
        },
    )
}

async fn settings_page(State(svc): Svc, headers: HeaderMap, Pending(p): Pending) -> Response {
    if p.second_factor_pending
        && svc
            .second_factor_status(&p)
            .await
            .is_ok_and(|s| s.totp_enabled || s.passkeys > 0)
    {
        return Redirect::to("/login/second-factor").into_response();
    }
    let notice = p
        .second_factor_pending
        .then_some("account.2fa_required_notice");
    show_settings(
        &svc,
        &headers,
        &p,
        StatusCode::OK,
        None,
        vec![],
        None,
        notice,
    )
    .await
}

async fn begin(
    State(svc): Svc,
    headers: HeaderMap,
    Pending(p): Pending,
    body: axum::body::Bytes,
) -> Response {
    let result = match form(&svc, &p, &body).await {
        Ok(_) => svc.begin_totp(&p).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(e) => {
            let enrolment = Some((qr_data_uri(&e.uri), e.secret));
            show_settings(
                &svc,
                &headers,
                &p,
                StatusCode::OK,
                enrolment,
                vec![],
                None,
                None,
            )
            .await
        }
        Err(e) => {
            show_settings(
                &svc,
                &headers,
                &p,
                status_of(e.code),
                None,
                vec![],
                Some(&e),
                None,
            )
            .await
        }
    }
}

async fn confirm(
    State(svc): Svc,
    headers: HeaderMap,
    Pending(p): Pending,
    body: axum::body::Bytes,
) -> Response {
    let (result, secret) = match form(&svc, &p, &body).await {
        Ok(f) => (svc.confirm_totp(&p, &f.get("code")).await, f.get("secret")),
        Err(e) => (Err(e), String::new()),
    };
    match result {
        Ok(codes) => {
            show_settings(
                &svc,
                &headers,
                &p,
                StatusCode::OK,
                None,
                codes,
                None,
                Some("account.2fa_enabled"),
            )
            .await
        }
        Err(e) => {
            // Keep the same secret on the page so the person can try the next code.
            let enrolment = (!secret.is_empty()).then(|| {
                let uri =
                    mamori_domain::totp::otpauth_uri(svc.facility(), &p.account.login, &secret);
                (qr_data_uri(&uri), secret)
            });
            show_settings(
                &svc,
                &headers,
                &p,
                status_of(e.code),
                enrolment,
                vec![],
                Some(&e),
                None,
            )
            .await
        }
    }
}

async fn remove(
    State(svc): Svc,
    headers: HeaderMap,
    Pending(p): Pending,
    body: axum::body::Bytes,
) -> Response {
    if p.second_factor_pending {
        return Redirect::to("/login/second-factor").into_response();
    }
    let result = match form(&svc, &p, &body).await {
        Ok(f) => svc.remove_own_totp(&p, &f.get("password")).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => {
            show_settings(
                &svc,
                &headers,
                &p,
                StatusCode::OK,
                None,
                vec![],
                None,
                Some("account.2fa_removed"),
            )
            .await
        }
        Err(e) => {
            show_settings(
                &svc,
                &headers,
                &p,
                status_of(e.code),
                None,
                vec![],
                Some(&e),
                None,
            )
            .await
        }
    }
}

async fn remove_passkey(
    State(svc): Svc,
    headers: HeaderMap,
    Pending(p): Pending,
    axum::extract::Path(id): axum::extract::Path<i64>,
    body: axum::body::Bytes,
) -> Response {
    if p.second_factor_pending {
        return Redirect::to("/login/second-factor").into_response();
    }
    let result = match form(&svc, &p, &body).await {
        Ok(_) => svc.remove_passkey(&p, id).await,
        Err(e) => Err(e),
    };
    let (status, error, notice) = match &result {
        Ok(()) => (StatusCode::OK, None, Some("account.passkey_removed")),
        Err(e) => (status_of(e.code), Some(e), None),
    };
    show_settings(&svc, &headers, &p, status, None, vec![], error, notice).await
}
