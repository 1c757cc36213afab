//! Screen lock: a person leaving the desk (or a page left alone for `session.lock_minutes`)
//! locks the session; the password — not a new sign-in — unlocks it, and a record form being
//! typed comes back as it was.

use mamori_service::ErrorCode;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use mamori_service::{Principal, Service};

use crate::error::status_of;
use crate::extract::{ClientAddr, SESSION_COOKIE};
use crate::ui::form::{Fields, SignedForm};
use crate::ui::{Resume, cookie, say, unlock_form};

type Svc = State<Arc<Service>>;

pub fn routes() -> axum::Router<Arc<Service>> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/lock", get(lock_page).post(lock_now))
        .route("/lock/unlock", post(unlock))
}

/// The locked session's person, or the login page when there is no session any more.
async fn locked_principal(
    svc: &Arc<Service>,
    headers: &HeaderMap,
    client: Option<String>,
) -> Result<(Principal, String), Response> {
    let token =
        cookie(headers, SESSION_COOKIE).ok_or_else(|| Redirect::to("/login").into_response())?;
    svc.authenticate_pending(&token, client)
        .await
        .map(|p| (p, token))
        .map_err(|_| Redirect::to("/login?expired=1").into_response())
}

async fn lock_page(
    State(svc): Svc,
    headers: HeaderMap,
    ClientAddr(client): ClientAddr,
) -> Response {
    let (p, _) = match locked_principal(&svc, &headers, client).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if !p.locked {
        return Redirect::to("/").into_response();
    }
    unlock_form(&svc, &headers, &p, StatusCode::OK, None, None)
}

async fn lock_now(State(svc): Svc, headers: HeaderMap, post: SignedForm) -> Response {
    match svc.lock_session(&post.p).await {
        Ok(()) => Redirect::to("/lock").into_response(),
        Err(e) => crate::ui::error_page(&svc, &headers, Some(&post.p), &e),
    }
}

async fn unlock(
    State(svc): Svc,
    headers: HeaderMap,
    ClientAddr(client): ClientAddr,
    body: Bytes,
) -> Response {
    let (p, token) = match locked_principal(&svc, &headers, client.clone()).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let f = Fields::parse(&body);
    let resume = Resume::from_fields(&f);
    if let Err(e) = f.check_csrf(&svc, &p) {
        return unlock_form(
            &svc,
            &headers,
            &p,
            status_of(e.code),
            Some(say(&headers, &e)),
            resume,
        );
    }
    match svc.unlock_session(&p, &f.get("password")).await {
        Ok(()) => match resume {
            Some(r) => crate::ui::write::restore(&svc, &headers, client, &token, &r).await,
            None => Redirect::to("/").into_response(),
        },
        Err(e) if e.code == ErrorCode::AccountLocked => {
            let mut res = crate::ui::login_form(
                &svc,
                &headers,
                status_of(e.code),
                Some(say(&headers, &e)),
                String::new(),
                None,
            );
            res.headers_mut()
                .append(header::SET_COOKIE, crate::ui::clear_session_cookie());
            res
        }
        Err(e) => unlock_form(
            &svc,
            &headers,
            &p,
            status_of(e.code),
            Some(say(&headers, &e)),
            resume,
        ),
    }
}
