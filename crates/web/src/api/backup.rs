//! `/api/v1` for backups: status, a run or a restore drill now, offline copies.

use super::*;

pub async fn backup_status(
    State(svc): Svc,
    Auth(p): Auth,
) -> ApiResult<mamori_service::backup::BackupStatus> {
    Ok(Json(svc.backup_status(&p).await?))
}

pub async fn run_backup(State(svc): Svc, Auth(p): Auth) -> Result<StatusCode, ApiError> {
    svc.backup_now(Some(&p)).await?;
    Ok(StatusCode::ACCEPTED)
}

pub async fn run_restore_drill(State(svc): Svc, Auth(p): Auth) -> Result<StatusCode, ApiError> {
    svc.drill_now(&p).await?;
    Ok(StatusCode::ACCEPTED)
}

#[derive(Deserialize)]
pub struct OfflineBody {
    target: String,
    medium: String,
    #[serde(default)]
    note: String,
}

pub async fn record_offline_copy(
    State(svc): Svc,
    Auth(p): Auth,
    ApiJson(b): ApiJson<OfflineBody>,
) -> Result<(StatusCode, Json<mamori_service::backup::OfflineCopy>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(
            svc.record_offline_copy(&p, &b.target, &b.medium, &b.note)
                .await?,
        ),
    ))
}
