//! `/api/v1` for the vault: patients, records and their versions, attachments, print views
//! and pending approvals.

use super::*;

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
    pub(crate) reason: String,
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

#[derive(Deserialize, Default)]
pub struct PdfQuery {
    /// The SHA-256 of an uploaded PDF attachment the author signed; absent: the letter.
    pub attachment: Option<String>,
}

pub async fn record_pdf(
    State(svc): Svc,
    Auth(p): Auth,
    Path((id, version)): Path<(i64, i64)>,
    Query(q): Query<PdfQuery>,
) -> Result<Response, ApiError> {
    let pdf = svc
        .signed_pdf(&p, id, version, q.attachment.as_deref())
        .await?;
    Ok(pdf_response(pdf))
}

/// The author signs an uploaded PDF attachment of their finalised version (open window).
pub async fn sign_attachment_pdf(
    State(svc): Svc,
    Auth(p): Auth,
    Path((id, version, sha256)): Path<(i64, i64, String)>,
) -> ApiResult<serde_json::Value> {
    let level = svc.sign_attachment_pdf(&p, id, version, &sha256).await?;
    Ok(Json(serde_json::json!({
        "record_id": id,
        "version_no": version,
        "attachment_sha256": sha256.to_ascii_lowercase(),
        "level": level,
        "pdf": format!("/api/v1/records/{id}/versions/{version}/pdf?attachment={}", sha256.to_ascii_lowercase()),
    })))
}

/// A signed PDF as a download (never rendered inside the application's origin).
pub(crate) fn pdf_response(pdf: mamori_service::evidence::SignedPdf) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/pdf"),
    );
    let disposition = format!("attachment; filename=\"{}\"", pdf.file_name);
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&pdf.level) {
        headers.insert("x-mamori-pades-level", v);
    }
    (headers, pdf.bytes).into_response()
}

pub async fn print(State(svc): Svc, Auth(p): Auth, Path(id): Path<i64>) -> ApiResult<PrintView> {
    Ok(Json(svc.print_record(&p, id).await?))
}

pub async fn approvals(State(svc): Svc, Auth(p): Auth) -> ApiResult<Vec<PendingItem>> {
    Ok(Json(svc.pending_approvals(&p).await?))
}
