//! DocumentReference: a record (its newest version), one version (`_history/{n}`), every
//! version (`_history`), a patient's records (search), records in (create) and corrections
//! (update with `If-Match`). Each is the same ledgered read or write as through the JSON API.

use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use mamori_fhir::document::{DocumentFacts, FileFacts, to_fhir};
use mamori_service::records::{RecordView, VersionView};

use mamori_service::ErrorCode;
use mamori_service::records::{RecordInput, Then, Upload};

use super::{Base, FhirAuth, FhirError, FhirResult, Paging, Svc, json_body, resource};

pub(super) const SEARCH: &[(&str, &str, &str)] = &[
    ("patient", "reference", "患者（Patient/ID または ID、必須）"),
    (
        "type",
        "token",
        "記録の種別（urn:mamori:record-kind のコード。例: referral）",
    ),
    ("status", "token", "current または entered-in-error"),
    ("_count", "number", "1 ページの件数（既定 20、最大 50）"),
];

fn facts(rec: &RecordView, v: &VersionView, base: &str) -> DocumentFacts {
    let api = base.trim_end_matches("/fhir/r4");
    DocumentFacts {
        record_id: rec.id,
        patient_id: rec.patient_id.clone(),
        kind: rec.kind.clone(),
        kind_name: rec.kind_name.clone(),
        version_no: v.version_no,
        state: v.state.clone(),
        version_kind: v.kind.clone(),
        author: v.author.display_name.clone(),
        enterer: v.proxy_entry.then(|| v.enterer.display_name.clone()),
        created_at: v.created_at,
        finalised_at: v.finalised_at,
        title: v.content.title.clone(),
        body: v.content.body.clone(),
        files: v
            .content
            .attachments
            .iter()
            .map(|a| FileFacts {
                name: a.name.clone(),
                media_type: a.media_type.clone(),
                size: a.size,
                url: format!("{api}/api/v1/records/{}/attachments/{}", rec.id, a.sha256),
            })
            .collect(),
    }
}

fn record_id(id: &str) -> Result<i64, FhirError> {
    id.parse::<i64>()
        .map_err(|_| FhirError::from(mamori_service::ServiceError::not_found("記録")))
}

fn etag(v: &VersionView) -> Vec<(header::HeaderName, String)> {
    vec![(header::ETAG, format!("W/\"{}\"", v.version_no))]
}

pub(super) async fn read(
    State(svc): Svc,
    FhirAuth(p): FhirAuth,
    Base(base): Base,
    Path(id): Path<String>,
) -> FhirResult {
    let rec = svc.record(&p, record_id(&id)?).await?;
    let v = rec
        .versions
        .last()
        .ok_or_else(|| FhirError::from(mamori_service::ServiceError::not_found("版")))?;
    Ok(resource(
        StatusCode::OK,
        &to_fhir(&facts(&rec, v, &base)),
        &etag(v),
    ))
}

pub(super) async fn vread(
    State(svc): Svc,
    FhirAuth(p): FhirAuth,
    Base(base): Base,
    Path((id, n)): Path<(String, String)>,
) -> FhirResult {
    let rec = svc.record_versions(&p, record_id(&id)?).await?;
    let v = rec
        .versions
        .iter()
        .find(|v| v.version_no.to_string() == n)
        .ok_or_else(|| FhirError::from(mamori_service::ServiceError::not_found("版")))?;
    Ok(resource(
        StatusCode::OK,
        &to_fhir(&facts(&rec, v, &base)),
        &etag(v),
    ))
}

pub(super) async fn history(
    State(svc): Svc,
    FhirAuth(p): FhirAuth,
    Base(base): Base,
    Path(id): Path<String>,
) -> FhirResult {
    let rec = svc.record_versions(&p, record_id(&id)?).await?;
    let entries = rec
        .versions
        .iter()
        .rev()
        .map(|v| {
            (
                format!(
                    "{base}/DocumentReference/{}/_history/{}",
                    rec.id, v.version_no
                ),
                to_fhir(&facts(&rec, v, &base)),
                v.version_no == 1,
            )
        })
        .collect();
    let bundle = mamori_fhir::bundle::history(
        entries,
        &format!("{base}/DocumentReference/{}/_history", rec.id),
    );
    Ok(resource(StatusCode::OK, &bundle, &[]))
}

pub(super) async fn search(
    State(svc): Svc,
    FhirAuth(p): FhirAuth,
    Base(base): Base,
    Query(params): Query<Vec<(String, String)>>,
) -> FhirResult {
    let (mut patient, mut kind, mut status) = (None, None, None);
    let mut paging = Paging::default();
    for (k, v) in &params {
        if paging.take(k, v)? {
            continue;
        }
        match k.as_str() {
            "patient" | "subject" => {
                patient = Some(v.strip_prefix("Patient/").unwrap_or(v).to_owned())
            }
            "type" => {
                kind = Some(
                    v.strip_prefix(&format!("{}|", mamori_fhir::document::RECORD_KINDS))
                        .unwrap_or(v)
                        .to_owned(),
                )
            }
            "status" => status = Some(v.clone()),
            other => return Err(Paging::unserved(other)),
        }
    }
    let patient = patient.ok_or_else(|| {
        FhirError::not_supported("文書の検索には patient（患者）を指定してください", None)
    })?;
    let summaries: Vec<_> = svc
        .patient_records(&p, &patient)
        .await?
        .into_iter()
        .filter(|r| kind.as_ref().is_none_or(|k| &r.kind == k))
        .filter(|r| {
            let eie = matches!(
                r.status,
                mamori_domain::version::RecordStatus::EnteredInError
            );
            match status.as_deref() {
                None => true,
                Some("entered-in-error") => eie,
                Some("current") => !eie,
                Some(_) => false,
            }
        })
        .collect();
    let total = summaries.len();
    let mut entries = Vec::new();
    for s in summaries.iter().skip(paging.offset).take(paging.count) {
        let rec = svc.record(&p, s.id).await?;
        if let Some(v) = rec.versions.last() {
            entries.push((
                format!("{base}/DocumentReference/{}", rec.id),
                to_fhir(&facts(&rec, v, &base)),
            ));
        }
    }
    let bundle = paging.bundle(
        &format!("{base}/DocumentReference"),
        &params,
        total,
        entries,
    );
    Ok(resource(StatusCode::OK, &bundle, &[]))
}

/// The newest version of a record as the answer to a create: `status` with its `Location`.
async fn answer_with(
    svc: &std::sync::Arc<mamori_service::Service>,
    p: &mamori_service::Principal,
    base: &str,
    status: StatusCode,
    id: i64,
) -> FhirResult {
    let rec = svc.record(p, id).await?;
    let v = rec
        .versions
        .last()
        .ok_or_else(|| FhirError::from(mamori_service::ServiceError::not_found("版")))?;
    let mut doc = to_fhir(&facts(&rec, v, base));
    let ids = svc.record_identifiers(id).await?;
    if !ids.is_empty() {
        doc["identifier"] = serde_json::json!(
            ids.iter()
                .map(|(system, value)| serde_json::json!({ "system": system, "value": value }))
                .collect::<Vec<_>>()
        );
    }
    let mut extra = etag(v);
    extra.push((
        header::LOCATION,
        format!("{base}/DocumentReference/{id}/_history/{}", v.version_no),
    ));
    Ok(resource(status, &doc, &extra))
}

/// Records in: an EHR's DocumentReference becomes a mamori record of the kind it names, under
/// exactly the rules of the JSON API — entered by the caller, for the named author (代行入力
/// waits for the author's approval), finalised when `docStatus` is `final` and the caller may.
/// With `If-None-Exist: identifier=…` (or whenever the document names its identifier) a retried
/// create answers with the record made the first time.
pub(super) async fn create(
    State(svc): Svc,
    FhirAuth(p): FhirAuth,
    Base(base): Base,
    headers: HeaderMap,
    req: Request,
) -> FhirResult {
    let body = json_body(req, crate::upload_body_limit(&svc)).await?;
    let cond = super::if_none_exist(&headers)?;
    let (status, id) = store_document(&svc, &p, &body, cond).await?;
    answer_with(&svc, &p, &base, status, id).await
}

/// Writes a DocumentReference as a record (or finds the one its identifier names): `201` and
/// the new record, or `200` and the existing one.
pub(super) async fn store_document(
    svc: &std::sync::Arc<mamori_service::Service>,
    p: &mamori_service::Principal,
    body: &serde_json::Value,
    cond: Option<String>,
) -> Result<(StatusCode, i64), FhirError> {
    let (svc, p) = (svc.clone(), p.clone());
    let doc = mamori_fhir::document::from_fhir(body)?;
    if let Some(token) = cond {
        let wanted = token
            .split_once('|')
            .map(|(s, v)| (s.to_owned(), v.to_owned()));
        if wanted.is_none() || wanted != doc.identifier {
            return Err(super::condition_mismatch(
                "DocumentReference.masterIdentifier",
            ));
        }
    }
    if let Some((system, value)) = &doc.identifier
        && let Some(id) = svc
            .record_by_identifier(&p, &doc.kind, system, value)
            .await?
    {
        return Ok((StatusCode::OK, id));
    }
    let author_id = match &doc.author_login {
        None => None,
        Some(login) => Some(svc.account_id_by_login(login).await?.ok_or_else(|| {
            FhirError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                mamori_fhir::outcome::IssueType::Value,
                "invalid_input",
                &format!("責任者 {login} が見つかりません"),
                Some("DocumentReference.author"),
            )
        })?),
    };
    let own = author_id.is_none_or(|a| a == p.account.id);
    let then = match (doc.finalise, own) {
        (true, true) => Then::Finalise,
        (true, false) => Then::Submit,
        (false, _) => Then::Keep,
    };
    let input = RecordInput {
        patient_id: doc.patient_id,
        kind: doc.kind.clone(),
        title: doc.title,
        body: doc.body,
        author_id,
        identifier: doc.identifier.clone(),
        ..Default::default()
    };
    let uploads = uploads_of(doc.files);
    match svc.create_record_then(&p, input, uploads, then).await {
        Ok(w) => Ok((StatusCode::CREATED, w.record_id)),
        // Two retries at once: the second finds the first's record.
        Err(e) if e.code == ErrorCode::Exists => {
            let (system, value) = doc.identifier.clone().unwrap_or_default();
            match svc
                .record_by_identifier(&p, &doc.kind, &system, &value)
                .await?
            {
                Some(id) => Ok((StatusCode::OK, id)),
                None => Err(e.into()),
            }
        }
        Err(e) if e.code == ErrorCode::NotFound && e.field == Some("patient_id") => {
            Err(FhirError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                mamori_fhir::outcome::IssueType::Invalid,
                "invalid_input",
                &e.message,
                Some("DocumentReference.subject"),
            ))
        }
        Err(e) => Err(e.into()),
    }
}

/// The version an `If-Match` names: `W/"n"` (or `"n"`).
fn if_match(headers: &HeaderMap) -> Result<i64, FhirError> {
    let Some(v) = headers.get(header::IF_MATCH) else {
        return Err(FhirError::new(
            StatusCode::PRECONDITION_REQUIRED,
            mamori_fhir::outcome::IssueType::Required,
            "invalid_input",
            "更新には If-Match（読んだときの ETag、例: W/\"1\"）が必要です。ほかの人の変更を上書きしないためです",
            None,
        ));
    };
    v.to_str()
        .ok()
        .map(|s| s.trim().trim_start_matches("W/").trim_matches('"'))
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| FhirError::malformed("If-Match は W/\"版番号\" の形で指定してください"))
}

/// The reason of an amendment, from the `X-Provenance` header (a Provenance resource, FHIR R4
/// §3.1.0.6): its `reason[0].text` or the first coding's display.
fn provenance_reason(headers: &HeaderMap) -> Result<String, FhirError> {
    let missing = || {
        FhirError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            mamori_fhir::outcome::IssueType::Required,
            "invalid_input",
            "確定した記録の修正には理由が必要です。X-Provenance ヘッダーの Provenance.reason に書いてください",
            Some("Provenance.reason"),
        )
    };
    let Some(raw) = headers.get("x-provenance") else {
        return Err(missing());
    };
    // JSON with \u escapes keeps a header ASCII, as HTTP wants; raw UTF-8 is read too.
    let prov: serde_json::Value = std::str::from_utf8(raw.as_bytes())
        .ok()
        .and_then(|s| serde_json::from_str(s).ok())
        .ok_or_else(|| {
            FhirError::malformed("X-Provenance が Provenance の JSON として読めません")
        })?;
    if prov["resourceType"] != "Provenance" {
        return Err(FhirError::malformed(
            "X-Provenance には Provenance リソースを入れてください",
        ));
    }
    let reason = &prov["reason"][0];
    reason["text"]
        .as_str()
        .or_else(|| reason["coding"][0]["display"].as_str())
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_owned)
        .ok_or_else(missing)
}

/// `PUT /DocumentReference/{id}`: a correction of a finalised record, as a new version under
/// the JSON API's rules. `If-Match` must name the newest version (`412` otherwise: someone
/// changed it meanwhile), the reason comes in `X-Provenance`, and the patient and kind stay.
pub(super) async fn update(
    State(svc): Svc,
    FhirAuth(p): FhirAuth,
    Base(base): Base,
    Path(id): Path<String>,
    headers: HeaderMap,
    req: Request,
) -> FhirResult {
    let id = record_id(&id)?;
    let seen = if_match(&headers)?;
    let body = json_body(req, crate::upload_body_limit(&svc)).await?;
    let doc = mamori_fhir::document::from_fhir(&body)?;
    let reason = provenance_reason(&headers)?;
    let current = svc.record(&p, id).await?;
    if current.patient_id != doc.patient_id || current.kind != doc.kind {
        return Err(FhirError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            mamori_fhir::outcome::IssueType::Invalid,
            "invalid_input",
            "記録の患者と種別は変えられません（別の記録として登録してください）",
            Some("DocumentReference.subject,DocumentReference.type"),
        ));
    }
    let author_id = match &doc.author_login {
        None => None,
        Some(login) => svc.account_id_by_login(login).await?,
    };
    let input = RecordInput {
        patient_id: doc.patient_id,
        kind: doc.kind,
        title: doc.title,
        body: doc.body,
        author_id,
        reason: Some(reason),
        base_version: Some(seen),
        ..Default::default()
    };
    let uploads = uploads_of(doc.files);
    match svc.amend_record(&p, id, input, uploads).await {
        Ok(w) => answer_with(&svc, &p, &base, StatusCode::OK, w.record_id).await,
        Err(e) if e.code == ErrorCode::Conflict => Err(FhirError::new(
            StatusCode::PRECONDITION_FAILED,
            mamori_fhir::outcome::IssueType::Conflict,
            "conflict",
            &e.message,
            None,
        )),
        Err(e) => Err(e.into()),
    }
}

/// `POST /fhir/r4` with a transaction Bundle: a DocumentReference and the Binaries its content
/// names (`attachment.url` = a Binary's `fullUrl`), written as one record, all or nothing. The
/// answer is a `transaction-response` Bundle: the DocumentReference's location and version,
/// and for each Binary where its bytes are now kept (the record's attachment).
pub(super) async fn transaction(
    State(svc): Svc,
    FhirAuth(p): FhirAuth,
    Base(base): Base,
    req: Request,
) -> FhirResult {
    let body = json_body(req, crate::upload_body_limit(&svc)).await?;
    let tx = mamori_fhir::transaction::read(&body)?;
    let cond = tx
        .if_none_exist
        .as_deref()
        .map(super::condition)
        .transpose()?;
    let (status, id) = store_document(&svc, &p, &tx.document, cond).await?;
    let rec = svc.record(&p, id).await?;
    let v = rec
        .versions
        .last()
        .ok_or_else(|| FhirError::from(mamori_service::ServiceError::not_found("版")))?;
    let api = base.trim_end_matches("/fhir/r4");
    let said = if status == StatusCode::CREATED {
        "201 Created"
    } else {
        "200 OK"
    };
    let b64 = base64::engine::general_purpose::STANDARD;
    let entries: Vec<serde_json::Value> = tx
        .entries
        .iter()
        .map(|e| match e {
            None => serde_json::json!({ "response": {
                "status": said,
                "location": format!("DocumentReference/{id}/_history/{}", v.version_no),
                "etag": format!("W/\"{}\"", v.version_no),
            } }),
            Some(data) => {
                let sha = base64::Engine::decode(&b64, data)
                    .map(|b| mamori_domain::content::sha256_hex(&b))
                    .unwrap_or_default();
                serde_json::json!({ "response": {
                    "status": said,
                    "location": format!("{api}/api/v1/records/{id}/attachments/{sha}"),
                } })
            }
        })
        .collect();
    let answer = serde_json::json!({
        "resourceType": "Bundle",
        "type": "transaction-response",
        "entry": entries,
    });
    Ok(resource(StatusCode::OK, &answer, &[]))
}

/// `POST /fhir/r4/Binary` alone: mamori keeps files only as a record's attachments, so they
/// come with their document (inline, or in a transaction Bundle).
pub(super) async fn binary_alone(FhirAuth(_): FhirAuth) -> FhirError {
    FhirError::not_supported(
        "Binary だけを登録することはできません。DocumentReference の content に data で入れるか、transaction Bundle で DocumentReference と一緒に送ってください",
        Some("Binary"),
    )
}

fn uploads_of(files: Vec<(String, Vec<u8>)>) -> Vec<Upload> {
    files
        .into_iter()
        .map(|(name, bytes)| Upload { name, bytes })
        .collect()
}
