//! `/api/v1` for the ledger: audit queries, per-patient access counts, checkpoints,
//! inclusion proofs and the clock's state.

use super::*;

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

pub async fn clock_status(
    State(svc): Svc,
    Auth(_p): Auth,
) -> ApiResult<Option<mamori_domain::timesync::ClockStatus>> {
    Ok(Json(svc.clock_status()))
}
