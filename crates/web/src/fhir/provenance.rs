//! Provenance of each version of a record: read (`{record}-{version}`) and search by target.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use mamori_fhir::provenance::{ProvenanceFacts, SignatureFacts, to_fhir};
use mamori_service::records::RecordView;
use mamori_store::SignatureRow;

use super::{Base, FhirAuth, FhirError, FhirResult, Paging, Svc, resource};

pub(super) const SEARCH: &[(&str, &str, &str)] = &[(
    "target",
    "reference",
    "記録（DocumentReference/ID、必須）: その全版の来歴",
)];

fn facts(rec: &RecordView, signatures: &[SignatureRow]) -> Vec<ProvenanceFacts> {
    rec.versions
        .iter()
        .map(|v| ProvenanceFacts {
            record_id: rec.id,
            version_no: v.version_no,
            version_kind: v.kind.clone(),
            author: v.author.display_name.clone(),
            enterer: v.proxy_entry.then(|| v.enterer.display_name.clone()),
            recorded: v.finalised_at.unwrap_or(v.created_at),
            reason: v.reason.clone(),
            signature: signatures
                .iter()
                .find(|s| s.version_no == v.version_no)
                .map(|s| SignatureFacts {
                    when: s.timestamped_at.unwrap_or(s.signed_at),
                    signer: s.signer_subject.clone(),
                    p7s: s.p7s.clone(),
                }),
        })
        .collect()
}

async fn of_record(
    svc: &std::sync::Arc<mamori_service::Service>,
    p: &mamori_service::Principal,
    id: i64,
) -> Result<Vec<ProvenanceFacts>, FhirError> {
    let rec = svc.record_versions(p, id).await?;
    let signatures = svc.record_signatures(p, id).await?;
    Ok(facts(&rec, &signatures))
}

fn not_found() -> FhirError {
    FhirError::from(mamori_service::ServiceError::not_found("来歴"))
}

pub(super) async fn read(
    State(svc): Svc,
    FhirAuth(p): FhirAuth,
    Path(id): Path<String>,
) -> FhirResult {
    let (record, version) = id
        .split_once('-')
        .and_then(|(r, v)| Some((r.parse::<i64>().ok()?, v.parse::<i64>().ok()?)))
        .ok_or_else(not_found)?;
    let found = of_record(&svc, &p, record)
        .await?
        .into_iter()
        .find(|f| f.version_no == version)
        .ok_or_else(not_found)?;
    Ok(resource(StatusCode::OK, &to_fhir(&found), &[]))
}

pub(super) async fn search(
    State(svc): Svc,
    FhirAuth(p): FhirAuth,
    Base(base): Base,
    Query(params): Query<Vec<(String, String)>>,
) -> FhirResult {
    let mut target = None;
    let mut paging = Paging::default();
    for (k, v) in &params {
        if paging.take(k, v)? {
            continue;
        }
        match k.as_str() {
            "target" => {
                let id = v.strip_prefix("DocumentReference/").unwrap_or(v);
                let id = id.split('/').next().unwrap_or(id);
                target = Some(id.parse::<i64>().map_err(|_| {
                    FhirError::malformed("target は DocumentReference/記録ID で指定してください")
                })?);
            }
            other => return Err(Paging::unserved(other)),
        }
    }
    let record = target.ok_or_else(|| {
        FhirError::not_supported(
            "来歴の検索には target（DocumentReference/記録ID）を指定してください",
            None,
        )
    })?;
    let all = of_record(&svc, &p, record).await?;
    let total = all.len();
    let entries = all
        .iter()
        .skip(paging.offset)
        .take(paging.count)
        .map(|f| {
            (
                format!(
                    "{base}/Provenance/{}",
                    mamori_fhir::provenance::id(f.record_id, f.version_no)
                ),
                to_fhir(f),
            )
        })
        .collect();
    let bundle = paging.bundle(&format!("{base}/Provenance"), &params, total, entries);
    Ok(resource(StatusCode::OK, &bundle, &[]))
}
