//! JP-CLINS 診療情報提供書: `POST /DocumentReference/{id}/$jp-clins-document` (the author
//! prepares a finalised 紹介状 for a destination and signs the document Bundle in their window)
//! and `GET /Bundle/{id}` (the signed Bundle again, for whoever may export the record).

use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};

use super::{Base, FhirAuth, FhirError, FhirResult, Svc, json_body, resource};

pub(super) async fn prepare(
    State(svc): Svc,
    FhirAuth(p): FhirAuth,
    Base(base): Base,
    Path(id): Path<String>,
    req: Request,
) -> FhirResult {
    let record_id = id
        .parse::<i64>()
        .map_err(|_| FhirError::from(mamori_service::ServiceError::not_found("記録")))?;
    let body = json_body(req, crate::SMALL_BODY).await?;
    let asked = mamori_fhir::clins::parameters(&body)?;
    let doc = svc.sign_referral_document(&p, record_id, asked).await?;
    Ok(resource(
        StatusCode::CREATED,
        &doc.bundle,
        &[(header::LOCATION, format!("{base}/Bundle/{}", doc.id))],
    ))
}

pub(super) async fn read(
    State(svc): Svc,
    FhirAuth(p): FhirAuth,
    Path(id): Path<String>,
) -> FhirResult {
    let doc = svc.referral_document(&p, &id).await?;
    Ok(resource(StatusCode::OK, &doc.bundle, &[]))
}
