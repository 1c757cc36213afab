//! Self-assessment against the MHLW checklist and guideline (the compliance pillar): an
//! assessment is a catalogue edition answered at a date. Answers mamori can observe are
//! proposed live, with their evidence and time; a person may override one only with a note.
//! Closing an assessment freezes what was observed, so last year's answers stay last year's.
//!
//! Owns: assessments and answers (here), what mamori observes (`observe`), the facility's
//! organisation, asset ledger, risk register and contact chart (`facility`), the registers of
//! disposal, take-out, training and outside storage (`registers`), and the printable
//! documents (`docs`). Reads the other pillars' state only to observe it.

pub mod docs;
pub mod facility;
pub mod observe;
pub mod registers;

use crate::ErrorCode;
use std::collections::HashMap;
use std::sync::Arc;

use mamori_compliance::answer::{
    self, Declared, NextStep, Score, check_declaration, fiscal_year, next_steps, resolve, score,
};
use mamori_compliance::catalogue::Header;
use mamori_compliance::{Answer, Catalogue, Item, Library, Observation, Resolved, Source};
use mamori_domain::audit::actions;
use mamori_domain::permission::Action;
use mamori_store::{AnswerRow, AssessmentRow, EvidenceRow, Reader};
use serde::{Deserialize, Serialize};

use crate::error::{Result, ServiceError};
use crate::{Principal, Service, Target};

/// Largest evidence file (an MDS/SDS or a scanned policy is a few MB).
pub const MAX_EVIDENCE_BYTES: usize = 20 * 1024 * 1024;

/// The security officer (監査担当) and the administrator run the self-assessment.
pub(crate) fn may_assess(p: &Principal) -> Result<()> {
    p.require(Action::ReadAudit, None)
        .or_else(|_| p.require(Action::AdminSettings, None))
}

/// For adapters that answer without a service call (the catalogue list).
pub fn require_assessor(p: &Principal) -> Result<()> {
    may_assess(p)
}

#[derive(Debug, Clone, Serialize)]
pub struct CatalogueSummary {
    #[serde(flatten)]
    pub header: Header,
    pub sheet_ja: &'static str,
    pub items: usize,
    pub observable: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct AssessmentSummary {
    #[serde(flatten)]
    pub row: AssessmentRow,
    pub edition: String,
    pub catalogue_title: String,
    pub sheet_ja: &'static str,
    pub percent: u32,
    pub closed: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ItemView {
    #[serde(flatten)]
    pub item: Item,
    pub section_title: String,
    #[serde(flatten)]
    pub resolved: Resolved,
    /// Last assessment's answer on the same topic, if there was one.
    pub previous: Option<Answer>,
    pub evidence: Vec<EvidenceRow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AssessmentView {
    pub assessment: AssessmentRow,
    pub catalogue: Header,
    pub fiscal_year: i32,
    pub closed: bool,
    pub items: Vec<ItemView>,
    pub score: Score,
    pub next_steps: Vec<NextStep>,
    /// The assessment compared against (same family, earlier), with its score.
    pub previous: Option<(AssessmentRow, u32)>,
    /// When the live observations were made (or frozen).
    pub observed_at: i64,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct AnswerInput {
    pub answer: String,
    #[serde(default)]
    pub owner: String,
    #[serde(default)]
    pub due: String,
    #[serde(default)]
    pub note: String,
}

pub enum EvidenceInput {
    File { name: String, bytes: Vec<u8> },
    Link { name: String, url: String },
}

/// What a stored evidence file may be: PDFs and images as records are, and the Excel and
/// Word files that MDS/SDS and policies come as. Always served as a download.
pub fn evidence_media_type(name: &str, bytes: &[u8]) -> Result<&'static str> {
    if let Some(m) = mamori_domain::content::sniff_media_type(bytes) {
        return Ok(m);
    }
    let lower = name.to_ascii_lowercase();
    if bytes.starts_with(b"PK\x03\x04") {
        if lower.ends_with(".xlsx") {
            return Ok("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet");
        }
        if lower.ends_with(".docx") {
            return Ok("application/vnd.openxmlformats-officedocument.wordprocessingml.document");
        }
    }
    Err(ServiceError::invalid(
        "file",
        "添付できるのは PDF・画像（JPEG/PNG/TIFF）・Excel（.xlsx）・Word（.docx）のファイルです",
    ))
}

/// A file an officer attached (evidence, an MDS/SDS, a register entry's file): checked, in
/// the blob store, and held there until the transaction that refers to it has decided.
pub(crate) struct HeldFile {
    pub name: String,
    pub media: &'static str,
    pub size: u64,
    pub held: mamori_store::Held,
}

impl HeldFile {
    pub(crate) fn sha256(&self) -> &str {
        &self.held.sha256
    }

    /// The blob row, in the transaction that refers to the file.
    pub(crate) fn insert(&self, tx: &mut mamori_store::WriteTx<'_>, now: i64) -> Result<()> {
        Ok(tx.insert_blob(self.sha256(), self.size, self.media, now)?)
    }
}

impl Service {
    pub(crate) fn hold_file(&self, name: &str, bytes: &[u8]) -> Result<HeldFile> {
        let (name, media) = check_evidence_file(name, bytes)?;
        let (_, held) = self.store().blobs().put_held(bytes)?;
        Ok(HeldFile {
            name,
            media,
            size: bytes.len() as u64,
            held,
        })
    }
}

/// A file a compliance row keeps (an MDS/SDS, a register entry's certificate): its name,
/// media type and bytes, or `missing` not found.
pub(crate) fn kept_file(
    svc: &Service,
    r: &Reader<'_>,
    file: (Option<String>, Option<String>),
    missing: &str,
) -> Result<(String, String, Vec<u8>)> {
    let (Some(sha), Some(name)) = file else {
        return Err(ServiceError::not_found(missing));
    };
    let media = r.blob_meta(&sha)?.map(|(_, m)| m).unwrap_or_default();
    Ok((name, media, svc.store().blobs().get(&sha)?))
}

/// An assessment that may still change, and its catalogue; `closed` says why it may not.
fn open_assessment<'l>(
    r: &Reader<'_>,
    lib: &'l Library,
    id: i64,
    closed: &'static str,
) -> Result<(AssessmentRow, &'l Catalogue)> {
    let row = r
        .assessment(id)?
        .ok_or_else(|| ServiceError::not_found("自己点検"))?;
    if row.closed_at.is_some() {
        return Err(ServiceError::new(ErrorCode::Conflict, closed));
    }
    let c = lib
        .get(&row.catalogue_id)
        .ok_or_else(|| ServiceError::not_found("点検表（カタログ）"))?;
    Ok((row, c))
}

/// A file offered as evidence (or an MDS/SDS): its clean name and media type, or why not.
pub(crate) fn check_evidence_file(name: &str, bytes: &[u8]) -> Result<(String, &'static str)> {
    if bytes.is_empty() {
        return Err(ServiceError::invalid("file", "ファイルを選んでください"));
    }
    if bytes.len() > MAX_EVIDENCE_BYTES {
        return Err(ServiceError::invalid(
            "file",
            "ファイルが大きすぎます（20MB まで）",
        ));
    }
    let name = mamori_domain::content::clean_file_name(name)
        .map_err(|e| ServiceError::invalid("file", e.to_string()))?;
    let media = evidence_media_type(&name, bytes)?;
    Ok((name, media))
}

fn declared_of(a: &AnswerRow, names: &HashMap<i64, String>) -> Option<Declared> {
    (a.source == "declared").then(|| Declared {
        answer: Answer::parse(&a.answer).unwrap_or(Answer::Unanswered),
        owner: a.owner.clone(),
        due: a.due.clone(),
        note: a.note.clone(),
        by: a
            .answered_by
            .and_then(|id| names.get(&id).cloned())
            .unwrap_or_default(),
        at: a.answered_at,
    })
}

impl Service {
    /// The shipped catalogues and any in `<data>/catalogues/*.toml`; a broken local file is
    /// reported, not fatal, so one bad file cannot stop inspections being answered.
    pub fn compliance_library(&self) -> (Library, Vec<String>) {
        let mut lib = Library::embedded();
        let mut problems = Vec::new();
        let dir = self.data_dir().join("catalogues");
        if let Ok(entries) = std::fs::read_dir(&dir) {
            let mut files: Vec<_> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect();
            files.sort();
            for f in files {
                let name = f
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                match std::fs::read_to_string(&f) {
                    Ok(text) => {
                        if let Err(e) = lib.add(&name, &text) {
                            problems.push(e.to_string());
                        }
                    }
                    Err(e) => problems.push(format!("{name}: 読めません: {e}")),
                }
            }
        }
        (lib, problems)
    }

    pub fn catalogue_summaries(&self) -> (Vec<CatalogueSummary>, Vec<String>) {
        let (lib, problems) = self.compliance_library();
        let list = lib
            .list()
            .into_iter()
            .map(|c| CatalogueSummary {
                header: c.catalogue.clone(),
                sheet_ja: c.sheet_ja(),
                items: c.items.len(),
                observable: c.items.iter().filter(|i| i.observe.is_some()).count(),
            })
            .collect();
        (list, problems)
    }

    fn catalogue(&self, id: &str) -> Result<Catalogue> {
        self.compliance_library()
            .0
            .get(id)
            .cloned()
            .ok_or_else(|| ServiceError::not_found("点検表（カタログ）"))
    }

    pub async fn assessments(self: &Arc<Self>, p: &Principal) -> Result<Vec<AssessmentSummary>> {
        let pc = p.clone();
        let (lib, _) = self.compliance_library();
        self.read_audited(p, actions::COMPLIANCE_VIEWED, move |this, r, t| {
            t.detail("query", "assessments");
            may_assess(&pc)?;
            let rows = r.assessments()?;
            let observed = this.observe_in(r)?;
            let mut out = Vec::new();
            for row in rows {
                let Some(c) = lib.get(&row.catalogue_id) else {
                    continue;
                };
                let answers = this.resolved_in(r, &row, c, &observed)?;
                out.push(AssessmentSummary {
                    edition: c.catalogue.edition.clone(),
                    catalogue_title: c.catalogue.title.clone(),
                    sheet_ja: c.sheet_ja(),
                    percent: score(c, &answers).percent,
                    closed: row.closed_at.is_some(),
                    row,
                });
            }
            Ok(out)
        })
        .await
    }

    /// Everything mamori observes now, by observation name (what the catalogues' `observe`
    /// fields refer to).
    pub async fn observations(
        self: &Arc<Self>,
        p: &Principal,
    ) -> Result<HashMap<String, Observation>> {
        let pc = p.clone();
        self.read_audited(p, actions::COMPLIANCE_VIEWED, move |this, r, t| {
            t.detail("query", "observations");
            may_assess(&pc)?;
            Ok(this
                .observe_in(r)?
                .into_iter()
                .map(|(k, v)| (k.as_str().to_owned(), v))
                .collect())
        })
        .await
    }

    /// Starts an assessment of `catalogue_id` dated `assessed_on` (today if empty).
    pub async fn new_assessment(
        self: &Arc<Self>,
        p: &Principal,
        catalogue_id: &str,
        assessed_on: &str,
    ) -> Result<i64> {
        self.start_assessment(Some(p), catalogue_id, assessed_on)
            .await
    }

    /// The same, from the command line: the operator of the instance (recorded as such).
    pub async fn new_assessment_cli(
        self: &Arc<Self>,
        catalogue_id: &str,
        assessed_on: &str,
    ) -> Result<i64> {
        self.start_assessment(None, catalogue_id, assessed_on).await
    }

    async fn start_assessment(
        self: &Arc<Self>,
        p: Option<&Principal>,
        catalogue_id: &str,
        assessed_on: &str,
    ) -> Result<i64> {
        let c = self.catalogue(catalogue_id)?;
        let date = if assessed_on.trim().is_empty() {
            crate::ledger::audit::jst_date(self.now())
        } else {
            assessed_on.trim().to_owned()
        };
        let fy = fiscal_year(&date).ok_or_else(|| {
            ServiceError::invalid("assessed_on", "点検日は YYYY-MM-DD の形で入力してください")
        })?;
        let title = format!(
            "{} {}（{}点検）",
            c.catalogue.title,
            c.catalogue.edition,
            answer::reiwa(fy)
        );
        let pc = p.cloned();
        let now = self.now();
        let mut t = Target::default();
        t.detail("catalogue", catalogue_id);
        t.detail("assessed_on", date.clone());
        self.write_audited(p, actions::COMPLIANCE_CREATED, t, move |_, tx, t| {
            if let Some(p) = &pc {
                may_assess(p)?;
            }
            let id = tx.insert_assessment(
                c.id(),
                &title,
                &date,
                pc.as_ref().map(|p| p.account.id),
                now,
            )?;
            t.detail("assessment", id);
            Ok(id)
        })
        .await
    }

    /// Every item's answer as it stands: live observations for an open assessment, the
    /// frozen ones for a closed one, and people's answers over both.
    pub(crate) fn resolved_in(
        &self,
        r: &Reader<'_>,
        row: &AssessmentRow,
        c: &Catalogue,
        observed: &observe::Observed,
    ) -> Result<HashMap<String, Resolved>> {
        let names: HashMap<i64, String> = r
            .accounts()?
            .into_iter()
            .map(|a| (a.id, a.display_name))
            .collect();
        let stored: HashMap<String, AnswerRow> = r
            .answers(row.id)?
            .into_iter()
            .map(|a| (a.item_id.clone(), a))
            .collect();
        let closed = row.closed_at.is_some();
        Ok(c.items
            .iter()
            .map(|i| {
                let a = stored.get(&i.id);
                let observation = if closed {
                    a.and_then(|a| a.observation.as_deref())
                        .and_then(|j| serde_json::from_str(j).ok())
                } else {
                    observation_for(i, observed)
                };
                let declared = a.and_then(|a| declared_of(a, &names));
                (i.id.clone(), resolve(&i.id, observation, declared))
            })
            .collect())
    }

    fn view_in(&self, r: &Reader<'_>, lib: &Library, id: i64) -> Result<AssessmentView> {
        let row = r
            .assessment(id)?
            .ok_or_else(|| ServiceError::not_found("自己点検"))?;
        let c = lib
            .get(&row.catalogue_id)
            .ok_or_else(|| ServiceError::not_found("点検表（カタログ）"))?;
        let observed = self.observe_in(r)?;
        let answers = self.resolved_in(r, &row, c, &observed)?;
        let fy = fiscal_year(&row.assessed_on).unwrap_or(c.catalogue.fiscal_year);
        // The previous assessment of the same sheet family, for PDCA.
        let prev_row = r
            .assessments()?
            .into_iter()
            .filter(|a| {
                a.id != row.id
                    && (a.assessed_on.as_str(), a.id) < (row.assessed_on.as_str(), row.id)
            })
            .find(|a| {
                lib.get(&a.catalogue_id)
                    .is_some_and(|pc| pc.catalogue.family == c.catalogue.family)
            });
        let mut previous = None;
        let mut prev_answers: Option<(&Catalogue, HashMap<String, Answer>)> = None;
        if let Some(prow) = prev_row {
            let pcat = lib.get(&prow.catalogue_id).expect("filtered above");
            let pres = self.resolved_in(r, &prow, pcat, &observed)?;
            previous = Some((prow, score(pcat, &pres).percent));
            prev_answers = Some((pcat, pres.into_iter().map(|(k, v)| (k, v.answer)).collect()));
        }
        let mut evidence: HashMap<String, Vec<EvidenceRow>> = HashMap::new();
        for e in r.compliance_evidence(row.id)? {
            evidence.entry(e.item_id.clone()).or_default().push(e);
        }
        let items = c
            .items
            .iter()
            .map(|i| ItemView {
                section_title: c
                    .section(&i.section)
                    .map(|s| s.title.clone())
                    .unwrap_or_default(),
                resolved: answers[&i.id].clone(),
                previous: prev_answers
                    .as_ref()
                    .and_then(|(pc, pa)| answer::previous_answer(i, pc, pa)),
                evidence: evidence.remove(&i.id).unwrap_or_default(),
                item: i.clone(),
            })
            .collect();
        Ok(AssessmentView {
            score: score(c, &answers),
            next_steps: next_steps(c, &answers, fy),
            catalogue: c.catalogue.clone(),
            fiscal_year: fy,
            closed: row.closed_at.is_some(),
            observed_at: row.closed_at.unwrap_or_else(|| self.now()),
            assessment: row,
            items,
            previous,
        })
    }

    pub async fn assessment(self: &Arc<Self>, p: &Principal, id: i64) -> Result<AssessmentView> {
        let pc = p.clone();
        let (lib, _) = self.compliance_library();
        self.read_audited(p, actions::COMPLIANCE_VIEWED, move |this, r, t| {
            t.detail("assessment", id);
            may_assess(&pc)?;
            this.view_in(r, &lib, id)
        })
        .await
    }

    /// A person's answer to one item (はい・いいえ・該当なし, or 未回答 to withdraw it).
    pub async fn answer_item(
        self: &Arc<Self>,
        p: &Principal,
        id: i64,
        item_id: &str,
        input: AnswerInput,
    ) -> Result<()> {
        let answer = Answer::parse(input.answer.trim())
            .ok_or_else(|| ServiceError::invalid("answer", "回答を選んでください"))?;
        let due = Some(input.due.trim().to_owned()).filter(|d| !d.is_empty());
        let (lib, _) = self.compliance_library();
        let pc = p.clone();
        let now = self.now();
        let item_id = item_id.to_owned();
        let mut t = Target::default();
        t.detail("assessment", id);
        t.detail("item", item_id.clone());
        t.detail("answer", answer.code());
        let observed = self.observe_before_writing(p).await?;
        self.write_audited(Some(p), actions::COMPLIANCE_ANSWERED, t, move |_, tx, t| {
            may_assess(&pc)?;
            let r = tx.read();
            let (_, c) = open_assessment(
                &r,
                &lib,
                id,
                "締めた自己点検の回答は変えられません。新しい点検を始めてください",
            )?;
            let item = c
                .item(&item_id)
                .ok_or_else(|| ServiceError::not_found("点検項目"))?;
            let observed = item.observable().and_then(|k| observed.get(&k).cloned());
            check_declaration(answer, due.as_deref(), &input.note, observed.as_ref())
                .map_err(|e| ServiceError::invalid(e.field, e.message))?;
            if input.owner.chars().count() > 200 {
                return Err(ServiceError::invalid(
                    "owner",
                    "担当者は200文字以内にしてください",
                ));
            }
            if let Some(o) = &observed
                && o.answer != answer
                && answer != Answer::Unanswered
            {
                t.detail("overrides_observation", o.answer.code());
                t.detail("note", input.note.clone());
            }
            tx.upsert_answer(
                id,
                &AnswerRow {
                    item_id: item_id.clone(),
                    answer: answer.code().to_owned(),
                    source: "declared".into(),
                    owner: input.owner.trim().to_owned(),
                    due: due.clone(),
                    note: input.note.trim().to_owned(),
                    observation: None,
                    answered_by: Some(pc.account.id),
                    answered_at: now,
                },
            )?;
            Ok(())
        })
        .await
    }

    /// Attaches a file or a link as evidence for one item.
    pub async fn add_item_evidence(
        self: &Arc<Self>,
        p: &Principal,
        id: i64,
        item_id: &str,
        input: EvidenceInput,
    ) -> Result<i64> {
        self.gate(p, actions::COMPLIANCE_EVIDENCE, may_assess(p))
            .await?;
        let (kind, name, url, file) = match input {
            EvidenceInput::File { name, bytes } => {
                let f = self.hold_file(&name, &bytes)?;
                ("file", f.name.clone(), None, Some(f))
            }
            EvidenceInput::Link { name, url } => {
                let url = url.trim().to_owned();
                if !(url.starts_with("https://") || url.starts_with("http://"))
                    || url.len() > 2000
                    || url.chars().any(char::is_whitespace)
                {
                    return Err(ServiceError::invalid(
                        "url",
                        "リンクは http:// か https:// で始まる URL にしてください",
                    ));
                }
                let name = if name.trim().is_empty() {
                    url.clone()
                } else {
                    name.trim().to_owned()
                };
                ("link", name, Some(url), None)
            }
        };
        let (lib, _) = self.compliance_library();
        let pc = p.clone();
        let now = self.now();
        let item_id = item_id.to_owned();
        let mut t = Target::default();
        t.detail("assessment", id);
        t.detail("item", item_id.clone());
        t.detail("kind", kind);
        t.detail("name", name.clone());
        if let Some(f) = &file {
            t.detail("sha256", f.sha256());
        }
        let files: Vec<String> = file.iter().map(|f| f.sha256().to_owned()).collect();
        let written = self
            .write_audited(Some(p), actions::COMPLIANCE_EVIDENCE, t, move |_, tx, _| {
                may_assess(&pc)?;
                let r = tx.read();
                let (_, c) =
                    open_assessment(&r, &lib, id, "締めた自己点検には証跡を追加できません")?;
                c.item(&item_id)
                    .ok_or_else(|| ServiceError::not_found("点検項目"))?;
                if let Some(f) = &file {
                    f.insert(tx, now)?;
                }
                Ok(tx.insert_compliance_evidence(
                    id,
                    &item_id,
                    kind,
                    &name,
                    url.as_deref(),
                    file.as_ref().map(|f| (f.sha256(), f.media, f.size)),
                    pc.account.id,
                    now,
                )?)
            })
            .await;
        self.discard_if_refused(&written, files).await;
        written
    }

    /// An evidence file's name, media type and bytes.
    pub async fn evidence_file(
        self: &Arc<Self>,
        p: &Principal,
        id: i64,
        evidence_id: i64,
    ) -> Result<(String, String, Vec<u8>)> {
        let pc = p.clone();
        self.read_audited(p, actions::COMPLIANCE_VIEWED, move |this, r, t| {
            t.detail("assessment", id);
            t.detail("evidence", evidence_id);
            may_assess(&pc)?;
            let e = r
                .compliance_evidence(id)?
                .into_iter()
                .find(|e| e.id == evidence_id && e.kind == "file")
                .ok_or_else(|| ServiceError::not_found("証跡ファイル"))?;
            let sha = e.sha256.clone().unwrap_or_default();
            Ok((
                e.name,
                e.media_type.unwrap_or_default(),
                this.store().blobs().get(&sha)?,
            ))
        })
        .await
    }

    /// What mamori observes now, read before a write that needs it: every observation reads a
    /// good part of the instance, which must not hold up the group commit (nor run again when
    /// a write is retried). Nothing is read for someone who may not assess; their write is
    /// refused, and recorded, as before.
    async fn observe_before_writing(self: &Arc<Self>, p: &Principal) -> Result<observe::Observed> {
        if may_assess(p).is_err() {
            return Ok(Default::default());
        }
        let this = Arc::clone(self);
        self.store.read(move |r| Ok(this.observe_in(r))).await?
    }

    /// Closes an assessment: what mamori observes now is frozen into it, and no answer
    /// changes afterwards (next year's assessment compares against it).
    pub async fn close_assessment(self: &Arc<Self>, p: &Principal, id: i64) -> Result<()> {
        let (lib, _) = self.compliance_library();
        let pc = p.clone();
        let now = self.now();
        let mut t = Target::default();
        t.detail("assessment", id);
        let observed = self.observe_before_writing(p).await?;
        self.write_audited(
            Some(p),
            actions::COMPLIANCE_CLOSED,
            t,
            move |this, tx, t| {
                may_assess(&pc)?;
                let r = tx.read();
                let (row, c) = open_assessment(&r, &lib, id, "この自己点検はすでに締めてあります")?;
                let resolved = this.resolved_in(&r, &row, c, &observed)?;
                let stored: HashMap<String, AnswerRow> = r
                    .answers(id)?
                    .into_iter()
                    .map(|a| (a.item_id.clone(), a))
                    .collect();
                let score = score(c, &resolved);
                t.detail("percent", score.percent);
                for i in &c.items {
                    let res = &resolved[&i.id];
                    let Some(o) = &res.observation else { continue };
                    let json = serde_json::to_string(o).map_err(ServiceError::internal)?;
                    let row = match stored.get(&i.id) {
                        Some(a) => AnswerRow {
                            observation: Some(json),
                            ..a.clone()
                        },
                        None => AnswerRow {
                            item_id: i.id.clone(),
                            answer: o.answer.code().to_owned(),
                            source: "observed".into(),
                            owner: String::new(),
                            due: None,
                            note: String::new(),
                            observation: Some(json),
                            answered_by: None,
                            answered_at: o.observed_at,
                        },
                    };
                    tx.upsert_answer(id, &row)?;
                }
                tx.close_assessment(id, pc.account.id, now)?;
                Ok(())
            },
        )
        .await
    }

    /// The assessment as JSON for machines: every item with its answer and whether it was
    /// observed or declared (`mamori compliance report --format json`).
    pub async fn assessment_json(
        self: &Arc<Self>,
        p: Option<&Principal>,
        id: i64,
    ) -> Result<serde_json::Value> {
        let v = self.report_view(p, id).await?;
        Ok(serde_json::json!({
            "format": "mamori-assessment/1",
            "facility": self.facility(),
            "assessment": v.assessment,
            "catalogue": v.catalogue,
            "fiscal_year": v.fiscal_year,
            "closed": v.closed,
            "observed_at": crate::ledger::audit::rfc3339(v.observed_at),
            "score": v.score,
            "items": v.items.iter().map(|i| serde_json::json!({
                "id": i.item.id,
                "number": i.item.number,
                "section": i.section_title,
                "text": i.item.text,
                "refs": i.item.refs,
                "answer": i.resolved.answer.code(),
                "answer_ja": i.resolved.answer.ja(),
                "source": match i.resolved.source { Source::Observed => "observed", Source::Declared => "declared", Source::PartlyObserved => "partly_observed", Source::None => "none" },
                "observation": i.resolved.observation.as_ref().map(|o| serde_json::json!({
                    "answer": o.answer.code(),
                    "evidence": o.evidence_ja,
                    "observed_at": crate::ledger::audit::rfc3339(o.observed_at),
                })),
                "declared": i.resolved.declared,
                "overrides_observation": i.resolved.overrides_observation,
                "previous": i.previous.map(Answer::code),
                "evidence": i.evidence,
            })).collect::<Vec<_>>(),
            "next_steps": v.next_steps,
        }))
    }

    /// The view a report is made from, recorded as a report (not as a page view). Without a
    /// principal it is the command line's operator, recorded as such.
    pub(crate) async fn report_view(
        self: &Arc<Self>,
        p: Option<&Principal>,
        id: i64,
    ) -> Result<AssessmentView> {
        let (lib, _) = self.compliance_library();
        match p {
            Some(p) => {
                let pc = p.clone();
                self.read_audited(p, actions::COMPLIANCE_REPORT, move |this, r, t| {
                    t.detail("assessment", id);
                    may_assess(&pc)?;
                    this.view_in(r, &lib, id)
                })
                .await
            }
            None => {
                let mut t = Target::default();
                t.detail("assessment", id);
                t.detail("via", "cli");
                // Built from a read snapshot, outside the group commit; the entry (or the
                // refusal) is written after.
                let this = Arc::clone(self);
                let view = self
                    .store
                    .read(move |r| Ok(this.view_in(r, &lib, id)))
                    .await?;
                let refusal = view.as_ref().err().cloned();
                self.write_audited(None, actions::COMPLIANCE_REPORT, t, move |_, _, _| {
                    refusal.clone().map_or(Ok(()), Err)
                })
                .await?;
                view
            }
        }
    }
}

/// What mamori observes for `item`: the observation its `observe` names, marked partial when
/// the item asks more than that observation can see.
pub(crate) fn observation_for(
    item: &mamori_compliance::catalogue::Item,
    observed: &observe::Observed,
) -> Option<Observation> {
    let o = item.observable().and_then(|k| observed.get(&k).cloned())?;
    Some(match &item.unseen {
        Some(u) => o.partly(u.clone()),
        None => o,
    })
}
