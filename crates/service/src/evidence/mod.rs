//! Signatures and time-stamps on finalised records, and evidence records that keep them
//! provable for the retention period (JAHIS 09-001 §6.8; guideline 6.0 企画管理編 14).
//!
//! - When a version is finalised (or a proxy entry approved), its responsible author signs a
//!   statement of it (CAdES-B-B) with a signing key the facility CA issued for them; the
//!   signature value is then time-stamped (B-T). A TSA outage leaves the signature "time-stamp
//!   pending": `serve` retries with back-off and the administrators are warned.
//! - `serve` seals new time-stamped signatures and ledger checkpoints into one RFC 4998
//!   evidence record per run (one time-stamp over a hash tree), and renews every record before
//!   its newest TSA certificate expires, or with a stronger hash when the configuration says so.
//! - A finalisation that could not be signed (crash, missing key) is signed by the next sweep.
//!
//! Owns: signatures, time-stamps and evidence records (here), and reading them back for
//! verification (`read`). Calls `access::ca` for the facility CA's signing certificates and
//! `records` for what a finalisation wrote.

pub mod read;

use crate::ErrorCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;

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
/// How often the sweep looks for finalised versions a crash left unsigned.
const UNSIGNED_SCAN_EVERY: Millis = 3_600_000;
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
    signers: std::sync::Mutex<std::collections::HashMap<String, Arc<(Cert, Pkcs8Signer)>>>,
    dev_tsa: std::sync::Mutex<Option<Arc<DevTsa>>>,
    anchors: std::sync::Mutex<Option<Arc<Anchors>>>,
    /// When the sweep last looked for finalised versions left unsigned.
    unsigned_scan: std::sync::atomic::AtomicI64,
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
    /// `CAdES-B-B` until the time-stamp arrives, then `CAdES-B-T`.
    pub level: &'static str,
    pub signed_at: Millis,
    pub timestamped_at: Option<Millis>,
    /// Why the time-stamp is still missing, while it is.
    pub pending_error: Option<String>,
    /// Whether an evidence record (RFC 4998) covers it yet.
    pub sealed: bool,
    /// Time-stamped by mamori's development TSA (no legal weight).
    pub development_tsa: bool,
}

impl SignatureBrief {
    pub fn of(s: &SignatureRow) -> Self {
        let token = cades::signature_timestamp(&s.p7s).ok().flatten();
        Self {
            signer: s.signer_subject.clone(),
            serial: s.signer_serial.clone(),
            level: if token.is_some() {
                "CAdES-B-T"
            } else {
                "CAdES-B-B"
            },
            signed_at: s.signed_at,
            timestamped_at: s.timestamped_at,
            pending_error: s
                .timestamped_at
                .is_none()
                .then(|| s.tsa_last_error.clone())
                .flatten(),
            sealed: s.evidence_family.is_some(),
            development_tsa: token.is_some_and(|t| tsp::is_development(&t)),
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
    pub warnings: Vec<String>,
    /// The same warnings in English.
    pub warnings_en: Vec<String>,
}

/// One run of the evidence sweep.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SweepReport {
    pub signed: usize,
    pub timestamped: usize,
    pub timestamp_failures: usize,
    pub sealed: Option<SealReport>,
    pub renewed: Vec<RenewReport>,
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
        let unsealed = r.unsealed_signatures()?.len();
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
        let (warnings, warnings_en) = w.into_iter().unzip();
        Ok(EvidenceStatus {
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

    fn evidence_anchors(&self) -> Result<Arc<Anchors>> {
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

    /// The development TSA (kept parsed while its certificate needs no renewal).
    fn dev_tsa(&self) -> Result<Arc<DevTsa>> {
        let margin = self.config.evidence.renew_days as Millis * DAY;
        let now = self.now();
        let mut cached = self
            .evidence_cache
            .dev_tsa
            .lock()
            .map_err(ServiceError::internal)?;
        if let Some(t) = cached.as_ref() {
            let c = t.certificate();
            if c.valid_at(now) && c.not_after() - now > margin {
                return Ok(t.clone());
            }
        }
        let t = Arc::new(self.load_dev_tsa()?);
        *cached = Some(t.clone());
        Ok(t)
    }

    /// Loads the development TSA, issuing a new certificate before the current one would need
    /// renewal itself (a real TSA rotates its keys the same way).
    fn load_dev_tsa(&self) -> Result<DevTsa> {
        let dir = self.data_dir.join(KEY_DIR);
        let (key_path, cert_path) = (dir.join(DEV_TSA_KEY), dir.join(DEV_TSA_CERT));
        let now = self.now();
        let current = std::fs::read_to_string(&cert_path)
            .ok()
            .and_then(|p| Cert::from_pem_chain(&p).ok())
            .and_then(|mut c| c.pop());
        let margin = self.config.evidence.renew_days as Millis * DAY;
        let fresh = current
            .as_ref()
            .is_some_and(|c| c.valid_at(now) && c.not_after() - now > margin);
        if !fresh {
            let days = self.config.evidence.dev_tsa_days.max(2) as Millis;
            let leaf = issue_leaf(
                &self.data_dir,
                &[
                    (
                        DnType::CommonName,
                        "mamori 開発用TSA（法的効力なし）".into(),
                    ),
                    (DnType::OrganizationName, self.facility().to_owned()),
                ],
                LeafPurpose::TimeStamping,
                now - 60_000,
                now + days * DAY,
            )?;
            std::fs::write(&key_path, &leaf.key_pem).map_err(ev_err)?;
            mamori_store::restrict_file(&key_path).map_err(ev_err)?;
            let cert = Cert::from_der(&leaf.cert_der).map_err(from_evidence)?;
            std::fs::write(&cert_path, cert.to_pem()).map_err(ev_err)?;
        }
        let key = rcgen::KeyPair::from_pem(&std::fs::read_to_string(&key_path).map_err(ev_err)?)
            .map_err(ev_err)?;
        let cert = Cert::from_pem_chain(&std::fs::read_to_string(&cert_path).map_err(ev_err)?)
            .map_err(from_evidence)?
            .pop()
            .ok_or_else(|| ev_err("dev-tsa.pem"))?;
        let ca = crate::access::ca::ca_pem(&self.data_dir)
            .map(|p| Cert::from_pem_chain(&p).unwrap_or_default())
            .unwrap_or_default();
        DevTsa::new(&key.serialize_der(), cert, ca).map_err(from_evidence)
    }

    /// Asks the configured TSAs (in order) or the development TSA for a token over `digest`,
    /// and checks it against the TSA roots before accepting it.
    pub async fn time_stamp(self: &Arc<Self>, digest: Vec<u8>) -> Result<(Vec<u8>, TokenInfo)> {
        let nonce = random_bytes::<8>();
        let req = tsp::request(&digest, &nonce).map_err(from_evidence)?;
        let urls = self.config.evidence.tsa_url_list();
        if urls.is_empty() && self.config.evidence.dev_tsa {
            // The development TSA's certificate comes from the facility CA.
            self.ensure_ca().await?;
        }
        let this = Arc::clone(self);
        let resp: Vec<u8> = tokio::task::spawn_blocking(move || -> Result<Vec<u8>> {
            if urls.is_empty() {
                if !this.config.evidence.dev_tsa {
                    return Err(ServiceError::new(
                        ErrorCode::NoTsa,
                        "タイムスタンプ局 (TSA) が設定されていません（evidence.tsa_urls）",
                    ));
                }
                let tsa = this.dev_tsa()?;
                return Ok(tsa.respond(&req, this.now(), &random_bytes::<16>()));
            }
            let mut last = String::new();
            for url in &urls {
                match this.outside.time_stamps.request(url, &req) {
                    Ok(r) => return Ok(r),
                    Err(e) => last = format!("{url}: {e}"),
                }
            }
            Err(ServiceError::new(
                ErrorCode::TsaUnavailable,
                format!("タイムスタンプ局に接続できません（{last}）"),
            ))
        })
        .await
        .map_err(ServiceError::internal)??;
        let token = tsp::token_from_response(&resp, &digest, &nonce).map_err(from_evidence)?;
        let anchors = self.evidence_anchors()?;
        let info = tsp::verify_token(&token, &digest, &anchors.tsa).map_err(from_evidence)?;
        Ok((token, info))
    }

    /// The author's signing certificate and key (imported, or issued by the facility CA),
    /// issuing a new one from the facility CA when the author has none that is valid now.
    async fn signing_key_for(
        self: &Arc<Self>,
        account_id: i64,
    ) -> Result<(SigningCertRow, Arc<(Cert, Pkcs8Signer)>)> {
        let now = self.now();
        let current = self.store.read(move |r| r.signing_cert(account_id)).await?;
        let usable = current.filter(|c| c.not_before <= now && now < c.not_after);
        let row = match usable {
            Some(c) => c,
            None => self.issue_signing_cert(account_id).await?,
        };
        if let Some(k) = self
            .evidence_cache
            .signers
            .lock()
            .map_err(ServiceError::internal)?
            .get(&row.serial)
        {
            return Ok((row, k.clone()));
        }
        let cert = Cert::from_der(&row.cert).map_err(from_evidence)?;
        let key_path = self
            .data_dir
            .join(KEY_DIR)
            .join(SIGNERS_DIR)
            .join(format!("{}.key", row.serial));
        let pem = std::fs::read_to_string(&key_path).map_err(|e| {
            ServiceError::new(
                ErrorCode::SigningKeyMissing,
                format!("署名鍵 {} を読めません: {e}", key_path.display()),
            )
        })?;
        let key = Pkcs8Signer::from_pkcs8(&pkcs8_from_pem(&pem)?).map_err(from_evidence)?;
        let pair = Arc::new((cert, key));
        self.evidence_cache
            .signers
            .lock()
            .map_err(ServiceError::internal)?
            .insert(row.serial.clone(), pair.clone());
        Ok((row, pair))
    }

    /// Makes `row` the account's current signing certificate, recorded in the ledger.
    async fn record_signing_cert(
        self: &Arc<Self>,
        action: &'static str,
        row: &SigningCertRow,
        login: &str,
        mut t: Target,
    ) -> Result<()> {
        t.detail("serial", row.serial.clone());
        t.detail("account", row.account_id);
        t.detail("login", login.to_owned());
        t.detail("not_after", row.not_after);
        let r2 = row.clone();
        self.write_audited(None, action, t, move |_, tx, _| {
            Ok(tx.insert_signing_cert(&r2)?)
        })
        .await
    }

    async fn issue_signing_cert(self: &Arc<Self>, account_id: i64) -> Result<SigningCertRow> {
        self.ensure_ca().await?;
        let (account, role) = self
            .store
            .read(move |r| {
                let a = r.account(account_id)?;
                let role = match &a {
                    Some(a) => r.role(&a.role)?.map(|r| r.name_ja),
                    None => None,
                };
                Ok((a, role))
            })
            .await?;
        let account = account.ok_or_else(|| ServiceError::not_found("署名者のアカウント"))?;
        let now = self.now();
        let days = self.config.evidence.signer_days.max(1) as Millis;
        let (dir, facility) = (self.data_dir.clone(), self.facility().to_owned());
        let subject = vec![
            (DnType::CommonName, account.display_name.clone()),
            (DnType::OrganizationName, facility),
            (
                DnType::OrganizationalUnitName,
                role.unwrap_or(account.role.clone()),
            ),
            // UID (RFC 4519): the login, so a verifier sees which account signed.
            (
                DnType::CustomDnType(vec![0, 9, 2342, 19200300, 100, 1, 1]),
                account.login.clone(),
            ),
        ];
        let leaf = tokio::task::spawn_blocking(move || -> Result<_> {
            let leaf = issue_leaf(
                &dir,
                &subject,
                LeafPurpose::Signing,
                now - 60_000,
                now + days * DAY,
            )?;
            let keys = dir.join(KEY_DIR).join(SIGNERS_DIR);
            std::fs::create_dir_all(&keys).map_err(ev_err)?;
            mamori_store::restrict_dir(&keys).map_err(ev_err)?;
            let path = keys.join(format!("{}.key", leaf.serial));
            std::fs::write(&path, &leaf.key_pem).map_err(ev_err)?;
            mamori_store::restrict_file(&path).map_err(ev_err)?;
            Ok(leaf)
        })
        .await
        .map_err(ServiceError::internal)??;
        let row = SigningCertRow {
            serial: leaf.serial.clone(),
            account_id,
            cert: leaf.cert_der,
            source: "facility".into(),
            not_before: now - 60_000,
            not_after: now + days * DAY,
            created_at: now,
            retired_at: None,
        };
        self.record_signing_cert(
            actions::SIGNING_CERT_ISSUED,
            &row,
            &account.login,
            Target::default(),
        )
        .await?;
        Ok(row)
    }

    /// A finalised version that has no signature yet, with what its statement names; `None`
    /// when it is signed already.
    async fn unsigned_version(
        self: &Arc<Self>,
        record_id: i64,
        version_no: i64,
    ) -> Result<Option<Unsigned>> {
        let (rec, version, signed_before, origin, people, roles) = self
            .store
            .read(move |r| {
                let v = r
                    .versions(record_id)?
                    .into_iter()
                    .find(|v| v.version_no == version_no);
                let mut people = Vec::new();
                let mut roles = Vec::new();
                if let Some(v) = &v {
                    for id in [v.author_id, v.enterer_id] {
                        if let Some(a) = r.account(id)? {
                            if let Some(role) = r.role(&a.role)? {
                                roles.push(role);
                            }
                            people.push(a);
                        }
                    }
                }
                Ok((
                    r.record(record_id)?,
                    v,
                    r.signature(record_id, version_no)?.is_some(),
                    r.meta("origin")?,
                    people,
                    roles,
                ))
            })
            .await?;
        let rec = rec.ok_or_else(|| ServiceError::not_found("記録"))?;
        let version = version.ok_or_else(|| ServiceError::not_found("版"))?;
        if version.state != "finalised" {
            return Err(ServiceError::invalid(
                "state",
                "確定していない版には署名しません",
            ));
        }
        if signed_before {
            return Ok(None);
        }
        Ok(Some(Unsigned {
            rec,
            version,
            origin: origin.unwrap_or_default(),
            people,
            roles,
        }))
    }

    /// The exact bytes the author signs for `u`.
    fn statement(&self, u: &Unsigned) -> Result<Vec<u8>> {
        let content = self.store.blobs().get(&u.version.content_sha256)?;
        statement_bytes(
            self.facility(),
            &u.origin,
            &u.rec,
            &u.version,
            &u.people,
            &u.roles,
            &content,
        )
    }

    /// Whether this author signs outside mamori (HPKI card, cloud signing service).
    fn signs_externally(&self, login: &str) -> bool {
        self.config
            .evidence
            .external_signers
            .split(',')
            .any(|l| l.trim() == login)
    }

    /// Signs a finalised version for its responsible author and asks for the time-stamp.
    /// Idempotent: a version signed before is left as it is. Authors who sign outside mamori
    /// are left to the external-signing API.
    pub async fn sign_version(
        self: &Arc<Self>,
        p: Option<&Principal>,
        record_id: i64,
        version_no: i64,
    ) -> Result<SignOutcome> {
        let none = |message: Option<&str>| SignOutcome {
            signed: false,
            timestamped: false,
            message: message.map(str::to_owned),
        };
        if !self.config.evidence.sign {
            return Ok(none(None));
        }
        let Some(u) = self.unsigned_version(record_id, version_no).await? else {
            return Ok(SignOutcome {
                signed: true,
                timestamped: false,
                message: Some("署名済みです".into()),
            });
        };
        // Authors who sign outside mamori are left alone before any statement is built (the
        // sweep meets their versions every minute).
        if self.signs_externally(u.author_login()) {
            return Ok(none(Some(
                "作成者の外部署名（HPKI カード等）を待っています",
            )));
        }
        let stmt = self.statement(&u)?;
        let (rec, version) = (u.rec, u.version);
        let (row, pair) = self.signing_key_for(version.author_id).await?;
        let (cert, key) = (&pair.0, &pair.1);
        let now = self.now();
        let anchors = self.evidence_anchors()?;
        // The .p7s carries the signer's issuer, not every trusted root.
        let issuers: Vec<Cert> = anchors
            .signers
            .iter()
            .filter(|c| c.parsed.tbs_certificate.subject == cert.parsed.tbs_certificate.issuer)
            .cloned()
            .collect();
        let p7s = cades::sign_detached(&stmt, cert, &issuers, key, now).map_err(from_evidence)?;
        self.store_signature(p, &rec, &version, stmt, p7s, &row.serial, cert, now, false)
            .await
    }

    /// Time-stamps a fresh signature and stores both in one commit (B-B alone when no TSA
    /// answers: it is retried later).
    #[allow(clippy::too_many_arguments)]
    async fn store_signature(
        self: &Arc<Self>,
        p: Option<&Principal>,
        rec: &mamori_store::RecordRow,
        version: &mamori_store::VersionRow,
        stmt: Vec<u8>,
        p7s: Vec<u8>,
        signer_serial: &str,
        cert: &Cert,
        now: Millis,
        external: bool,
    ) -> Result<SignOutcome> {
        let (record_id, version_no) = (version.record_id, version.version_no);
        let statement_sha = hex::encode(mamori_evidence::sha256(&stmt));
        // The time-stamp is asked for before anything is written, so that a signature and its
        // time-stamp land in one commit; a TSA outage leaves a B-B signature to retry.
        let digest = cades::signature_value(&p7s)
            .map(|v| mamori_evidence::sha256(&v).to_vec())
            .map_err(from_evidence)?;
        let stamped = if self.tsa_configured() {
            self.time_stamp(digest).await
        } else {
            Err(ServiceError::new(
                ErrorCode::NoTsa,
                "タイムスタンプ局 (TSA) が設定されていません（evidence.tsa_urls）",
            ))
        };
        let (p7s, token_info, error) = match stamped {
            Ok((token, info)) => (
                cades::with_signature_timestamp(&p7s, &token).map_err(from_evidence)?,
                Some(info),
                None,
            ),
            Err(e) => (p7s, None, Some(e.message)),
        };
        let sig = SignatureRow {
            record_id,
            version_no,
            statement_sha256: statement_sha.clone(),
            statement: stmt,
            p7s: p7s.clone(),
            signer_account: version.author_id,
            signer_serial: signer_serial.to_owned(),
            signer_subject: cert.subject(),
            signed_at: now,
            timestamped_at: token_info.as_ref().map(|i| i.gen_time),
            tsa_attempts: i64::from(error.is_some()),
            tsa_last_error: error.clone(),
            tsa_next_try: error.as_ref().map(|_| now + 60_000),
            evidence_family: None,
            evidence_position: None,
        };
        let mut t = Target {
            record: Some(record_id),
            version: Some(version_no),
            patient: Some(rec.patient_id.clone()),
            content_sha256: Some(version.content_sha256.clone()),
            ..Default::default()
        };
        t.detail("signer_serial", signer_serial.to_owned());
        t.detail("signer", cert.subject());
        t.detail("statement_sha256", statement_sha);
        t.detail("p7s_sha256", hex::encode(mamori_evidence::sha256(&p7s)));
        if external {
            t.detail("external", true);
        }
        match &token_info {
            Some(info) => {
                t.detail("level", "CAdES-B-T");
                t.detail("gen_time", info.gen_time);
                t.detail("tsa", info.tsa_subject.clone());
                t.detail("tsa_serial", info.serial.clone());
            }
            None => {
                t.detail("level", "CAdES-B-B");
                t.detail("timestamp_error", error.clone().unwrap_or_default());
            }
        }
        let inserted = self
            .write_audited(p, actions::RECORD_SIGNED, t, move |_, tx, _| {
                let fresh = tx.insert_signature(&sig)?;
                tx.delete_signing_request(record_id, version_no)?;
                Ok(fresh)
            })
            .await?;
        Ok(SignOutcome {
            signed: true,
            timestamped: inserted && token_info.is_some(),
            message: if inserted {
                error
            } else {
                Some("署名済みです".into())
            },
        })
    }

    /// Signs the version a write just finalised; a failure is logged and left to the sweep,
    /// since the finalisation itself is already durable.
    pub(crate) async fn sign_after_write(
        self: &Arc<Self>,
        p: &Principal,
        r: &crate::records::WriteResult,
    ) {
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

    /// Adds the signature time-stamp (B-T), or records the failure and when to retry.
    async fn timestamp_signature(self: &Arc<Self>, sig: &SignatureRow) -> Result<TokenInfo> {
        let digest = cades::signature_value(&sig.p7s)
            .map(|v| mamori_evidence::sha256(&v).to_vec())
            .map_err(from_evidence)?;
        match self.time_stamp(digest).await {
            Ok((token, info)) => {
                let p7s =
                    cades::with_signature_timestamp(&sig.p7s, &token).map_err(from_evidence)?;
                let mut t = Target {
                    record: Some(sig.record_id),
                    version: Some(sig.version_no),
                    ..Default::default()
                };
                t.detail("gen_time", info.gen_time);
                t.detail("tsa", info.tsa_subject.clone());
                t.detail("tsa_serial", info.serial.clone());
                t.detail("policy", info.policy.clone());
                t.detail("level", "CAdES-B-T");
                let (rid, vno, gen_time) = (sig.record_id, sig.version_no, info.gen_time);
                self.write_audited(None, actions::RECORD_TIMESTAMPED, t, move |_, tx, _| {
                    Ok(tx.set_signature_timestamp(rid, vno, &p7s, gen_time)?)
                })
                .await?;
                Ok(info)
            }
            Err(e) => {
                let backoff = (60_000_i64 << sig.tsa_attempts.clamp(0, 10)).min(MAX_BACKOFF);
                let next = self.now() + backoff;
                let (rid, vno, msg) = (sig.record_id, sig.version_no, e.message.clone());
                if sig.tsa_attempts == 0 {
                    let mut t = Target {
                        record: Some(rid),
                        version: Some(vno),
                        ..Default::default()
                    };
                    t.detail("error", msg.clone());
                    self.write_audited(
                        None,
                        actions::RECORD_TIMESTAMP_FAILED,
                        t,
                        move |_, tx, _| Ok(tx.note_timestamp_failure(rid, vno, &msg, next)?),
                    )
                    .await?;
                } else {
                    self.store
                        .write(move |tx| tx.note_timestamp_failure(rid, vno, &msg, next))
                        .await?;
                }
                Err(e)
            }
        }
    }

    /// The periodic evidence work of `serve`: sign what is unsigned, retry due time-stamps,
    /// seal when the interval has passed, renew what needs renewal.
    pub async fn evidence_sweep(self: &Arc<Self>, force_seal: bool) -> Result<SweepReport> {
        let mut rep = SweepReport::default();
        if !self.config.evidence.sign {
            return Ok(rep);
        }
        // Finalisations are signed as they happen; this only heals what a crash or an error left
        // unsigned. It joins every version, so it runs at start, hourly, and when asked — not
        // every minute. All of them: versions waiting for an external signature come back each
        // time and must not crowd out those mamori signs itself.
        let now = self.now();
        let last = self.evidence_cache.unsigned_scan.load(Ordering::Relaxed);
        let unsigned = if force_seal || last == 0 || now - last >= UNSIGNED_SCAN_EVERY {
            self.evidence_cache
                .unsigned_scan
                .store(now.max(1), Ordering::Relaxed);
            self.store.read(|r| r.unsigned_finalised(100_000)).await?
        } else {
            Vec::new()
        };
        for (rid, vno) in unsigned {
            if self
                .sign_version(None, rid, vno)
                .await
                .is_ok_and(|o| o.signed)
            {
                rep.signed += 1;
            }
        }
        let now = self.now();
        let due = self.store.read(move |r| r.timestamps_due(now, 200)).await?;
        if self.tsa_configured() {
            for sig in due {
                match self.timestamp_signature(&sig).await {
                    Ok(_) => rep.timestamped += 1,
                    Err(_) => rep.timestamp_failures += 1,
                }
            }
        }
        let interval = self.config.evidence.seal_interval_hours as Millis * 3_600_000;
        let last = self.store.read(|r| r.last_evidence_at()).await?;
        if force_seal || last.is_none_or(|l| self.now() - l >= interval.max(1)) {
            rep.sealed = self.seal_evidence().await?;
        }
        rep.renewed = self.renew_evidence().await?;
        Ok(rep)
    }

    fn hash_alg(&self) -> Result<HashAlg> {
        HashAlg::parse(&self.config.evidence.hash).ok_or_else(|| {
            ServiceError::new(
                ErrorCode::Config,
                "evidence.hash は sha256 か sha512 にしてください",
            )
        })
    }

    /// Seals every time-stamped signature and checkpoint not yet in an evidence record under
    /// one archive time-stamp. `None` when there was nothing new.
    pub async fn seal_evidence(self: &Arc<Self>) -> Result<Option<SealReport>> {
        if !self.tsa_configured() {
            return Ok(None);
        }
        let alg = self.hash_alg()?;
        self.checkpoint_now().await?;
        let (sigs, cps) = self
            .store
            .read(|r| Ok((r.unsealed_signatures()?, r.unsealed_checkpoints()?)))
            .await?;
        if sigs.is_empty() && cps.is_empty() {
            return Ok(None);
        }
        let (sigs2, cps2) = (sigs.clone(), cps.clone());
        let tree = tokio::task::spawn_blocking(move || -> Result<HashTree> {
            let mut leaves = Vec::with_capacity((sigs2.len() + cps2.len()) * alg.output_len());
            for s in &sigs2 {
                let m = Member::Signature {
                    statement: s.statement.clone(),
                    p7s: s.p7s.clone(),
                };
                leaves.extend(ers::group_leaf(alg, &m.hashes(alg, &[])?));
            }
            for c in &cps2 {
                leaves.extend(alg.digest(c.note.as_bytes()));
            }
            HashTree::build(alg, leaves).map_err(from_evidence)
        })
        .await
        .map_err(ServiceError::internal)??;
        let root = tree.root().to_vec();
        let (token, info) = self.time_stamp(root.clone()).await?;
        let row = tree_row(&tree, alg, 0, 1, self.now());
        let mut t = Target::default();
        t.detail("signatures", sigs.len());
        t.detail("checkpoints", cps.len());
        t.detail("alg", alg.name());
        t.detail("root", hex::encode(&root));
        t.detail("gen_time", info.gen_time);
        t.detail("tsa", info.tsa_subject.clone());
        let keys: Vec<(i64, i64)> = sigs.iter().map(|s| (s.record_id, s.version_no)).collect();
        let sizes: Vec<u64> = cps.iter().map(|c| c.size).collect();
        let (gen_time, not_after) = (info.gen_time, info.tsa_not_after);
        let family = self
            .write_audited(None, actions::EVIDENCE_SEALED, t, move |_, tx, t| {
                let id = tx.insert_evidence_tree(&row)?;
                tx.insert_evidence_stamp(&EvidenceStamp {
                    tree_id: id,
                    seq: 0,
                    token,
                    gen_time,
                    tsa_not_after: not_after,
                })?;
                for (pos, (rid, vno)) in keys.iter().enumerate() {
                    tx.set_signature_family(*rid, *vno, id, pos as i64)?;
                }
                for (i, size) in sizes.iter().enumerate() {
                    tx.set_checkpoint_family(*size, id, (keys.len() + i) as i64)?;
                }
                t.detail("family", id);
                Ok(id)
            })
            .await?;
        Ok(Some(SealReport {
            family,
            signatures: sigs.len(),
            checkpoints: cps.len(),
            root: hex::encode(root),
            gen_time: info.gen_time,
        }))
    }

    /// Renews evidence records: a hash-tree renewal when the configured algorithm differs from
    /// a record's newest chain, else a time-stamp renewal when its newest TSA certificate
    /// expires within `renew_days`.
    pub async fn renew_evidence(self: &Arc<Self>) -> Result<Vec<RenewReport>> {
        let mut out = Vec::new();
        if !self.tsa_configured() {
            return Ok(out);
        }
        let alg = self.hash_alg()?;
        let margin = self.config.evidence.renew_days as Millis * DAY;
        // Only each record's newest stamp is read here, every minute; the trees' leaves are
        // read when a hash-tree renewal needs them.
        let heads = self.store.read(|r| r.evidence_heads()).await?;
        for head in heads {
            let (family, stamp) = (head.family, head.stamp);
            if head.alg != alg.name() {
                out.push(self.renew_hash_tree(family, alg).await?);
            } else if stamp.tsa_not_after - self.now() < margin {
                let last_alg = HashAlg::parse(&head.alg).unwrap_or(HashAlg::Sha256);
                let input = last_alg.digest(&stamp.token);
                let (token, info) = self.time_stamp(input).await?;
                if info.tsa_not_after <= stamp.tsa_not_after {
                    return Err(ServiceError::new(
                        ErrorCode::TsaNotNewer,
                        "タイムスタンプ局の証明書が前回より新しくないため、証拠記録を更新できません（TSA の鍵更新を確認してください）",
                    ));
                }
                let mut t = Target::default();
                t.detail("family", family);
                t.detail("kind", "timestamp");
                t.detail("gen_time", info.gen_time);
                t.detail("previous_tsa_not_after", stamp.tsa_not_after);
                t.detail("tsa_not_after", info.tsa_not_after);
                let row = EvidenceStamp {
                    tree_id: head.tree_id,
                    seq: stamp.seq + 1,
                    token,
                    gen_time: info.gen_time,
                    tsa_not_after: info.tsa_not_after,
                };
                self.write_audited(None, actions::EVIDENCE_RENEWED, t, move |_, tx, _| {
                    Ok(tx.insert_evidence_stamp(&row)?)
                })
                .await?;
                out.push(RenewReport {
                    family,
                    kind: "timestamp",
                    gen_time: info.gen_time,
                });
            }
        }
        Ok(out)
    }

    async fn renew_hash_tree(self: &Arc<Self>, family: i64, alg: HashAlg) -> Result<RenewReport> {
        let this = Arc::clone(self);
        let (tree, chain_no) = tokio::task::spawn_blocking(move || -> Result<(HashTree, i64)> {
            let ro = this.store.reader()?;
            let r = ro.get();
            let ctx = crate::evidence::read::FamilyContext::load(&r, family)?;
            let mut leaves = Vec::with_capacity(ctx.members.len() * alg.output_len());
            for i in 0..ctx.members.len() {
                let previous = ctx.chains_for(i)?;
                leaves.extend(ers::group_leaf(
                    alg,
                    &ctx.members[i].hashes(alg, &previous)?,
                ));
            }
            Ok((
                HashTree::build(alg, leaves).map_err(from_evidence)?,
                ctx.chain_count() as i64 + 1,
            ))
        })
        .await
        .map_err(ServiceError::internal)??;
        let root = tree.root().to_vec();
        let (token, info) = self.time_stamp(root.clone()).await?;
        let row = tree_row(&tree, alg, family, chain_no, self.now());
        let mut t = Target::default();
        t.detail("family", family);
        t.detail("kind", "hashtree");
        t.detail("alg", alg.name());
        t.detail("root", hex::encode(&root));
        t.detail("gen_time", info.gen_time);
        let (gen_time, not_after) = (info.gen_time, info.tsa_not_after);
        self.write_audited(None, actions::EVIDENCE_RENEWED, t, move |_, tx, _| {
            let id = tx.insert_evidence_tree(&row)?;
            Ok(tx.insert_evidence_stamp(&EvidenceStamp {
                tree_id: id,
                seq: 0,
                token,
                gen_time,
                tsa_not_after: not_after,
            })?)
        })
        .await?;
        Ok(RenewReport {
            family,
            kind: "hashtree",
            gen_time: info.gen_time,
        })
    }
}

/// The PKCS#8 DER inside a `PRIVATE KEY` PEM (as rcgen writes and as imports are stored).
pub(crate) fn pkcs8_from_pem(pem: &str) -> Result<Vec<u8>> {
    use base64::Engine;
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body.trim())
        .map_err(|e| {
            ServiceError::new(
                ErrorCode::SigningKeyMissing,
                format!("署名鍵の形式が正しくありません: {e}"),
            )
        })
}

fn pkcs8_to_pem(der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    pem
}

/// The stored form of a tree (`family` 0: a new family, the tree's own id).
fn tree_row(
    tree: &HashTree,
    alg: HashAlg,
    family: i64,
    chain_no: i64,
    now: Millis,
) -> EvidenceTree {
    EvidenceTree {
        id: 0,
        family,
        chain_no,
        alg: alg.name().into(),
        created_at: now,
        leaf_count: tree.len() as i64,
        root: tree.root().to_vec(),
        leaves: tree.leaves().to_vec(),
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
        self.read_audited(p, actions::EVIDENCE_VERIFIED, move |svc, r, t| {
            Service::readable_for_read(r, &pc, id, t)?;
            let rep = crate::evidence::read::verify_evidence(
                r,
                svc.store.blobs(),
                &anchors,
                Some(id),
                svc.now(),
            )?;
            t.detail("checked", rep.checked);
            t.detail("failed", rep.failed);
            Ok(rep)
        })
        .await
    }

    /// Runs the evidence sweep now and seals whatever is new (administrators; recorded).
    pub async fn seal_now(self: &Arc<Self>, p: &Principal) -> Result<SweepReport> {
        let pc = p.clone();
        self.write_audited(
            Some(p),
            actions::EVIDENCE_REQUESTED,
            Target::default(),
            move |_, _, _| pc.require(mamori_domain::permission::Action::AdminSettings, None),
        )
        .await?;
        self.evidence_sweep(true).await
    }

    /// Answers an RFC 3161 request with the development TSA (only when it is enabled).
    pub async fn dev_tsa_respond(self: &Arc<Self>, req: Vec<u8>) -> Result<Vec<u8>> {
        if !self.config.evidence.dev_tsa {
            return Err(ServiceError::not_found("タイムスタンプ局"));
        }
        if req.len() > 16 * 1024 {
            return Err(ServiceError::invalid(
                "body",
                "タイムスタンプ要求が大きすぎます",
            ));
        }
        self.ensure_ca().await?;
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let tsa = this.dev_tsa()?;
            Ok(tsa.respond(&req, this.now(), &random_bytes::<16>()))
        })
        .await
        .map_err(ServiceError::internal)?
    }
}

/// What an author's card or signing service must sign to finish a signature started with
/// [`Service::begin_external_signature`].
#[derive(Debug, Clone, Serialize)]
pub struct SigningTask {
    pub record_id: i64,
    pub version_no: i64,
    /// The DER signed attributes (base64): sign these bytes with SHA-256 (ECDSA or RSA
    /// PKCS#1 v1.5) using the certificate's key.
    pub to_be_signed: String,
    /// SHA-256 of `to_be_signed` (hex), for devices that sign a digest.
    pub digest_sha256: String,
    pub signing_time: Millis,
    /// The statement being signed (base64): the version's facts and content.
    pub statement: String,
}

impl Service {
    /// Only the version's author, in a role that may finalise its kind, signs it; checked
    /// before anything about the version's state is revealed.
    /// Whether `p` may sign this version outside mamori; a refusal is in the ledger under
    /// `action`.
    async fn external_signer_check(
        self: &Arc<Self>,
        p: &Principal,
        record_id: i64,
        version_no: i64,
        action: &'static str,
    ) -> Result<()> {
        let check = self.external_signer_rule(p, record_id, version_no).await;
        self.gate(p, action, check).await
    }

    async fn external_signer_rule(
        self: &Arc<Self>,
        p: &Principal,
        record_id: i64,
        version_no: i64,
    ) -> Result<()> {
        let (rec, version) = self
            .store
            .read(move |r| {
                Ok((
                    r.record(record_id)?,
                    r.versions(record_id)?
                        .into_iter()
                        .find(|v| v.version_no == version_no),
                ))
            })
            .await?;
        let (Some(rec), Some(version)) = (rec, version) else {
            return Err(ServiceError::not_found("版"));
        };
        p.require(mamori_domain::permission::Action::Finalise, Some(&rec.kind))?;
        if version.author_id != p.account.id {
            return Err(ServiceError::forbidden(
                "署名できるのはこの版の作成責任者だけです",
            ));
        }
        Ok(())
    }

    /// Step 1 of a signature made outside mamori: the author gives their certificate (and its
    /// chain), mamori returns the signed attributes to sign. Recorded in the ledger.
    pub async fn begin_external_signature(
        self: &Arc<Self>,
        p: &Principal,
        record_id: i64,
        version_no: i64,
        certificate_pem: &str,
    ) -> Result<SigningTask> {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        self.external_signer_check(p, record_id, version_no, actions::RECORD_SIGNING_REQUESTED)
            .await?;
        let (rec, stmt) = match self.unsigned_version(record_id, version_no).await? {
            Some(u) => (u.rec.clone(), self.statement(&u)?),
            None => {
                return Err(ServiceError::new(
                    ErrorCode::Conflict,
                    "この版はすでに署名されています",
                ));
            }
        };
        let certs = Cert::from_pem_chain(certificate_pem)
            .map_err(|e| ServiceError::invalid("certificate", e.message))?;
        let Some(signer) = certs.first().cloned() else {
            return Err(ServiceError::invalid(
                "certificate",
                "署名者の証明書 (PEM) を指定してください",
            ));
        };
        let now = self.now();
        let anchors = self.evidence_anchors()?;
        mamori_evidence::cert::chain_to_anchor(
            &signer,
            &certs,
            &anchors.signers,
            now,
            mamori_evidence::cert::Purpose::Signing,
        )
        .map_err(|e| ServiceError::invalid("certificate", e.message))?;
        let prepared = cades::prepare(&stmt, &signer, now).map_err(from_evidence)?;
        let task = SigningTask {
            record_id,
            version_no,
            to_be_signed: b64.encode(&prepared.to_be_signed),
            digest_sha256: hex::encode(mamori_evidence::sha256(&prepared.to_be_signed)),
            signing_time: now,
            statement: b64.encode(&stmt),
        };
        let req = mamori_store::SigningRequest {
            record_id,
            version_no,
            statement: stmt,
            cert: signer.der.clone(),
            chain: certs
                .iter()
                .map(|c| c.to_pem())
                .collect::<String>()
                .into_bytes(),
            signing_time: now,
            requested_by: p.account.id,
        };
        let mut t = Target {
            record: Some(record_id),
            version: Some(version_no),
            patient: Some(rec.patient_id.clone()),
            ..Default::default()
        };
        t.detail("signer", signer.subject());
        t.detail("signer_serial", signer.serial_hex());
        self.write_audited(
            Some(p),
            actions::RECORD_SIGNING_REQUESTED,
            t,
            move |_, tx, _| Ok(tx.put_signing_request(&req)?),
        )
        .await?;
        Ok(task)
    }

    /// Step 2: the signature value from the card or service. mamori checks it against the
    /// certificate, assembles the CMS signature, time-stamps it and stores it.
    pub async fn complete_external_signature(
        self: &Arc<Self>,
        p: &Principal,
        record_id: i64,
        version_no: i64,
        signature_b64: &str,
    ) -> Result<SignOutcome> {
        use base64::Engine;
        self.external_signer_check(p, record_id, version_no, actions::RECORD_SIGNED)
            .await?;
        let (rec, version) = match self.unsigned_version(record_id, version_no).await? {
            Some(u) => (u.rec, u.version),
            None => {
                return Err(ServiceError::new(
                    ErrorCode::Conflict,
                    "この版はすでに署名されています",
                ));
            }
        };
        let req = self
            .store
            .read(move |r| r.signing_request(record_id, version_no))
            .await?
            .filter(|q| q.requested_by == p.account.id)
            .ok_or_else(|| {
                ServiceError::invalid(
                    "signature",
                    "先に署名の準備（証明書の登録）を行ってください",
                )
            })?;
        let signature = base64::engine::general_purpose::STANDARD
            .decode(signature_b64.trim())
            .map_err(|_| {
                ServiceError::invalid("signature", "署名値は base64 で指定してください")
            })?;
        let signer = Cert::from_der(&req.cert).map_err(from_evidence)?;
        let chain = Cert::from_pem_chain(&String::from_utf8_lossy(&req.chain)).unwrap_or_default();
        let algorithm = if signer.spki().algorithm.oid == mamori_evidence::asn1::RSA_ENCRYPTION {
            mamori_evidence::asn1::SHA256_WITH_RSA
        } else {
            mamori_evidence::asn1::ECDSA_WITH_SHA256
        };
        let prepared =
            cades::prepare(&req.statement, &signer, req.signing_time).map_err(from_evidence)?;
        let p7s = cades::assemble(prepared, algorithm, &signature, &chain)
            .map_err(|e| ServiceError::invalid("signature", e.message))?;
        self.store_signature(
            Some(p),
            &rec,
            &version,
            req.statement,
            p7s,
            &signer.serial_hex(),
            &signer,
            req.signing_time,
            true,
        )
        .await
    }
}

impl Service {
    /// Imports a signing identity from PKCS#12 (e.g. an HPKI certificate with its key) for the
    /// account `login`: the key must match the certificate, and the certificate chain to a
    /// trusted signer root (the facility CA or `evidence.signer_trust`). It becomes the
    /// account's current signing key. For the command line (whoever holds the instance's keys).
    pub async fn import_signing_identity(
        self: &Arc<Self>,
        login: &str,
        p12: &[u8],
        password: &str,
    ) -> Result<SigningCertRow> {
        let l = login.to_owned();
        let account = self
            .store
            .read(move |r| r.account_by_login(&l))
            .await?
            .filter(|a| a.active)
            .ok_or_else(|| {
                ServiceError::invalid("login", "有効なアカウントのログインIDを指定してください")
            })?;
        let store = p12_keystore::KeyStore::from_pkcs12(p12, password).map_err(|_| {
            ServiceError::invalid(
                "p12",
                "PKCS#12 ファイルを開けません（パスワードとファイルを確認してください）",
            )
        })?;
        let (_, chain) = store.private_key_chain().ok_or_else(|| {
            ServiceError::invalid("p12", "PKCS#12 ファイルに秘密鍵と証明書がありません")
        })?;
        let certs: Vec<Cert> = chain
            .chain()
            .iter()
            .map(|c| Cert::from_der(c.as_der()))
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| ServiceError::invalid("p12", e.message))?;
        let key = Pkcs8Signer::from_pkcs8(chain.key())
            .map_err(|e| ServiceError::invalid("p12", e.message))?;
        let Some(cert) = certs.iter().find(|c| key.matches(c)).cloned() else {
            return Err(ServiceError::invalid(
                "p12",
                "PKCS#12 の秘密鍵がどの証明書とも対応していません",
            ));
        };
        let now = self.now();
        self.ensure_ca().await?;
        // Read the trust files afresh: an administrator may just have added the HPKI roots.
        let anchors = Arc::new(Anchors::load(&self.data_dir, &self.config.evidence)?);
        *self
            .evidence_cache
            .anchors
            .lock()
            .map_err(ServiceError::internal)? = Some(anchors.clone());
        mamori_evidence::cert::chain_to_anchor(
            &cert,
            &certs,
            &anchors.signers,
            now,
            mamori_evidence::cert::Purpose::Signing,
        )
        .map_err(|e| {
            ServiceError::invalid(
                "p12",
                format!(
                    "{}（信頼する署名者の認証局は evidence.signer_trust に設定します）",
                    e.message
                ),
            )
        })?;
        let serial = cert.serial_hex();
        let keys = self.data_dir.join(KEY_DIR).join(SIGNERS_DIR);
        std::fs::create_dir_all(&keys).map_err(ev_err)?;
        mamori_store::restrict_dir(&keys).map_err(ev_err)?;
        let path = keys.join(format!("{serial}.key"));
        std::fs::write(&path, pkcs8_to_pem(chain.key())).map_err(ev_err)?;
        mamori_store::restrict_file(&path).map_err(ev_err)?;
        let row = SigningCertRow {
            serial: serial.clone(),
            account_id: account.id,
            cert: cert.der.clone(),
            source: "imported".into(),
            not_before: cert.not_before(),
            not_after: cert.not_after(),
            created_at: now,
            retired_at: None,
        };
        let mut t = Target::default();
        t.detail("subject", cert.subject());
        t.detail("issuer", cert.issuer());
        self.record_signing_cert(actions::SIGNING_CERT_IMPORTED, &row, &account.login, t)
            .await?;
        Ok(row)
    }
}
