//! The browser UI: server-rendered Japanese pages (English selectable) over the same service
//! calls as the API, so every page that shows chart data is in the ledger the same way.
//! No JavaScript; forms carry a CSRF token; the stylesheet is a static file (strict CSP).

macro_rules! signed_in_or_return {
    ($svc:expr, $headers:expr, $client:expr) => {
        match signed_in(&$svc, &$headers, $client).await {
            Ok(p) => p,
            Err(r) => return r,
        }
    };
}

pub(crate) mod account;
pub(crate) mod admin;
pub(crate) mod audit;
pub(crate) mod backup;
pub(crate) mod certs;
pub(crate) mod compliance;
pub(crate) mod emergency;
pub(crate) mod evidence;
pub(crate) mod form;
pub(crate) mod lock;
pub(crate) mod maintenance;
pub(crate) mod multipart;
pub(crate) mod print;
pub(crate) mod registers;
mod sign_in;
pub(crate) mod signing;
pub(crate) mod transactions;
use sign_in::*;
pub(crate) mod write;

use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use mamori_domain::permission::Action;
use mamori_service::ErrorCode;
use mamori_service::access::auth::SecondFactorProof;
use mamori_service::crypto::{ct_eq, random_token};
use mamori_service::ledger::audit::jst;
use mamori_service::records::PendingItem;
use mamori_service::{Principal, Service, ServiceError};
use mamori_store::Patient;
use serde::Deserialize;

use crate::api::session_cookie;
use crate::error::status_of;
use crate::extract::{ClientAddr, SESSION_COOKIE};
use crate::i18n::{Lang, t};
use crate::ui::form::Fields;

const LOGIN_CSRF_COOKIE: &str = "mamori_login_csrf";
const LANG_COOKIE: &str = "mamori_lang";

type Svc = State<Arc<Service>>;

pub fn routes() -> axum::Router<Arc<Service>> {
    axum::Router::new()
        .route("/", get(home))
        .route("/login", get(login_page).post(login_submit))
        .route("/password", get(password_page).post(password_submit))
        .route("/logout", post(logout))
        .route("/patients", get(home))
        .route("/patients/{id}", get(patient_page))
        .route(
            "/patients/{id}/records/new",
            get(crate::ui::write::new_page),
        )
        .route("/patients/{id}/records", post(crate::ui::write::create))
        .route("/records/{id}", get(record_page))
        .route(
            "/records/{id}/edit",
            get(crate::ui::write::edit_page).post(crate::ui::write::edit_submit),
        )
        .route(
            "/records/{id}/amend",
            get(crate::ui::write::amend_page).post(crate::ui::write::amend_submit),
        )
        .route("/records/{id}/act", post(crate::ui::write::act))
        .route("/records/{id}/print", get(crate::ui::print::print_page))
        .route("/records/{id}/diff", get(crate::ui::print::diff_page))
        .route("/lang", get(set_lang))
        .route("/static/app.css", get(css))
        .route("/static/idle.js", get(idle_js))
        .route("/static/doc.css", get(doc_css))
        .route("/static/passkey.js", get(passkey_js))
        .route("/session/ping", post(ping))
}

/// Message lookup for templates: `layout.t.get(KEY)`.
#[derive(Clone, Copy)]
pub struct Tr(Lang);

impl Tr {
    pub fn of(lang: Lang) -> Self {
        Self(lang)
    }

    pub fn get(&self, key: &str) -> &'static str {
        t(self.0, key)
    }
}

pub struct UserBar {
    pub name: String,
    pub role: String,
    /// Menu entries this role can use (the service still checks every request).
    pub admin: bool,
    pub audit: bool,
    pub compliance: bool,
    pub transactions: bool,
    /// Finalises records, so holds a signing key (電子署名).
    pub signer: bool,
}

pub struct Layout {
    pub lang: &'static str,
    pub t: Tr,
    pub facility: String,
    pub user: Option<UserBar>,
    pub csrf: String,
    /// The session's idle limit, for the page's idle timer (0 when signed out).
    pub idle_seconds: u64,
    /// Seconds left before the server locks (or ends) the session if nothing happens.
    pub idle_left: i64,
    /// What the page does at that moment: `lock` or `timeout`.
    pub idle_action: &'static str,
    /// Active break-glass accesses: id, patient, until (JST) — shown as a red banner.
    pub emergency: Vec<(i64, String, String)>,
    /// Served over plain HTTP to the network: a warning on every page.
    pub unencrypted: bool,
}

pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k == name).then(|| v.to_owned())
        })
}

pub(crate) fn lang_of(headers: &HeaderMap) -> Lang {
    if cookie(headers, LANG_COOKIE).as_deref() == Some("en") {
        Lang::En
    } else {
        Lang::Ja
    }
}

pub(crate) fn layout(
    svc: &Service,
    headers: &HeaderMap,
    p: Option<&Principal>,
    csrf: String,
) -> Layout {
    let lang = lang_of(headers);
    Layout {
        lang: lang.code(),
        t: Tr(lang),
        facility: svc.facility().to_owned(),
        user: p.map(|p| UserBar {
            name: p.account.display_name.clone(),
            role: if lang == Lang::En {
                p.role.name_en.clone()
            } else {
                p.role.name_ja.clone()
            },
            admin: p.role.allows(Action::AdminAccounts, None)
                || p.role.allows(Action::AdminSettings, None),
            audit: p.role.allows(Action::ReadAudit, None),
            compliance: p.role.allows(Action::ReadAudit, None)
                || p.role.allows(Action::AdminSettings, None),
            transactions: p.role.allows(Action::ReadTransactions, None),
            signer: p.role.allows(Action::Finalise, None),
        }),
        idle_seconds: if p.is_some() {
            idle_period_ms(svc) as u64 / 1000
        } else {
            0
        },
        idle_action: if lock_ms(svc).is_some() {
            "lock"
        } else {
            "timeout"
        },
        emergency: p.map_or_else(Vec::new, |p| {
            p.emergency
                .iter()
                .map(|e| (e.id, e.patient_id.clone(), jst(e.expires_at)))
                .collect()
        }),
        idle_left: p.map_or(0, |p| {
            (p.session_seen_at + idle_period_ms(svc) - svc.now()).max(0) / 1000
        }),
        unencrypted: svc.unencrypted_network(),
        csrf,
    }
}

/// How long a browser session may sit idle before it locks, when locking is on.
pub(crate) fn lock_ms(svc: &Service) -> Option<i64> {
    svc.config().session.lock_ms()
}

/// The idle period the page's timer counts: to the lock, or else to the end of the session.
fn idle_period_ms(svc: &Service) -> i64 {
    lock_ms(svc).unwrap_or(i64::from(svc.config().session.idle_minutes) * 60_000)
}

/// A service error in the page's language.
pub(crate) fn say(headers: &HeaderMap, e: &ServiceError) -> String {
    crate::i18n::error_text(lang_of(headers), e.code, &e.message)
}

pub(crate) fn render(status: StatusCode, page: impl Template) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "内部エラー").into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    layout: Layout,
    message: String,
}

pub(crate) fn error_page(
    svc: &Service,
    headers: &HeaderMap,
    p: Option<&Principal>,
    e: &ServiceError,
) -> Response {
    let csrf = p.map(|p| p.csrf.clone()).unwrap_or_default();
    render(
        status_of(e.code),
        ErrorPage {
            layout: layout(svc, headers, p, csrf),
            message: say(headers, e),
        },
    )
}

/// The signed-in user, or a redirect to the login page (an expired session lands there too).
pub(crate) async fn signed_in(
    svc: &Arc<Service>,
    headers: &HeaderMap,
    client: Option<String>,
) -> Result<Principal, Response> {
    let Some(token) = cookie(headers, SESSION_COOKIE) else {
        return Err(Redirect::to("/login").into_response());
    };
    svc.authenticate(&token, client)
        .await
        .map_err(|e| match e.code {
            ErrorCode::SecondFactorRequired => Redirect::to("/login/second-factor").into_response(),
            ErrorCode::SessionLocked => Redirect::to("/lock").into_response(),
            _ => Redirect::to("/login?expired=1").into_response(),
        })
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    layout: Layout,
    error: Option<String>,
    login: String,
    resume: Option<Resume>,
}

/// What someone was typing when their session ended, carried through the login form (in
/// their own browser only) so that signing in again brings the form back as it was.
#[derive(Debug, Clone, Default)]
pub(crate) struct Resume {
    /// The form's own address: `/patients/{id}/records`, `/records/{id}/edit` or `.../amend`.
    pub target: String,
    /// Form fields, with the `r_` prefix they carry in the login form.
    pub fields: Vec<(String, String)>,
}

impl Resume {
    const PREFIX: &str = "r_";

    pub(crate) fn from_fields(f: &Fields) -> Option<Self> {
        let target = f.get("r_target");
        if target.is_empty() {
            return None;
        }
        Some(Self {
            target,
            fields: f
                .pairs()
                .iter()
                .filter(|(k, _)| k.starts_with(Self::PREFIX) && k != "r_target")
                .cloned()
                .collect(),
        })
    }

    pub fn field(&self, name: &str) -> String {
        let key = format!("{}{name}", Self::PREFIX);
        self.fields
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    pub fn all(&self, name: &str) -> Vec<String> {
        let key = format!("{}{name}", Self::PREFIX);
        self.fields
            .iter()
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

#[derive(Deserialize, Default)]
pub struct LoginQuery {
    expired: Option<String>,
}

/// A signed-out form (login, password change) whose CSRF token is a random value both in a
/// cookie and in the form.
fn signed_out_form<T: Template>(
    svc: &Service,
    headers: &HeaderMap,
    status: StatusCode,
    page: impl FnOnce(Layout) -> T,
) -> Response {
    let token = random_token();
    let secure = if svc.secure_cookies() { "; Secure" } else { "" };
    let mut res = render(status, page(layout(svc, headers, None, token.clone())));
    res.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_str(&format!(
            "{LOGIN_CSRF_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict{secure}"
        ))
        .expect("cookie is ASCII"),
    );
    res
}

#[derive(Template)]
#[template(path = "lock.html")]
struct LockPage {
    layout: Layout,
    /// Whose screen this is (the person unlocks with their own password).
    name: String,
    login: String,
    error: Option<String>,
    resume: Option<Resume>,
}

/// The unlock page, carrying a draft when there is one. The layout shows no menu: nothing
/// but unlocking is open, and no patient data is on this page.
pub(crate) fn unlock_form(
    svc: &Service,
    headers: &HeaderMap,
    p: &Principal,
    status: StatusCode,
    error: Option<String>,
    resume: Option<Resume>,
) -> Response {
    render(
        status,
        LockPage {
            layout: layout(svc, headers, None, p.csrf.clone()),
            name: p.account.display_name.clone(),
            login: p.account.login.clone(),
            error,
            resume,
        },
    )
}

pub(crate) fn login_form(
    svc: &Service,
    headers: &HeaderMap,
    status: StatusCode,
    error: Option<String>,
    login: String,
    resume: Option<Resume>,
) -> Response {
    signed_out_form(svc, headers, status, |layout| LoginPage {
        layout,
        error,
        login,
        resume,
    })
}

pub(crate) fn clear_session_cookie() -> HeaderValue {
    HeaderValue::from_static("mamori_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// The idle timer's keep-alive: the person is working on the page (typing a long note).
async fn ping(State(svc): Svc, headers: HeaderMap, ClientAddr(client): ClientAddr) -> Response {
    let Some(token) = cookie(&headers, SESSION_COOKIE) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    match svc.authenticate(&token, client).await {
        Ok(p) if svc.keep_alive(&p).await.is_ok() => StatusCode::NO_CONTENT.into_response(),
        _ => StatusCode::UNAUTHORIZED.into_response(),
    }
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    layout: Layout,
    q: String,
    searched: bool,
    patients: Vec<Patient>,
    error: Option<String>,
    show_pending: bool,
    pending: Vec<PendingItem>,
    emergency_due: usize,
    /// For administrators and auditors: why the clock is not trusted.
    clock_problem: Option<String>,
    /// For signers: (has a key, finalised versions waiting for their signature, window open).
    signing: Option<(bool, usize, bool)>,
}

#[derive(Deserialize)]
pub struct SearchQuery {
    q: Option<String>,
}

async fn home(
    State(svc): Svc,
    headers: HeaderMap,
    ClientAddr(client): ClientAddr,
    Query(sq): Query<SearchQuery>,
) -> Response {
    let p = match signed_in(&svc, &headers, client).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let q = sq.q.unwrap_or_default();
    // An accounting clerk reads no chart: the transaction documents are their home.
    if !p.role.allows(Action::Read, None) && p.role.allows(Action::ReadTransactions, None) {
        return Redirect::to("/transactions").into_response();
    }
    let (mut patients, mut error) = (Vec::new(), None);
    let searched = !q.trim().is_empty();
    if searched {
        match svc.search_patients(&p, &q).await {
            Ok(found) => patients = found,
            Err(e) => error = Some(say(&headers, &e)),
        }
    }
    let show_pending = p.role.allows(Action::ApproveProxy, None);
    let pending = if show_pending {
        svc.pending_approvals(&p).await.unwrap_or_default()
    } else {
        Vec::new()
    };
    let emergency_due = svc.emergency_reviews_due(&p).await.unwrap_or(0);
    let clock_problem = (p.role.allows(Action::AdminSettings, None)
        || p.role.allows(Action::ReadAudit, None))
    .then(|| svc.clock_status())
    .flatten()
    .filter(|c| !c.synchronised)
    .map(|c| c.problem.unwrap_or_default());
    let signing = if p.role.allows(Action::Finalise, None) {
        svc.signing_status(&p)
            .await
            .ok()
            .map(|s| (s.has_key, s.awaiting, s.window_until.is_some()))
    } else {
        None
    };
    let page = HomePage {
        emergency_due,
        clock_problem,
        signing,
        layout: layout(&svc, &headers, Some(&p), p.csrf.clone()),
        q,
        searched,
        patients,
        error,
        show_pending,
        pending,
    };
    render(StatusCode::OK, page)
}

pub struct RecordRowView {
    pub id: i64,
    pub when: String,
    pub kind: String,
    pub title: String,
    pub status: &'static str,
    pub status_class: String,
    pub author: String,
}

#[derive(Template)]
#[template(path = "patient.html")]
struct PatientPage {
    layout: Layout,
    can_write: bool,
    /// Offer break-glass: the role allows it and none is active for this patient.
    can_break_glass: bool,
    error: Option<String>,
    reason: String,
    patient: Patient,
    sex: &'static str,
    records: Vec<RecordRowView>,
}

fn sex_label(code: &str, lang: Lang) -> &'static str {
    match (code, lang) {
        ("male", Lang::Ja) => "男性",
        ("female", Lang::Ja) => "女性",
        ("other", Lang::Ja) => "その他",
        (_, Lang::Ja) => "不明",
        ("male", Lang::En) => "Male",
        ("female", Lang::En) => "Female",
        ("other", Lang::En) => "Other",
        (_, Lang::En) => "Unknown",
    }
}

pub(crate) fn status_text(lang: Lang, s: mamori_domain::version::RecordStatus) -> &'static str {
    t(lang, &format!("status.{}", status_class(s)))
}

fn status_class(s: mamori_domain::version::RecordStatus) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

async fn patient_page(
    State(svc): Svc,
    headers: HeaderMap,
    ClientAddr(client): ClientAddr,
    Path(id): Path<String>,
) -> Response {
    let p = match signed_in(&svc, &headers, client).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    show_patient(&svc, &headers, &p, &id, StatusCode::OK, None, String::new()).await
}

/// The chart; `error` and `reason` bring back a refused break-glass form.
pub(crate) async fn show_patient(
    svc: &Arc<Service>,
    headers: &HeaderMap,
    p: &Principal,
    id: &str,
    status: StatusCode,
    error: Option<String>,
    reason: String,
) -> Response {
    let (svc, headers, p, id) = (svc.clone(), headers.clone(), p.clone(), id.to_owned());
    let patient = match svc.patient(&p, &id).await {
        Ok(x) => x,
        Err(e) => return error_page(&svc, &headers, Some(&p), &e),
    };
    let records = match svc.patient_records(&p, &id).await {
        Ok(list) => list,
        Err(e) if e.code == ErrorCode::Forbidden => Vec::new(),
        Err(e) => return error_page(&svc, &headers, Some(&p), &e),
    };
    let lang = lang_of(&headers);
    let records = records
        .into_iter()
        .map(|r| RecordRowView {
            id: r.id,
            when: jst(r.updated_at),
            kind: r.kind_name,
            title: r.title,
            status: status_text(lang, r.status),
            status_class: status_class(r.status),
            author: r.author.display_name,
        })
        .collect();
    let sex = sex_label(&patient.sex, lang);
    render(
        status,
        PatientPage {
            can_write: p.role.allows(Action::Write, None),
            can_break_glass: p.role.allows(Action::BreakGlass, None)
                && p.emergency_for(&patient.id).is_none(),
            error,
            reason,
            layout: layout(&svc, &headers, Some(&p), p.csrf.clone()),
            patient,
            sex,
            records,
        },
    )
}

pub(crate) struct VersionCard {
    pub no: i64,
    pub latest: bool,
    pub state: &'static str,
    pub proxy: bool,
    pub author: String,
    pub enterer: String,
    pub created: String,
    pub finalised: Option<String>,
    pub reason: Option<String>,
    pub rejection: Option<String>,
    pub ledger: i64,
    pub title: String,
    pub body: String,
    pub attachments: Vec<AttachmentCard>,
    pub signature: Option<SignatureCard>,
    /// Finalised, but not signed yet: its author has not opened their signing window.
    pub awaiting_signature: bool,
    /// The viewer is the version's author (the page links to their signing window).
    pub own: bool,
}

/// An attachment on the record page: an uploaded PDF of a signed version can be signed by
/// its author, and once signed its signed copy can be downloaded.
pub(crate) struct AttachmentCard {
    pub name: String,
    pub media_type: String,
    pub size: u64,
    pub sha256: String,
    /// The PAdES level of the author's signed copy, once made.
    pub signed: Option<String>,
    /// The viewer is the author of this signed version, and the file is a PDF not signed yet.
    pub can_sign: bool,
}

/// A finalised version's signature on the record page.
pub struct SignatureCard {
    pub signer: String,
    pub level: &'static str,
    pub timestamped: bool,
    pub time: String,
    pub error: String,
    pub sealed: bool,
    pub development: bool,
    /// By a TSA the configuration names accredited (総務大臣認定).
    pub accredited: bool,
    /// The signer's qualification (hcRole) from the certificate, in words; empty if none.
    pub qualification: String,
    /// The signed PDF's PAdES level, when the version has one.
    pub pdf: Option<String>,
}

#[derive(Template)]
#[template(path = "record.html")]
pub(crate) struct RecordPage {
    layout: Layout,
    error: Option<String>,
    actions: Vec<&'static str>,
    simple_actions: Vec<(&'static str, &'static str)>,
    can_print: bool,
    record_id: i64,
    patient_id: String,
    kind: String,
    title: String,
    status: &'static str,
    status_class: String,
    versions: Vec<VersionCard>,
    has_signature: bool,
    /// JP-CLINS 診療情報提供書 made of this 紹介状: (document ID, destination, when).
    clins: Vec<(String, String, String)>,
    /// The viewer wrote the newest finalised version of this 紹介状 and may send it.
    can_prepare_clins: bool,
}

impl RecordPage {
    fn can(&self, action: &str) -> bool {
        self.actions.contains(&action)
    }
}

pub(crate) fn state_label(lang: Lang, state: &str, kind: &str) -> &'static str {
    let key = match (state, kind) {
        ("draft", _) => "state.draft",
        ("pending_approval", _) => "state.pending",
        ("finalised", "amendment") => "state.amendment",
        ("finalised", "entered_in_error") => "state.entered_in_error",
        _ => "state.finalised",
    };
    t(lang, key)
}

async fn record_page(
    State(svc): Svc,
    headers: HeaderMap,
    ClientAddr(client): ClientAddr,
    Path(id): Path<i64>,
) -> Response {
    let p = match signed_in(&svc, &headers, client).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    show_record(&svc, &headers, &p, id, StatusCode::OK, None).await
}

pub(crate) fn version_cards(
    versions: Vec<mamori_service::records::VersionView>,
    lang: Lang,
    viewer: i64,
) -> Vec<VersionCard> {
    let n = versions.len();
    versions
        .into_iter()
        .enumerate()
        .rev()
        .map(|(i, v)| VersionCard {
            no: v.version_no,
            latest: i + 1 == n,
            state: state_label(lang, &v.state, &v.kind),
            proxy: v.proxy_entry,
            author: v.author.display_name,
            enterer: v.enterer.display_name,
            created: jst(v.created_at),
            finalised: v.finalised_at.map(jst),
            reason: v.reason,
            rejection: v.rejection_reason,
            ledger: v.ledger_index,
            title: v.content.title,
            body: v.content.body,
            attachments: {
                let signed = v.signature.as_ref().map(|s| s.signed_attachments.clone());
                let own = v.author.id == viewer;
                v.content
                    .attachments
                    .into_iter()
                    .map(|a| {
                        let level = signed.as_ref().and_then(|l| {
                            l.iter()
                                .find(|(sha, _)| *sha == a.sha256)
                                .map(|x| x.1.clone())
                        });
                        AttachmentCard {
                            can_sign: own
                                && signed.is_some()
                                && level.is_none()
                                && a.media_type == "application/pdf",
                            signed: level,
                            name: a.name,
                            media_type: a.media_type,
                            size: a.size,
                            sha256: a.sha256,
                        }
                    })
                    .collect()
            },
            awaiting_signature: v.awaiting_signature,
            own: v.author.id == viewer,
            signature: v.signature.map(|s| SignatureCard {
                signer: s.signer,
                level: s.level,
                timestamped: s.timestamped_at.is_some(),
                time: s.timestamped_at.map(jst).unwrap_or_default(),
                error: s.pending_error.unwrap_or_default(),
                sealed: s.sealed,
                development: s.development_tsa,
                accredited: s.accredited_tsa,
                qualification: s.qualification.unwrap_or_default(),
                pdf: s.pdf,
            }),
        })
        .collect()
}

/// The record page, optionally with a message about an action that was refused.
pub(crate) async fn show_record(
    svc: &Arc<Service>,
    headers: &HeaderMap,
    p: &Principal,
    id: i64,
    status: StatusCode,
    error: Option<String>,
) -> Response {
    let view = match svc.record_versions(p, id).await {
        Ok(v) => v,
        Err(e) => return error_page(svc, headers, Some(p), &e),
    };
    let actions = Service::record_actions(p, &view);
    let lang = lang_of(headers);
    let simple_actions = ["finalise", "submit", "approve"]
        .into_iter()
        .filter(|a| actions.contains(a))
        .map(|a| (a, t(lang, &format!("act.{a}"))))
        .collect();
    let can_print = p.role.allows(Action::PrintExport, Some(&view.kind))
        && p.role.allows(Action::Read, Some(&view.kind));
    let title = view.title();
    let clins = svc
        .referral_documents_of(view.id)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|d| (d.id, d.destination, jst(d.signed_at)))
        .collect();
    let can_prepare_clins =
        mamori_service::evidence::clins::may_prepare_referral_document(p, &view);
    render(
        status,
        RecordPage {
            clins,
            can_prepare_clins,
            layout: layout(svc, headers, Some(p), p.csrf.clone()),
            error,
            actions,
            simple_actions,
            can_print,
            record_id: view.id,
            patient_id: view.patient_id.clone(),
            kind: view.kind_name.clone(),
            title,
            status: status_text(lang, view.status),
            status_class: status_class(view.status),
            has_signature: view.versions.iter().any(|v| v.signature.is_some()),
            versions: version_cards(view.versions, lang, p.account.id),
        },
    )
}

async fn css() -> Response {
    static_file(
        include_str!("../../static/app.css"),
        "text/css; charset=utf-8",
    )
}

async fn idle_js() -> Response {
    static_file(
        include_str!("../../static/idle.js"),
        "text/javascript; charset=utf-8",
    )
}

fn static_file(body: &'static str, content_type: &'static str) -> Response {
    let mut res = body.into_response();
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    res
}

async fn doc_css() -> Response {
    static_file(mamori_compliance::doc::PRINT_CSS, "text/css; charset=utf-8")
}

async fn passkey_js() -> Response {
    static_file(
        include_str!("../../static/passkey.js"),
        "text/javascript; charset=utf-8",
    )
}
