//! `/api/v1` for who may do what: sign-in, sessions and passwords, accounts, tokens, roles
//! and record kinds, second factors and passkeys, break-glass, maintenance windows, the
//! facility CA with its certificates, CRL and OCSP responder.

use super::*;
use mamori_service::access::oauth::OAuthClientView;

#[derive(Deserialize)]
pub struct LoginBody {
    login: String,
    password: String,
}

pub(crate) fn session_cookie(svc: &Service, token: &str) -> HeaderValue {
    let secure = if svc.secure_cookies() { "; Secure" } else { "" };
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

#[derive(Deserialize)]
pub struct OAuthClientBody {
    name: String,
    /// The client's public key as a JWK (EC P-256/P-384 or RSA ≥ 2048 bits; never a private key).
    jwk: serde_json::Value,
    /// The SMART system scopes it may be granted (`system/DocumentReference.write`, …).
    scopes: Vec<String>,
}

pub async fn register_oauth_client(
    State(svc): Svc,
    Auth(p): Auth,
    Path(id): Path<i64>,
    ApiJson(b): ApiJson<OAuthClientBody>,
) -> Result<(StatusCode, Json<OAuthClientView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(
            svc.register_oauth_client(&p, id, b.name, b.jwk, b.scopes)
                .await?,
        ),
    ))
}

pub async fn oauth_clients(State(svc): Svc, Auth(p): Auth) -> ApiResult<Vec<OAuthClientView>> {
    Ok(Json(svc.oauth_clients(&p).await?))
}

#[derive(Deserialize)]
pub struct RevokeClientBody {
    client_id: String,
}

pub async fn revoke_oauth_client(
    State(svc): Svc,
    Auth(p): Auth,
    ApiJson(b): ApiJson<RevokeClientBody>,
) -> Result<StatusCode, ApiError> {
    svc.revoke_oauth_client(&p, b.client_id).await?;
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

/// The CA certificate in DER under a short address (`/ca.crt`) for PCs to install: Windows
/// and macOS open this type with their certificate installers.
pub async fn ca_certificate_der(State(svc): Svc) -> Result<Response, ApiError> {
    let mut res = svc.ca_certificate_der().await?.into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-x509-ca-cert"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"mamori-ca.crt\""),
    );
    Ok(res)
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

/// The facility CA's OCSP responder (RFC 6960 over HTTP POST); public, as OCSP is.
pub async fn ocsp(State(svc): Svc, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let types = ("application/ocsp-request", "application/ocsp-response");
    der_exchange(&headers, body, types, |req| svc.ocsp_respond(req)).await
}
