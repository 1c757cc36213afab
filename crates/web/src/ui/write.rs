//! Writing in the browser: new records, draft edits, amendments, and the one-button actions
//! (finalise, submit, approve, reject, entered in error), plus the print view. Every rule is
//! the service's; on a refusal the form comes back with what was typed and the reason.

use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use mamori_domain::content::AttachmentRef;
use mamori_domain::permission::Action;
use mamori_service::records::{AuthorChoice, RecordInput, Then, Upload};
use mamori_service::{Principal, Service, ServiceError};
use serde::Deserialize;

use crate::error::status_of;
use crate::extract::ClientAddr;
use crate::i18n::t;
use crate::ui::multipart;
use crate::ui::{
    Layout, Resume, error_page, lang_of, layout, login_form, render, show_record, signed_in,
};

type Svc = State<Arc<Service>>;

#[derive(Template)]
#[template(path = "record_form.html")]
struct FormPage {
    layout: Layout,
    heading: &'static str,
    action: String,
    patient_id: String,
    error: Option<String>,
    error_field: String,
    show_kind: bool,
    kinds: Vec<(String, String)>,
    kind: String,
    show_author: bool,
    authors: Vec<AuthorChoice>,
    author_id: String,
    title: String,
    body: String,
    existing: Vec<AttachmentRef>,
    show_reason: bool,
    reason: String,
    base_sha256: String,
    buttons: Vec<(&'static str, &'static str)>,
    max_mb: u64,
    /// The form was brought back after the session ended (see `restore`).
    restored: bool,
}

/// What the form sent, kept to show again if the save is refused.
#[derive(Default)]
struct Sent {
    csrf: String,
    kind: String,
    author_id: String,
    title: String,
    body: String,
    keep: Vec<String>,
    reason: String,
    base_sha256: String,
    action: String,
    uploads: Vec<Upload>,
    restored: bool,
}

async fn read_form(mp: Multipart) -> Result<Sent, ServiceError> {
    let mut form = multipart::read(mp).await?;
    Ok(Sent {
        csrf: form.get("csrf"),
        kind: form.get("kind"),
        author_id: form.get("author_id"),
        title: form.get("title"),
        body: form.get("body"),
        keep: form.all("keep"),
        reason: form.get("reason"),
        base_sha256: form.get("base_sha256"),
        action: form.get("action"),
        uploads: std::mem::take(&mut form.files)
            .into_iter()
            .map(|(name, bytes)| Upload { name, bytes })
            .collect(),
        restored: false,
    })
}

fn input_of(s: &Sent, patient: &str) -> Result<RecordInput, ServiceError> {
    let author_id =
        match s.author_id.trim() {
            "" => None,
            x => Some(x.parse().map_err(|_| {
                ServiceError::invalid("author_id", "責任者の指定が正しくありません")
            })?),
        };
    Ok(RecordInput {
        patient_id: patient.to_owned(),
        kind: s.kind.clone(),
        title: s.title.clone(),
        body: s.body.clone(),
        author_id,
        keep_attachments: s.keep.clone(),
        reason: Some(s.reason.clone()).filter(|r| !r.trim().is_empty()),
        base_sha256: Some(s.base_sha256.clone()).filter(|b| !b.is_empty()),
        identifier: None,
        base_version: None,
    })
}

/// The form's buttons: the action sent, and the label's message key.
const WRITE_BUTTONS: [(&str, &str); 3] = [
    ("draft", "form.save_draft"),
    ("finalise", "form.finalise"),
    ("submit", "form.submit"),
];

async fn writable_kinds(svc: &Arc<Service>, p: &Principal) -> Vec<(String, String)> {
    svc.kinds(p)
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|k| p.role.allows(Action::Write, Some(&k.code)))
        .map(|k| (k.code, k.name_ja))
        .collect()
}

#[allow(clippy::too_many_arguments)]
async fn form_page(
    svc: &Arc<Service>,
    headers: &HeaderMap,
    p: &Principal,
    action: String,
    patient_id: String,
    sent: &Sent,
    existing: Vec<AttachmentRef>,
    mode: Mode,
    error: Option<&ServiceError>,
) -> Response {
    let kinds = writable_kinds(svc, p).await;
    let kind = if sent.kind.is_empty() {
        kinds.first().map(|k| k.0.clone()).unwrap_or_default()
    } else {
        sent.kind.clone()
    };
    let authors = if mode == Mode::Edit {
        Vec::new()
    } else {
        svc.authors_for(p, &kind).await.unwrap_or_default()
    };
    let mut message = error.map(|e| crate::ui::say(headers, e));
    if let Some(m) = message.as_mut().filter(|_| !sent.uploads.is_empty()) {
        m.push_str(t(lang_of(headers), "form.choose_again"));
    }
    let lang = lang_of(headers);
    let msg = |key| t(lang, key);
    let page = FormPage {
        layout: layout(svc, headers, Some(p), p.csrf.clone()),
        heading: msg(mode.heading_key()),
        action,
        patient_id,
        error: message,
        error_field: error.and_then(|e| e.field).unwrap_or("").to_owned(),
        show_kind: mode == Mode::New,
        kinds,
        kind,
        show_author: mode != Mode::Edit,
        authors: authors
            .into_iter()
            .filter(|a| a.id != p.account.id)
            .collect(),
        author_id: sent.author_id.clone(),
        title: sent.title.clone(),
        body: sent.body.clone(),
        existing,
        show_reason: mode == Mode::Amend,
        reason: sent.reason.clone(),
        base_sha256: sent.base_sha256.clone(),
        buttons: if mode == Mode::Amend {
            vec![("amend", msg("form.save_amendment"))]
        } else {
            WRITE_BUTTONS.iter().map(|(a, k)| (*a, msg(k))).collect()
        },
        max_mb: svc.config().records.max_attachment_bytes / (1024 * 1024),
        restored: sent.restored,
    };
    render(
        error.map(|e| status_of(e.code)).unwrap_or(StatusCode::OK),
        page,
    )
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    New,
    Edit,
    Amend,
}

impl Mode {
    /// Where the form for replacing record `id` (draft edit or amendment) posts to.
    fn replacement_path(self, id: i64) -> String {
        match self {
            Mode::Amend => format!("/records/{id}/amend"),
            _ => format!("/records/{id}/edit"),
        }
    }

    fn heading_key(self) -> &'static str {
        match self {
            Mode::New => "form.new",
            Mode::Edit => "form.edit",
            Mode::Amend => "form.amend",
        }
    }
}

pub async fn new_page(
    State(svc): Svc,
    headers: HeaderMap,
    ClientAddr(client): ClientAddr,
    Path(pid): Path<String>,
) -> Response {
    let p = signed_in_or_return!(svc, headers, client);
    if let Err(e) = svc.patient(&p, &pid).await {
        return error_page(&svc, &headers, Some(&p), &e);
    }
    let action = format!("/patients/{pid}/records");
    form_page(
        &svc,
        &headers,
        &p,
        action,
        pid,
        &Sent::default(),
        Vec::new(),
        Mode::New,
        None,
    )
    .await
}

/// After saving, finalises or submits if that button was pressed; a refusal there keeps the draft.
/// The form's button: save only, or save and submit / finalise in the same transaction.
fn then_of(action: &str) -> Then {
    match action {
        "finalise" => Then::Finalise,
        "submit" => Then::Submit,
        _ => Then::Keep,
    }
}

pub async fn create(
    State(svc): Svc,
    headers: HeaderMap,
    ClientAddr(client): ClientAddr,
    Path(pid): Path<String>,
    mp: Multipart,
) -> Response {
    let action = format!("/patients/{pid}/records");
    let (p, sent) = match writer_or_resume(&svc, &headers, client, &action, mp).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let sent = match sent {
        Ok(s) => s,
        Err(e) => {
            return form_page(
                &svc,
                &headers,
                &p,
                action,
                pid,
                &Sent::default(),
                vec![],
                Mode::New,
                Some(&e),
            )
            .await;
        }
    };
    if let Err(e) = svc.check_csrf(&p, Some(&sent.csrf)) {
        return form_page(
            &svc,
            &headers,
            &p,
            action,
            pid,
            &sent,
            vec![],
            Mode::New,
            Some(&e),
        )
        .await;
    }
    let result = match input_of(&sent, &pid) {
        Ok(input) => {
            svc.create_record_then(&p, input, sent.uploads.clone(), then_of(&sent.action))
                .await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(w) => Redirect::to(&format!("/records/{}", w.record_id)).into_response(),
        Err(e) => {
            form_page(
                &svc,
                &headers,
                &p,
                action,
                pid,
                &sent,
                vec![],
                Mode::New,
                Some(&e),
            )
            .await
        }
    }
}

/// The record's newest visible version, for prefilling edit and amend forms.
async fn head_for_form(
    svc: &Arc<Service>,
    p: &Principal,
    id: i64,
) -> Result<(String, Sent, Vec<AttachmentRef>), ServiceError> {
    let view = svc.record(p, id).await?;
    let head = view
        .versions
        .last()
        .ok_or_else(|| ServiceError::not_found("記録"))?;
    let sent = Sent {
        kind: view.kind.clone(),
        title: head.content.title.clone(),
        body: head.content.body.clone(),
        base_sha256: head.content_sha256.clone(),
        ..Default::default()
    };
    Ok((
        view.patient_id.clone(),
        sent,
        head.content.attachments.clone(),
    ))
}

async fn existing_of(svc: &Arc<Service>, p: &Principal, id: i64) -> Vec<AttachmentRef> {
    head_for_form(svc, p, id)
        .await
        .map(|(_, _, a)| a)
        .unwrap_or_default()
}

/// The form that replaces a record's content: a draft edit or an amendment.
async fn replacement_page(
    svc: &Arc<Service>,
    headers: &HeaderMap,
    client: Option<String>,
    id: i64,
    mode: Mode,
) -> Response {
    let p = signed_in_or_return!(svc, headers, client);
    match head_for_form(svc, &p, id).await {
        Ok((pid, sent, existing)) => {
            let path = mode.replacement_path(id);
            form_page(svc, headers, &p, path, pid, &sent, existing, mode, None).await
        }
        Err(e) => error_page(svc, headers, Some(&p), &e),
    }
}

pub async fn edit_page(
    State(svc): Svc,
    headers: HeaderMap,
    ClientAddr(client): ClientAddr,
    Path(id): Path<i64>,
) -> Response {
    replacement_page(&svc, &headers, client, id, Mode::Edit).await
}

pub async fn edit_submit(
    State(svc): Svc,
    headers: HeaderMap,
    ClientAddr(client): ClientAddr,
    Path(id): Path<i64>,
    mp: Multipart,
) -> Response {
    submit_replacement(&svc, &headers, client, id, Mode::Edit, mp).await
}

/// A posted draft edit or amendment: saved, or carried through the login/unlock page.
async fn submit_replacement(
    svc: &Arc<Service>,
    headers: &HeaderMap,
    client: Option<String>,
    id: i64,
    mode: Mode,
    mp: Multipart,
) -> Response {
    let target = mode.replacement_path(id);
    match writer_or_resume(svc, headers, client, &target, mp).await {
        Ok((p, sent)) => save_replacement(svc, headers, &p, id, mode, sent).await,
        Err(r) => r,
    }
}

/// Saves a draft edit or an amendment of record `id`; on refusal the form comes back.
async fn save_replacement(
    svc: &Arc<Service>,
    headers: &HeaderMap,
    p: &Principal,
    id: i64,
    mode: Mode,
    sent: Result<Sent, ServiceError>,
) -> Response {
    let path = mode.replacement_path(id);
    let existing = existing_of(svc, p, id).await;
    let sent = match sent {
        Ok(s) => s,
        Err(e) => return error_page(svc, headers, Some(p), &e),
    };
    let refused = |e: ServiceError, sent: Sent, existing: Vec<AttachmentRef>| async move {
        form_page(
            svc,
            headers,
            p,
            path.clone(),
            String::new(),
            &sent,
            existing,
            mode,
            Some(&e),
        )
        .await
    };
    if let Err(e) = svc.check_csrf(p, Some(&sent.csrf)) {
        return refused(e, sent, existing).await;
    }
    let input = match input_of(&sent, "") {
        Ok(i) => i,
        Err(e) => return refused(e, sent, existing).await,
    };
    let saved = match mode {
        Mode::Amend => svc.amend_record(p, id, input, sent.uploads.clone()).await,
        _ => {
            svc.update_draft_then(p, id, input, sent.uploads.clone(), then_of(&sent.action))
                .await
        }
    };
    match saved {
        Ok(_) => Redirect::to(&format!("/records/{id}")).into_response(),
        Err(e) => refused(e, sent, existing).await,
    }
}

pub async fn amend_page(
    State(svc): Svc,
    headers: HeaderMap,
    ClientAddr(client): ClientAddr,
    Path(id): Path<i64>,
) -> Response {
    replacement_page(&svc, &headers, client, id, Mode::Amend).await
}

pub async fn amend_submit(
    State(svc): Svc,
    headers: HeaderMap,
    ClientAddr(client): ClientAddr,
    Path(id): Path<i64>,
    mp: Multipart,
) -> Response {
    submit_replacement(&svc, &headers, client, id, Mode::Amend, mp).await
}

#[derive(Deserialize)]
pub struct ActForm {
    csrf: String,
    action: String,
    #[serde(default)]
    reason: String,
    /// `sign_attachment`: which version's which uploaded PDF.
    #[serde(default)]
    version: i64,
    #[serde(default)]
    attachment: String,
    /// `jp_clins`: the destination and what the letter is for.
    #[serde(default)]
    to_organization: String,
    #[serde(default)]
    to_department: String,
    #[serde(default)]
    to_doctor: String,
    #[serde(default)]
    purpose: String,
    #[serde(default)]
    problem: String,
}

pub async fn act(
    State(svc): Svc,
    headers: HeaderMap,
    ClientAddr(client): ClientAddr,
    Path(id): Path<i64>,
    Form(f): Form<ActForm>,
) -> Response {
    let p = signed_in_or_return!(svc, headers, client);
    if let Err(e) = svc.check_csrf(&p, Some(&f.csrf)) {
        return show_record(
            &svc,
            &headers,
            &p,
            id,
            status_of(e.code),
            Some(crate::ui::say(&headers, &e)),
        )
        .await;
    }
    let done = match f.action.as_str() {
        "finalise" => svc.finalise_record(&p, id).await.map(|_| ()),
        "submit" => svc.submit_record(&p, id).await.map(|_| ()),
        "approve" => svc.approve_record(&p, id).await.map(|_| ()),
        "reject" => svc.reject_record(&p, id, f.reason).await.map(|_| ()),
        "entered_in_error" => svc
            .mark_entered_in_error(&p, id, f.reason)
            .await
            .map(|_| ()),
        "sign_attachment" => svc
            .sign_attachment_pdf(&p, id, f.version, &f.attachment)
            .await
            .map(|_| ()),
        "jp_clins" => {
            // The service refuses a missing destination, like every other gap.
            let given = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
            svc.sign_referral_document(
                &p,
                id,
                mamori_fhir::clins::Asked {
                    to: mamori_fhir::clins::Destination {
                        organization: f.to_organization.trim().to_owned(),
                        department: given(&f.to_department),
                        doctor: given(&f.to_doctor),
                    },
                    purpose: given(&f.purpose),
                    problem: given(&f.problem),
                    version: None,
                },
            )
            .await
            .map(|_| ())
        }
        _ => Err(ServiceError::invalid("action", "操作が正しくありません")),
    };
    match done {
        Ok(()) => Redirect::to(&format!("/records/{id}")).into_response(),
        Err(e) => {
            show_record(
                &svc,
                &headers,
                &p,
                id,
                status_of(e.code),
                Some(crate::ui::say(&headers, &e)),
            )
            .await
        }
    }
}

/// The signed-in writer and what the form sent. When the session has ended while the person
/// was typing — or the page's idle timer sends the form (`action=timeout`) — the answer is
/// the login page carrying what was typed, so nothing is lost: signing in brings it back.
async fn writer_or_resume(
    svc: &Arc<Service>,
    headers: &HeaderMap,
    client: Option<String>,
    target: &str,
    mp: Multipart,
) -> Result<(Principal, Result<Sent, ServiceError>), Response> {
    let session = match crate::ui::cookie(headers, crate::extract::SESSION_COOKIE) {
        Some(token) => svc.authenticate_pending(&token, client).await.ok(),
        None => None,
    };
    let session = session.filter(|p| !p.second_factor_pending).ok_or(());
    let sent = read_form(mp).await;
    match (session, sent) {
        // A locked screen (idle, or the lock button): the draft goes through the unlock page.
        (Ok(p), Ok(s)) if p.locked => Err(crate::ui::unlock_form(
            svc,
            headers,
            &p,
            StatusCode::UNAUTHORIZED,
            None,
            Some(resume_of(target, &s, Some(&p.account.login))),
        )),
        (Ok(p), Ok(s)) if s.action == "lock" => {
            if svc.check_csrf(&p, Some(&s.csrf)).is_ok() {
                let _ = svc.lock_session(&p).await;
            }
            Err(crate::ui::unlock_form(
                svc,
                headers,
                &p,
                StatusCode::UNAUTHORIZED,
                None,
                Some(resume_of(target, &s, Some(&p.account.login))),
            ))
        }
        (Ok(p), Ok(s)) if s.action == "timeout" => {
            // Only the page itself (with its CSRF token) may end the session this way.
            let ended = svc.check_csrf(&p, Some(&s.csrf)).is_ok() && svc.logout(&p).await.is_ok();
            let mut res = resume_login(svc, headers, target, &s, Some(&p.account.login));
            if ended {
                res.headers_mut()
                    .append(header::SET_COOKIE, crate::ui::clear_session_cookie());
            }
            Err(res)
        }
        (Ok(p), sent) => Ok((p, sent)),
        (Err(()), Ok(s)) => Err(resume_login(svc, headers, target, &s, None)),
        (Err(()), Err(_)) => Err(Redirect::to("/login?expired=1").into_response()),
    }
}

/// What was typed, as hidden `r_` fields for the login or unlock page.
fn resume_of(target: &str, s: &Sent, owner: Option<&str>) -> Resume {
    let mut fields: Vec<(String, String)> = [
        ("kind", &s.kind),
        ("author_id", &s.author_id),
        ("title", &s.title),
        ("body", &s.body),
        ("reason", &s.reason),
        ("base_sha256", &s.base_sha256),
    ]
    .into_iter()
    .map(|(k, v)| (format!("r_{k}"), v.clone()))
    .collect();
    fields.extend(s.keep.iter().map(|k| ("r_keep".to_owned(), k.clone())));
    if let Some(o) = owner {
        fields.push(("r_owner".to_owned(), o.to_owned()));
    }
    Resume {
        target: target.to_owned(),
        fields,
    }
}

/// `owner` (when the session was still known) is the only person the draft is restored to.
fn resume_login(
    svc: &Service,
    headers: &HeaderMap,
    target: &str,
    s: &Sent,
    owner: Option<&str>,
) -> Response {
    let lang = lang_of(headers);
    login_form(
        svc,
        headers,
        StatusCode::UNAUTHORIZED,
        Some(t(lang, "idle.resume_login").to_owned()),
        owner.unwrap_or_default().to_owned(),
        Some(resume_of(target, s, owner)),
    )
}

/// Which form a carried-over draft belongs to; anything else is ignored.
enum FormTarget {
    New(String),
    Edit(i64),
    Amend(i64),
}

impl FormTarget {
    fn parse(path: &str) -> Option<Self> {
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match parts.as_slice() {
            ["patients", pid, "records"] if !pid.is_empty() => Some(Self::New((*pid).to_owned())),
            ["records", id, "edit"] => id.parse().ok().map(Self::Edit),
            ["records", id, "amend"] => id.parse().ok().map(Self::Amend),
            _ => None,
        }
    }
}

/// After signing in again: the form as it was when the session ended, not yet saved.
pub(crate) async fn restore(
    svc: &Arc<Service>,
    headers: &HeaderMap,
    client: Option<String>,
    token: &str,
    resume: &Resume,
) -> Response {
    let cookie = crate::api::session_cookie(svc, token);
    let owner = resume.field("owner");
    let mut res = match (
        svc.authenticate(token, client).await,
        FormTarget::parse(&resume.target),
    ) {
        // Someone else signing in at the same screen does not get another person's draft.
        (Ok(p), Some(target)) if owner.is_empty() || owner == p.account.login => {
            let sent = Sent {
                kind: resume.field("kind"),
                author_id: resume.field("author_id"),
                title: resume.field("title"),
                body: resume.field("body"),
                reason: resume.field("reason"),
                base_sha256: resume.field("base_sha256"),
                keep: resume.all("keep"),
                restored: true,
                ..Default::default()
            };
            let kept = |mut existing: Vec<AttachmentRef>| {
                existing.retain(|a| sent.keep.contains(&a.sha256));
                existing
            };
            let (action, pid, existing, mode) = match target {
                FormTarget::New(pid) => {
                    (format!("/patients/{pid}/records"), pid, vec![], Mode::New)
                }
                FormTarget::Edit(id) => (
                    Mode::Edit.replacement_path(id),
                    String::new(),
                    kept(existing_of(svc, &p, id).await),
                    Mode::Edit,
                ),
                FormTarget::Amend(id) => (
                    Mode::Amend.replacement_path(id),
                    String::new(),
                    kept(existing_of(svc, &p, id).await),
                    Mode::Amend,
                ),
            };
            form_page(svc, headers, &p, action, pid, &sent, existing, mode, None).await
        }
        _ => Redirect::to("/").into_response(),
    };
    res.headers_mut().append(header::SET_COOKIE, cookie);
    res
}
