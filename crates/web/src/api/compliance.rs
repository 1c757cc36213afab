//! `/api/v1/compliance`: catalogues, assessments and their reports, the asset ledger, the
//! risk register, the contact chart and the facility documents.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use mamori_compliance::assets::Asset;
use mamori_compliance::risks::Risk;
use mamori_service::compliance::docs::DocKind;
use mamori_service::compliance::facility::ContactInput;
use mamori_service::compliance::observe::Profile;
use mamori_service::compliance::{AnswerInput, AssessmentSummary, CatalogueSummary, EvidenceInput};
use mamori_service::{Service, ServiceError};
use mamori_store::{AssetRow, ContactRow, RiskRow};
use serde::Deserialize;

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Auth};

type Svc = State<Arc<Service>>;

/// A file as a download: never rendered in the application's origin.
pub(crate) fn download(bytes: Vec<u8>, media: &str, file_name: &str) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(media)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    let ascii: String = file_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{ascii}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    (headers, bytes).into_response()
}

#[derive(serde::Serialize)]
pub struct CatalogueList {
    catalogues: Vec<CatalogueSummary>,
    /// Local catalogue files that could not be loaded, with the reason.
    problems: Vec<String>,
}

pub async fn list_catalogues(State(svc): Svc, Auth(p): Auth) -> ApiResult<CatalogueList> {
    svc.gate(
        &p,
        mamori_domain::audit::actions::COMPLIANCE_VIEWED,
        mamori_service::compliance::require_assessor(&p),
    )
    .await?;
    let (catalogues, problems) = svc.catalogue_summaries();
    Ok(Json(CatalogueList {
        catalogues,
        problems,
    }))
}

pub async fn list_assessments(State(svc): Svc, Auth(p): Auth) -> ApiResult<Vec<AssessmentSummary>> {
    Ok(Json(svc.assessments(&p).await?))
}

#[derive(Deserialize)]
pub struct NewAssessmentBody {
    catalogue: String,
    #[serde(default)]
    assessed_on: String,
}

pub async fn create_assessment(
    State(svc): Svc,
    Auth(p): Auth,
    ApiJson(b): ApiJson<NewAssessmentBody>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let id = svc.new_assessment(&p, &b.catalogue, &b.assessed_on).await?;
    Ok((StatusCode::CREATED, Json(serde_json::json!({ "id": id }))))
}

pub async fn get_assessment(
    State(svc): Svc,
    Auth(p): Auth,
    Path(id): Path<i64>,
) -> ApiResult<serde_json::Value> {
    Ok(Json(svc.assessment_json(Some(&p), id).await?))
}

pub async fn assessment_pdf(
    State(svc): Svc,
    Auth(p): Auth,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let doc = svc.assessment_doc(Some(&p), id).await?;
    Ok(download(
        mamori_compliance::pdf::render(&doc),
        "application/pdf",
        &format!("assessment-{id}.pdf"),
    ))
}

pub async fn answer_item(
    State(svc): Svc,
    Auth(p): Auth,
    Path((id, item)): Path<(i64, String)>,
    ApiJson(b): ApiJson<AnswerInput>,
) -> Result<StatusCode, ApiError> {
    svc.answer_item(&p, id, &item, b).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct EvidenceBody {
    #[serde(default)]
    name: String,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    content_base64: Option<String>,
}

pub async fn add_item_evidence(
    State(svc): Svc,
    Auth(p): Auth,
    Path((id, item)): Path<(i64, String)>,
    ApiJson(b): ApiJson<EvidenceBody>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let input = match (b.url, b.content_base64) {
        (Some(url), None) => EvidenceInput::Link { name: b.name, url },
        (None, Some(c)) => EvidenceInput::File {
            name: b.name,
            bytes: base64::engine::general_purpose::STANDARD
                .decode(c.trim())
                .map_err(|_| {
                    ServiceError::invalid(
                        "content_base64",
                        "content_base64 が Base64 ではありません",
                    )
                })?,
        },
        _ => {
            return Err(ServiceError::invalid(
                "url",
                "url か content_base64 のどちらか一方を指定してください",
            )
            .into());
        }
    };
    let eid = svc.add_item_evidence(&p, id, &item, input).await?;
    Ok((StatusCode::CREATED, Json(serde_json::json!({ "id": eid }))))
}

pub async fn close_assessment(
    State(svc): Svc,
    Auth(p): Auth,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    svc.close_assessment(&p, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_assets(State(svc): Svc, Auth(p): Auth) -> ApiResult<Vec<AssetRow>> {
    Ok(Json(svc.assets(&p).await?))
}

pub async fn save_asset(
    State(svc): Svc,
    Auth(p): Auth,
    ApiJson(a): ApiJson<Asset>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let id = svc.save_asset(&p, a).await?;
    Ok((StatusCode::CREATED, Json(serde_json::json!({ "id": id }))))
}

/// The body is the CSV file itself (`Content-Type: text/csv`).
pub async fn import_assets(
    State(svc): Svc,
    Auth(p): Auth,
    body: Bytes,
) -> ApiResult<serde_json::Value> {
    let n = svc.import_assets(&p, &body).await?;
    Ok(Json(serde_json::json!({ "imported": n })))
}

pub async fn export_assets(State(svc): Svc, Auth(p): Auth) -> Result<Response, ApiError> {
    Ok(download(
        svc.assets_csv(&p).await?,
        "text/csv; charset=utf-8",
        "assets.csv",
    ))
}

pub async fn list_risks(State(svc): Svc, Auth(p): Auth) -> ApiResult<Vec<RiskRow>> {
    Ok(Json(svc.risks(&p).await?))
}

#[derive(Deserialize)]
pub struct RiskBody {
    #[serde(default)]
    id: Option<i64>,
    #[serde(flatten)]
    risk: Risk,
}

pub async fn save_risk(
    State(svc): Svc,
    Auth(p): Auth,
    ApiJson(b): ApiJson<RiskBody>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let id = svc.save_risk(&p, b.id, b.risk).await?;
    Ok((StatusCode::CREATED, Json(serde_json::json!({ "id": id }))))
}

pub async fn list_contacts(State(svc): Svc, Auth(p): Auth) -> ApiResult<Vec<ContactRow>> {
    Ok(Json(svc.contacts(&p).await?))
}

pub async fn save_contacts(
    State(svc): Svc,
    Auth(p): Auth,
    ApiJson(b): ApiJson<Vec<ContactInput>>,
) -> ApiResult<serde_json::Value> {
    let n = svc.save_contacts(&p, b).await?;
    Ok(Json(serde_json::json!({ "saved": n })))
}

pub async fn get_profile(State(svc): Svc, Auth(p): Auth) -> ApiResult<Profile> {
    Ok(Json(svc.compliance_profile(&p).await?))
}

pub async fn save_profile(
    State(svc): Svc,
    Auth(p): Auth,
    ApiJson(b): ApiJson<Profile>,
) -> Result<StatusCode, ApiError> {
    svc.save_compliance_profile(&p, b).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct DocQuery {
    #[serde(default)]
    format: Option<String>,
}

/// `contacts`, `rules` or `bcp`, as JSON (the document structure) or `?format=pdf`.
pub async fn facility_document(
    State(svc): Svc,
    Auth(p): Auth,
    Path(kind): Path<String>,
    Query(q): Query<DocQuery>,
) -> Result<Response, ApiError> {
    let k = DocKind::parse(&kind).ok_or_else(mamori_service::compliance::docs::unknown_doc)?;
    let doc = svc.facility_doc(&p, k).await?;
    Ok(match q.format.as_deref() {
        Some("pdf") => download(
            mamori_compliance::pdf::render(&doc),
            "application/pdf",
            &format!("{kind}.pdf"),
        ),
        None | Some("json") => Json(doc).into_response(),
        Some(_) => {
            return Err(ServiceError::invalid("format", "format は json か pdf です").into());
        }
    })
}
