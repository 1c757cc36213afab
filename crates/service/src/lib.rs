//! mamori's use cases. Each one authorises, acts, and appends its ledger entry in the same
//! transaction; a read is in the ledger, durably, before any chart data is returned. The web
//! and CLI adapters call only these functions.
//!
//! The folders are the pillars (see docs/architecture.md for the map): `records` (the vault:
//! patients, records, export bundles), `access` (accounts, sign-in, second factors, passkeys,
//! break-glass, maintenance windows, roles and kinds, the facility CA), `ledger` (the ledger,
//! audit queries, verification, trusted time, the command-line operator's journal),
//! `evidence` (signatures, time-stamps, evidence records), `backup`, `compliance`. This file
//! holds what they all share: the `Service` type, `Principal`, and the audited read and write.
// The few system calls without a safe wrapper are allowed one by one, each with its reason.
#![deny(unsafe_code)]

// By capability: each folder's module comment says what it owns and what it may call.
pub mod access;
pub mod backup;
pub mod compliance;
pub mod evidence;
pub mod ledger;
pub mod records;
pub mod transactions;

// Shared by all of them.
pub mod config;
pub mod crypto;
pub mod error;
pub mod instance;
pub mod monitoring;
pub mod outside;
pub mod scheduler;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mamori_domain::audit::{ActorRef, AuditEvent, Outcome};
use mamori_domain::permission::{Action, Role};
use mamori_domain::{Clock, Millis};
use mamori_ledger::CheckpointSigner;
use mamori_store::{Account, Reader, Store, WriteTx};

use access::{accounts, guard};

pub use config::Config;
pub use error::{ErrorCode, Result, ServiceError};

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    pub account: Account,
    pub role: Role,
    pub token_hash: String,
    pub csrf: String,
    pub is_api_token: bool,
    /// Where the request came from (address, later device certificate), for the ledger.
    pub client: Option<String>,
    /// When the session was last recorded as active (its idle limit counts from here).
    pub session_seen_at: Millis,
    /// Signed in with the password only; the second factor (or its enrolment) is still due.
    pub second_factor_pending: bool,
    /// The screen is locked: only unlocking (with the password) is open.
    pub locked: bool,
    /// Break-glass accesses of this person active when the request arrived.
    pub emergency: Vec<mamori_store::EmergencyRow>,
    /// For an API token: the permissions granted beyond reading and writing (`export`).
    pub token_scopes: Vec<String>,
}

impl Principal {
    pub fn actor(&self) -> ActorRef {
        ActorRef {
            id: self.account.id,
            login: self.account.login.clone(),
            role: self.role.code.clone(),
        }
    }

    /// An OAuth access token (SMART Backend Services): its scopes narrow it to FHIR.
    pub fn is_oauth(&self) -> bool {
        self.is_api_token
            && self
                .token_scopes
                .iter()
                .any(|s| mamori_fhir::smart::is_system_scope(s))
    }

    pub fn require(&self, action: Action, kind: Option<&str>) -> Result<()> {
        // An integration's token prints and exports only where its scope says so, whatever
        // its service account's role allows; break-glass is a person's act, never a token's.
        if self.is_api_token {
            let granted = match action {
                Action::PrintExport => self
                    .token_scopes
                    .iter()
                    .any(|s| s == accounts::SCOPE_EXPORT),
                Action::BreakGlass => false,
                _ => true,
            };
            if !granted {
                return Err(ServiceError::new(
                    ErrorCode::Forbidden,
                    "この API トークンには、この操作の範囲（スコープ）がありません",
                ));
            }
        }
        self.role.require(action, kind).map_err(Into::into)
    }

    /// The active break-glass access to `patient`, if any.
    pub fn emergency_for(&self, patient: &str) -> Option<&mamori_store::EmergencyRow> {
        self.emergency.iter().find(|e| e.patient_id == patient)
    }
}

/// A ledger entry about `acc` (sign-in steps, where no Principal exists yet).
pub(crate) fn account_event(
    now: Millis,
    acc: &Account,
    action: &str,
    outcome: Outcome,
    client: Option<String>,
) -> AuditEvent {
    let mut ev = AuditEvent::new(
        now,
        Some(ActorRef {
            id: acc.id,
            login: acc.login.clone(),
            role: acc.role.clone(),
        }),
        action,
        outcome,
    );
    ev.client = client;
    ev
}

/// The strings of a JSON array in a ledger entry's detail (empty when absent).
pub(crate) fn string_list(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// What an audited use case touched, filled in as it runs.
#[derive(Debug, Default, Clone)]
pub struct Target {
    pub patient: Option<String>,
    pub record: Option<i64>,
    pub version: Option<i64>,
    pub content_sha256: Option<String>,
    pub version_digest: Option<String>,
    pub detail: serde_json::Map<String, serde_json::Value>,
    /// The ledger index the use case promised to a version row (checked on append).
    pub expected_index: Option<u64>,
    /// The entry's action when the use case found it to be another than the one it began as
    /// (a role change that became a proposal).
    pub action: Option<&'static str>,
}

impl Target {
    pub fn detail(&mut self, key: &str, value: impl Into<serde_json::Value>) {
        self.detail.insert(key.to_owned(), value.into());
    }
}

/// Longest string (and array) of a refused request's input written into the ledger.
pub const REFUSED_INPUT_IN_LEDGER: usize = 256;

pub struct Service {
    store: Store,
    config: Config,
    clock: Arc<dyn Clock>,
    signer: CheckpointSigner,
    data_dir: PathBuf,
    /// Served over plain HTTP on an address other hosts reach (`serve --insecure-http`).
    unencrypted_network: std::sync::atomic::AtomicBool,
    /// Parsed signing keys, the development TSA and trust anchors, kept between signatures.
    evidence_cache: evidence::Cache,
    /// The last clock check (trusted time), if one ran.
    clock_status: std::sync::Mutex<Option<mamori_domain::timesync::ClockStatus>>,
    /// Bounds concurrent password hashing (memory) and sheds what waits too long.
    hash_gate: guard::Gate,
    /// Bounds CPU-heavy comparisons (version diffs) to the cores, off the async workers.
    cpu_gate: guard::Gate,
    /// The TSA, webhooks, e-mail and time sources (ports; the system's by default).
    outside: outside::Outside,
    /// Record contents recently read (immutable, named by their hash).
    content_cache: records::ContentCache,
    /// What session tokens resolve to, while the store says it cannot have changed.
    sign_ins: access::sign_in_state::SignInCache,
}

impl Service {
    /// Uses other adapters to the outside world (tests without a network, other transports).
    /// Only before the service is shared: `None` once another handle to it exists.
    pub fn with_outside(mut self: Arc<Self>, o: outside::Outside) -> Option<Arc<Self>> {
        Arc::get_mut(&mut self)?.outside = o;
        Some(self)
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Says whether this instance is served over plain HTTP to the network (not loopback):
    /// pages then warn everyone, and cookies cannot be marked Secure (browsers would drop
    /// them).
    pub fn set_unencrypted_network(&self, yes: bool) {
        self.unencrypted_network
            .store(yes, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn unencrypted_network(&self) -> bool {
        self.unencrypted_network
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether cookies get the Secure flag: as configured, unless served unencrypted.
    pub fn secure_cookies(&self) -> bool {
        self.config.server.secure_cookies && !self.unencrypted_network()
    }

    /// The password-hashing gate (its peak concurrency is what the attack tests check).
    pub fn hash_gate(&self) -> &guard::Gate {
        &self.hash_gate
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn now(&self) -> Millis {
        self.clock.now()
    }

    pub fn verifier_key(&self) -> String {
        self.signer.verifier_key()
    }

    fn event(
        &self,
        p: Option<&Principal>,
        action: &str,
        outcome: Outcome,
        t: &Target,
    ) -> AuditEvent {
        let mut e = AuditEvent::new(self.now(), p.map(Principal::actor), action, outcome);
        e.patient = t.patient.clone();
        e.record = t.record;
        e.version = t.version;
        e.content_sha256 = t.content_sha256.clone();
        e.version_digest = t.version_digest.clone();
        e.client = p.and_then(|p| p.client.clone());
        if !t.detail.is_empty() {
            e.detail = serde_json::Value::Object(t.detail.clone());
        }
        e
    }

    /// A permission check made before any work: its refusal is in the ledger like every other
    /// (a use case that answers from memory or a cache would otherwise refuse silently).
    pub async fn gate(
        self: &Arc<Self>,
        p: &Principal,
        action: &'static str,
        check: Result<()>,
    ) -> Result<()> {
        if let Err(e) = &check
            && e.is_refusal()
        {
            let ev = self.refusal_event(Some(p), action, &Target::default(), e);
            self.store
                .write(move |tx| tx.append(&ev).map_err(ServiceError::from))
                .await?;
        }
        check
    }

    /// Removes files of the blob store that no row refers to and that have not been written
    /// or reused for `min_age_ms` (the content of a refused or interrupted write), with a
    /// ledger entry naming them. One write chooses them and records the entry; the next removes
    /// them, each only if it is still unreferenced and unclaimed (both run in the group commit,
    /// where no reference can be in the making). Either write can run again with the same effect.
    pub async fn sweep_orphan_blobs(self: &Arc<Self>, min_age_ms: u64) -> Result<usize> {
        let blobs = self.store.blobs().clone();
        let cutoff = std::time::SystemTime::now() - std::time::Duration::from_millis(min_age_ms);
        let now = self.now();
        let chosen = blobs.clone();
        let orphans = self
            .store
            .write(move |tx| -> Result<Vec<String>> {
                let referenced: std::collections::HashSet<String> =
                    tx.read().blob_ids()?.into_iter().collect();
                let orphans: Vec<String> = chosen
                    .files()?
                    .into_iter()
                    .filter(|(sha, at)| {
                        !referenced.contains(sha) && *at < cutoff && !chosen.in_flight(sha)
                    })
                    .map(|(sha, _)| sha)
                    .collect();
                if orphans.is_empty() {
                    return Ok(orphans);
                }
                let mut ev = AuditEvent::new(
                    now,
                    None,
                    mamori_domain::audit::actions::BLOBS_ORPHANS_REMOVED,
                    Outcome::Ok,
                );
                ev.detail = serde_json::json!({
                    "files": orphans.len(),
                    "sha256": orphans.iter().take(50).collect::<Vec<_>>(),
                });
                tx.append(&ev)?;
                Ok(orphans)
            })
            .await?;
        if orphans.is_empty() {
            return Ok(0);
        }
        self.store
            .write(move |tx| -> Result<usize> { Ok(remove_unreferenced(&blobs, tx, &orphans)) })
            .await
    }

    /// A refused write's files are removed at once, unless something refers to them or
    /// another request has stored the same bytes and not yet written its rows.
    pub(crate) async fn discard_if_refused<T>(
        self: &Arc<Self>,
        outcome: &Result<T>,
        files: Vec<String>,
    ) {
        if outcome.is_ok() || files.is_empty() {
            return;
        }
        let blobs = self.store.blobs().clone();
        let removed = self
            .store
            .write(move |tx| -> Result<usize> { Ok(remove_unreferenced(&blobs, tx, &files)) })
            .await;
        if let Err(e) = removed {
            tracing::warn!(error = %e, "could not remove a refused write's files (the hourly sweep will)");
        }
    }

    /// A ledger entry with no person behind it (the server itself noticed something).
    pub async fn record_system_event(
        self: &Arc<Self>,
        action: &'static str,
        detail: serde_json::Value,
    ) -> Result<()> {
        let mut t = Target::default();
        if let serde_json::Value::Object(m) = detail {
            t.detail = m;
        }
        self.write_audited(None, action, t, |_, _, _| Ok(())).await
    }

    fn refusal_event(
        &self,
        p: Option<&Principal>,
        action: &str,
        t: &Target,
        err: &ServiceError,
    ) -> AuditEvent {
        let mut t = t.clone();
        t.content_sha256 = None;
        t.version_digest = None;
        t.detail("error", err.code.as_str());
        // A refused request's input is the attacker's choice: only its beginning is kept.
        for v in t.detail.values_mut() {
            mamori_domain::audit::clip_json(v, REFUSED_INPUT_IN_LEDGER);
        }
        let outcome = if err.is_denial() {
            Outcome::Denied
        } else {
            Outcome::Failed
        };
        self.event(p, action, outcome, &t)
    }

    /// Runs a write use case in the group commit: on success its event is appended in the
    /// same transaction; on refusal its writes are undone and the refusal itself is recorded.
    pub(crate) async fn write_audited<R: Send + 'static>(
        self: &Arc<Self>,
        p: Option<&Principal>,
        action: &'static str,
        target: Target,
        f: impl Fn(&Service, &mut WriteTx<'_>, &mut Target) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        let this = Arc::clone(self);
        let p = p.cloned();
        let outcome: Result<Result<R>> = self
            .store
            .write(move |tx| {
                let mut target = target.clone();
                let body = tx.attempt(|tx| {
                    let r = f(&this, tx, &mut target)?;
                    let ev = this.event(
                        p.as_ref(),
                        target.action.unwrap_or(action),
                        Outcome::Ok,
                        &target,
                    );
                    let idx = tx.append(&ev)?;
                    if let Some(want) = target.expected_index
                        && want != idx
                    {
                        return Err(ServiceError::internal(format!(
                            "ledger index {idx}, expected {want}"
                        )));
                    }
                    Ok(r)
                });
                match body {
                    Ok(r) => Ok(Ok(r)),
                    Err(e) if e.is_refusal() => {
                        tx.append(&this.refusal_event(p.as_ref(), action, &target, &e))?;
                        Ok(Err(e))
                    }
                    Err(e) => Err(e),
                }
            })
            .await;
        outcome?
    }

    /// Runs a read use case, then makes its ledger entry durable before returning the data.
    pub(crate) async fn read_audited<R: Send + 'static>(
        self: &Arc<Self>,
        p: &Principal,
        action: &'static str,
        f: impl FnOnce(&Service, &Reader<'_>, &mut Target) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        let this = Arc::clone(self);
        let (result, target) = self
            .store
            .read(move |r| {
                let mut target = Target::default();
                let result = f(&this, r, &mut target);
                Ok((result, target))
            })
            .await?;
        let ev = match &result {
            Ok(_) => self.event(Some(p), action, Outcome::Ok, &target),
            Err(e) if e.is_refusal() => self.refusal_event(Some(p), action, &target, e),
            Err(_) => return result,
        };
        self.store
            .write(move |tx| tx.append(&ev).map_err(ServiceError::from))
            .await?;
        result
    }
}

/// Removes those of `files` that no row refers to and no request has claimed. Idempotent (a
/// file already gone counts as removed before), so a write that runs it can run again.
fn remove_unreferenced(
    blobs: &mamori_store::BlobStore,
    tx: &mut WriteTx<'_>,
    files: &[String],
) -> usize {
    let r = tx.read();
    let mut n = 0;
    for sha in files {
        if blobs.in_flight(sha) || !matches!(r.blob_meta(sha), Ok(None)) {
            continue;
        }
        match blobs.remove(sha) {
            Ok(()) => n += 1,
            Err(mamori_store::StoreError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                n += 1
            }
            Err(_) => {}
        }
    }
    n
}
