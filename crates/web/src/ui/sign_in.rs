//! Signing in and out: the login page and its submission (which brings back a draft carried
//! through an expired session), the password change page, logout, and the language switch.

use super::*;

pub(super) async fn login_page(
    State(svc): Svc,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Response {
    let error = q
        .expired
        .map(|_| t(lang_of(&headers), "login.expired").to_owned());
    login_form(&svc, &headers, StatusCode::OK, error, String::new(), None)
}

pub(super) fn login_csrf_ok(headers: &HeaderMap, presented: &str) -> bool {
    cookie(headers, LOGIN_CSRF_COOKIE).is_some_and(|c| ct_eq(&c, presented))
}

/// Message key for a signed-out form posted without its cookie (another tab, another site).
pub(super) const STALE_FORM: &str = "login.stale";

pub(super) async fn login_submit(
    State(svc): Svc,
    headers: HeaderMap,
    ClientAddr(client): ClientAddr,
    body: axum::body::Bytes,
) -> Response {
    let form = Fields::parse(&body);
    let resume = Resume::from_fields(&form);
    let login = form.get("login");
    if !login_csrf_ok(&headers, &form.get("csrf")) {
        return login_form(
            &svc,
            &headers,
            StatusCode::FORBIDDEN,
            Some(t(lang_of(&headers), STALE_FORM).into()),
            login,
            resume,
        );
    }
    match svc
        .login(&login, &form.get("password"), client.clone())
        .await
    {
        Ok(ok) if ok.second_factor.is_some() => {
            let to = if ok.second_factor == Some("totp") {
                "/login/second-factor"
            } else {
                "/account/second-factor"
            };
            let mut res = Redirect::to(to).into_response();
            res.headers_mut()
                .append(header::SET_COOKIE, session_cookie(&svc, &ok.token));
            res
        }
        Ok(ok) if resume.is_some() => {
            let resume = resume.unwrap_or_default();
            crate::ui::write::restore(&svc, &headers, client, &ok.token, &resume).await
        }
        Ok(ok) => {
            let mut res = Redirect::to("/").into_response();
            res.headers_mut()
                .append(header::SET_COOKIE, session_cookie(&svc, &ok.token));
            res
        }
        Err(e) if e.code == ErrorCode::PasswordChangeRequired => {
            Redirect::to(&format!("/password?login={}", urlencode(&login))).into_response()
        }
        Err(e) => login_form(
            &svc,
            &headers,
            status_of(e.code),
            Some(say(&headers, &e)),
            login,
            resume,
        ),
    }
}

pub(super) fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[derive(Template)]
#[template(path = "password.html")]
pub(super) struct PasswordPage {
    layout: Layout,
    error: Option<String>,
    login: String,
}

#[derive(Deserialize)]
pub struct PasswordQuery {
    login: Option<String>,
}

pub(super) fn password_form(
    svc: &Service,
    headers: &HeaderMap,
    status: StatusCode,
    error: Option<String>,
    login: String,
) -> Response {
    signed_out_form(svc, headers, status, |layout| PasswordPage {
        layout,
        error,
        login,
    })
}

pub(super) async fn password_page(
    State(svc): Svc,
    headers: HeaderMap,
    Query(q): Query<PasswordQuery>,
) -> Response {
    password_form(
        &svc,
        &headers,
        StatusCode::OK,
        None,
        q.login.unwrap_or_default(),
    )
}

#[derive(Deserialize)]
pub struct PasswordForm {
    csrf: String,
    login: String,
    old_password: String,
    new_password: String,
    confirm: String,
    #[serde(default)]
    second_factor_code: String,
}

pub(super) async fn password_submit(
    State(svc): Svc,
    headers: HeaderMap,
    ClientAddr(client): ClientAddr,
    Form(f): Form<PasswordForm>,
) -> Response {
    let lang = lang_of(&headers);
    if !login_csrf_ok(&headers, &f.csrf) {
        return password_form(
            &svc,
            &headers,
            StatusCode::FORBIDDEN,
            Some(t(lang_of(&headers), STALE_FORM).into()),
            f.login,
        );
    }
    if f.new_password != f.confirm {
        return password_form(
            &svc,
            &headers,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(t(lang, "password.mismatch").into()),
            f.login,
        );
    }
    // Someone already signed in with both factors proves the second one by that session.
    let session = match cookie(&headers, SESSION_COOKIE) {
        Some(token) => svc.authenticate(&token, client.clone()).await.ok(),
        None => None,
    };
    let proof = match &session {
        _ if !f.second_factor_code.trim().is_empty() => {
            SecondFactorProof::Code(&f.second_factor_code)
        }
        Some(p) => SecondFactorProof::Session(p),
        None => SecondFactorProof::None,
    };
    match svc
        .change_password_with(&f.login, &f.old_password, &f.new_password, client, proof)
        .await
    {
        Ok(ok) => {
            let mut res = Redirect::to("/").into_response();
            res.headers_mut()
                .append(header::SET_COOKIE, session_cookie(&svc, &ok.token));
            res
        }
        Err(e) => password_form(
            &svc,
            &headers,
            status_of(e.code),
            Some(say(&headers, &e)),
            f.login,
        ),
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
    /// Sent by the page's idle timer: the login page then says why.
    #[serde(default)]
    idle: Option<String>,
}

pub(super) async fn logout(
    State(svc): Svc,
    headers: HeaderMap,
    ClientAddr(client): ClientAddr,
    Form(f): Form<CsrfForm>,
) -> Response {
    // Signing out works from a locked screen or a half-finished two-step sign-in too.
    let session = match cookie(&headers, SESSION_COOKIE) {
        Some(token) => svc.authenticate_pending(&token, client).await.ok(),
        None => None,
    };
    let Some(p) = session else {
        return Redirect::to("/login?expired=1").into_response();
    };
    if let Err(e) = svc.check_csrf(&p, Some(&f.csrf)) {
        return error_page(&svc, &headers, Some(&p), &e);
    }
    let _ = svc.logout(&p).await;
    let to = if f.idle.is_some() {
        "/login?expired=1"
    } else {
        "/login"
    };
    let mut res = Redirect::to(to).into_response();
    res.headers_mut()
        .append(header::SET_COOKIE, clear_session_cookie());
    res
}

#[derive(Deserialize)]
pub struct LangQuery {
    to: Option<String>,
}

pub(super) async fn set_lang(Query(q): Query<LangQuery>) -> Response {
    let v = if q.to.as_deref() == Some("en") {
        "en"
    } else {
        "ja"
    };
    let mut res = Redirect::to("/").into_response();
    res.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_str(&format!(
            "{LANG_COOKIE}={v}; Path=/; SameSite=Strict; Max-Age=31536000"
        ))
        .expect("ascii"),
    );
    res
}
