//! Audit events: who (account, role, device), when, what, whose record, and the outcome.
//! Each event's JSON bytes are one ledger leaf, so the field set is versioned (`v`).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::Millis;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorRef {
    pub id: i64,
    pub login: String,
    pub role: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    /// Refused by an access rule.
    Denied,
    /// Refused for another reason (bad input, wrong state, wrong password).
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Denied => "denied",
            Outcome::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub v: u32,
    pub ts: Millis,
    pub actor: Option<ActorRef>,
    pub action: String,
    pub outcome: Outcome,
    pub patient: Option<String>,
    pub record: Option<i64>,
    pub version: Option<i64>,
    /// SHA-256 of the version's canonical content, for events that write a version.
    pub content_sha256: Option<String>,
    /// SHA-256 of the version row after the event, so that `verify` can detect a changed row.
    pub version_digest: Option<String>,
    pub client: Option<String>,
    pub detail: serde_json::Value,
    /// The rows this event changed, with their new values (`[[table, key, values|null], …]`),
    /// written by the store in the same transaction; `verify` replays them against the rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<serde_json::Value>,
}

impl AuditEvent {
    pub fn new(ts: Millis, actor: Option<ActorRef>, action: &str, outcome: Outcome) -> Self {
        Self {
            v: 1,
            ts,
            actor,
            action: action.to_owned(),
            outcome,
            patient: None,
            record: None,
            version: None,
            content_sha256: None,
            version_digest: None,
            client: None,
            detail: serde_json::Value::Null,
            state: None,
        }
    }

    pub fn patient(mut self, p: impl Into<String>) -> Self {
        self.patient = Some(p.into());
        self
    }

    pub fn record(mut self, r: i64) -> Self {
        self.record = Some(r);
        self
    }

    pub fn detail(mut self, d: serde_json::Value) -> Self {
        self.detail = d;
        self
    }

    pub fn client(mut self, c: Option<String>) -> Self {
        self.client = c;
        self
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("event serialises")
    }
}

/// At most `max` characters of `s` as typed; a longer one is cut and says how long it was.
/// Whatever an unauthenticated or refused request sends is written into the append-only
/// ledger only this way, so that nobody can fill it with one request.
pub fn clip(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max {
        s.to_owned()
    } else {
        let head: String = s.chars().take(max).collect();
        format!("{head}…（全{n}文字）")
    }
}

/// `clip` on every string in a JSON value, and at most `max` members of every array.
pub fn clip_json(v: &mut serde_json::Value, max: usize) {
    match v {
        serde_json::Value::String(s) if s.chars().count() > max => *s = clip(s, max),
        serde_json::Value::Array(a) => {
            a.truncate(max);
            a.iter_mut().for_each(|x| clip_json(x, max));
        }
        serde_json::Value::Object(m) => m.values_mut().for_each(|x| clip_json(x, max)),
        _ => {}
    }
}

/// Event action codes. Strings rather than an enum in the payload so that old leaves stay
/// readable when new actions are added.
pub mod actions {
    pub const SYSTEM_INIT: &str = "system.init";
    pub const LOGIN: &str = "auth.login";
    pub const LOGIN_FAILED: &str = "auth.login_failed";
    pub const LOGOUT: &str = "auth.logout";
    /// The password was right; the session waits for the second factor (or its enrolment).
    pub const FIRST_FACTOR: &str = "auth.first_factor";
    pub const SECOND_FACTOR_ENROLLED: &str = "auth.second_factor_enrolled";
    pub const SECOND_FACTOR_REMOVED: &str = "auth.second_factor_removed";
    pub const ACCOUNT_SECOND_FACTOR_RESET: &str = "account.second_factor_reset";
    pub const ROLE_TWO_FACTOR: &str = "role.two_factor";
    pub const ROLE_CLIENT_CERT: &str = "role.client_cert";
    pub const MAINTENANCE_REQUESTED: &str = "maintenance.requested";
    pub const MAINTENANCE_APPROVED: &str = "maintenance.approved";
    pub const MAINTENANCE_REJECTED: &str = "maintenance.rejected";
    pub const MAINTENANCE_LIST: &str = "maintenance.list";
    pub const MAINTENANCE_REPORT: &str = "maintenance.report";
    pub const MAINTENANCE_ACKNOWLEDGED: &str = "maintenance.acknowledged";
    pub const TIME_STATUS: &str = "time.status";
    pub const BACKUP_COMPLETED: &str = "backup.completed";
    pub const BACKUP_FAILED: &str = "backup.failed";
    pub const BACKUP_VERIFIED: &str = "backup.verified";
    pub const BACKUP_DRILL: &str = "backup.drill";
    /// A snapshot was copied to a medium that was then disconnected (who, which, when).
    pub const BACKUP_OFFLINE: &str = "backup.offline";
    pub const BACKUP_PRUNE_PLANNED: &str = "backup.prune_planned";
    pub const BACKUP_PRUNED: &str = "backup.pruned";
    pub const BACKUP_RESTORED: &str = "backup.restored";
    pub const BACKUP_STATUS: &str = "backup.status";
    pub const BACKUP_REQUESTED: &str = "backup.requested";
    pub const CA_CREATED: &str = "ca.created";
    pub const SIGNING_CERT_ISSUED: &str = "signing_cert.issued";
    pub const SIGNING_CERT_IMPORTED: &str = "signing_cert.imported";
    /// The holder set or changed their signing PIN (a new key in its own token, or the PIN).
    pub const SIGNING_PIN_SET: &str = "signing.pin_set";
    /// The holder opened their signing window with the PIN (or was refused).
    pub const SIGNING_WINDOW_OPENED: &str = "signing.window_opened";
    pub const SIGNING_WINDOW_CLOSED: &str = "signing.window_closed";
    /// Signing keys that lay in plain files were erased and their certificates retired.
    pub const SIGNING_KEYS_MIGRATED: &str = "signing.keys_migrated";
    /// A signature was asked for without the holder's open window (refused).
    pub const SIGNING_REFUSED: &str = "signing.refused";
    pub const RECORD_SIGNED: &str = "record.signed";
    /// The signed PDF (PAdES) of a finalised version was made and stored.
    pub const RECORD_PDF_SIGNED: &str = "record.pdf_signed";
    /// A JP-CLINS document (FHIR document Bundle) made of a version and signed by its author.
    pub const RECORD_FHIR_DOCUMENT_SIGNED: &str = "record.fhir_document_signed";
    /// A signed PDF gained its time-stamps, or fresh validation data and a new document
    /// time-stamp before its newest TSA certificate expired (PAdES B-LTA).
    pub const RECORD_PDF_RENEWED: &str = "record.pdf_renewed";
    pub const RECORD_SIGNING_REQUESTED: &str = "record.signing_requested";
    pub const RECORD_TIMESTAMPED: &str = "record.timestamped";
    pub const RECORD_TIMESTAMP_FAILED: &str = "record.timestamp_failed";
    pub const EVIDENCE_SEALED: &str = "evidence.sealed";
    pub const EVIDENCE_RENEWED: &str = "evidence.renewed";
    pub const EVIDENCE_VERIFIED: &str = "evidence.verified";
    pub const EVIDENCE_STATUS: &str = "evidence.status";
    /// Refused reads of the monitoring figures (successful scrapes are not entries).
    pub const METRICS_READ: &str = "ops.metrics";
    pub const EVIDENCE_REQUESTED: &str = "evidence.requested";
    pub const TLS_REFUSED: &str = "tls.refused";
    pub const CERT_ISSUED: &str = "cert.issued";
    pub const CERT_REVOKED: &str = "cert.revoked";
    pub const CERT_CRL_ISSUED: &str = "cert.crl_issued";
    pub const CERT_LIST: &str = "cert.list";
    pub const SESSION_LOCKED: &str = "auth.locked";
    pub const SESSION_UNLOCKED: &str = "auth.unlocked";
    pub const EMERGENCY_STARTED: &str = "emergency.started";
    pub const EMERGENCY_ACCOUNT_USED: &str = "emergency.account_used";
    pub const ACCOUNT_EMERGENCY_SET: &str = "account.emergency_set";
    pub const EMERGENCY_ENDED: &str = "emergency.ended";
    pub const EMERGENCY_NOTIFIED: &str = "emergency.notified";
    pub const EMERGENCY_REVIEWED: &str = "emergency.reviewed";
    pub const EMERGENCY_QUEUE: &str = "emergency.queue";
    pub const PASSWORD_CHANGED: &str = "auth.password_changed";
    pub const ACCOUNT_CREATED: &str = "account.created";
    pub const ACCOUNT_DISABLED: &str = "account.disabled";
    pub const ACCOUNT_ENABLED: &str = "account.enabled";
    pub const ACCOUNT_UNLOCKED: &str = "account.unlocked";
    pub const ACCOUNT_PASSWORD_RESET: &str = "account.password_reset";
    pub const ACCOUNT_ROLE_CHANGED: &str = "account.role_changed";
    pub const ACCOUNT_LIST: &str = "account.list";
    pub const TOKEN_CREATED: &str = "token.created";
    pub const TOKEN_REVOKED: &str = "token.revoked";
    /// An OAuth 2.0 client (SMART Backend Services) registered for a service account.
    pub const OAUTH_CLIENT_REGISTERED: &str = "oauth.client_registered";
    pub const OAUTH_CLIENT_REVOKED: &str = "oauth.client_revoked";
    /// An access token given for a signed client assertion, or refused.
    pub const OAUTH_TOKEN_ISSUED: &str = "oauth.token_issued";
    pub const OAUTH_TOKEN_REFUSED: &str = "oauth.token_refused";
    pub const ROLE_SAVED: &str = "role.saved";
    /// Rows a write changed beyond its own ledger entry, stated so that nothing changes
    /// unrecorded.
    pub const STATE_RECORDED: &str = "state.recorded";
    /// The current values of every covered row, stated once when an instance starts being
    /// verified row by row (new, or upgraded from a release that did not).
    pub const STATE_BASELINE: &str = "state.baseline";
    /// A database from an earlier release migrated, with where its pre-upgrade copy is.
    pub const INSTANCE_UPGRADED: &str = "instance.upgraded";
    /// The instance's state moved from SQLite to PostgreSQL, with the ledger root both sides
    /// gave and where the SQLite file from before is kept.
    pub const STORE_MIGRATED: &str = "store.migrated";
    /// Files in the blob store that no row refers to (content of refused or interrupted
    /// writes), removed by the sweep.
    pub const BLOBS_ORPHANS_REMOVED: &str = "blob.orphans_removed";
    pub const ROLES_VIEWED: &str = "role.listed";
    /// A role change that waits for a second administrator (separation of duties).
    pub const ROLE_PROPOSED: &str = "role.proposed";
    pub const ROLE_PROPOSAL_APPROVED: &str = "role.proposal_approved";
    pub const ROLE_PROPOSAL_REJECTED: &str = "role.proposal_rejected";
    pub const KIND_SAVED: &str = "record_kind.saved";
    pub const PATIENT_CREATED: &str = "patient.created";
    pub const PATIENT_SEARCH: &str = "patient.search";
    pub const PATIENT_READ: &str = "patient.read";
    pub const RECORD_LIST: &str = "record.list";
    pub const RECORD_READ: &str = "record.read";
    pub const RECORD_HISTORY: &str = "record.history";
    pub const RECORD_DIFF: &str = "record.diff";
    pub const RECORD_EXPORT: &str = "record.print_export";
    pub const ATTACHMENT_READ: &str = "attachment.read";
    pub const ATTACHMENT_STORED: &str = "attachment.stored";
    pub const DRAFT_CREATED: &str = "record.draft_created";
    pub const DRAFT_UPDATED: &str = "record.draft_updated";
    pub const SUBMITTED: &str = "record.submitted";
    pub const FINALISED: &str = "record.finalised";
    pub const APPROVED: &str = "record.approved";
    pub const REJECTED: &str = "record.rejected";
    pub const AMENDED: &str = "record.amended";
    pub const ENTERED_IN_ERROR: &str = "record.entered_in_error";
    pub const PENDING_LIST: &str = "record.pending_list";
    pub const AUDIT_QUERY: &str = "audit.query";
    pub const LEDGER_PROOF: &str = "ledger.proof";
    pub const LEDGER_VERIFIED: &str = "ledger.verified";
    pub const LEDGER_CHECKPOINT: &str = "ledger.checkpoint";
    pub const COMPLIANCE_VIEWED: &str = "compliance.viewed";
    pub const COMPLIANCE_CREATED: &str = "compliance.created";
    pub const COMPLIANCE_ANSWERED: &str = "compliance.answered";
    pub const COMPLIANCE_EVIDENCE: &str = "compliance.evidence_added";
    pub const COMPLIANCE_CLOSED: &str = "compliance.closed";
    pub const COMPLIANCE_REPORT: &str = "compliance.report";
    pub const COMPLIANCE_PROFILE: &str = "compliance.profile_saved";
    pub const ASSET_SAVED: &str = "asset.saved";
    pub const ASSET_IMPORTED: &str = "asset.imported";
    pub const ASSET_DELETED: &str = "asset.deleted";
    pub const RISK_SAVED: &str = "risk.saved";
    pub const RISK_DELETED: &str = "risk.deleted";
    pub const CONTACTS_SAVED: &str = "contacts.saved";
    /// An entry of a facility register (disposal, take-out, training, outside storage).
    pub const REGISTER_SAVED: &str = "register.saved";
    /// A backup target is about to be erased (what it holds); then what was erased.
    pub const BACKUP_ERASE_PLANNED: &str = "backup.erase_planned";
    pub const BACKUP_ERASED: &str = "backup.erased";
    // 電子帳簿保存法: the facility's transaction documents.
    pub const TRANSACTION_REGISTERED: &str = "transaction.registered";
    pub const TRANSACTION_CORRECTED: &str = "transaction.corrected";
    pub const TRANSACTION_CANCELLED: &str = "transaction.cancelled";
    pub const TRANSACTION_VIEWED: &str = "transaction.viewed";
    pub const TRANSACTION_FILE_READ: &str = "transaction.file_read";
    pub const TRANSACTION_SEARCHED: &str = "transaction.searched";
    /// The whole set for a period downloaded (税務調査のダウンロードの求め).
    pub const TRANSACTION_EXPORTED: &str = "transaction.exported";
    pub const TRANSACTION_TIMESTAMPED: &str = "transaction.timestamped";
    pub const TRANSACTION_TIMESTAMP_FAILED: &str = "transaction.timestamp_failed";
    /// 一括検証: every time-stamp of a period checked.
    pub const TRANSACTION_STAMPS_VERIFIED: &str = "transaction.stamps_verified";
    pub const TRANSACTION_SETTINGS: &str = "transaction.settings_saved";
    /// The NTA 公表サイト's data of registered invoice issuers imported.
    pub const TRANSACTION_REGISTRY_IMPORTED: &str = "transaction.registry_imported";
}

/// The facts of a version row that the ledger commits to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionFacts<'a> {
    pub record_id: i64,
    pub version_no: i64,
    pub state: &'a str,
    pub kind: &'a str,
    pub author_id: i64,
    pub enterer_id: i64,
    pub content_sha256: &'a str,
    pub predecessor: Option<i64>,
    pub reason: Option<&'a str>,
    pub created_at: Millis,
    pub finalised_at: Option<Millis>,
    pub rejection_reason: Option<&'a str>,
}

impl VersionFacts<'_> {
    pub fn digest(&self) -> String {
        hex::encode(Sha256::digest(
            serde_json::to_vec(self).expect("facts serialise"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clipping_bounds_what_reaches_the_ledger() {
        assert_eq!(clip("dr.tanaka", 64), "dr.tanaka");
        let long = "あ".repeat(5_000_000);
        let c = clip(&long, 64);
        assert!(c.starts_with(&"あ".repeat(64)) && c.ends_with("（全5000000文字）"));
        let mut v = serde_json::json!({ "q": "x".repeat(70_000), "list": vec!["y"; 1000] });
        clip_json(&mut v, 256);
        assert!(v.to_string().len() < 2_000, "{}", v.to_string().len());
    }

    #[test]
    fn event_bytes_are_stable() {
        let e = AuditEvent::new(1, None, actions::RECORD_READ, Outcome::Ok)
            .patient("P1")
            .record(3);
        let s = String::from_utf8(e.to_bytes()).unwrap();
        assert_eq!(
            s,
            r#"{"v":1,"ts":1,"actor":null,"action":"record.read","outcome":"ok","patient":"P1","record":3,"version":null,"content_sha256":null,"version_digest":null,"client":null,"detail":null}"#
        );
        let back: AuditEvent = serde_json::from_slice(s.as_bytes()).unwrap();
        assert_eq!(back, e);
    }
}
