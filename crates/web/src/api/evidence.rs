//! `/api/v1` for signatures and evidence: verification, export bundles, sealing, the
//! development TSA and signatures made outside mamori.

use super::*;

pub async fn record_evidence(
    State(svc): Svc,
    Auth(p): Auth,
    Path(id): Path<i64>,
) -> ApiResult<mamori_service::evidence::read::EvidenceReport> {
    Ok(Json(svc.record_evidence(&p, id).await?))
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
    /// The signature value over `pdf_to_be_signed`, for the kinds with a signed PDF.
    #[serde(default)]
    pdf_signature_base64: Option<String>,
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
        svc.complete_external_signature_with_pdf(
            &p,
            id,
            version,
            &b.signature_base64,
            b.pdf_signature_base64.as_deref(),
        )
        .await?,
    ))
}

#[derive(Deserialize)]
pub struct SigningWindowBody {
    /// The signing PIN.
    pin: String,
}

pub async fn signing_status(
    State(svc): Svc,
    Auth(p): Auth,
) -> ApiResult<mamori_service::evidence::SigningStatus> {
    Ok(Json(svc.signing_status(&p).await?))
}

pub async fn set_signing_pin(
    State(svc): Svc,
    Auth(p): Auth,
    ApiJson(b): ApiJson<mamori_service::evidence::PinChange>,
) -> ApiResult<mamori_service::evidence::SigningStatus> {
    Ok(Json(svc.set_signing_pin(&p, &b).await?))
}

pub async fn open_signing_window(
    State(svc): Svc,
    Auth(p): Auth,
    ApiJson(b): ApiJson<SigningWindowBody>,
) -> ApiResult<mamori_service::evidence::SignReport> {
    Ok(Json(svc.open_signing_window(&p, &b.pin).await?))
}

pub async fn close_signing_window(State(svc): Svc, Auth(p): Auth) -> ApiResult<serde_json::Value> {
    svc.close_signing_window(&p).await?;
    Ok(Json(serde_json::json!({ "closed": true })))
}

pub async fn awaiting_signature(
    State(svc): Svc,
    Auth(p): Auth,
) -> ApiResult<Vec<mamori_store::AwaitingSignature>> {
    Ok(Json(svc.awaiting_signature(&p).await?))
}

pub async fn sign_pending(
    State(svc): Svc,
    Auth(p): Auth,
) -> ApiResult<mamori_service::evidence::SignReport> {
    Ok(Json(svc.sign_pending(&p).await?))
}
