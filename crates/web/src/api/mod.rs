//! Handlers of `/api/v1`. Each one parses, calls one service function, and shapes the reply:
//! no rule lives here.

pub mod compliance;
pub mod registers;

use mamori_service::ErrorCode;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use mamori_domain::kinds::RecordKind;
use mamori_service::access::accounts::{AccountView, IssuedToken, NewAccount};
use mamori_service::access::auth::LoginOk;
use mamori_service::access::settings::{RoleInput, RoleSaved, RoleView};
use mamori_service::ledger::audit::{AuditEntry, PatientAccessCount, parse_time};
use mamori_service::ledger::{CheckpointView, ProofView};
use mamori_service::records::patients::NewPatient;
use mamori_service::records::{
    DiffLine, PendingItem, PrintView, RecordInput, RecordSummary, RecordView, Then, Upload,
    WriteResult,
};
use mamori_service::{Service, ServiceError};
use mamori_store::{AuditFilter, Patient};
use serde::Deserialize;

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Auth, ClientAddr, MaybeAuth, PendingAuth, SESSION_COOKIE};
use mamori_service::access::auth::SecondFactorProof;

type Svc = State<Arc<Service>>;

#[derive(Deserialize)]
pub struct LoginBody {
    login: String,
    password: String,
}

pub(crate) fn session_cookie(svc: &Service, token: &str) -> HeaderValue {
    let secure = if svc.config().server.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    let max_age = u64::from(svc.config().session.absolute_hours) * 3600;
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .expect("cookie is ASCII")
}

fn with_cookie(svc: &Service, ok: LoginOk) -> Response {
    let mut res = Json(&ok).into_response();
    res.headers_mut()
        .insert(header::SET_COOKIE, session_cookie(svc, &ok.token));
    res
}

pub async fn login(
    State(svc): Svc,
    ClientAddr(client): ClientAddr,
    ApiJson(b): ApiJson<LoginBody>,
) -> Result<Response, ApiError> {
    let ok = svc.login(&b.login, &b.password, client).await?;
    Ok(with_cookie(&svc, ok))
}

#[derive(Deserialize)]
pub struct PasswordBody {
    login: String,
    old_password: String,
    new_password: String,
    /// For an account with a second factor: a code from the app or a recovery code (or send
    /// the request with the person's own signed-in session or token).
    #[serde(default)]
    second_factor_code: Option<String>,
}

pub async fn change_password(
    State(svc): Svc,
    ClientAddr(client): ClientAddr,
    MaybeAuth(session): MaybeAuth,
    ApiJson(b): ApiJson<PasswordBody>,
) -> Result<Response, ApiError> {
    let proof = match (&session, b.second_factor_code.as_deref()) {
        (_, Some(code)) if !code.trim().is_empty() => SecondFactorProof::Code(code),
        (Some(p), _) => SecondFactorProof::Session(p),
        _ => SecondFactorProof::None,
    };
    let ok = svc
        .change_password_with(&b.login, &b.old_password, &b.new_password, client, proof)
        .await?;
    Ok(with_cookie(&svc, ok))
}

pub async fn logout(State(svc): Svc, Auth(p): Auth) -> Result<Response, ApiError> {
    svc.logout(&p).await?;
    let mut res = StatusCode::NO_CONTENT.into_response();
    res.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("mamori_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    Ok(res)
}

pub async fn me(State(svc): Svc, Auth(p): Auth) -> ApiResult<serde_json::Value> {
    Ok(Json(serde_json::json!({
        "account": AccountView::of(&p.account, svc.now()),
        "role": p.role,
        "csrf": p.csrf,
    })))
}

pub async fn create_user(
    State(svc): Svc,
    Auth(p): Auth,
    ApiJson(b): ApiJson<NewAccount>,
) -> Result<(StatusCode, Json<AccountView>), ApiError> {
    Ok((StatusCode::CREATED, Json(svc.create_account(&p, b).await?)))
}

pub async fn list_users(State(svc): Svc, Auth(p): Auth) -> ApiResult<Vec<AccountView>> {
    Ok(Json(svc.list_accounts(&p).await?))
}

#[derive(Deserialize)]
pub struct UnusedQuery {
    days: Option<u32>,
}

pub async fn unused_users(
    State(svc): Svc,
    Auth(p): Auth,
    Query(q): Query<UnusedQuery>,
) -> ApiResult<Vec<AccountView>> {
    Ok(Json(svc.unused_accounts(&p, q.days.unwrap_or(90)).await?))
}

pub async fn account_hygiene(
    State(svc): Svc,
    Auth(p): Auth,
    Query(q): Query<UnusedQuery>,
) -> ApiResult<mamori_service::access::accounts::Hygiene> {
    Ok(Json(svc.account_hygiene(&p, q.days.unwrap_or(90)).await?))
}

pub async fn disable_user(
    State(svc): Svc,
    Auth(p): Auth,
    Path(id): Path<i64>,
) -> ApiResult<AccountView> {
    Ok(Json(svc.set_account_active(&p, id, false).await?))
}

pub async fn enable_user(
    State(svc): Svc,
    Auth(p): Auth,
    Path(id): Path<i64>,
) -> ApiResult<AccountView> {
    Ok(Json(svc.set_account_active(&p, id, true).await?))
}

pub async fn unlock_user(
    State(svc): Svc,
    Auth(p): Auth,
    Path(id): Path<i64>,
) -> ApiResult<AccountView> {
    Ok(Json(svc.unlock_account(&p, id).await?))
}

#[derive(Deserialize)]
pub struct ResetBody {
    temporary_password: String,
    identity_check: String,
}

pub async fn reset_password(
    State(svc): Svc,
    Auth(p): Auth,
    Path(id): Path<i64>,
    ApiJson(b): ApiJson<ResetBody>,
) -> ApiResult<AccountView> {
    Ok(Json(
        svc.reset_password(&p, id, b.temporary_password, b.identity_check)
            .await?,
    ))
}

#[derive(Deserialize)]
pub struct RoleBody {
    role: String,
}

pub async fn set_role(
    State(svc): Svc,
    Auth(p): Auth,
    Path(id): Path<i64>,
    ApiJson(b): ApiJson<RoleBody>,
) -> ApiResult<AccountView> {
    Ok(Json(svc.set_account_role(&p, id, b.role).await?))
}

#[derive(Deserialize)]
pub struct TokenBody {
    name: String,
    /// Days until it expires (default 90, at most 397).
    days: Option<u32>,
    /// Extra permissions: `export` (print and export bundles). Break-glass is never a token's.
    #[serde(default)]
    scopes: Vec<String>,
}

pub async fn issue_token(
    State(svc): Svc,
    Auth(p): Auth,
    Path(id): Path<i64>,
    ApiJson(b): ApiJson<TokenBody>,
) -> Result<(StatusCode, Json<IssuedToken>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(svc.issue_token(&p, id, b.name, b.days, b.scopes).await?),
    ))
}

#[derive(Deserialize)]
pub struct RevokeBody {
    token_id: String,
}

pub async fn revoke_token(
    State(svc): Svc,
    Auth(p): Auth,
    ApiJson(b): ApiJson<RevokeBody>,
) -> Result<StatusCode, ApiError> {
    svc.revoke_token(&p, b.token_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn roles(State(svc): Svc, Auth(p): Auth) -> ApiResult<Vec<RoleView>> {
    Ok(Json(svc.roles(&p).await?))
}

pub async fn save_role(
    State(svc): Svc,
    Auth(p): Auth,
    ApiJson(b): ApiJson<RoleInput>,
) -> Result<Response, ApiError> {
    Ok(match svc.save_role(&p, b).await? {
        saved @ RoleSaved::Saved(_) => (StatusCode::OK, Json(saved)).into_response(),
        proposed => (StatusCode::ACCEPTED, Json(proposed)).into_response(),
    })
}

pub async fn role_proposals(
    State(svc): Svc,
    Auth(p): Auth,
) -> ApiResult<Vec<mamori_service::access::settings::RoleProposal>> {
    Ok(Json(svc.role_proposals(&p).await?))
}

pub async fn approve_role_proposal(
    State(svc): Svc,
    Auth(p): Auth,
    Path(id): Path<i64>,
) -> ApiResult<mamori_domain::permission::Role> {
    Ok(Json(svc.approve_role_proposal(&p, id).await?))
}

pub async fn reject_role_proposal(
    State(svc): Svc,
    Auth(p): Auth,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    svc.reject_role_proposal(&p, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn kinds(State(svc): Svc, Auth(p): Auth) -> ApiResult<Vec<RecordKind>> {
    Ok(Json(svc.kinds(&p).await?))
}

pub async fn save_kind(
    State(svc): Svc,
    Auth(p): Auth,
    ApiJson(b): ApiJson<RecordKind>,
) -> ApiResult<RecordKind> {
    Ok(Json(svc.save_kind(&p, b).await?))
}

pub async fn create_patient(
    State(svc): Svc,
    Auth(p): Auth,
    ApiJson(b): ApiJson<NewPatient>,
) -> Result<(StatusCode, Json<Patient>), ApiError> {
    Ok((StatusCode::CREATED, Json(svc.create_patient(&p, b).await?)))
}

#[derive(Deserialize)]
pub struct SearchQuery {
    q: Option<String>,
}

pub async fn search_patients(
    State(svc): Svc,
    Auth(p): Auth,
    Query(q): Query<SearchQuery>,
) -> ApiResult<Vec<Patient>> {
    Ok(Json(
        svc.search_patients(&p, q.q.as_deref().unwrap_or(""))
            .await?,
    ))
}

pub async fn patient(State(svc): Svc, Auth(p): Auth, Path(id): Path<String>) -> ApiResult<Patient> {
    Ok(Json(svc.patient(&p, &id).await?))
}

pub async fn patient_records(
    State(svc): Svc,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<Vec<RecordSummary>> {
    Ok(Json(svc.patient_records(&p, &id).await?))
}

#[derive(Deserialize)]
pub struct AttachmentIn {
    name: String,
    content_base64: String,
}

#[derive(Deserialize)]
pub struct RecordBody {
    #[serde(flatten)]
    input: RecordInput,
    #[serde(default)]
    attachments: Vec<AttachmentIn>,
    /// Submit a proxy entry for approval right away (same transaction).
    #[serde(default)]
    submit: bool,
    /// Finalise right away (same transaction): the record is never a draft to anyone else.
    #[serde(default)]
    finalise: bool,
}

impl RecordBody {
    fn then(&self) -> Result<Then, ApiError> {
        match (self.submit, self.finalise) {
            (false, false) => Ok(Then::Keep),
            (true, false) => Ok(Then::Submit),
            (false, true) => Ok(Then::Finalise),
            (true, true) => Err(ServiceError::invalid(
                "finalise",
                "submit と finalise は同時に指定できません",
            )
            .into()),
        }
    }
}

fn uploads(list: Vec<AttachmentIn>) -> Result<Vec<Upload>, ApiError> {
    list.into_iter()
        .map(|a| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(a.content_base64.as_bytes())
                .map_err(|_| {
                    ApiError(ServiceError::invalid(
                        "attachments",
                        format!("添付ファイル「{}」の base64 が正しくありません", a.name),
                    ))
                })?;
            Ok(Upload {
                name: a.name,
                bytes,
            })
        })
        .collect()
}

pub async fn create_record(
    State(svc): Svc,
    Auth(p): Auth,
    ApiJson(b): ApiJson<RecordBody>,
) -> Result<(StatusCode, Json<WriteResult>), ApiError> {
    let then = b.then()?;
    let ups = uploads(b.attachments)?;
    let w = svc.create_record_then(&p, b.input, ups, then).await?;
    Ok((StatusCode::CREATED, Json(w)))
}

pub async fn update_draft(
    State(svc): Svc,
    Auth(p): Auth,
    Path(id): Path<i64>,
    ApiJson(b): ApiJson<RecordBody>,
) -> ApiResult<WriteResult> {
    let then = b.then()?;
    let ups = uploads(b.attachments)?;
    Ok(Json(
        svc.update_draft_then(&p, id, b.input, ups, then).await?,
    ))
}

pub async fn amend(
    State(svc): Svc,
    Auth(p): Auth,
    Path(id): Path<i64>,
    ApiJson(b): ApiJson<RecordBody>,
) -> Result<(StatusCode, Json<WriteResult>), ApiError> {
    let ups = uploads(b.attachments)?;
    Ok((
        StatusCode::CREATED,
        Json(svc.amend_record(&p, id, b.input, ups).await?),
    ))
}

pub async fn record(State(svc): Svc, Auth(p): Auth, Path(id): Path<i64>) -> ApiResult<RecordView> {
    Ok(Json(svc.record(&p, id).await?))
}

pub async fn versions(
    State(svc): Svc,
    Auth(p): Auth,
    Path(id): Path<i64>,
) -> ApiResult<RecordView> {
    Ok(Json(svc.record_versions(&p, id).await?))
}

#[derive(Deserialize)]
pub struct DiffQuery {
    from: i64,
    to: i64,
}

pub async fn diff(
    State(svc): Svc,
    Auth(p): Auth,
    Path(id): Path<i64>,
    q: Result<Query<DiffQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Vec<DiffLine>> {
    let Query(q) = q.map_err(|_| {
        ApiError(ServiceError::invalid(
            "from",
            "比較する版を from と to で指定してください",
        ))
    })?;
    Ok(Json(svc.diff_versions(&p, id, q.from, q.to).await?))
}

pub async fn submit(State(svc): Svc, Auth(p): Auth, Path(id): Path<i64>) -> ApiResult<WriteResult> {
    Ok(Json(svc.submit_record(&p, id).await?))
}

pub async fn finalize(
    State(svc): Svc,
    Auth(p): Auth,
    Path(id): Path<i64>,
) -> ApiResult<WriteResult> {
    Ok(Json(svc.finalise_record(&p, id).await?))
}

pub async fn approve(
    State(svc): Svc,
    Auth(p): Auth,
    Path(id): Path<i64>,
) -> ApiResult<WriteResult> {
    Ok(Json(svc.approve_record(&p, id).await?))
}

#[derive(Deserialize)]
pub struct ReasonBody {
    reason: String,
}

pub async fn reject(
    State(svc): Svc,
    Auth(p): Auth,
    Path(id): Path<i64>,
    ApiJson(b): ApiJson<ReasonBody>,
) -> ApiResult<WriteResult> {
    Ok(Json(svc.reject_record(&p, id, b.reason).await?))
}

pub async fn entered_in_error(
    State(svc): Svc,
    Auth(p): Auth,
    Path(id): Path<i64>,
    ApiJson(b): ApiJson<ReasonBody>,
) -> Result<(StatusCode, Json<WriteResult>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(svc.mark_entered_in_error(&p, id, b.reason).await?),
    ))
}

pub async fn attachment(
    State(svc): Svc,
    Auth(p): Auth,
    Path((id, sha)): Path<(i64, String)>,
) -> Result<Response, ApiError> {
    let (meta, bytes) = svc.attachment(&p, id, &sha).await?;
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&meta.media_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    // Served as a download so a crafted file is never rendered in the application's origin.
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment"),
    );
    Ok((headers, bytes).into_response())
}

pub async fn print(State(svc): Svc, Auth(p): Auth, Path(id): Path<i64>) -> ApiResult<PrintView> {
    Ok(Json(svc.print_record(&p, id).await?))
}

pub async fn approvals(State(svc): Svc, Auth(p): Auth) -> ApiResult<Vec<PendingItem>> {
    Ok(Json(svc.pending_approvals(&p).await?))
}

#[derive(Deserialize, Default)]
pub struct AuditQuery {
    patient: Option<String>,
    actor: Option<i64>,
    action: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<u32>,
    before: Option<i64>,
}

fn time_param(field: &'static str, v: Option<&str>) -> Result<Option<i64>, ApiError> {
    v.filter(|s| !s.is_empty())
        .map(|s| {
            parse_time(s).ok_or_else(|| {
                ApiError(ServiceError::invalid(
                    field,
                    "日時は YYYY-MM-DD か RFC 3339 で指定してください",
                ))
            })
        })
        .transpose()
}

pub async fn audit_events(
    State(svc): Svc,
    Auth(p): Auth,
    q: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Vec<AuditEntry>> {
    let Query(q) = q.map_err(|e| {
        ApiError(ServiceError::invalid(
            "query",
            format!("検索条件が正しくありません: {}", e.body_text()),
        ))
    })?;
    let filter = AuditFilter {
        patient: q.patient.filter(|s| !s.is_empty()),
        actor: q.actor,
        action_prefix: q.action.filter(|s| !s.is_empty()),
        from: time_param("from", q.from.as_deref())?,
        to: time_param("to", q.to.as_deref())?,
        limit: q.limit.unwrap_or(200),
        before_idx: q.before,
    };
    Ok(Json(svc.audit_events(&p, filter).await?))
}

pub async fn access_counts(
    State(svc): Svc,
    Auth(p): Auth,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Vec<PatientAccessCount>> {
    let now = svc.now();
    let from = time_param("from", q.from.as_deref())?.unwrap_or(now - 30 * 86_400_000);
    let to = time_param("to", q.to.as_deref())?.unwrap_or(now + 1);
    Ok(Json(
        svc.patient_access_counts(&p, from, to, q.patient.filter(|s| !s.is_empty()))
            .await?,
    ))
}

pub async fn checkpoint(State(svc): Svc, Auth(_p): Auth) -> ApiResult<CheckpointView> {
    Ok(Json(svc.checkpoint_now().await?))
}

pub async fn proof(State(svc): Svc, Auth(p): Auth, Path(index): Path<u64>) -> ApiResult<ProofView> {
    Ok(Json(svc.inclusion_proof(&p, index).await?))
}

pub async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

pub async fn not_found() -> ApiError {
    ApiError(ServiceError::new(
        ErrorCode::NotFound,
        "この URL の API はありません",
    ))
}

#[derive(Deserialize)]
pub struct CodeBody {
    code: String,
}

pub async fn second_factor_status(
    State(svc): Svc,
    PendingAuth(p): PendingAuth,
) -> ApiResult<mamori_service::access::second_factor::SecondFactorStatus> {
    Ok(Json(svc.second_factor_status(&p).await?))
}

pub async fn passkey_registration_options(
    State(svc): Svc,
    PendingAuth(p): PendingAuth,
) -> ApiResult<serde_json::Value> {
    Ok(Json(svc.begin_passkey_registration(&p).await?))
}

pub async fn register_passkey(
    State(svc): Svc,
    PendingAuth(p): PendingAuth,
    ApiJson(b): ApiJson<mamori_service::access::passkeys::Registration>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let codes = svc.finish_passkey_registration(&p, b).await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({ "recovery_codes": codes })),
    ))
}

pub async fn list_passkeys(
    State(svc): Svc,
    Auth(p): Auth,
) -> ApiResult<Vec<mamori_service::access::passkeys::PasskeyView>> {
    Ok(Json(svc.passkeys(&p).await?))
}

pub async fn remove_passkey(
    State(svc): Svc,
    Auth(p): Auth,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    svc.remove_passkey(&p, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn passkey_assertion_options(
    State(svc): Svc,
    PendingAuth(p): PendingAuth,
) -> ApiResult<serde_json::Value> {
    Ok(Json(svc.begin_passkey_assertion(&p).await?))
}

pub async fn complete_passkey(
    State(svc): Svc,
    PendingAuth(p): PendingAuth,
    ApiJson(b): ApiJson<mamori_service::access::passkeys::Assertion>,
) -> ApiResult<serde_json::Value> {
    svc.complete_passkey(&p, b).await?;
    Ok(Json(serde_json::json!({ "ok": true })))
}

pub async fn complete_second_factor(
    State(svc): Svc,
    PendingAuth(p): PendingAuth,
    ApiJson(b): ApiJson<CodeBody>,
) -> ApiResult<serde_json::Value> {
    svc.complete_second_factor(&p, &b.code).await?;
    Ok(Json(serde_json::json!({ "ok": true })))
}

pub async fn begin_totp(
    State(svc): Svc,
    PendingAuth(p): PendingAuth,
) -> ApiResult<mamori_service::access::second_factor::TotpEnrolment> {
    Ok(Json(svc.begin_totp(&p).await?))
}

pub async fn confirm_totp(
    State(svc): Svc,
    PendingAuth(p): PendingAuth,
    ApiJson(b): ApiJson<CodeBody>,
) -> ApiResult<serde_json::Value> {
    let codes = svc.confirm_totp(&p, &b.code).await?;
    Ok(Json(serde_json::json!({ "recovery_codes": codes })))
}

#[derive(Deserialize)]
pub struct OwnPasswordBody {
    password: String,
}

pub async fn remove_totp(
    State(svc): Svc,
    Auth(p): Auth,
    ApiJson(b): ApiJson<OwnPasswordBody>,
) -> Result<StatusCode, ApiError> {
    svc.remove_own_totp(&p, &b.password).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct IdentityBody {
    identity_check: String,
}

pub async fn reset_second_factor(
    State(svc): Svc,
    Auth(p): Auth,
    Path(id): Path<i64>,
    ApiJson(b): ApiJson<IdentityBody>,
) -> Result<StatusCode, ApiError> {
    svc.reset_second_factor(&p, id, b.identity_check).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct RequiredBody {
    required: bool,
}

pub async fn set_role_two_factor(
    State(svc): Svc,
    Auth(p): Auth,
    Path(code): Path<String>,
    ApiJson(b): ApiJson<RequiredBody>,
) -> Result<StatusCode, ApiError> {
    svc.set_role_two_factor(&p, code, b.required).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn set_role_client_cert(
    State(svc): Svc,
    Auth(p): Auth,
    Path(code): Path<String>,
    ApiJson(b): ApiJson<RequiredBody>,
) -> Result<StatusCode, ApiError> {
    svc.set_role_client_cert(&p, code, b.required).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn start_emergency(
    State(svc): Svc,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<ReasonBody>,
) -> Result<(StatusCode, Json<mamori_store::EmergencyRow>), ApiError> {
    let e = svc.start_emergency(&p, &id, &b.reason).await?;
    Ok((StatusCode::CREATED, Json(e)))
}

pub async fn end_emergency(
    State(svc): Svc,
    Auth(p): Auth,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    svc.end_emergency(&p, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct AllQuery {
    all: Option<String>,
}

pub async fn emergency_queue(
    State(svc): Svc,
    Auth(p): Auth,
    Query(q): Query<AllQuery>,
) -> ApiResult<Vec<mamori_service::access::emergency::EmergencyView>> {
    let all = q.all.as_deref().is_some_and(|v| v == "1" || v == "true");
    Ok(Json(svc.emergency_queue(&p, all).await?))
}

#[derive(Deserialize)]
pub struct CommentBody {
    comment: String,
}

pub async fn review_emergency(
    State(svc): Svc,
    Auth(p): Auth,
    Path(id): Path<i64>,
    ApiJson(b): ApiJson<CommentBody>,
) -> Result<StatusCode, ApiError> {
    svc.review_emergency(&p, id, &b.comment).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn maintenance_windows(
    State(svc): Svc,
    Auth(p): Auth,
) -> ApiResult<Vec<mamori_service::access::maintenance::WindowView>> {
    Ok(Json(svc.maintenance_windows(&p).await?))
}

#[derive(Deserialize)]
pub struct MaintenanceBody {
    account_id: i64,
    /// RFC 3339, `YYYY-MM-DDTHH:MM` Japan time, or milliseconds since the epoch.
    starts_at: serde_json::Value,
    ends_at: serde_json::Value,
    purpose: String,
    #[serde(default)]
    personal_info: bool,
}

fn time_field(v: &serde_json::Value, field: &'static str) -> Result<i64, ServiceError> {
    let parsed = match v {
        serde_json::Value::Number(n) => n.as_i64(),
        serde_json::Value::String(s) => mamori_service::ledger::audit::parse_local_time(s),
        _ => None,
    };
    parsed.ok_or_else(|| {
        ServiceError::invalid(
            field,
            "日時は RFC 3339 か YYYY-MM-DDTHH:MM（日本時間）で指定してください",
        )
    })
}

pub async fn request_maintenance(
    State(svc): Svc,
    Auth(p): Auth,
    ApiJson(b): ApiJson<MaintenanceBody>,
) -> Result<
    (
        StatusCode,
        Json<mamori_service::access::maintenance::WindowView>,
    ),
    ApiError,
> {
    let req = mamori_service::access::maintenance::WindowRequest {
        account_id: b.account_id,
        starts_at: time_field(&b.starts_at, "starts_at")?,
        ends_at: time_field(&b.ends_at, "ends_at")?,
        purpose: b.purpose,
        personal_info: b.personal_info,
    };
    Ok((
        StatusCode::CREATED,
        Json(svc.request_maintenance(&p, req).await?),
    ))
}

pub async fn approve_maintenance(
    State(svc): Svc,
    Auth(p): Auth,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    svc.decide_maintenance(&p, id, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn reject_maintenance(
    State(svc): Svc,
    Auth(p): Auth,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    svc.decide_maintenance(&p, id, false).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn maintenance_report(
    State(svc): Svc,
    Auth(p): Auth,
    Path(id): Path<i64>,
) -> ApiResult<mamori_service::access::maintenance::WorkReport> {
    Ok(Json(svc.maintenance_report(&p, id).await?))
}

pub async fn acknowledge_maintenance(
    State(svc): Svc,
    Auth(p): Auth,
    Path(id): Path<i64>,
    ApiJson(b): ApiJson<CommentBody>,
) -> Result<StatusCode, ApiError> {
    svc.acknowledge_maintenance(&p, id, &b.comment).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn clock_status(
    State(svc): Svc,
    Auth(_p): Auth,
) -> ApiResult<Option<mamori_domain::timesync::ClockStatus>> {
    Ok(Json(svc.clock_status()))
}

fn pem_response(pem: String, content_type: &'static str) -> Response {
    let mut res = pem.into_response();
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    res
}

pub async fn ca_certificate(State(svc): Svc) -> Result<Response, ApiError> {
    Ok(pem_response(
        svc.ca_certificate().await?,
        "application/x-pem-file",
    ))
}

pub async fn ca_crl(State(svc): Svc) -> Result<Response, ApiError> {
    Ok(pem_response(
        svc.crl_pem(7).await?,
        "application/x-pem-file",
    ))
}

pub async fn list_certificates(
    State(svc): Svc,
    Auth(p): Auth,
) -> ApiResult<Vec<mamori_store::CertificateRow>> {
    Ok(Json(svc.certificates(Some(&p)).await?))
}

#[derive(Deserialize)]
pub struct IssueBody {
    #[serde(flatten)]
    req: mamori_service::access::ca::CertRequest,
    /// Protects the PKCS#12 file.
    password: String,
}

pub async fn issue_certificate(
    State(svc): Svc,
    Auth(p): Auth,
    ApiJson(b): ApiJson<IssueBody>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let issued = svc.issue_certificate(Some(&p), b.req, &b.password).await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({
            "serial": issued.serial,
            "not_after": issued.not_after,
            "pkcs12_base64": base64::engine::general_purpose::STANDARD.encode(&issued.p12),
        })),
    ))
}

#[derive(Deserialize)]
pub struct CertRevokeBody {
    reason: String,
}

pub async fn revoke_certificate(
    State(svc): Svc,
    Auth(p): Auth,
    Path(serial): Path<String>,
    ApiJson(b): ApiJson<CertRevokeBody>,
) -> Result<StatusCode, ApiError> {
    svc.revoke_certificate(Some(&p), &serial, &b.reason).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn backup_status(
    State(svc): Svc,
    Auth(p): Auth,
) -> ApiResult<mamori_service::backup::BackupStatus> {
    Ok(Json(svc.backup_status(&p).await?))
}

pub async fn run_backup(State(svc): Svc, Auth(p): Auth) -> Result<StatusCode, ApiError> {
    svc.backup_now(Some(&p)).await?;
    Ok(StatusCode::ACCEPTED)
}

pub async fn run_restore_drill(State(svc): Svc, Auth(p): Auth) -> Result<StatusCode, ApiError> {
    svc.drill_now(&p).await?;
    Ok(StatusCode::ACCEPTED)
}

#[derive(Deserialize)]
pub struct OfflineBody {
    target: String,
    medium: String,
    #[serde(default)]
    note: String,
}

pub async fn record_offline_copy(
    State(svc): Svc,
    Auth(p): Auth,
    ApiJson(b): ApiJson<OfflineBody>,
) -> Result<(StatusCode, Json<mamori_service::backup::OfflineCopy>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(
            svc.record_offline_copy(&p, &b.target, &b.medium, &b.note)
                .await?,
        ),
    ))
}

pub async fn record_evidence(
    State(svc): Svc,
    Auth(p): Auth,
    Path(id): Path<i64>,
) -> ApiResult<mamori_service::evidence::read::EvidenceReport> {
    Ok(Json(svc.record_evidence(&p, id).await?))
}

pub(crate) fn zip_response(bytes: Vec<u8>, name: &str) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/zip"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    (headers, bytes).into_response()
}

/// A file-name-safe form of an identifier (patient IDs are free text).
pub(crate) fn file_part(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect()
}

pub async fn record_bundle(
    State(svc): Svc,
    Auth(p): Auth,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let bytes = svc
        .export_bundle(&p, mamori_service::records::export::Scope::Record(id))
        .await?;
    Ok(zip_response(bytes, &format!("mamori-record-{id}.zip")))
}

pub async fn patient_bundle(
    State(svc): Svc,
    Auth(p): Auth,
    Path(pid): Path<String>,
) -> Result<Response, ApiError> {
    let name = format!("mamori-patient-{}.zip", file_part(&pid));
    let bytes = svc
        .export_bundle(&p, mamori_service::records::export::Scope::Patient(pid))
        .await?;
    Ok(zip_response(bytes, &name))
}

pub async fn evidence_status(
    State(svc): Svc,
    Auth(p): Auth,
) -> ApiResult<mamori_service::evidence::EvidenceStatus> {
    Ok(Json(svc.evidence_status(&p).await?))
}

pub async fn seal_evidence(
    State(svc): Svc,
    Auth(p): Auth,
) -> ApiResult<mamori_service::evidence::SweepReport> {
    Ok(Json(svc.seal_now(&p).await?))
}

/// One DER request in, one DER reply out, as RFC 3161 and RFC 6960 carry them over HTTP.
async fn der_exchange<F, Fut>(
    headers: &HeaderMap,
    body: axum::body::Bytes,
    (request_type, reply_type): (&'static str, &'static str),
    answer: F,
) -> Response
where
    F: FnOnce(Vec<u8>) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<u8>, mamori_service::ServiceError>>,
{
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct != request_type {
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Type must be {request_type}"),
        )
            .into_response();
    }
    match answer(body.to_vec()).await {
        Ok(resp) => ([(header::CONTENT_TYPE, reply_type)], resp).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// The development TSA (RFC 3161 over HTTP), when enabled; not part of the API.
pub async fn dev_tsa(State(svc): Svc, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let types = ("application/timestamp-query", "application/timestamp-reply");
    der_exchange(&headers, body, types, |req| svc.dev_tsa_respond(req)).await
}

#[derive(Deserialize)]
pub struct SigningBody {
    /// The signer's certificate, then its chain, as PEM.
    certificate_pem: String,
}

#[derive(Deserialize)]
pub struct SignatureBody {
    /// The signature over `to_be_signed`, base64 (DER ECDSA or RSA PKCS#1 v1.5, SHA-256).
    signature_base64: String,
}

pub async fn begin_external_signature(
    State(svc): Svc,
    Auth(p): Auth,
    Path((id, version)): Path<(i64, i64)>,
    ApiJson(b): ApiJson<SigningBody>,
) -> ApiResult<mamori_service::evidence::SigningTask> {
    Ok(Json(
        svc.begin_external_signature(&p, id, version, &b.certificate_pem)
            .await?,
    ))
}

pub async fn complete_external_signature(
    State(svc): Svc,
    Auth(p): Auth,
    Path((id, version)): Path<(i64, i64)>,
    ApiJson(b): ApiJson<SignatureBody>,
) -> ApiResult<mamori_service::evidence::SignOutcome> {
    Ok(Json(
        svc.complete_external_signature(&p, id, version, &b.signature_base64)
            .await?,
    ))
}

/// The facility CA's OCSP responder (RFC 6960 over HTTP POST); public, as OCSP is.
pub async fn ocsp(State(svc): Svc, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let types = ("application/ocsp-request", "application/ocsp-response");
    der_exchange(&headers, body, types, |req| svc.ocsp_respond(req)).await
}
