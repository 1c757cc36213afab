//! Records and their versions: 真正性 (JAHIS 09-001 §7.1) — author and enterer kept apart,
//! finalisation, full history, proxy entry with approval — and 見読性 (§7.2) views.
//!
//! Owns: patients (`patients`), records and versions (here), export bundles (`export`,
//! `export_encrypted`). Calls `ledger` (through the audited read and write) and `evidence`
//! (signing at finalisation, evidence for the bundles), and `compliance::registers` for the
//! take-out entry of an encrypted bundle.

mod content;
pub mod export;
pub(crate) use content::ContentCache;
use content::{StoredContent, register_blobs, stored_files};
mod read;
pub use read::*;
pub mod export_encrypted;
pub mod patients;

use crate::ErrorCode;
use std::collections::HashMap;
use std::sync::Arc;

use mamori_domain::audit::actions;
use mamori_domain::content::{
    ALLOWED_MEDIA_TYPES, AttachmentRef, RecordContent, clean_file_name, sniff_media_type,
};
use mamori_domain::permission::{Action, Role};
use mamori_domain::version::{
    Actor, Command, Effect, Head, RecordStatus, VersionKind, VersionState, decide, record_status,
    version_visible_to,
};
use mamori_store::{Account, Reader, RecordRow, VersionRow, WriteTx};
use serde::{Deserialize, Serialize};

use crate::error::{Result, ServiceError};
use crate::{Principal, Service, Target};

#[derive(Debug, Clone)]
pub struct Upload {
    pub name: String,
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct RecordInput {
    #[serde(default)]
    pub patient_id: String,
    #[serde(default)]
    pub kind: String,
    pub title: String,
    #[serde(default)]
    pub body: String,
    /// The responsible author when entering on someone's behalf (代行入力).
    #[serde(default)]
    pub author_id: Option<i64>,
    /// Attachments of the previous version to carry over (by SHA-256).
    #[serde(default)]
    pub keep_attachments: Vec<String>,
    /// Reason, for amendments.
    #[serde(default)]
    pub reason: Option<String>,
    /// The content hash the editor started from; a different current hash means someone
    /// else changed the record meanwhile.
    #[serde(default)]
    pub base_sha256: Option<String>,
    /// Another system's identifier for the new record (system, value): a create that names
    /// one already taken is refused, so a retried create never makes a second record.
    #[serde(skip)]
    pub identifier: Option<(String, String)>,
    /// The version the writer last saw (FHIR `If-Match`): an amendment made while a newer
    /// version exists is refused as a conflict, so that nobody overwrites a change unseen.
    #[serde(skip)]
    pub base_version: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct WriteResult {
    pub record_id: i64,
    pub version_no: i64,
    pub state: VersionState,
    pub content_sha256: String,
    pub ledger_index: i64,
}

fn head_of(v: &VersionRow) -> Result<Head> {
    Ok(Head {
        state: VersionState::parse(&v.state)
            .ok_or_else(|| ServiceError::internal("bad version state"))?,
        kind: VersionKind::parse(&v.kind)
            .ok_or_else(|| ServiceError::internal("bad version kind"))?,
        author_id: v.author_id,
        enterer_id: v.enterer_id,
    })
}

/// The responsible author of a new version and their role, checked to be a real, active person.
fn author_of(r: &Reader<'_>, p: &Principal, author_id: Option<i64>) -> Result<(i64, Role)> {
    let Some(id) = author_id.filter(|id| *id != p.account.id) else {
        return Ok((p.account.id, p.role.clone()));
    };
    let a = r
        .account(id)?
        .filter(|a| a.active && !a.is_service)
        .ok_or_else(|| {
            ServiceError::invalid(
                "author_id",
                "責任者に指定した利用者が見つからないか、無効です",
            )
        })?;
    let role = r
        .role(&a.role)?
        .ok_or_else(|| ServiceError::internal("author role missing"))?;
    Ok((id, role))
}

impl Service {
    /// Checks the caller may write this kind at all before any file is stored.
    fn precheck_write(p: &Principal, kind: &str) -> Result<()> {
        p.require(Action::Write, Some(kind))
    }

    async fn record_kind_of(
        self: &Arc<Self>,
        record_id: i64,
    ) -> Result<Option<(RecordRow, Option<VersionRow>)>> {
        Ok(self
            .store
            .read(move |r| {
                Ok(r.record(record_id)?
                    .map(|rec| (rec, r.head(record_id).ok().flatten())))
            })
            .await?)
    }

    /// Creates a record with its first version as a draft (by its author, or by a proxy).
    pub async fn create_record(
        self: &Arc<Self>,
        p: &Principal,
        input: RecordInput,
        uploads: Vec<Upload>,
    ) -> Result<WriteResult> {
        self.create_record_then(p, input, uploads, Then::Keep).await
    }

    /// Creates a record and, in the same transaction, submits or finalises it.
    pub async fn create_record_then(
        self: &Arc<Self>,
        p: &Principal,
        input: RecordInput,
        uploads: Vec<Upload>,
        then: Then,
    ) -> Result<WriteResult> {
        let pc = p.clone();
        let now = self.now();
        let mut t = Target::default();
        t.detail("kind", input.kind.clone());
        if mamori_domain::patient::validate_patient_id(&input.patient_id).is_ok() {
            t.patient = Some(input.patient_id.clone());
        }
        // Refuse early (still recorded below) rather than store files for a forbidden write.
        let prepared = Self::precheck_write(p, &input.kind)
            .and_then(|_| self.store_content(&input.title, &input.body, Vec::new(), uploads));
        let files = stored_files(&prepared);
        let written = self
            .write_audited(Some(p), actions::DRAFT_CREATED, t, move |svc, tx, t| {
                let (_, sha, blobs, _held) = prepared.clone()?;
                let r = tx.read();
                if r.kind(&input.kind)?.is_none() {
                    return Err(ServiceError::invalid(
                        "kind",
                        "記録の種別が正しくありません",
                    ));
                }
                if r.patient(&input.patient_id)?.is_none() {
                    return Err(
                        ServiceError::new(ErrorCode::NotFound, "患者が見つかりません")
                            .with_field("patient_id"),
                    );
                }
                let (author_id, author_role) = author_of(&r, &pc, input.author_id)?;
                let effect = decide(
                    &Actor {
                        id: pc.account.id,
                        role: &pc.role,
                    },
                    &input.kind,
                    None,
                    Command::Create {
                        author_id,
                        author_role: &author_role,
                    },
                )?;
                let Effect::NewVersion {
                    state,
                    kind,
                    author_id,
                    enterer_id,
                } = effect
                else {
                    return Err(ServiceError::internal("unexpected effect"));
                };
                let rid = tx.insert_record(&input.patient_id, &input.kind, now, pc.account.id)?;
                if let Some((system, value)) = &input.identifier {
                    t.detail("identifier", format!("{system}|{value}"));
                    if !tx.insert_record_identifier(system, value, rid)? {
                        return Err(ServiceError::new(
                            ErrorCode::Exists,
                            "この識別子の記録は既にあります",
                        ));
                    }
                }
                let v = VersionRow {
                    record_id: rid,
                    version_no: 1,
                    state: state.as_str().into(),
                    kind: kind.as_str().into(),
                    author_id,
                    enterer_id,
                    content_sha256: sha,
                    predecessor: None,
                    reason: None,
                    created_at: now,
                    finalised_at: None,
                    rejection_reason: None,
                    ledger_index: tx.ledger_size() as i64,
                };
                tx.insert_version(&v)?;
                register_blobs(tx, &blobs, now)?;
                if author_id != enterer_id {
                    t.detail("proxy_for", author_id);
                }
                finish_draft(
                    svc,
                    tx,
                    &pc,
                    &input.kind,
                    actions::DRAFT_CREATED,
                    v,
                    then,
                    now,
                    t,
                )
            })
            .await;
        self.discard_if_refused(&written, files).await;
        if let Ok(r) = &written {
            self.sign_after_write(p, r).await;
        }
        written
    }

    /// The record of `kind` another system's identifier names, for a caller who may write that
    /// kind (a retried create): anyone else learns nothing, and goes on to be refused like any
    /// write they may not make. Only its number: reading it is a separate, recorded read.
    pub async fn record_by_identifier(
        &self,
        p: &Principal,
        kind: &str,
        system: &str,
        value: &str,
    ) -> Result<Option<i64>> {
        if !p.role.allows(Action::Write, Some(kind)) {
            return Ok(None);
        }
        let (system, value) = (system.to_owned(), value.to_owned());
        Ok(self
            .store
            .read(move |r| r.record_by_identifier(&system, &value))
            .await?)
    }

    /// The account a login names (to name the responsible author of a proxy entry).
    pub async fn account_id_by_login(&self, login: &str) -> Result<Option<i64>> {
        let login = login.to_owned();
        Ok(self
            .store
            .read(move |r| r.account_by_login(&login))
            .await?
            .map(|a| a.id))
    }

    /// The identifiers other systems gave record `id` (shown with a record the caller read).
    pub async fn record_identifiers(&self, id: i64) -> Result<Vec<(String, String)>> {
        Ok(self.store.read(move |r| r.identifiers_of(id)).await?)
    }

    /// The ledger target of a write on record `id`, naming its patient when the record exists
    /// (a write refused for a missing record is still ledgered, without a patient).
    async fn record_target(self: &Arc<Self>, id: i64) -> Result<Target> {
        let mut t = Target {
            record: Some(id),
            ..Default::default()
        };
        if let Some((rec, _)) = self.record_kind_of(id).await? {
            t.patient = Some(rec.patient_id);
        }
        Ok(t)
    }

    /// Applies a state change to the head version (submit, finalise, approve, reject).
    async fn change_head(
        self: &Arc<Self>,
        p: &Principal,
        record_id: i64,
        action: &'static str,
        cmd: HeadCommand,
    ) -> Result<WriteResult> {
        let pc = p.clone();
        let now = self.now();
        let t = self.record_target(record_id).await?;
        self.write_audited(Some(p), action, t, move |_, tx, t| {
            let (rec, head) = load(tx, record_id)?;
            let v = set_head_state(tx, &pc, &rec.kind, &head, &cmd, now, t)?;
            Ok(commit_version(t, &v))
        })
        .await
    }

    pub async fn submit_record(self: &Arc<Self>, p: &Principal, id: i64) -> Result<WriteResult> {
        self.change_head(p, id, actions::SUBMITTED, HeadCommand::Submit)
            .await
    }

    pub async fn finalise_record(self: &Arc<Self>, p: &Principal, id: i64) -> Result<WriteResult> {
        let r = self
            .change_head(p, id, actions::FINALISED, HeadCommand::Finalise)
            .await?;
        self.sign_after_write(p, &r).await;
        Ok(r)
    }

    pub async fn approve_record(self: &Arc<Self>, p: &Principal, id: i64) -> Result<WriteResult> {
        let r = self
            .change_head(p, id, actions::APPROVED, HeadCommand::Approve)
            .await?;
        self.sign_after_write(p, &r).await;
        Ok(r)
    }

    pub async fn reject_record(
        self: &Arc<Self>,
        p: &Principal,
        id: i64,
        reason: String,
    ) -> Result<WriteResult> {
        self.change_head(p, id, actions::REJECTED, HeadCommand::Reject(reason))
            .await
    }

    /// Stores the new content of record `id` ahead of its transaction (if the caller may write
    /// the kind at all), carrying over the attachments asked for; names the patient for the
    /// ledger event. A refusal is returned inside, so the use case still records it.
    async fn prepare_replacement(
        self: &Arc<Self>,
        p: &Principal,
        id: i64,
        input: &RecordInput,
        uploads: Vec<Upload>,
    ) -> Result<(Target, Result<StoredContent>)> {
        let mut t = Target {
            record: Some(id),
            ..Default::default()
        };
        let prepared = match self.record_kind_of(id).await? {
            Some((rec, head)) => {
                t.patient = Some(rec.patient_id.clone());
                Self::precheck_write(p, &rec.kind)
                    .and_then(|_| self.kept_attachments(head.as_ref(), &input.keep_attachments))
                    .and_then(|kept| self.store_content(&input.title, &input.body, kept, uploads))
            }
            None => Err(ServiceError::not_found("記録")),
        };
        Ok((t, prepared))
    }

    /// Replaces the content of one's own draft.
    pub async fn update_draft(
        self: &Arc<Self>,
        p: &Principal,
        id: i64,
        input: RecordInput,
        uploads: Vec<Upload>,
    ) -> Result<WriteResult> {
        self.update_draft_then(p, id, input, uploads, Then::Keep)
            .await
    }

    /// Saves a draft and, in the same transaction, submits or finalises it.
    pub async fn update_draft_then(
        self: &Arc<Self>,
        p: &Principal,
        id: i64,
        input: RecordInput,
        uploads: Vec<Upload>,
        then: Then,
    ) -> Result<WriteResult> {
        let t = Target::default();
        self.replace_content(p, id, input, uploads, actions::DRAFT_UPDATED, t, move |svc, tx, t, w| {
            decide(&w.actor(), &w.rec.kind, Some(&head_of(&w.head)?), Command::EditDraft)?;
            let (_, sha, blobs, _held) = w.prepared?;
            if let Some(base) = &w.input.base_sha256
                && base != &w.head.content_sha256 {
                    return Err(ServiceError::new(
                        ErrorCode::Conflict,
                        "編集中に記録が変更されました。最新の内容を確認してから保存し直してください（入力内容は保持されています）",
                    ));
                }
            let mut v = w.head.clone();
            v.content_sha256 = sha;
            v.ledger_index = tx.ledger_size() as i64;
            tx.update_version(&v)?;
            register_blobs(tx, &blobs, w.now)?;
            finish_draft(svc, tx, &w.p, &w.rec.kind, actions::DRAFT_UPDATED, v, then, w.now, t)
        })
        .await
    }

    /// Corrects a finalised record with a new version that names its predecessor and a reason.
    pub async fn amend_record(
        self: &Arc<Self>,
        p: &Principal,
        id: i64,
        input: RecordInput,
        uploads: Vec<Upload>,
    ) -> Result<WriteResult> {
        let reason = input.reason.clone().unwrap_or_default();
        let mut t = Target::default();
        t.detail("reason", reason.trim());
        self.replace_content(
            p,
            id,
            input,
            uploads,
            actions::AMENDED,
            t,
            move |_, tx, t, w| {
                let (author_id, author_role) = author_of(&tx.read(), &w.p, w.input.author_id)?;
                let effect = decide(
                    &w.actor(),
                    &w.rec.kind,
                    Some(&head_of(&w.head)?),
                    Command::Amend {
                        author_id,
                        author_role: &author_role,
                        reason: &reason,
                    },
                )
                .map_err(|e| ServiceError::from(e).with_field("reason"))?;
                if let Some(seen) = w.input.base_version
                    && seen != w.head.version_no
                {
                    return Err(ServiceError::new(
                        ErrorCode::Conflict,
                        format!(
                            "第 {seen} 版を元にした修正ですが、記録は既に第 {} 版です。最新の版を確認してから修正し直してください",
                            w.head.version_no
                        ),
                    ));
                }
                let (_, sha, blobs, _held) = w.prepared?;
                let v = new_version(
                    tx,
                    &w.head,
                    effect,
                    sha,
                    Some(reason.trim().to_owned()),
                    w.now,
                )?;
                register_blobs(tx, &blobs, w.now)?;
                Ok(commit_version(t, &v))
            },
        )
        .await
    }

    /// Signs the version a write just finalised; a failure is logged and left to the sweep,
    /// since the finalisation itself is already durable.
    pub(crate) async fn sign_after_write(self: &Arc<Self>, p: &Principal, r: &WriteResult) {
        if r.state != mamori_domain::version::VersionState::Finalised {
            return;
        }
        if let Err(e) = self.sign_version(Some(p), r.record_id, r.version_no).await {
            tracing::warn!(
                record = r.record_id,
                version = r.version_no,
                error = %e.message,
                "signing after finalisation failed; the evidence sweep will retry"
            );
        }
    }

    /// The shared path of every write that replaces a record's content (editing a draft,
    /// amending a finalised record): the new content is stored ahead of the transaction,
    /// `apply` decides and writes inside it, files of a refused write are removed, and the
    /// written version is signed afterwards.
    #[allow(clippy::too_many_arguments)]
    async fn replace_content(
        self: &Arc<Self>,
        p: &Principal,
        id: i64,
        input: RecordInput,
        uploads: Vec<Upload>,
        action: &'static str,
        extra: Target,
        apply: impl Fn(&Service, &mut WriteTx<'_>, &mut Target, Replacement) -> Result<WriteResult>
        + Send
        + 'static,
    ) -> Result<WriteResult> {
        let (mut t, prepared) = self.prepare_replacement(p, id, &input, uploads).await?;
        t.detail.extend(extra.detail);
        let files = stored_files(&prepared);
        let now = self.now();
        let pc = p.clone();
        let written = self
            .write_audited(Some(p), action, t, move |svc, tx, t| {
                let (rec, head) = load(tx, id)?;
                let w = Replacement {
                    p: pc.clone(),
                    rec,
                    head,
                    input: input.clone(),
                    prepared: prepared.clone(),
                    now,
                };
                apply(svc, tx, t, w)
            })
            .await;
        self.discard_if_refused(&written, files).await;
        if let Ok(r) = &written {
            self.sign_after_write(p, r).await;
        }
        written
    }

    /// Marks a finalised record as entered in error: a new version, the content kept readable.
    pub async fn mark_entered_in_error(
        self: &Arc<Self>,
        p: &Principal,
        id: i64,
        reason: String,
    ) -> Result<WriteResult> {
        let pc = p.clone();
        let now = self.now();
        let mut t = self.record_target(id).await?;
        t.detail("reason", reason.trim());
        let r = self
            .write_audited(Some(p), actions::ENTERED_IN_ERROR, t, move |_, tx, t| {
                let (rec, head) = load(tx, id)?;
                let effect = decide(
                    &Actor {
                        id: pc.account.id,
                        role: &pc.role,
                    },
                    &rec.kind,
                    Some(&head_of(&head)?),
                    Command::MarkEnteredInError { reason: &reason },
                )?;
                let sha = head.content_sha256.clone();
                let v = new_version(tx, &head, effect, sha, Some(reason.trim().to_owned()), now)?;
                Ok(commit_version(t, &v))
            })
            .await?;
        self.sign_after_write(p, &r).await;
        Ok(r)
    }
}

/// What a content-replacing write works on inside its transaction.
struct Replacement {
    p: Principal,
    rec: RecordRow,
    head: VersionRow,
    input: RecordInput,
    prepared: Result<StoredContent>,
    now: i64,
}

impl Replacement {
    fn actor(&self) -> Actor<'_> {
        Actor {
            id: self.p.account.id,
            role: &self.p.role,
        }
    }
}

#[derive(Clone, Copy)]
enum WhichContent {
    /// The newest version's content, every version's signature (the record page).
    Head,
    /// Every version's content and signature (history, print, export).
    All,
    /// The newest version's content only, no signatures (a patient's list of records).
    Summary,
}

/// The head version after a state change (submit, finalise, approve, reject) the domain rules
/// allow, written; its ledger index is the next entry.
fn set_head_state(
    tx: &mut WriteTx<'_>,
    pc: &Principal,
    kind: &str,
    head: &VersionRow,
    cmd: &HeadCommand,
    now: mamori_domain::Millis,
    t: &mut Target,
) -> Result<VersionRow> {
    let command = match cmd {
        HeadCommand::Submit => Command::Submit,
        HeadCommand::Finalise => Command::Finalise,
        HeadCommand::Approve => Command::Approve,
        HeadCommand::Reject(reason) => Command::Reject { reason },
    };
    let effect = decide(
        &Actor {
            id: pc.account.id,
            role: &pc.role,
        },
        kind,
        Some(&head_of(head)?),
        command,
    )?;
    let Effect::SetHeadState(state) = effect else {
        return Err(ServiceError::internal("unexpected effect"));
    };
    let mut v = head.clone();
    v.state = state.as_str().into();
    v.ledger_index = tx.ledger_size() as i64;
    match command {
        Command::Finalise | Command::Approve => v.finalised_at = Some(now),
        Command::Submit => v.rejection_reason = None,
        Command::Reject { reason } => {
            v.rejection_reason = Some(reason.trim().to_owned());
            t.detail("reason", reason.trim());
        }
        _ => {}
    }
    tx.update_version(&v)?;
    Ok(v)
}

/// What happens to a draft right after it is written, in the same transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Then {
    #[default]
    Keep,
    /// A proxy entry goes to its author for approval.
    Submit,
    Finalise,
}

impl Then {
    fn command(self) -> Option<(HeadCommand, &'static str)> {
        match self {
            Then::Keep => None,
            Then::Submit => Some((HeadCommand::Submit, actions::SUBMITTED)),
            Then::Finalise => Some((HeadCommand::Finalise, actions::FINALISED)),
        }
    }
}

/// Ends a draft write: with `Then::Keep` the write's own entry states the draft; otherwise
/// that entry is appended here and the state change follows as a second entry of the same
/// transaction, so that a crash never leaves a draft the client believes finalised.
#[allow(clippy::too_many_arguments)]
fn finish_draft(
    svc: &Service,
    tx: &mut WriteTx<'_>,
    pc: &Principal,
    kind: &str,
    draft_action: &'static str,
    v: VersionRow,
    then: Then,
    now: mamori_domain::Millis,
    t: &mut Target,
) -> Result<WriteResult> {
    let Some((cmd, action)) = then.command() else {
        return Ok(commit_version(t, &v));
    };
    // `t` stays as it was until the whole step succeeds: a refusal must not name the record
    // that was rolled back (its id is given to the next record).
    let mut written = t.clone();
    commit_version(&mut written, &v);
    let idx = tx.append(&svc.event(
        Some(pc),
        draft_action,
        mamori_domain::audit::Outcome::Ok,
        &written,
    ))?;
    if idx != v.ledger_index as u64 {
        return Err(ServiceError::internal(format!(
            "ledger index {idx}, expected {}",
            v.ledger_index
        )));
    }
    let mut next = Target {
        patient: t.patient.clone(),
        action: Some(action),
        ..Default::default()
    };
    let v = set_head_state(tx, pc, kind, &v, &cmd, now, &mut next)?;
    *t = next;
    Ok(commit_version(t, &v))
}

enum HeadCommand {
    Submit,
    Finalise,
    Approve,
    Reject(String),
}

fn load(tx: &WriteTx<'_>, id: i64) -> Result<(RecordRow, VersionRow)> {
    let r = tx.read();
    let rec = r
        .record(id)?
        .ok_or_else(|| ServiceError::not_found("記録"))?;
    let head = r
        .head(id)?
        .ok_or_else(|| ServiceError::internal("record without versions"))?;
    Ok((rec, head))
}

fn new_version(
    tx: &mut WriteTx<'_>,
    head: &VersionRow,
    effect: Effect,
    content_sha256: String,
    reason: Option<String>,
    now: i64,
) -> Result<VersionRow> {
    let Effect::NewVersion {
        kind,
        state,
        author_id,
        enterer_id,
    } = effect
    else {
        return Err(ServiceError::internal("unexpected effect"));
    };
    let v = VersionRow {
        record_id: head.record_id,
        version_no: head.version_no + 1,
        state: state.as_str().into(),
        kind: kind.as_str().into(),
        author_id,
        enterer_id,
        content_sha256,
        predecessor: Some(head.version_no),
        reason,
        created_at: now,
        finalised_at: (state == VersionState::Finalised).then_some(now),
        rejection_reason: None,
        ledger_index: tx.ledger_size() as i64,
    };
    tx.insert_version(&v)?;
    Ok(v)
}

/// Fills the event target with the version's commitments and returns the result.
fn commit_version(t: &mut Target, v: &VersionRow) -> WriteResult {
    t.record = Some(v.record_id);
    t.version = Some(v.version_no);
    t.content_sha256 = Some(v.content_sha256.clone());
    t.version_digest = Some(v.facts().digest());
    t.expected_index = Some(v.ledger_index as u64);
    WriteResult {
        record_id: v.record_id,
        version_no: v.version_no,
        state: VersionState::parse(&v.state).unwrap_or(VersionState::Draft),
        content_sha256: v.content_sha256.clone(),
        ledger_index: v.ledger_index,
    }
}
