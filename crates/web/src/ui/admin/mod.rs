//! Administration in the browser: accounts (create, disable, re-enable, unlock, reset with an
//! identity-check note, change 職種, API tokens), roles and their grants per record kind,
//! record kinds and retention. Every change is a service call, so it is authorised and in
//! the ledger exactly as through the API.

mod roles;
use roles::*;

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use mamori_domain::kinds::RecordKind;
use mamori_domain::permission::{Action, Grant};
use mamori_service::access::accounts::{AccountView, IssuedToken, NewAccount};
use mamori_service::access::settings::{RoleInput, RoleSaved};
use mamori_service::ledger::audit::jst;
use mamori_service::{Principal, Service, ServiceError};
use serde::Deserialize;

use crate::error::status_of;
use crate::i18n::Lang;
use crate::i18n::t;
use crate::ui::form::{SignedForm, SignedIn};
use crate::ui::{Layout, error_page, lang_of, layout, render};

type Svc = State<Arc<Service>>;

pub fn routes() -> axum::Router<Arc<Service>> {
    use axum::routing::get;
    axum::Router::new()
        .route("/admin", get(|| async { Redirect::to("/admin/accounts") }))
        .route("/admin/accounts", get(accounts_page).post(create_account))
        .route("/admin/accounts/{id}", get(account_page).post(account_act))
        .route("/admin/roles", get(roles_page).post(save_role))
        .route("/admin/roles/{code}", get(role_page))
        .route(
            "/admin/role-proposals/{id}",
            axum::routing::post(decide_role_proposal),
        )
        .route("/admin/kinds", get(kinds_page).post(save_kind))
        .route("/admin/hygiene", get(hygiene_page))
}

/// A message about a form that was refused, shown next to the field it names.
#[derive(Default)]
pub struct FormError {
    pub message: String,
    pub field: String,
}

impl FormError {
    pub(crate) fn of(headers: &HeaderMap, e: &ServiceError) -> Option<Self> {
        Some(Self {
            message: crate::ui::say(headers, e),
            field: e.field.unwrap_or("").to_owned(),
        })
    }
}

pub struct AccountRow {
    pub id: i64,
    pub login: String,
    pub name: String,
    pub role: String,
    pub service: bool,
    pub active: bool,
    pub locked: bool,
    pub must_change: bool,
    pub last_login: String,
    pub created: String,
}

fn role_names(
    roles: &[mamori_service::access::settings::RoleView],
    lang: Lang,
) -> Vec<(String, String)> {
    roles
        .iter()
        .map(|r| {
            let name = if lang == Lang::En {
                r.role.name_en.clone()
            } else {
                r.role.name_ja.clone()
            };
            (r.role.code.clone(), name)
        })
        .collect()
}

fn account_row(a: &AccountView, roles: &[(String, String)]) -> AccountRow {
    AccountRow {
        id: a.id,
        login: a.login.clone(),
        name: a.display_name.clone(),
        role: roles
            .iter()
            .find(|r| r.0 == a.role)
            .map(|r| r.1.clone())
            .unwrap_or_else(|| a.role.clone()),
        service: a.service,
        active: a.active,
        locked: a.locked,
        must_change: a.must_change_password,
        last_login: a.last_login_at.map(jst).unwrap_or_default(),
        created: jst(a.created_at),
    }
}

#[derive(Template)]
#[template(path = "admin_accounts.html")]
struct AccountsPage {
    layout: Layout,
    tab: &'static str,
    accounts: Vec<AccountRow>,
    unused_days: Option<u32>,
    roles: Vec<(String, String)>,
    error: Option<FormError>,
    new_login: String,
    new_name: String,
    new_role: String,
    new_service: bool,
}

#[derive(Deserialize, Default)]
pub struct AccountsQuery {
    unused: Option<u32>,
}

struct NewForm {
    login: String,
    name: String,
    role: String,
    service: bool,
}

async fn show_accounts(
    svc: &Arc<Service>,
    headers: &HeaderMap,
    p: &Principal,
    q: AccountsQuery,
    status: StatusCode,
    error: Option<FormError>,
    form: NewForm,
) -> Response {
    let lang = lang_of(headers);
    let list = match q.unused {
        Some(days) => svc.unused_accounts(p, days).await,
        None => svc.list_accounts(p).await,
    };
    let list = match list {
        Ok(l) => l,
        Err(e) => return error_page(svc, headers, Some(p), &e),
    };
    let roles = role_names(&svc.roles(p).await.unwrap_or_default(), lang);
    render(
        status,
        AccountsPage {
            layout: layout(svc, headers, Some(p), p.csrf.clone()),
            tab: "accounts",
            accounts: list.iter().map(|a| account_row(a, &roles)).collect(),
            unused_days: q.unused,
            roles,
            error,
            new_login: form.login,
            new_name: form.name,
            new_role: form.role,
            new_service: form.service,
        },
    )
}

async fn accounts_page(
    State(svc): Svc,
    headers: HeaderMap,
    SignedIn(p): SignedIn,
    Query(q): Query<AccountsQuery>,
) -> Response {
    let form = NewForm {
        login: String::new(),
        name: String::new(),
        role: String::new(),
        service: false,
    };
    show_accounts(&svc, &headers, &p, q, StatusCode::OK, None, form).await
}

async fn create_account(
    State(svc): Svc,
    headers: HeaderMap,
    SignedForm { p, fields: f }: SignedForm,
) -> Response {
    let service = f.get("service") == "on";
    let new = NewAccount {
        login: f.get("login").trim().to_owned(),
        display_name: f.get("display_name").trim().to_owned(),
        role: f.get("role"),
        password: (!service).then(|| f.get("password")),
        service,
    };
    match svc.create_account(&p, new.clone()).await {
        Ok(a) => Redirect::to(&format!("/admin/accounts/{}?done=created", a.id)).into_response(),
        Err(e) => {
            let form = NewForm {
                login: new.login,
                name: new.display_name,
                role: new.role,
                service,
            };
            show_accounts(
                &svc,
                &headers,
                &p,
                AccountsQuery::default(),
                status_of(e.code),
                FormError::of(&headers, &e),
                form,
            )
            .await
        }
    }
}

#[derive(Template)]
#[template(path = "admin_account.html")]
struct AccountPage {
    layout: Layout,
    tab: &'static str,
    a: AccountRow,
    role_code: String,
    roles: Vec<(String, String)>,
    error: Option<FormError>,
    done: String,
    identity_check: String,
    token: Option<IssuedToken>,
    is_self: bool,
    /// Sealed emergency account: None (not one), Some("") unused, Some(time) used then.
    emergency: Option<String>,
    /// A service account's OAuth clients: (client ID, name, algorithm, scopes, registered,
    /// revoked).
    oauth: Vec<(String, String, String, String, String, Option<String>)>,
    /// The SMART scopes offered as checkboxes.
    oauth_scopes: &'static [&'static str],
}

/// The scopes offered on the form (any other SMART system scope can be typed).
const OAUTH_SCOPES: &[&str] = &[
    "system/Patient.rs",
    "system/Patient.cruds",
    "system/DocumentReference.rs",
    "system/DocumentReference.write",
    "system/Provenance.rs",
    "system/AuditEvent.rs",
];

#[derive(Deserialize, Default)]
pub struct SavedQuery {
    saved: Option<String>,
    proposed: Option<i64>,
}

#[derive(Deserialize, Default)]
pub struct DoneQuery {
    done: Option<String>,
}

#[allow(clippy::too_many_arguments)]
async fn show_account(
    svc: &Arc<Service>,
    headers: &HeaderMap,
    p: &Principal,
    id: i64,
    status: StatusCode,
    error: Option<FormError>,
    done: String,
    identity_check: String,
    token: Option<IssuedToken>,
) -> Response {
    let lang = lang_of(headers);
    let list = match svc.list_accounts(p).await {
        Ok(l) => l,
        Err(e) => return error_page(svc, headers, Some(p), &e),
    };
    let Some(a) = list.iter().find(|a| a.id == id) else {
        return error_page(
            svc,
            headers,
            Some(p),
            &ServiceError::not_found("アカウント"),
        );
    };
    let roles = role_names(&svc.roles(p).await.unwrap_or_default(), lang);
    let emergency = svc
        .emergency_account_state(p, id)
        .await
        .ok()
        .flatten()
        .map(|used| used.map(jst).unwrap_or_default());
    let oauth = if a.service {
        svc.oauth_clients(p)
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|c| c.account_id == id)
            .map(|c| {
                (
                    c.client_id,
                    c.name,
                    c.algorithm,
                    c.scopes.join(" "),
                    jst(c.created_at),
                    c.revoked_at.map(jst),
                )
            })
            .collect()
    } else {
        Vec::new()
    };
    render(
        status,
        AccountPage {
            oauth,
            oauth_scopes: OAUTH_SCOPES,
            emergency,
            layout: layout(svc, headers, Some(p), p.csrf.clone()),
            tab: "accounts",
            a: account_row(a, &roles),
            role_code: a.role.clone(),
            roles,
            error,
            done,
            identity_check,
            token,
            is_self: a.id == p.account.id,
        },
    )
}

async fn account_page(
    State(svc): Svc,
    headers: HeaderMap,
    SignedIn(p): SignedIn,
    Path(id): Path<i64>,
    Query(q): Query<DoneQuery>,
) -> Response {
    let done = q.done.unwrap_or_default();
    show_account(
        &svc,
        &headers,
        &p,
        id,
        StatusCode::OK,
        None,
        done,
        String::new(),
        None,
    )
    .await
}

/// One form per administrative act on an account; `op` says which.
async fn account_act(
    State(svc): Svc,
    headers: HeaderMap,
    Path(id): Path<i64>,
    SignedForm { p, fields: f }: SignedForm,
) -> Response {
    let op = f.get("op");
    let result: Result<Option<IssuedToken>, ServiceError> = match op.as_str() {
        "disable" => svc.set_account_active(&p, id, false).await.map(|_| None),
        "enable" => svc.set_account_active(&p, id, true).await.map(|_| None),
        "unlock" => svc.unlock_account(&p, id).await.map(|_| None),
        "emergency_on" => svc.set_emergency_account(&p, id, true).await.map(|_| None),
        "emergency_off" => svc.set_emergency_account(&p, id, false).await.map(|_| None),
        "reset_2fa" => svc
            .reset_second_factor(&p, id, f.get("identity_check"))
            .await
            .map(|_| None),
        "role" => svc
            .set_account_role(&p, id, f.get("role"))
            .await
            .map(|_| None),
        "reset" => svc
            .reset_password(&p, id, f.get("password"), f.get("identity_check"))
            .await
            .map(|_| None),
        "token" => {
            let days = f.get("days").trim().parse::<u32>().ok();
            let scopes = match f.get("scope_export").as_str() {
                "export" => vec!["export".to_owned()],
                _ => Vec::new(),
            };
            svc.issue_token(&p, id, f.get("token_name"), days, scopes)
                .await
                .map(Some)
        }
        "oauth_register" => {
            let mut scopes: Vec<String> = OAUTH_SCOPES
                .iter()
                .filter(|s| !f.get(&format!("oauth_{s}")).is_empty())
                .map(|s| (*s).to_owned())
                .collect();
            scopes.extend(
                f.get("oauth_more")
                    .split_ascii_whitespace()
                    .map(str::to_owned),
            );
            match serde_json::from_str::<serde_json::Value>(&f.get("oauth_jwk")) {
                Err(_) => Err(ServiceError::invalid(
                    "jwk",
                    "公開鍵（JWK）を JSON のまま貼り付けてください",
                )),
                Ok(jwk) => svc
                    .register_oauth_client(&p, id, f.get("oauth_name"), jwk, scopes)
                    .await
                    .map(|_| None),
            }
        }
        "oauth_revoke" => svc
            .revoke_oauth_client(&p, f.get("client_id"))
            .await
            .map(|_| None),
        _ => Err(ServiceError::invalid("op", "操作の指定が正しくありません")),
    };
    match result {
        // A token is shown once, on this response only; it is never stored in clear.
        Ok(Some(token)) => {
            show_account(
                &svc,
                &headers,
                &p,
                id,
                StatusCode::OK,
                None,
                "token".into(),
                String::new(),
                Some(token),
            )
            .await
        }
        Ok(None) => Redirect::to(&format!("/admin/accounts/{id}?done={op}")).into_response(),
        Err(e) => {
            show_account(
                &svc,
                &headers,
                &p,
                id,
                status_of(e.code),
                FormError::of(&headers, &e),
                String::new(),
                f.get("identity_check"),
                None,
            )
            .await
        }
    }
}

#[derive(Template)]
#[template(path = "admin_kinds.html")]
struct KindsPage {
    layout: Layout,
    tab: &'static str,
    kinds: Vec<RecordKind>,
    saved: Option<String>,
    error: Option<FormError>,
    /// The kind whose form was refused, with what was typed.
    failed: Option<RecordKind>,
    new: RecordKind,
}

fn blank_kind() -> RecordKind {
    RecordKind {
        code: String::new(),
        name_ja: String::new(),
        name_en: String::new(),
        retention_years: 5,
    }
}

async fn show_kinds(
    svc: &Arc<Service>,
    headers: &HeaderMap,
    p: &Principal,
    status: StatusCode,
    saved: Option<String>,
    failed: Option<(RecordKind, bool, ServiceError)>,
) -> Response {
    if let Err(e) = p.require(Action::AdminSettings, None) {
        return error_page(svc, headers, Some(p), &e);
    }
    let mut kinds = svc.kinds(p).await.unwrap_or_default();
    let (mut new, mut error, mut failed_kind) = (blank_kind(), None, None);
    if let Some((k, is_new, e)) = failed {
        error = FormError::of(headers, &e);
        if is_new {
            new = k;
        } else {
            if let Some(slot) = kinds.iter_mut().find(|x| x.code == k.code) {
                *slot = k.clone();
            }
            failed_kind = Some(k);
        }
    }
    render(
        status,
        KindsPage {
            layout: layout(svc, headers, Some(p), p.csrf.clone()),
            tab: "kinds",
            kinds,
            saved,
            error,
            failed: failed_kind,
            new,
        },
    )
}

async fn kinds_page(
    State(svc): Svc,
    headers: HeaderMap,
    SignedIn(p): SignedIn,
    Query(q): Query<SavedQuery>,
) -> Response {
    show_kinds(&svc, &headers, &p, StatusCode::OK, q.saved, None).await
}

async fn save_kind(
    State(svc): Svc,
    headers: HeaderMap,
    SignedForm { p, fields: f }: SignedForm,
) -> Response {
    let is_new = f.get("is_new") == "1";
    let years = f.get("retention_years");
    let kind = RecordKind {
        code: f.get("code").trim().to_owned(),
        name_ja: f.get("name_ja"),
        name_en: f.get("name_en"),
        retention_years: years.trim().parse().unwrap_or(0),
    };
    let exists = svc
        .kinds(&p)
        .await
        .unwrap_or_default()
        .iter()
        .any(|k| k.code == kind.code);
    let result = if is_new && exists {
        Err(ServiceError::invalid(
            "code",
            "この種別コードは既に使われています",
        ))
    } else {
        svc.save_kind(&p, kind.clone()).await
    };
    match result {
        Ok(k) => Redirect::to(&format!("/admin/kinds?saved={}", k.code)).into_response(),
        Err(e) => {
            let status = status_of(e.code);
            show_kinds(&svc, &headers, &p, status, None, Some((kind, is_new, e))).await
        }
    }
}

#[derive(Template)]
#[template(path = "admin_hygiene.html")]
struct HygienePage {
    layout: Layout,
    tab: &'static str,
    days: u32,
    unused: Vec<AccountRow>,
    expired: Vec<AccountRow>,
    broad: Vec<mamori_service::access::accounts::BroadRole>,
}

#[derive(Deserialize, Default)]
pub struct DaysQuery {
    days: Option<u32>,
}

async fn hygiene_page(
    State(svc): Svc,
    headers: HeaderMap,
    SignedIn(p): SignedIn,
    Query(q): Query<DaysQuery>,
) -> Response {
    let days = q.days.unwrap_or(90);
    let h = match svc.account_hygiene(&p, days).await {
        Ok(h) => h,
        Err(e) => return error_page(&svc, &headers, Some(&p), &e),
    };
    let roles = role_names(&svc.roles(&p).await.unwrap_or_default(), lang_of(&headers));
    render(
        StatusCode::OK,
        HygienePage {
            layout: layout(&svc, &headers, Some(&p), p.csrf.clone()),
            tab: "hygiene",
            days,
            unused: h.unused.iter().map(|a| account_row(a, &roles)).collect(),
            expired: h
                .expired_passwords
                .iter()
                .map(|a| account_row(a, &roles))
                .collect(),
            broad: h.broad_roles,
        },
    )
}
