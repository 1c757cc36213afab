//! Reading records: a record with its versions (every read a ledger entry before the answer),
//! the difference between two versions, a patient's records, attachments, the print view and the
//! queue of drafts waiting for approval; and who may see a draft.

use super::*;

#[derive(Debug, Clone, Serialize)]
pub struct PersonRef {
    pub id: i64,
    pub login: String,
    pub display_name: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct VersionView {
    pub version_no: i64,
    pub state: String,
    pub kind: String,
    pub author: PersonRef,
    pub enterer: PersonRef,
    pub proxy_entry: bool,
    pub content: RecordContent,
    pub content_sha256: String,
    pub predecessor: Option<i64>,
    pub reason: Option<String>,
    pub created_at: i64,
    pub finalised_at: Option<i64>,
    pub rejection_reason: Option<String>,
    pub ledger_index: i64,
    /// The author's electronic signature of a finalised version.
    pub signature: Option<crate::evidence::SignatureBrief>,
    /// Finalised while signing is on, but not signed yet: waiting for its author to open their
    /// signing window (or to sign outside mamori).
    pub awaiting_signature: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct RecordView {
    pub id: i64,
    pub patient_id: String,
    pub kind: String,
    pub kind_name: String,
    pub status: RecordStatus,
    pub status_label: &'static str,
    pub created_at: i64,
    pub versions: Vec<VersionView>,
}

impl RecordView {
    /// The title of the newest version (what the record is called now).
    pub fn title(&self) -> String {
        self.versions
            .last()
            .map(|v| v.content.title.clone())
            .unwrap_or_default()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RecordSummary {
    pub id: i64,
    pub kind: String,
    pub kind_name: String,
    pub status: RecordStatus,
    pub status_label: &'static str,
    pub title: String,
    pub author: PersonRef,
    pub latest_version: i64,
    pub updated_at: i64,
    pub created_at: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PendingItem {
    pub record_id: i64,
    pub version_no: i64,
    pub patient_id: String,
    pub kind: String,
    pub title: String,
    pub enterer: PersonRef,
    pub created_at: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct DiffLine {
    pub tag: &'static str,
    pub text: String,
}

/// The longest a version comparison computes before settling for a coarser result.
pub const DIFF_DEADLINE: std::time::Duration = std::time::Duration::from_millis(500);

/// A line diff of two texts that stops refining at `deadline` (similar's Myers with a
/// deadline: the rest becomes one replacement), so that two 100k-line versions cost at most
/// about the deadline instead of a minute.
pub fn diff_lines(a: &str, b: &str, deadline: std::time::Duration) -> Vec<DiffLine> {
    similar::TextDiff::configure()
        .algorithm(similar::Algorithm::Myers)
        .timeout(deadline)
        .diff_lines(a, b)
        .iter_all_changes()
        .map(|c| DiffLine {
            tag: match c.tag() {
                similar::ChangeTag::Equal => "equal",
                similar::ChangeTag::Insert => "insert",
                similar::ChangeTag::Delete => "delete",
            },
            text: c.value().trim_end_matches('\n').to_owned(),
        })
        .collect()
}

#[derive(Debug, Clone, Serialize)]
pub struct PrintView {
    pub facility: String,
    pub patient: mamori_store::Patient,
    pub record: RecordView,
    pub printed_at: i64,
    pub printed_by: PersonRef,
    /// The ledger size when printed: the printout can be checked against a later checkpoint.
    pub ledger_size: u64,
}

/// The people a read names, each looked up once per request.
#[derive(Default)]
pub(super) struct People(HashMap<i64, PersonRef>);

impl People {
    pub(super) fn get(&mut self, r: &Reader<'_>, id: i64) -> Result<PersonRef> {
        if let Some(p) = self.0.get(&id) {
            return Ok(p.clone());
        }
        let found = r.account(id)?;
        let p = person_of(found.as_ref(), id);
        self.0.insert(id, p.clone());
        Ok(p)
    }
}

pub(super) fn person(accounts: &HashMap<i64, Account>, id: i64) -> PersonRef {
    person_of(accounts.get(&id), id)
}

fn person_of(account: Option<&Account>, id: i64) -> PersonRef {
    match account {
        Some(a) => PersonRef {
            id,
            login: a.login.clone(),
            display_name: a.display_name.clone(),
        },
        None => PersonRef {
            id,
            login: String::new(),
            display_name: format!("#{id}"),
        },
    }
}

/// Someone who may be named as a record's responsible author.
#[derive(Debug, Clone, Serialize)]
pub struct AuthorChoice {
    pub id: i64,
    pub display_name: String,
    pub role_name: String,
}

impl Service {
    pub(super) fn view(
        &self,
        r: &Reader<'_>,
        p: &Principal,
        rec: &RecordRow,
        with_content_of: WhichContent,
        people: &mut People,
    ) -> Result<RecordView> {
        let all = r.versions(rec.id)?;
        let visible: Vec<&VersionRow> = all
            .iter()
            .filter(|v| {
                VersionState::parse(&v.state)
                    .is_some_and(|s| version_visible_to(p.account.id, s, v.author_id, v.enterer_id))
            })
            .collect();
        if visible.is_empty() {
            return Err(ServiceError::not_found("記録"));
        }
        let status = record_status(
            &visible
                .iter()
                .filter_map(|v| {
                    Some((VersionState::parse(&v.state)?, VersionKind::parse(&v.kind)?))
                })
                .collect::<Vec<_>>(),
        )
        .ok_or_else(|| ServiceError::internal("no status"))?;
        let last = visible.len() - 1;
        let versions = visible
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let signature = match with_content_of {
                    WhichContent::Summary => None,
                    _ => match r.signature(v.record_id, v.version_no)? {
                        Some(s) => {
                            let mut b = self.signature_brief(&s);
                            for pdf in r.signed_pdfs_of_version(v.record_id, v.version_no)? {
                                match pdf.attachment() {
                                    None => b.pdf = Some(pdf.level),
                                    Some(a) => {
                                        b.signed_attachments.push((a.to_owned(), pdf.level.clone()))
                                    }
                                }
                            }
                            Some(b)
                        }
                        None => None,
                    },
                };
                let content = match with_content_of {
                    WhichContent::All => self.load_content(&v.content_sha256)?,
                    _ if i == last => self.load_content(&v.content_sha256)?,
                    _ => RecordContent {
                        v: 1,
                        title: String::new(),
                        body: String::new(),
                        attachments: vec![],
                    },
                };
                Ok(VersionView {
                    version_no: v.version_no,
                    state: v.state.clone(),
                    kind: v.kind.clone(),
                    author: people.get(r, v.author_id)?,
                    enterer: people.get(r, v.enterer_id)?,
                    proxy_entry: v.author_id != v.enterer_id,
                    content,
                    content_sha256: v.content_sha256.clone(),
                    predecessor: v.predecessor,
                    reason: v.reason.clone(),
                    created_at: v.created_at,
                    finalised_at: v.finalised_at,
                    rejection_reason: v.rejection_reason.clone(),
                    ledger_index: v.ledger_index,
                    signature: signature.clone(),
                    awaiting_signature: self.config.evidence.sign
                        && v.state == "finalised"
                        && signature.is_none()
                        && !matches!(with_content_of, WhichContent::Summary),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let kind_name = r
            .kind(&rec.kind)?
            .map(|k| k.name_ja)
            .unwrap_or_else(|| rec.kind.clone());
        Ok(RecordView {
            id: rec.id,
            patient_id: rec.patient_id.clone(),
            kind: rec.kind.clone(),
            kind_name,
            status,
            status_label: status.label_ja(),
            created_at: rec.created_at,
            versions,
        })
    }

    /// Loads a record the caller may read, naming its patient in the ledger event.
    pub(super) fn readable(
        r: &Reader<'_>,
        p: &Principal,
        id: i64,
        action: Action,
        t: &mut Target,
    ) -> Result<RecordRow> {
        t.record = Some(id);
        let rec = r
            .record(id)?
            .ok_or_else(|| ServiceError::not_found("記録"))?;
        t.patient = Some(rec.patient_id.clone());
        t.detail("kind", rec.kind.clone());
        // Everything read during a break-glass access is marked with it, and reading is
        // what it grants beyond the role (not printing, not writing).
        let emergency = p.emergency_for(&rec.patient_id);
        if let Some(e) = emergency {
            t.detail("emergency", e.id);
        }
        if let Err(e) = p.require(action, Some(&rec.kind))
            && !(action == Action::Read && emergency.is_some())
        {
            return Err(e);
        }
        Ok(rec)
    }

    /// A record the caller may read (the evidence view's check).
    pub(crate) fn readable_for_read(
        r: &Reader<'_>,
        p: &Principal,
        id: i64,
        t: &mut Target,
    ) -> Result<RecordRow> {
        Self::readable(r, p, id, Action::Read, t)
    }

    /// A record the caller may print and export (the export bundle's check).
    pub(crate) fn readable_for_export(
        r: &Reader<'_>,
        p: &Principal,
        id: i64,
        t: &mut Target,
    ) -> Result<RecordRow> {
        let rec = Self::readable(r, p, id, Action::PrintExport, t)?;
        p.require(Action::Read, Some(&rec.kind))?;
        Ok(rec)
    }

    pub async fn record(self: &Arc<Self>, p: &Principal, id: i64) -> Result<RecordView> {
        let pc = p.clone();
        self.read_audited(p, actions::RECORD_READ, move |svc, r, t| {
            let rec = Self::readable(r, &pc, id, Action::Read, t)?;
            svc.view(r, &pc, &rec, WhichContent::Head, &mut People::default())
        })
        .await
    }

    pub async fn record_versions(self: &Arc<Self>, p: &Principal, id: i64) -> Result<RecordView> {
        let pc = p.clone();
        self.read_audited(p, actions::RECORD_HISTORY, move |svc, r, t| {
            let rec = Self::readable(r, &pc, id, Action::Read, t)?;
            svc.view(r, &pc, &rec, WhichContent::All, &mut People::default())
        })
        .await
    }

    /// A line-by-line comparison of two versions' title and body.
    pub async fn diff_versions(
        self: &Arc<Self>,
        p: &Principal,
        id: i64,
        from: i64,
        to: i64,
    ) -> Result<Vec<DiffLine>> {
        let pc = p.clone();
        let (a, b) = self
            .read_audited(p, actions::RECORD_DIFF, move |svc, r, t| {
                t.detail("from", from);
                t.detail("to", to);
                let rec = Self::readable(r, &pc, id, Action::Read, t)?;
                let view = svc.view(r, &pc, &rec, WhichContent::All, &mut People::default())?;
                let text = |n: i64| -> Result<String> {
                    let v = view
                        .versions
                        .iter()
                        .find(|v| v.version_no == n)
                        .ok_or_else(|| ServiceError::not_found("版"))?;
                    Ok(format!("{}\n\n{}\n", v.content.title, v.content.body))
                };
                Ok((text(from)?, text(to)?))
            })
            .await?;
        // Off the async workers, a few at a time, and bounded in time: past the deadline the
        // comparison falls back to a coarser (still correct) one rather than running on.
        self.cpu_gate
            .run(move || diff_lines(&a, &b, DIFF_DEADLINE))
            .await
    }

    pub async fn patient_records(
        self: &Arc<Self>,
        p: &Principal,
        patient_id: &str,
    ) -> Result<Vec<RecordSummary>> {
        let pc = p.clone();
        let pid = patient_id.to_owned();
        self.read_audited(p, actions::RECORD_LIST, move |svc, r, t| {
            if mamori_domain::patient::validate_patient_id(&pid).is_ok() {
                t.patient = Some(pid.clone());
            }
            let emergency = pc.emergency_for(&pid).map(|e| e.id);
            if let Some(id) = emergency {
                t.detail("emergency", id);
            }
            if !pc.role.allows(Action::Read, None) && emergency.is_none() {
                return Err(ServiceError::forbidden(format!(
                    "{}に記録の閲覧権限がありません",
                    pc.role.name_ja
                )));
            }
            r.patient(&pid)?
                .ok_or_else(|| ServiceError::not_found("患者"))?;
            let mut out = Vec::new();
            let mut people = People::default();
            for rec in r.records_of_patient(&pid)? {
                if !pc.role.allows(Action::Read, Some(&rec.kind)) && emergency.is_none() {
                    continue;
                }
                let Ok(view) = svc.view(r, &pc, &rec, WhichContent::Summary, &mut people) else {
                    continue;
                };
                let head = view.versions.last().expect("view has a version");
                out.push(RecordSummary {
                    id: rec.id,
                    kind: rec.kind.clone(),
                    kind_name: view.kind_name.clone(),
                    status: view.status,
                    status_label: view.status_label,
                    title: head.content.title.clone(),
                    author: head.author.clone(),
                    latest_version: head.version_no,
                    updated_at: head.finalised_at.unwrap_or(head.created_at),
                    created_at: rec.created_at,
                });
            }
            t.detail("results", out.len());
            Ok(out)
        })
        .await
    }

    /// An attachment's bytes, if it belongs to a version the caller may see.
    pub async fn attachment(
        self: &Arc<Self>,
        p: &Principal,
        id: i64,
        sha: &str,
    ) -> Result<(AttachmentRef, Vec<u8>)> {
        let pc = p.clone();
        let sha = sha.to_owned();
        self.read_audited(p, actions::ATTACHMENT_READ, move |svc, r, t| {
            t.detail("attachment", sha.clone());
            let rec = Self::readable(r, &pc, id, Action::Read, t)?;
            let view = svc.view(r, &pc, &rec, WhichContent::All, &mut People::default())?;
            let a = view
                .versions
                .iter()
                .flat_map(|v| v.content.attachments.iter())
                .find(|a| a.sha256 == sha)
                .cloned()
                .ok_or_else(|| ServiceError::not_found("添付ファイル"))?;
            let bytes = svc.store.blobs().get(&a.sha256)?;
            Ok((a, bytes))
        })
        .await
    }

    /// Everything needed to print or export a record (見読性), recorded as a print/export.
    pub async fn print_record(self: &Arc<Self>, p: &Principal, id: i64) -> Result<PrintView> {
        let pc = p.clone();
        self.read_audited(p, actions::RECORD_EXPORT, move |svc, r, t| {
            let rec = Self::readable(r, &pc, id, Action::PrintExport, t)?;
            pc.require(Action::Read, Some(&rec.kind))?;
            let record = svc.view(r, &pc, &rec, WhichContent::All, &mut People::default())?;
            let patient = r
                .patient(&rec.patient_id)?
                .ok_or_else(|| ServiceError::not_found("患者"))?;
            Ok(PrintView {
                facility: svc.config.facility.name.clone(),
                patient,
                record,
                printed_at: svc.now(),
                printed_by: PersonRef {
                    id: pc.account.id,
                    login: pc.account.login.clone(),
                    display_name: pc.account.display_name.clone(),
                },
                ledger_size: r.ledger_size()?,
            })
        })
        .await
    }

    /// Proxy entries waiting for the caller's approval.
    pub async fn pending_approvals(self: &Arc<Self>, p: &Principal) -> Result<Vec<PendingItem>> {
        let pc = p.clone();
        self.read_audited(p, actions::PENDING_LIST, move |svc, r, t| {
            let accounts: HashMap<i64, Account> =
                r.accounts()?.into_iter().map(|a| (a.id, a)).collect();
            let mut out = Vec::new();
            for v in r.pending_for(pc.account.id)? {
                let Some(rec) = r.record(v.record_id)? else {
                    continue;
                };
                let content = svc.load_content(&v.content_sha256)?;
                out.push(PendingItem {
                    record_id: rec.id,
                    version_no: v.version_no,
                    patient_id: rec.patient_id,
                    kind: rec.kind,
                    title: content.title,
                    enterer: person(&accounts, v.enterer_id),
                    created_at: v.created_at,
                });
            }
            t.detail("results", out.len());
            Ok(out)
        })
        .await
    }

    /// The actions the caller may take next on a record they are viewing (from the domain rules).
    pub fn record_actions(p: &Principal, view: &RecordView) -> Vec<&'static str> {
        let Some(h) = view.versions.last() else {
            return Vec::new();
        };
        let (Some(state), Some(kind)) =
            (VersionState::parse(&h.state), VersionKind::parse(&h.kind))
        else {
            return Vec::new();
        };
        let head = Head {
            state,
            kind,
            author_id: h.author.id,
            enterer_id: h.enterer.id,
        };
        mamori_domain::version::available(
            &Actor {
                id: p.account.id,
                role: &p.role,
            },
            &view.kind,
            &head,
        )
    }

    /// Active people who may finalise `kind` (so may be named as author of a proxy entry).
    pub async fn authors_for(
        self: &Arc<Self>,
        p: &Principal,
        kind: &str,
    ) -> Result<Vec<AuthorChoice>> {
        p.require(Action::Write, Some(kind))?;
        let kind = kind.to_owned();
        Ok(self
            .store
            .read(move |r| {
                let roles = r.roles()?;
                Ok(r.accounts()?
                    .into_iter()
                    .filter(|a| a.active && !a.is_service)
                    .filter_map(|a| {
                        let role = roles.iter().find(|x| x.code == a.role)?;
                        role.allows(Action::Finalise, Some(&kind))
                            .then(|| AuthorChoice {
                                id: a.id,
                                display_name: a.display_name.clone(),
                                role_name: role.name_ja.clone(),
                            })
                    })
                    .collect())
            })
            .await?)
    }
}
