//! AuditEvent: the ledger, for those who may read the audit trail (監査担当), searchable by
//! patient, agent, date, type and `_since`, newest first and paged by ledger position, so a
//! SIEM can follow it. Each search is itself an `audit.query` entry.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use mamori_fhir::audit::{AuditFacts, to_fhir};
use mamori_service::ledger::audit::{AuditEntry, parse_time};
use mamori_store::AuditFilter;

use super::{Base, FhirAuth, FhirError, FhirResult, Paging, Svc, resource};

pub(super) const SEARCH: &[(&str, &str, &str)] = &[
    ("patient", "reference", "患者（Patient/ID または ID）"),
    (
        "agent",
        "reference",
        "操作した職員のアカウント番号（agent.who.identifier）",
    ),
    (
        "date",
        "date",
        "記録時刻（ge / gt / le / lt、YYYY-MM-DD は日本時間の日）",
    ),
    ("_since", "date", "この時刻以降の項目（SIEM の追跡用）"),
    (
        "type",
        "token",
        "操作の種類（urn:mamori:audit-action のコードの前方一致。例: record.read）",
    ),
    (
        "_count",
        "number",
        "1 ページの件数（既定 20、最大 50。新しい順、次のページは link next）",
    ),
];

fn facts(e: AuditEntry, base: &str, facility: &str) -> AuditFacts {
    let api = base.trim_end_matches("/fhir/r4");
    AuditFacts {
        proof_url: format!("{api}/api/v1/ledger/proof/{}", e.index),
        index: e.index,
        ts: e.ts,
        action: e.action,
        outcome: e.outcome,
        actor_id: e.actor_id,
        actor_login: e.actor_login,
        actor_role: e.actor_role,
        patient_id: e.patient_id,
        record_id: e.record_id,
        version: e.version,
        client: e.client,
        facility: facility.to_owned(),
    }
}

fn time(v: &str, what: &str) -> Result<i64, FhirError> {
    parse_time(v).ok_or_else(|| {
        FhirError::malformed(format!(
            "{what} は YYYY-MM-DD または RFC 3339 の時刻で指定してください"
        ))
    })
}

pub(super) async fn read(
    State(svc): Svc,
    FhirAuth(p): FhirAuth,
    Base(base): Base,
    Path(id): Path<String>,
) -> FhirResult {
    let index: i64 = id
        .parse()
        .map_err(|_| FhirError::from(mamori_service::ServiceError::not_found("監査記録")))?;
    let found = svc
        .audit_events(
            &p,
            AuditFilter {
                before_idx: Some(index + 1),
                limit: 1,
                ..Default::default()
            },
        )
        .await?
        .into_iter()
        .find(|e| e.index == index)
        .ok_or_else(|| FhirError::from(mamori_service::ServiceError::not_found("監査記録")))?;
    let facility = svc.config().facility.name.clone();
    Ok(resource(
        StatusCode::OK,
        &to_fhir(&facts(found, &base, &facility)),
        &[],
    ))
}

pub(super) async fn search(
    State(svc): Svc,
    FhirAuth(p): FhirAuth,
    Base(base): Base,
    Query(params): Query<Vec<(String, String)>>,
) -> FhirResult {
    let mut filter = AuditFilter::default();
    let mut paging = Paging::default();
    for (k, v) in &params {
        // `_before` is the position the previous page ended at (in `link next` only).
        if k == "_before" {
            filter.before_idx = Some(
                v.parse()
                    .map_err(|_| FhirError::malformed("_before は数で指定してください"))?,
            );
            continue;
        }
        if k != "_offset" && paging.take(k, v)? {
            continue;
        }
        match k.as_str() {
            "patient" => filter.patient = Some(v.strip_prefix("Patient/").unwrap_or(v).to_owned()),
            "agent" => {
                filter.actor = Some(v.parse().map_err(|_| {
                    FhirError::malformed("agent はアカウント番号で指定してください")
                })?)
            }
            "type" => {
                filter.action_prefix = Some(
                    v.strip_prefix(&format!("{}|", mamori_fhir::audit::ACTIONS))
                        .unwrap_or(v)
                        .to_owned(),
                )
            }
            "_since" => filter.from = Some(time(v, "_since")?),
            "date" => {
                let (op, at) = v.split_at(v.len().min(2));
                match op {
                    "ge" => filter.from = Some(time(at, "date")?),
                    "gt" => filter.from = Some(time(at, "date")? + 1),
                    "le" => filter.to = Some(time(at, "date")? + 1),
                    "lt" => filter.to = Some(time(at, "date")?),
                    _ => {
                        // A day (or an instant) on its own: that day, or that moment.
                        let from = time(v, "date")?;
                        filter.from = Some(from);
                        filter.to = Some(from + if v.len() == 10 { 86_400_000 } else { 1 });
                    }
                }
            }
            other => return Err(Paging::unserved(other)),
        }
    }
    // One more than a page tells whether there is a next one.
    filter.limit = paging.count as u32 + 1;
    let mut rows = svc.audit_events(&p, filter).await?;
    let more = rows.len() > paging.count;
    rows.truncate(paging.count);
    let facility = svc.config().facility.name.clone();
    let next_before = rows.last().map(|e| e.index).filter(|_| more);
    let entries: Vec<_> = rows
        .into_iter()
        .map(|e| {
            (
                format!("{base}/AuditEvent/{}", e.index),
                to_fhir(&facts(e, &base, &facility)),
            )
        })
        .collect();
    let kept: Vec<(String, String)> = params
        .iter()
        .filter(|(k, _)| k != "_before")
        .cloned()
        .collect();
    let url = format!("{base}/AuditEvent");
    let mut bundle = paging.bundle(&url, &kept, entries.len(), entries);
    // Paged by ledger position rather than by offset: new entries do not shift the pages.
    bundle.as_object_mut().map(|b| b.remove("total"));
    if let Some(before) = next_before {
        let mut q: Vec<String> = kept
            .iter()
            .map(|(k, v)| format!("{k}={}", super::urlencode(v)))
            .collect();
        q.push(format!("_before={before}"));
        bundle["link"] = serde_json::json!([
            bundle["link"][0].clone(),
            { "relation": "next", "url": format!("{url}?{}", q.join("&")) }
        ]);
    }
    Ok(resource(StatusCode::OK, &bundle, &[]))
}
