//! Patient: read, search (ID, identifier, kana name; birth date and sex narrow), and create
//! (conditional on the identifier, so an EHR's retry never registers a patient twice).

use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use mamori_fhir::Context;
use mamori_fhir::patient::{PatientFacts, from_fhir, to_fhir};
use mamori_service::records::patients::NewPatient;
use mamori_service::{ErrorCode, Service};
use serde_json::Value;

use super::{Base, FhirAuth, FhirError, FhirResult, Paging, Svc, json_body, resource};

/// The search parameters served, as the CapabilityStatement lists them.
pub(super) const SEARCH: &[(&str, &str, &str)] = &[
    ("_id", "token", "患者ID（完全一致）"),
    (
        "identifier",
        "token",
        "患者ID（system|value または value、完全一致）",
    ),
    (
        "name",
        "string",
        "カナ氏名の前方一致、または患者IDの前方一致（漢字氏名では検索できません）",
    ),
    (
        "birthdate",
        "date",
        "生年月日（YYYY-MM-DD、他の条件と組み合わせて絞り込み）",
    ),
    ("gender", "token", "性別（他の条件と組み合わせて絞り込み）"),
    ("_count", "number", "1 ページの件数（既定 20、最大 50）"),
];

fn context(svc: &Service) -> Context {
    Context::new(&svc.config().facility.institution_code)
}

fn facts(p: mamori_store::Patient) -> PatientFacts {
    PatientFacts {
        id: p.id,
        name_kanji: p.name_kanji,
        name_kana: p.name_kana,
        birth_date: p.birth_date,
        sex: p.sex,
        created_at: p.created_at,
    }
}

/// The headers of one version of a patient.
fn version_headers(base: &str, id: &str) -> Vec<(header::HeaderName, String)> {
    vec![
        (header::ETAG, "W/\"1\"".to_owned()),
        (header::LOCATION, format!("{base}/Patient/{id}/_history/1")),
    ]
}

pub(super) async fn read(
    State(svc): Svc,
    FhirAuth(p): FhirAuth,
    Base(base): Base,
    Path(id): Path<String>,
) -> FhirResult {
    let found = svc.patient(&p, &id).await?;
    let mut extra = version_headers(&base, &found.id);
    extra.retain(|(k, _)| k == header::ETAG);
    Ok(resource(
        StatusCode::OK,
        &to_fhir(&facts(found), &context(&svc)),
        &extra,
    ))
}

/// `identifier` as `system|value`, `|value` or `value`: the value, if the system is this
/// facility's patient IDs (or not given).
fn identifier_value<'a>(token: &'a str, ctx: &Context) -> Option<&'a str> {
    match token.split_once('|') {
        Some(("", v)) => Some(v),
        Some((system, v)) if system == ctx.patient_id_system => Some(v),
        Some(_) => None,
        None => Some(token),
    }
}

pub(super) async fn search(
    State(svc): Svc,
    FhirAuth(p): FhirAuth,
    Base(base): Base,
    Query(params): Query<Vec<(String, String)>>,
) -> FhirResult {
    let ctx = context(&svc);
    let (mut id, mut name, mut birthdate, mut gender) = (None, None, None, None);
    let mut paging = Paging::default();
    for (k, v) in &params {
        if paging.take(k, v)? {
            continue;
        }
        match k.as_str() {
            "_id" => id = Some(v.clone()),
            // Another facility's IDs match nobody here.
            "identifier" => id = Some(identifier_value(v, &ctx).unwrap_or("").to_owned()),
            "name" | "family" | "given" => name = Some(v.clone()),
            "birthdate" => birthdate = Some(v.trim_start_matches("eq").to_owned()),
            "gender" => gender = Some(v.clone()),
            other => return Err(Paging::unserved(other)),
        }
    }
    let found: Vec<mamori_store::Patient> = match (id, name) {
        (Some(id), _) if id.is_empty() => Vec::new(),
        (Some(id), _) => match svc.patient(&p, &id).await {
            Ok(one) => vec![one],
            Err(e) if e.code == ErrorCode::NotFound => Vec::new(),
            Err(e) => return Err(e.into()),
        },
        (None, Some(q)) => svc.search_patients(&p, &q).await?,
        (None, None) => {
            return Err(FhirError::not_supported(
                "患者の検索には _id、identifier または name（カナ）を指定してください",
                None,
            ));
        }
    };
    let matching: Vec<_> = found
        .into_iter()
        .filter(|x| birthdate.as_ref().is_none_or(|b| &x.birth_date == b))
        .filter(|x| gender.as_ref().is_none_or(|g| &x.sex == g))
        .collect();
    let entries = matching
        .iter()
        .skip(paging.offset)
        .take(paging.count)
        .map(|x| {
            (
                format!("{base}/Patient/{}", x.id),
                to_fhir(&facts(x.clone()), &ctx),
            )
        })
        .collect();
    let bundle = paging.bundle(&format!("{base}/Patient"), &params, matching.len(), entries);
    Ok(resource(StatusCode::OK, &bundle, &[]))
}

pub(super) async fn create(
    State(svc): Svc,
    FhirAuth(p): FhirAuth,
    Base(base): Base,
    headers: HeaderMap,
    req: Request,
) -> FhirResult {
    let ctx = context(&svc);
    let body: Value = json_body(req, crate::SMALL_BODY).await?;
    let new = from_fhir(&body, &ctx)?;
    // Conditional create: the same patient sent again (an EHR's retry) is answered with the
    // one registered, and nothing is written twice.
    if let Some(token) = super::if_none_exist(&headers)? {
        let wanted = identifier_value(&token, &ctx).unwrap_or("");
        if wanted != new.id {
            return Err(super::condition_mismatch("Patient.identifier"));
        }
        match svc.patient(&p, wanted).await {
            Ok(existing) => {
                return Ok(resource(
                    StatusCode::OK,
                    &to_fhir(&facts(existing), &ctx),
                    &version_headers(&base, wanted),
                ));
            }
            Err(e) if e.code == ErrorCode::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    let made = svc
        .create_patient(
            &p,
            NewPatient {
                id: new.id,
                name_kanji: new.name_kanji,
                name_kana: new.name_kana,
                birth_date: new.birth_date,
                sex: new.sex,
            },
        )
        .await
        .map_err(|e| {
            // The patient ID is taken: for FHIR a duplicate, not an edit conflict.
            if e.code == ErrorCode::Conflict {
                FhirError::new(
                    StatusCode::CONFLICT,
                    mamori_fhir::outcome::IssueType::Duplicate,
                    e.code.as_str(),
                    &e.message,
                    Some("Patient.identifier"),
                )
            } else {
                e.into()
            }
        })?;
    Ok(resource(
        StatusCode::CREATED,
        &to_fhir(&facts(made.clone()), &ctx),
        &version_headers(&base, &made.id),
    ))
}
