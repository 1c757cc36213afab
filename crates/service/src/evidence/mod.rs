//! Signatures and time-stamps on finalised records, and evidence records that keep them
//! provable for the retention period (JAHIS 09-001 §6.8; guideline 6.0 企画管理編 14).
//!
//! - When a version is finalised (or a proxy entry approved) by its responsible author while
//!   their signing window is open, they sign a statement of it (CAdES-B-B) with their key in
//!   its PKCS#11 token (`window`); otherwise it awaits their signature until they open one. The
//!   signature value is then time-stamped (B-T). A TSA outage leaves the signature "time-stamp
//!   pending": `serve` retries with back-off and the administrators are warned.
//! - `serve` seals new time-stamped signatures and ledger checkpoints into one RFC 4998
//!   evidence record per run (one time-stamp over a hash tree), and renews every record before
//!   its newest TSA certificate expires, or with a stronger hash when the configuration says so.
//! - Nothing in the background signs: a version left unsigned waits for its author.
//!
//! Owns: signatures, time-stamps and evidence records (here), and reading them back for
//! verification (`read`). Calls `access::ca` for the facility CA's signing certificates and
//! `records` for what a finalisation wrote.

mod attachment_pdf;
pub mod clins;
mod external;
mod pdf;
pub mod read;
mod seal;
mod signing;
mod time_stamps;
pub mod window;

pub use attachment_pdf::{UploadedSignature, uploaded_signatures};
pub use external::SigningTask;
pub use pdf::SignedPdf;
pub use window::{PinChange, SignReport, SigningStatus};

use crate::ErrorCode;
use std::sync::Arc;

use mamori_domain::Millis;
use mamori_domain::audit::actions;
use mamori_evidence::asn1::ArchiveTimeStampChain;
use mamori_evidence::cades::{self, Pkcs8Signer};
use mamori_evidence::cert::Cert;
use mamori_evidence::ers::{self, HashAlg, HashTree};
use mamori_evidence::tsp::{self, DevTsa, TokenInfo};
use mamori_store::{EvidenceStamp, EvidenceTree, SignatureRow, SigningCertRow};
use rcgen::DnType;
use serde::Serialize;

use crate::access::ca::{LeafPurpose, issue_leaf};
use crate::crypto::random_bytes;
use crate::error::{Result, ServiceError};
use crate::evidence::read::{Anchors, statement_bytes};
use crate::instance::KEY_DIR;
use crate::{Principal, Service, Target};

pub const SIGNERS_DIR: &str = "signers";
pub const DEV_TSA_KEY: &str = "dev-tsa.key";
pub const DEV_TSA_CERT: &str = "dev-tsa.pem";
const DAY: Millis = 86_400_000;
/// The longest a failing time-stamp waits before the next try.
const MAX_BACKOFF: Millis = 3_600_000;

fn ev_err(e: impl std::fmt::Display) -> ServiceError {
    ServiceError::new(
        ErrorCode::Evidence,
        format!("電子署名・タイムスタンプの処理に失敗しました: {e}"),
    )
}

fn from_evidence(e: mamori_evidence::EvidenceError) -> ServiceError {
    ServiceError::new(ErrorCode::Evidence, e.message)
}

/// Parsed keys and certificates kept between signatures (each file is read once).
#[derive(Default)]
pub struct Cache {
    /// Open signing windows by account (memory only: a restart closes every window).
    windows: std::sync::Mutex<std::collections::HashMap<i64, window::Window>>,
    /// Wrong signing PINs in a row by account, and when the last was.
    pin_failures: std::sync::Mutex<std::collections::HashMap<i64, (u32, Millis)>>,
    dev_tsa: std::sync::Mutex<Option<Arc<DevTsa>>>,
    anchors: std::sync::Mutex<Option<Arc<Anchors>>>,
    /// What each `.p7s` (by its SHA-256) says about its time-stamp (see `signature_brief`).
    briefs: std::sync::Mutex<std::collections::HashMap<[u8; 32], P7sFacts>>,
}

/// A finalised version without a signature, and the people its statement names.
struct Unsigned {
    rec: mamori_store::RecordRow,
    version: mamori_store::VersionRow,
    origin: String,
    people: Vec<mamori_store::Account>,
    roles: Vec<mamori_domain::permission::Role>,
}

impl Unsigned {
    fn author_login(&self) -> &str {
        self.people
            .iter()
            .find(|a| a.id == self.version.author_id)
            .map(|a| a.login.as_str())
            .unwrap_or_default()
    }
}

/// What happened to one version's signature just now.
#[derive(Debug, Clone, Serialize)]
pub struct SignOutcome {
    pub signed: bool,
    pub timestamped: bool,
    pub message: Option<String>,
}

/// A finalised version's signature as the record page shows it.
#[derive(Debug, Clone, Serialize)]
pub struct SignatureBrief {
    pub signer: String,
    pub serial: String,
    /// `CAdES-B-B` until the time-stamp arrives, then `CAdES-B-T`, or `CAdES-B-LT` when its
    /// CA's CRL came with it.
    pub level: &'static str,
    pub signed_at: Millis,
    pub timestamped_at: Option<Millis>,
    /// Why the time-stamp is still missing, while it is.
    pub pending_error: Option<String>,
    /// Whether an evidence record (RFC 4998) covers it yet.
    pub sealed: bool,
    /// Time-stamped by mamori's development TSA (no legal weight).
    pub development_tsa: bool,
    /// Time-stamped by a TSA the configuration names accredited (総務大臣認定).
    pub accredited_tsa: bool,
    /// The signer's qualification from their certificate (hcRole), e.g. `医師（HPKI）`.
    pub qualification: Option<String>,
    /// The PAdES level of the version's signed PDF, when it has one
    /// (`GET /records/{id}/versions/{n}/pdf`).
    pub pdf: Option<String>,
    /// Uploaded PDF attachments the author signed: (attachment SHA-256, PAdES level)
    /// (`GET /records/{id}/versions/{n}/pdf?attachment=…`).
    pub signed_attachments: Vec<(String, String)>,
}

/// What a stored `.p7s` says about its time-stamp: (has one, from the development TSA).
/// Parsing it is the costly part of showing a signature, and a `.p7s` never changes but by
/// gaining its time-stamp, so the answer is kept by the file's hash.
/// What the record page shows of a `.p7s`, read from it once.
#[derive(Clone, Debug)]
struct P7sFacts {
    stamped: bool,
    /// Carries its CA's CRL (B-LT).
    validation_data: bool,
    development: bool,
    accredited: bool,
    /// The signer certificate's qualifications (hcRole), in words.
    qualification: Option<String>,
}

fn p7s_facts(p7s: &[u8], accredited: &tsp::AccreditedTsas) -> P7sFacts {
    let token = cades::signature_timestamp(p7s).ok().flatten();
    let roles: Vec<String> = cades::signer_certificate(p7s)
        .map(|c| mamori_evidence::hcrole::roles(&c))
        .unwrap_or_default()
        .iter()
        .map(mamori_evidence::hcrole::HcRole::label_ja)
        .collect();
    P7sFacts {
        stamped: token.is_some(),
        validation_data: !cades::crls(p7s).is_empty(),
        development: token.as_deref().is_some_and(tsp::is_development),
        accredited: token.as_deref().is_some_and(|t| accredited.accepts(t)),
        qualification: (!roles.is_empty()).then(|| roles.join("、")),
    }
}

/// The newest time-stamped signatures checked for accreditation in the status.
const ACCREDITATION_SAMPLE: i64 = 200;

/// Facts of this many distinct `.p7s` files are kept (about 100 bytes each).
const BRIEF_CACHE: usize = 100_000;

impl Service {
    /// A kept file by its SHA-256, re-hashed on the way out: a file that no longer matches is
    /// an error naming `what`, never content handed on.
    pub(crate) fn checked_blob(&self, sha256: &str, what: &str) -> Result<Vec<u8>> {
        let bytes = self.store.blobs().get(sha256)?;
        if hex::encode(mamori_evidence::sha256(&bytes)) != sha256 {
            return Err(ServiceError::new(
                ErrorCode::Evidence,
                format!(
                    "{what}が記録と一致しません（改ざんの疑い。mamori verify で確認してください）"
                ),
            ));
        }
        Ok(bytes)
    }
}

impl Service {
    /// A signature as the record page shows it, its `.p7s` parsed once per content.
    pub(crate) fn signature_brief(&self, s: &SignatureRow) -> SignatureBrief {
        let key: [u8; 32] = mamori_evidence::sha256(&s.p7s);
        let known = self
            .evidence_cache
            .briefs
            .lock()
            .ok()
            .and_then(|m| m.get(&key).cloned());
        let facts = known.unwrap_or_else(|| {
            let accredited = self
                .evidence_anchors()
                .map(|a| a.accredited.clone())
                .unwrap_or_default();
            let f = p7s_facts(&s.p7s, &accredited);
            if let Ok(mut m) = self.evidence_cache.briefs.lock() {
                if m.len() >= BRIEF_CACHE {
                    m.clear();
                }
                m.insert(key, f.clone());
            }
            f
        });
        SignatureBrief::with_facts(s, facts)
    }
}

impl SignatureBrief {
    fn with_facts(s: &SignatureRow, f: P7sFacts) -> Self {
        let P7sFacts {
            stamped,
            validation_data,
            development,
            accredited,
            qualification,
        } = f;
        Self {
            signer: s.signer_subject.clone(),
            serial: s.signer_serial.clone(),
            level: match (stamped, validation_data) {
                (true, true) => "CAdES-B-LT",
                (true, false) => "CAdES-B-T",
                (false, _) => "CAdES-B-B",
            },
            signed_at: s.signed_at,
            timestamped_at: s.timestamped_at,
            pending_error: s
                .timestamped_at
                .is_none()
                .then(|| s.tsa_last_error.clone())
                .flatten(),
            sealed: s.evidence_family.is_some(),
            development_tsa: development,
            accredited_tsa: accredited,
            qualification,
            pdf: None,
            signed_attachments: Vec::new(),
        }
    }
}

/// The evidence pillar at a glance, for administrators and the security officer.
#[derive(Debug, Clone, Serialize)]
pub struct EvidenceStatus {
    pub signing: bool,
    /// The configured TSAs (URLs without credentials) or the development TSA.
    pub tsa: String,
    pub development_tsa: bool,
    pub pending: i64,
    pub oldest_pending: Option<Millis>,
    pub unsealed: usize,
    pub families: usize,
    pub last_sealed_at: Option<Millis>,
    /// The earliest time an evidence record must be renewed by.
    pub next_renewal: Option<Millis>,
    /// How many TSA certificates the configuration names accredited (0: accreditation unknown).
    pub accredited_tsas: usize,
    /// Of the newest time-stamped signatures, how many were checked for accreditation, and how
    /// many came from a TSA not named accredited.
    pub accreditation_checked: usize,
    pub not_accredited: usize,
    pub warnings: Vec<String>,
    /// The same warnings in English.
    pub warnings_en: Vec<String>,
}

/// One run of the evidence sweep.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SweepReport {
    pub timestamped: usize,
    pub timestamp_failures: usize,
    pub sealed: Option<SealReport>,
    pub renewed: Vec<RenewReport>,
    /// Signed PDFs that gained time-stamps or an LTA renewal.
    pub pdfs_renewed: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct SealReport {
    pub family: i64,
    pub signatures: usize,
    pub checkpoints: usize,
    pub root: String,
    pub gen_time: Millis,
}

#[derive(Debug, Clone, Serialize)]
pub struct RenewReport {
    pub family: i64,
    /// `timestamp` or `hashtree`.
    pub kind: &'static str,
    pub gen_time: Millis,
}

/// A data object group of an evidence record: a signature (statement and `.p7s`) or a
/// checkpoint note.
pub(crate) enum Member {
    Signature { statement: Vec<u8>, p7s: Vec<u8> },
    Checkpoint { note: Vec<u8> },
}

impl Member {
    pub fn objects(&self) -> Vec<&[u8]> {
        match self {
            Self::Signature { statement, p7s } => vec![statement, p7s],
            Self::Checkpoint { note } => vec![note],
        }
    }

    /// The member hashes for chain `previous.len() + 1` of its evidence record.
    pub fn hashes(&self, alg: HashAlg, previous: &[ArchiveTimeStampChain]) -> Result<Vec<Vec<u8>>> {
        self.objects()
            .into_iter()
            .map(|o| {
                if previous.is_empty() {
                    Ok(alg.digest(o))
                } else {
                    ers::hashtree_renewal_input(alg, o, previous).map_err(from_evidence)
                }
            })
            .collect()
    }
}

impl Service {
    /// The evidence status (administrators and the security officer).
    pub async fn evidence_status(self: &Arc<Self>, p: &Principal) -> Result<EvidenceStatus> {
        let pc = p.clone();
        self.read_audited(p, actions::EVIDENCE_STATUS, move |this, r, _| {
            pc.require(mamori_domain::permission::Action::AdminSettings, None)
                .or_else(|_| pc.require(mamori_domain::permission::Action::ReadAudit, None))?;
            this.evidence_status_in(r)
        })
        .await
    }

    pub(crate) fn evidence_status_in(
        &self,
        r: &mamori_store::Reader<'_>,
    ) -> Result<EvidenceStatus> {
        let cfg = &self.config.evidence;
        let now = self.now();
        let (pending, oldest_pending) = r.timestamps_pending()?;
        let unsealed = r.unsealed_signatures(None)?.len();
        let heads = r.evidence_heads()?;
        let margin = cfg.renew_days as Millis * DAY;
        let next_renewal = heads.iter().map(|h| h.stamp.tsa_not_after - margin).min();
        let urls = cfg.tsa_url_list();
        let development_tsa = urls.is_empty() && cfg.dev_tsa;
        let tsa = if !urls.is_empty() {
            urls.iter()
                .map(|u| crate::backup::target_label(u))
                .collect::<Vec<_>>()
                .join(", ")
        } else if cfg.dev_tsa {
            "mamori 開発用TSA（法的効力なし）".into()
        } else {
            String::new()
        };
        // (Japanese, English) pairs.
        let mut w: Vec<(String, String)> = Vec::new();
        if cfg.sign && tsa.is_empty() {
            w.push((
                "タイムスタンプ局 (TSA) が設定されていません。署名は時刻の証明がないまま（タイムスタンプ待ち）になります".into(),
                "No time-stamping authority (TSA) is configured: signatures stay without a time-stamp.".into(),
            ));
        }
        if development_tsa {
            w.push((
                "開発用のタイムスタンプ局を使っています。法的な効力はありません。本番では総務大臣認定のタイムスタンプ局を設定してください".into(),
                "The development TSA is in use: its time-stamps carry no legal weight. Configure an accredited TSA for production.".into(),
            ));
        }
        if pending > 0 {
            let hours = oldest_pending.map(|o| (now - o) / 3_600_000).unwrap_or(0);
            w.push((
                format!("タイムスタンプ待ちの署名が {pending} 件あります（最も古いもので約 {hours} 時間前）"),
                format!("{pending} signature(s) wait for a time-stamp (the oldest for about {hours} h)."),
            ));
        }
        if next_renewal.is_some_and(|n| n < now) {
            w.push((
                "証拠記録の更新期限を過ぎています。タイムスタンプ局への接続を確認してください"
                    .into(),
                "An evidence record is past its renewal date: check the connection to the TSA."
                    .into(),
            ));
        }
        let accredited = self.evidence_anchors()?.accredited.clone();
        let (mut checked, mut not_accredited) = (0, 0);
        if !accredited.is_empty() {
            for p7s in r.latest_timestamped_signatures(ACCREDITATION_SAMPLE)? {
                checked += 1;
                let token = cades::signature_timestamp(&p7s).ok().flatten();
                if !token.is_some_and(|t| accredited.accepts(&t)) {
                    not_accredited += 1;
                }
            }
        }
        if not_accredited > 0 {
            w.push((
                format!("最近のタイムスタンプ {checked} 件のうち {not_accredited} 件が、総務大臣認定として設定されたタイムスタンプ局（evidence.accredited_tsa_certs）のものではありません"),
                format!("{not_accredited} of the latest {checked} time-stamps are not from a TSA named accredited (evidence.accredited_tsa_certs)."),
            ));
        }
        let (warnings, warnings_en) = w.into_iter().unzip();
        Ok(EvidenceStatus {
            accredited_tsas: accredited.certs.len(),
            accreditation_checked: checked,
            not_accredited,
            signing: cfg.sign,
            tsa,
            development_tsa,
            pending,
            oldest_pending,
            unsealed,
            families: heads.len(),
            last_sealed_at: r.last_evidence_at()?,
            next_renewal,
            warnings,
            warnings_en,
        })
    }

    pub(crate) fn evidence_anchors(&self) -> Result<Arc<Anchors>> {
        let mut cached = self
            .evidence_cache
            .anchors
            .lock()
            .map_err(ServiceError::internal)?;
        if let Some(a) = cached.as_ref() {
            return Ok(a.clone());
        }
        let a = Arc::new(Anchors::load(&self.data_dir, &self.config.evidence)?);
        // Before the facility CA exists there is nothing worth keeping.
        if !a.signers.is_empty() {
            *cached = Some(a.clone());
        }
        Ok(a)
    }

    /// Whether time-stamps can be requested at all.
    pub fn tsa_configured(&self) -> bool {
        self.config.evidence.dev_tsa || !self.config.evidence.tsa_url_list().is_empty()
    }
}

impl Service {
    /// The verification of a record's signatures, time-stamps and evidence records, for
    /// whoever may read the record (recorded).
    pub async fn record_evidence(
        self: &Arc<Self>,
        p: &Principal,
        id: i64,
    ) -> Result<crate::evidence::read::EvidenceReport> {
        let pc = p.clone();
        let anchors = self.evidence_anchors()?;
        let for_read = anchors.clone();
        let mut rep = self
            .read_audited(p, actions::EVIDENCE_VERIFIED, move |svc, r, t| {
                Service::readable_for_read(r, &pc, id, t)?;
                let rep = crate::evidence::read::verify_evidence(
                    r,
                    svc.store.blobs(),
                    &for_read,
                    Some(id),
                    svc.now(),
                )?;
                t.detail("checked", rep.checked);
                t.detail("failed", rep.failed);
                Ok(rep)
            })
            .await?;
        rep.uploaded = self.uploaded_pdfs(id, &anchors).await?;
        Ok(rep)
    }

    /// Every version's signature of a record (the statement and its `.p7s`), for whoever may
    /// read the record: what a FHIR Provenance carries. Recorded as a read of its history.
    pub async fn record_signatures(
        self: &Arc<Self>,
        p: &Principal,
        id: i64,
    ) -> Result<Vec<mamori_store::SignatureRow>> {
        let pc = p.clone();
        self.read_audited(p, actions::RECORD_HISTORY, move |_, r, t| {
            t.detail("signatures", true);
            Service::readable_for_read(r, &pc, id, t)?;
            Ok(r.signatures_of(id)?)
        })
        .await
    }

    /// The signatures already in each uploaded PDF of a record's finalised versions (the
    /// page's caller has been recorded reading the record's evidence).
    async fn uploaded_pdfs(
        self: &Arc<Self>,
        id: i64,
        anchors: &Arc<read::Anchors>,
    ) -> Result<Vec<read::UploadedPdf>> {
        let versions = self.store.read(move |r| r.versions(id)).await?;
        let mut out = Vec::new();
        for v in versions.iter().filter(|v| v.state == "finalised") {
            let content = self.load_content(&v.content_sha256)?;
            for a in content
                .attachments
                .iter()
                .filter(|a| a.media_type == "application/pdf")
            {
                if out.iter().any(|u: &read::UploadedPdf| u.sha256 == a.sha256) {
                    continue;
                }
                let bytes = self.store.blobs().get(&a.sha256)?;
                let anchors = anchors.clone();
                let found = tokio::task::spawn_blocking(move || {
                    attachment_pdf::uploaded_signatures(&bytes, &anchors)
                })
                .await
                .map_err(ServiceError::internal)?;
                let (signatures, error) = match found {
                    Ok(s) if s.is_empty() => continue,
                    Ok(s) => (s, None),
                    Err(e) => (Vec::new(), Some(e)),
                };
                out.push(read::UploadedPdf {
                    version_no: v.version_no,
                    name: a.name.clone(),
                    sha256: a.sha256.clone(),
                    signatures,
                    error,
                });
            }
        }
        Ok(out)
    }
}
