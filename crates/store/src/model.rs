use mamori_domain::Millis;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Account {
    pub id: i64,
    pub login: String,
    pub display_name: String,
    pub role: String,
    pub is_service: bool,
    pub active: bool,
    #[serde(skip)]
    pub password_hash: Option<String>,
    pub password_changed_at: Millis,
    pub must_change_password: bool,
    pub failed_logins: u32,
    pub locked_until: Option<Millis>,
    pub last_login_at: Option<Millis>,
    pub created_at: Millis,
}

#[derive(Debug, Clone, Serialize)]
pub struct Session {
    pub account_id: i64,
    pub is_api_token: bool,
    pub name: Option<String>,
    #[serde(skip)]
    pub csrf: String,
    pub created_at: Millis,
    pub last_seen_at: Millis,
    pub expires_at: Option<Millis>,
    pub revoked_at: Option<Millis>,
    /// Opened by a password alone; only the second-factor pages accept it.
    pub second_factor_pending: bool,
    /// Locked (idle or on request) since; the password unlocks it.
    pub locked_at: Option<Millis>,
    /// An API token's extra permissions, comma-separated (`export`); none for a browser.
    pub scopes: Option<String>,
}

/// One use of break-glass access.
#[derive(Debug, Clone, Serialize)]
pub struct EmergencyRow {
    pub id: i64,
    /// `patient` (break-glass on one patient) or `account` (a sealed emergency account used).
    pub kind: String,
    pub account_id: i64,
    /// Empty for `account` uses.
    pub patient_id: String,
    pub reason: String,
    pub started_at: Millis,
    pub expires_at: Millis,
    pub ended_at: Option<Millis>,
    pub reviewed_by: Option<i64>,
    pub reviewed_at: Option<Millis>,
    pub review_comment: Option<String>,
}

impl EmergencyRow {
    pub fn active_at(&self, now: Millis) -> bool {
        self.ended_at.is_none() && self.expires_at > now
    }
}

/// A maintenance work window and what became of it.
#[derive(Debug, Clone, Serialize)]
pub struct MaintenanceWindow {
    pub id: i64,
    pub account_id: i64,
    pub starts_at: Millis,
    pub ends_at: Millis,
    pub purpose: String,
    pub personal_info: bool,
    pub requested_by: i64,
    pub requested_at: Millis,
    /// `requested`, `approved` or `rejected`.
    pub status: String,
    pub decided_by: Option<i64>,
    pub decided_at: Option<Millis>,
    pub acknowledged_by: Option<i64>,
    pub acknowledged_at: Option<Millis>,
    pub acknowledgement: Option<String>,
}

impl MaintenanceWindow {
    pub fn open_at(&self, now: Millis) -> bool {
        self.status == "approved" && self.starts_at <= now && now < self.ends_at
    }
}

/// A client certificate the facility CA issued.
#[derive(Debug, Clone, Serialize)]
pub struct CertificateRow {
    /// Hex serial number.
    pub serial: String,
    /// `device` or `user`.
    pub kind: String,
    /// Device name or login.
    pub subject: String,
    pub account_id: Option<i64>,
    /// The device's own identifier (serial number, MAC…), as recorded at issue.
    pub device_id: Option<String>,
    pub not_before: Millis,
    pub not_after: Millis,
    pub issued_at: Millis,
    pub issued_by: Option<i64>,
    pub revoked_at: Option<Millis>,
    pub revoke_reason: Option<String>,
    pub revoked_by: Option<i64>,
}

/// A TOTP enrolment (enabled once the first code was confirmed).
#[derive(Debug, Clone)]
pub struct TotpRow {
    pub secret: String,
    pub enabled_at: Option<Millis>,
    pub last_step: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Patient {
    pub id: String,
    pub name_kanji: String,
    pub name_kana: String,
    pub birth_date: String,
    pub sex: String,
    pub created_at: Millis,
}

#[derive(Debug, Clone, Serialize)]
pub struct RecordRow {
    pub id: i64,
    pub patient_id: String,
    pub kind: String,
    pub created_at: Millis,
    pub created_by: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct VersionRow {
    pub record_id: i64,
    pub version_no: i64,
    pub state: String,
    pub kind: String,
    pub author_id: i64,
    pub enterer_id: i64,
    pub content_sha256: String,
    pub predecessor: Option<i64>,
    pub reason: Option<String>,
    pub created_at: Millis,
    pub finalised_at: Option<Millis>,
    pub rejection_reason: Option<String>,
    pub ledger_index: i64,
}

impl VersionRow {
    pub fn facts(&self) -> mamori_domain::audit::VersionFacts<'_> {
        mamori_domain::audit::VersionFacts {
            record_id: self.record_id,
            version_no: self.version_no,
            state: &self.state,
            kind: &self.kind,
            author_id: self.author_id,
            enterer_id: self.enterer_id,
            content_sha256: &self.content_sha256,
            predecessor: self.predecessor,
            reason: self.reason.as_deref(),
            created_at: self.created_at,
            finalised_at: self.finalised_at,
            rejection_reason: self.rejection_reason.as_deref(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckpointRow {
    pub size: u64,
    pub root: [u8; 32],
    pub created_at: Millis,
    pub note: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct AccessCount {
    pub patient_id: String,
    pub total: i64,
    pub by_actor: Vec<(i64, i64)>,
}

#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub patient: Option<String>,
    pub actor: Option<i64>,
    pub action_prefix: Option<String>,
    pub from: Option<Millis>,
    pub to: Option<Millis>,
    pub limit: u32,
    pub before_idx: Option<i64>,
}

/// A role change that waits for a second administrator.
#[derive(Debug, Clone, Serialize)]
pub struct RoleProposalRow {
    pub id: i64,
    pub role_code: String,
    /// The proposed role (code, names, grants) as JSON.
    pub proposal: String,
    /// Why it needs a second person.
    pub reason: String,
    pub proposed_by: i64,
    pub proposed_at: Millis,
    pub decided_by: Option<i64>,
    pub decided_at: Option<Millis>,
    pub outcome: Option<String>,
}
