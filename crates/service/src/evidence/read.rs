//! The read side of the evidence pillar, over a [`Reader`] and the blob store so that the
//! command line can run it beside a live server: the signed statement, trust anchors,
//! evidence records per object, and verification.

use crate::ErrorCode;
use std::collections::HashMap;
use std::path::Path;

use mamori_domain::Millis;
use mamori_domain::permission::Role;
use mamori_evidence::asn1::ArchiveTimeStampChain;
use mamori_evidence::cades;
use mamori_evidence::cert::Cert;
use mamori_evidence::ers::{self, HashAlg, HashTree, RecordInfo};
use mamori_evidence::tsp::TokenInfo;
use mamori_store::{
    Account, BlobStore, EvidenceStamp, EvidenceTree, Reader, RecordRow, SignatureRow, SignedPdfRow,
    VersionRow,
};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::config::EvidenceConfig;
use crate::error::{Result, ServiceError};
use crate::evidence::Member;

/// The format name inside every signed statement.
pub const STATEMENT_FORMAT: &str = "mamori-signed-version/1";

#[derive(Serialize, Deserialize)]
pub struct PersonFact {
    pub id: i64,
    pub login: String,
    pub name: String,
    pub role: String,
}

/// What an author signs: the version's facts and its content, byte for byte as stored.
#[derive(Serialize, Deserialize)]
pub struct Statement {
    pub format: String,
    pub facility: String,
    pub origin: String,
    pub record_id: i64,
    pub version_no: i64,
    pub patient_id: String,
    pub record_kind: String,
    pub version_kind: String,
    pub author: PersonFact,
    pub enterer: PersonFact,
    pub predecessor: Option<i64>,
    pub reason: Option<String>,
    pub created_at: Millis,
    pub finalised_at: Option<Millis>,
    pub ledger_index: i64,
    pub content_sha256: String,
    pub version_digest: String,
    pub content: Box<RawValue>,
}

fn person(accounts: &[Account], roles: &[Role], id: i64) -> PersonFact {
    let a = accounts.iter().find(|a| a.id == id);
    PersonFact {
        id,
        login: a.map(|a| a.login.clone()).unwrap_or_default(),
        name: a.map(|a| a.display_name.clone()).unwrap_or_default(),
        role: a
            .and_then(|a| roles.iter().find(|r| r.code == a.role))
            .map(|r| r.name_ja.clone())
            .unwrap_or_default(),
    }
}

/// The exact bytes a finalised version's author signs.
pub fn statement_bytes(
    facility: &str,
    origin: &str,
    rec: &RecordRow,
    v: &VersionRow,
    accounts: &[Account],
    roles: &[Role],
    content: &[u8],
) -> Result<Vec<u8>> {
    let content = std::str::from_utf8(content)
        .ok()
        .and_then(|s| RawValue::from_string(s.to_owned()).ok())
        .ok_or_else(|| ServiceError::internal("content blob is not JSON"))?;
    let s = Statement {
        format: STATEMENT_FORMAT.into(),
        facility: facility.into(),
        origin: origin.into(),
        record_id: v.record_id,
        version_no: v.version_no,
        patient_id: rec.patient_id.clone(),
        record_kind: rec.kind.clone(),
        version_kind: v.kind.clone(),
        author: person(accounts, roles, v.author_id),
        enterer: person(accounts, roles, v.enterer_id),
        predecessor: v.predecessor,
        reason: v.reason.clone(),
        created_at: v.created_at,
        finalised_at: v.finalised_at,
        ledger_index: v.ledger_index,
        content_sha256: v.content_sha256.clone(),
        version_digest: v.facts().digest(),
        content,
    };
    serde_json::to_vec(&s).map_err(ServiceError::internal)
}

/// Trust anchors: signers (the facility CA and `signer_trust`) and TSAs (the facility CA,
/// which issues the development TSA's certificate, and `tsa_trust`).
#[derive(Clone, Default)]
pub struct Anchors {
    pub signers: Vec<Cert>,
    pub tsa: Vec<Cert>,
    /// The TSAs named accredited (`evidence.accredited_tsa_certs`, `…_policies`).
    pub accredited: mamori_evidence::tsp::AccreditedTsas,
    /// The outside signer CAs' CRLs (`evidence.signer_crls`).
    pub crls: Vec<mamori_evidence::crl::Crl>,
    /// マイナンバーカード signing roots (`evidence.jpki_trust`): for signatures on uploaded
    /// documents only, never for staff signatures.
    pub jpki: Vec<Cert>,
    /// The facility CA alone: every signing certificate it issued is in `signing_certs`.
    pub facility: Vec<Cert>,
}

impl Anchors {
    /// The anchors a signed PDF's signatures are checked against: staff signers always; for an
    /// uploaded document also the マイナンバーカード roots, since a patient may have signed it.
    pub fn for_pdf(&self, attachment: bool) -> Vec<Cert> {
        let mut out = self.signers.clone();
        if attachment {
            out.extend(self.jpki.iter().cloned());
        }
        out
    }

    /// The trusted signer CAs that issued `cert`: what a CMS carries besides the signer's
    /// certificate (not every trusted root).
    pub fn issuers_of(&self, cert: &Cert) -> Vec<Cert> {
        self.signers
            .iter()
            .filter(|c| c.parsed.tbs_certificate.subject == cert.parsed.tbs_certificate.issuer)
            .cloned()
            .collect()
    }

    /// When the CRLs say `cert` (with `chain`, its issuers) was revoked, if they do.
    pub fn revoked_at(&self, cert: &Cert, chain: &[Cert]) -> Option<Millis> {
        let mut issuers = chain.to_vec();
        issuers.extend(self.signers.iter().cloned());
        match mamori_evidence::crl::status(cert, &self.crls, &issuers) {
            mamori_evidence::crl::Revocation::Revoked { at } => Some(at),
            _ => None,
        }
    }
}

impl Anchors {
    pub fn load(dir: &Path, cfg: &EvidenceConfig) -> Result<Self> {
        let ca = match crate::access::ca::ca_pem(dir) {
            Some(p) => Cert::from_pem_chain(&p)
                .map_err(|e| ServiceError::new(ErrorCode::Evidence, e.message))?,
            None => Vec::new(),
        };
        let extra = |file: &str| -> Result<Vec<Cert>> {
            if file.trim().is_empty() {
                return Ok(Vec::new());
            }
            let path = dir.join(file.trim());
            let pem = std::fs::read_to_string(&path).map_err(|e| {
                ServiceError::new(
                    ErrorCode::Config,
                    format!(
                        "信頼する証明書のファイル {} を読めません: {e}",
                        path.display()
                    ),
                )
            })?;
            Cert::from_pem_chain(&pem).map_err(|e| ServiceError::new(ErrorCode::Config, e.message))
        };
        let facility = ca.clone();
        let mut signers = ca.clone();
        signers.extend(extra(&cfg.signer_trust)?);
        let mut tsa = ca;
        tsa.extend(extra(&cfg.tsa_trust)?);
        let accredited = mamori_evidence::tsp::AccreditedTsas {
            certs: extra(&cfg.accredited_tsa_certs)?,
            policies: cfg
                .accredited_tsa_policies
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect(),
        };
        let mut crls = Vec::new();
        for file in cfg
            .signer_crls
            .split(',')
            .map(str::trim)
            .filter(|f| !f.is_empty())
        {
            let path = dir.join(file);
            let bytes = std::fs::read(&path).map_err(|e| {
                ServiceError::new(
                    ErrorCode::Config,
                    format!("CRL のファイル {} を読めません: {e}", path.display()),
                )
            })?;
            crls.extend(
                mamori_evidence::crl::Crl::from_file_bytes(&bytes).map_err(|e| {
                    ServiceError::new(
                        ErrorCode::Config,
                        format!("CRL のファイル {}: {}", path.display(), e.message),
                    )
                })?,
            );
        }
        Ok(Self {
            signers,
            tsa,
            accredited,
            crls,
            jpki: extra(&cfg.jpki_trust)?,
            facility,
        })
    }
}

type Chain = (EvidenceTree, HashTree, Vec<EvidenceStamp>);

fn load_chains(r: &Reader<'_>, family: i64) -> Result<Vec<Chain>> {
    r.evidence_chains(family)?
        .into_iter()
        .map(|t| {
            let alg = HashAlg::parse(&t.alg).ok_or_else(|| {
                ServiceError::new(ErrorCode::Corrupt, format!("未知のハッシュ {}", t.alg))
            })?;
            let ht = HashTree::build(alg, t.leaves.clone())
                .map_err(|e| ServiceError::new(ErrorCode::Corrupt, e.message))?;
            if ht.root() != t.root.as_slice() {
                return Err(ServiceError::new(
                    ErrorCode::Corrupt,
                    format!("証拠記録 {} のハッシュ木が保存された根と一致しません", t.id),
                ));
            }
            let stamps = r.evidence_stamps(t.id)?;
            Ok((t, ht, stamps))
        })
        .collect()
}

/// The archive time-stamp chains of the member at `position` of a family.
fn chains_for(
    chains: &[Chain],
    position: usize,
    member: &Member,
) -> Result<Vec<ArchiveTimeStampChain>> {
    let mut seq: Vec<ArchiveTimeStampChain> = Vec::new();
    for (tree, ht, stamps) in chains {
        let alg = HashAlg::parse(&tree.alg).unwrap_or(HashAlg::Sha256);
        let hashes = member.hashes(alg, &seq)?;
        if position >= ht.len() || ht.leaf(position) != ers::group_leaf(alg, &hashes).as_slice() {
            return Err(ServiceError::new(
                ErrorCode::EvidenceMismatch,
                "証拠記録のハッシュ木が、この署名・チェックポイントの現在の内容と一致しません（改ざんの可能性）",
            ));
        }
        let mut chain = Vec::with_capacity(stamps.len());
        for (i, s) in stamps.iter().enumerate() {
            let reduced = if i == 0 {
                ht.reduced(position, &hashes)
            } else {
                None
            };
            chain.push(
                ers::archive_time_stamp(alg, reduced, &s.token)
                    .map_err(|e| ServiceError::new(ErrorCode::Corrupt, e.message))?,
            );
        }
        if chain.is_empty() {
            return Err(ServiceError::new(
                ErrorCode::Corrupt,
                "証拠記録にタイムスタンプがありません",
            ));
        }
        seq.push(chain);
    }
    Ok(seq)
}

/// The RFC 4998 evidence record (DER) of one member of a family.
pub(crate) fn evidence_record(
    r: &Reader<'_>,
    family: i64,
    position: i64,
    member: &Member,
) -> Result<Vec<u8>> {
    let chains = load_chains(r, family)?;
    let seq = chains_for(&chains, position as usize, member)?;
    ers::encode(seq).map_err(|e| ServiceError::new(ErrorCode::Corrupt, e.message))
}

/// Every member of a family with its trees built once (for hash-tree renewal).
pub(crate) struct FamilyContext {
    chains: Vec<Chain>,
    pub members: Vec<Member>,
}

impl FamilyContext {
    pub fn load(r: &Reader<'_>, family: i64) -> Result<Self> {
        let (sigs, cps) = r.family_members(family)?;
        let mut members = Vec::with_capacity(sigs.len() + cps.len());
        for s in sigs {
            members.push(Member::Signature {
                statement: s.statement,
                p7s: s.p7s,
            });
        }
        for c in cps {
            members.push(Member::Checkpoint {
                note: c.note.into_bytes(),
            });
        }
        Ok(Self {
            chains: load_chains(r, family)?,
            members,
        })
    }

    pub fn chain_count(&self) -> usize {
        self.chains.len()
    }

    pub fn chains_for(&self, i: usize) -> Result<Vec<ArchiveTimeStampChain>> {
        chains_for(&self.chains, i, &self.members[i])
    }
}

/// The verification of one finalised version's evidence.
#[derive(Debug, Clone, Serialize)]
pub struct VersionEvidence {
    pub record_id: i64,
    pub version_no: i64,
    pub patient_id: String,
    /// `ok`, `pending` (time-stamp not yet obtained), `unsigned` or `failed`.
    pub status: &'static str,
    pub signer: Option<String>,
    pub level: Option<&'static str>,
    pub signed_at: Option<Millis>,
    pub timestamp: Option<TokenInfo>,
    pub sealed: Option<SealedInfo>,
    /// The signed PDF's PAdES level as verified here, when the version has one.
    pub pdf: Option<String>,
    /// Uploaded PDF attachments the author signed, each verified here.
    pub signed_attachments: Vec<SignedAttachmentEvidence>,
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SignedAttachmentEvidence {
    pub sha256: String,
    pub level: String,
    /// Signatures that were in the file before the author's (a patient's, another clinic's).
    pub earlier_signatures: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct SealedInfo {
    pub family: i64,
    pub proven_since: Millis,
    pub renew_before: Millis,
    pub stamps: usize,
    pub algorithms: Vec<&'static str>,
}

impl SealedInfo {
    fn of(family: i64, i: &RecordInfo) -> Self {
        let mut algorithms: Vec<&'static str> = Vec::new();
        for (_, a, _) in &i.stamps {
            if !algorithms.contains(&a.name()) {
                algorithms.push(a.name());
            }
        }
        Self {
            family,
            proven_since: i.proven_since,
            renew_before: i.renew_before,
            stamps: i.stamps.len(),
            algorithms,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct EvidenceReport {
    pub checked: usize,
    pub ok: usize,
    pub pending: usize,
    pub unsigned: usize,
    pub failed: usize,
    pub checkpoints_sealed: usize,
    pub checkpoint_problems: Vec<String>,
    /// Signatures the ledger says were made but that are no longer stored.
    pub missing_signatures: Vec<String>,
    /// Some time-stamp came from mamori's development TSA (no legal weight).
    pub development_tsa: bool,
    pub items: Vec<VersionEvidence>,
    /// One record's page only: the signatures found in its uploaded PDFs (a patient's
    /// マイナンバーカード signature, another clinic's), verified — shown, never failed on.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub uploaded: Vec<UploadedPdf>,
}

/// An uploaded PDF of a version and the signatures in it as it was uploaded.
#[derive(Debug, Clone, Serialize)]
pub struct UploadedPdf {
    pub version_no: i64,
    pub name: String,
    pub sha256: String,
    pub signatures: Vec<crate::evidence::UploadedSignature>,
    /// Why its signatures could not be verified, if they could not.
    pub error: Option<String>,
}

impl EvidenceReport {
    pub fn passed(&self) -> bool {
        self.failed == 0
            && self.checkpoint_problems.is_empty()
            && self.missing_signatures.is_empty()
    }
}

/// Checks one signature against everything it must agree with.
pub fn check_version(
    r: &Reader<'_>,
    blobs: &BlobStore,
    anchors: &Anchors,
    rec: &RecordRow,
    v: &VersionRow,
    sig: Option<&SignatureRow>,
    now: Millis,
) -> VersionEvidence {
    let mut out = VersionEvidence {
        record_id: v.record_id,
        version_no: v.version_no,
        patient_id: rec.patient_id.clone(),
        status: "ok",
        signer: None,
        level: None,
        signed_at: None,
        timestamp: None,
        sealed: None,
        pdf: None,
        signed_attachments: Vec::new(),
        problems: Vec::new(),
    };
    let Some(sig) = sig else {
        out.status = "unsigned";
        return out;
    };
    out.signer = Some(sig.signer_subject.clone());
    out.signed_at = Some(sig.signed_at);
    if let Err(e) = check_signature(r, blobs, anchors, (rec, v), sig, now, &mut out) {
        out.problems.push(e.message);
    }
    match r.signed_pdfs_of_version(v.record_id, v.version_no) {
        Ok(rows) => {
            for row in rows {
                match (check_pdf(blobs, anchors, &row, sig), row.attachment()) {
                    (Ok((level, _)), None) => out.pdf = Some(level),
                    (Ok((level, earlier)), Some(a)) => {
                        out.signed_attachments.push(SignedAttachmentEvidence {
                            sha256: a.to_owned(),
                            level,
                            earlier_signatures: earlier,
                        })
                    }
                    (Err(e), _) => out.problems.push(e.message),
                }
            }
        }
        Err(e) => out.problems.push(ServiceError::from(e).message),
    }
    out.status = if !out.problems.is_empty() {
        "failed"
    } else if out.timestamp.is_none() {
        "pending"
    } else {
        "ok"
    };
    out
}

/// One signed PDF of the version: the file is the one the row (and the ledger) names, every
/// PAdES signature and document time-stamp in it verifies, and the author signed it with the
/// same certificate as the version's statement. A signed attachment must also be the uploaded
/// file itself with only the author's signature and what protects it appended. Returns the
/// level and how many signatures were in the file before the author's.
fn check_pdf(
    blobs: &BlobStore,
    anchors: &Anchors,
    row: &SignedPdfRow,
    sig: &SignatureRow,
) -> Result<(String, usize)> {
    let what = match row.attachment() {
        None => "署名付き PDF".to_owned(),
        Some(a) => format!("署名した添付 PDF（{}…）", &a[..a.len().min(12)]),
    };
    let fail = |m: String| ServiceError::new(ErrorCode::Evidence, format!("{what}: {m}"));
    let bytes = blobs
        .get(&row.pdf_sha256)
        .map_err(|e| fail(format!("ファイルを読めません（{e}）")))?;
    if hex::encode(mamori_evidence::sha256(&bytes)) != row.pdf_sha256 {
        return Err(fail(
            "ファイルが書き換えられています（ハッシュ不一致）".into(),
        ));
    }
    let signers = anchors.for_pdf(row.attachment().is_some());
    let reports = mamori_evidence::pades::verify(&bytes, &signers, &anchors.tsa)
        .map_err(|e| fail(e.message))?;
    let mut given_len = 0;
    if let Some(a) = row.attachment() {
        let original = blobs
            .get(a)
            .map_err(|e| fail(format!("元の添付ファイルを読めません（{e}）")))?;
        if !bytes.starts_with(&original) {
            return Err(fail(
                "元の添付ファイルに署名を追加しただけのものではありません".into(),
            ));
        }
        given_len = original.len();
    }
    let earlier = reports
        .iter()
        .filter(|x| x.signature.is_some() && x.revision_len <= given_len)
        .count();
    // The author's signature: the first one made after the file as it was given to mamori.
    let signer = reports
        .iter()
        .filter(|x| x.revision_len > given_len)
        .find_map(|x| x.signature.as_ref())
        .ok_or_else(|| fail("作成者の署名がありません".into()))?;
    if signer.signer_serial != row.signer_serial || row.signer_serial != sig.signer_serial {
        return Err(fail(
            "署名者の証明書が、この版の電子署名の証明書と異なります".into(),
        ));
    }
    if signer.jpki.is_some() {
        return Err(fail(
            "作成者の署名がマイナンバーカードの証明書でされています".into(),
        ));
    }
    Ok((row.level.clone(), earlier))
}

fn check_signature(
    r: &Reader<'_>,
    blobs: &BlobStore,
    anchors: &Anchors,
    (rec, v): (&RecordRow, &VersionRow),
    sig: &SignatureRow,
    now: Millis,
    out: &mut VersionEvidence,
) -> Result<()> {
    let statement = sig.statement.clone();
    if hex::encode(mamori_evidence::sha256(&statement)) != sig.statement_sha256 {
        out.problems
            .push("署名対象のファイルが書き換えられています（ハッシュ不一致）".into());
    }
    let facts: Statement = serde_json::from_slice(&statement).map_err(|e| {
        ServiceError::new(
            ErrorCode::Corrupt,
            format!("署名対象の形式が正しくありません: {e}"),
        )
    })?;
    if facts.record_id != v.record_id || facts.version_no != v.version_no {
        out.problems.push("署名対象が別の記録・版のものです".into());
    }
    // The record's placement and people as the rows say now: a record moved to another
    // patient's chart (混同, JAHIS 09-001 §7.1.2) or relabelled contradicts what was signed.
    if facts.patient_id != rec.patient_id {
        out.problems.push(format!(
            "署名された患者（{}）と、記録が現在属している患者（{}）が異なります（記録の付け替え）",
            facts.patient_id, rec.patient_id
        ));
    }
    if facts.record_kind != rec.kind {
        out.problems.push(format!(
            "署名された記録の種別（{}）と、保存されている種別（{}）が異なります",
            facts.record_kind, rec.kind
        ));
    }
    if facts.author.id != v.author_id || facts.enterer.id != v.enterer_id {
        out.problems.push(
            "署名された作成責任者・入力者と、保存されている版の作成責任者・入力者が異なります"
                .into(),
        );
    }
    if facts.content_sha256 != v.content_sha256 {
        out.problems
            .push("署名された内容のハッシュが、保存されている版と一致しません".into());
    }
    if facts.version_digest != v.facts().digest() {
        out.problems.push(
            "署名された版の事実（作成者・状態・日時など）が、保存されている版と一致しません".into(),
        );
    }
    match blobs.get(&v.content_sha256) {
        Ok(c) if c == facts.content.get().as_bytes() => {}
        Ok(_) => out
            .problems
            .push("保存されている本文が、署名された本文と一致しません".into()),
        Err(e) => out.problems.push(format!("本文を読めません: {e}")),
    }
    match r.ledger_row(v.ledger_index as u64)? {
        Some(row) => {
            let ev: serde_json::Value = serde_json::from_slice(&row.payload).unwrap_or_default();
            if ev["content_sha256"].as_str() != Some(v.content_sha256.as_str())
                || ev["version_digest"].as_str() != Some(facts.version_digest.as_str())
            {
                out.problems.push(format!(
                    "台帳の記録（#{}）が署名された版と一致しません",
                    v.ledger_index
                ));
            }
        }
        None => out.problems.push(format!(
            "台帳に確定の記録（#{}）がありません",
            v.ledger_index
        )),
    }
    match cades::verify_detached(&sig.p7s, &statement, &anchors.signers, &anchors.tsa) {
        Ok(info) => {
            // Revocation as of the signature's proven time: a key the facility CA revoked
            // (retired) signs nothing afterwards, whatever the signature claims.
            let registered = r.signing_cert_by_serial(&info.signer_serial)?;
            // The facility CA's key signs certificates unattended (CRLs, OCSP, client
            // certificates), so whoever copied it could mint a certificate in a doctor's
            // name; every one mamori issued is in `signing_certs` with its holder, so one
            // that is not — or is another's — is named here.
            if let Ok(signer) = cades::signer_certificate(&sig.p7s) {
                let by_facility = anchors.facility.iter().any(|ca| signer.is_signed_by(ca));
                match &registered {
                    None if by_facility => out.problems.push(
                        "電子署名: 施設CAが発行を記録していない証明書による署名です（CA の鍵の流出を疑ってください）".into(),
                    ),
                    Some(c) if c.cert != signer.der || c.account_id != sig.signer_account => {
                        out.problems.push(
                            "電子署名: 署名者の証明書が、記録されている作成者の証明書と異なります".into(),
                        )
                    }
                    _ => {}
                }
            }
            let cert = registered.filter(|c| c.source == "facility");
            let outside = cades::signer_certificate(&sig.p7s)
                .ok()
                .and_then(|c| anchors.revoked_at(&c, &cades::certificates(&sig.p7s)));
            if let Some(at) = cert.and_then(|c| c.retired_at).or(outside)
                && info.validated_at >= at
            {
                out.problems.push(format!(
                    "電子署名: 署名者の証明書は {} に失効しています（署名の時刻 {}）",
                    mamori_evidence::format_time(at),
                    mamori_evidence::format_time(info.validated_at)
                ));
            }
            out.level = Some(info.level);
            out.timestamp = info.timestamp;
        }
        Err(e) => out.problems.push(format!("電子署名: {}", e.message)),
    }
    if let (Some(family), Some(pos)) = (sig.evidence_family, sig.evidence_position) {
        let member = Member::Signature {
            statement: statement.clone(),
            p7s: sig.p7s.clone(),
        };
        let checked = evidence_record(r, family, pos, &member).and_then(|der| {
            ers::verify(&der, &member.objects(), &anchors.tsa)
                .map_err(|e| ServiceError::new(ErrorCode::Evidence, e.message))
        });
        match checked {
            Ok(info) => {
                if info.renew_before < now {
                    out.problems.push(format!(
                        "証拠記録の更新が間に合いませんでした（TSA 証明書の期限 {}）",
                        mamori_evidence::format_time(info.renew_before)
                    ));
                }
                out.sealed = Some(SealedInfo::of(family, &info));
            }
            Err(e) => out.problems.push(format!("証拠記録: {}", e.message)),
        }
    }
    Ok(())
}

/// Verifies the evidence of every finalised version (or one record's).
pub fn verify_evidence(
    r: &Reader<'_>,
    blobs: &BlobStore,
    anchors: &Anchors,
    record: Option<i64>,
    now: Millis,
) -> Result<EvidenceReport> {
    let mut rep = EvidenceReport::default();
    let records: Vec<RecordRow> = match record {
        Some(id) => vec![
            r.record(id)?
                .ok_or_else(|| ServiceError::not_found("記録"))?,
        ],
        None => {
            let mut ids = Vec::new();
            r.for_each_signature(|s| {
                ids.push(s.record_id);
                Ok(())
            })?;
            ids.extend(
                r.unsigned_finalised(i64::MAX)?
                    .into_iter()
                    .map(|(id, _)| id),
            );
            ids.sort_unstable();
            ids.dedup();
            ids.into_iter()
                .filter_map(|id| r.record(id).transpose())
                .collect::<std::result::Result<_, _>>()?
        }
    };
    for rec in &records {
        let sigs: HashMap<i64, SignatureRow> = r
            .signatures_of(rec.id)?
            .into_iter()
            .map(|s| (s.version_no, s))
            .collect();
        for v in r
            .versions(rec.id)?
            .iter()
            .filter(|v| v.state == "finalised")
        {
            let item = check_version(r, blobs, anchors, rec, v, sigs.get(&v.version_no), now);
            rep.checked += 1;
            match item.status {
                "ok" => rep.ok += 1,
                "pending" => rep.pending += 1,
                "unsigned" => rep.unsigned += 1,
                _ => rep.failed += 1,
            }
            if item.timestamp.as_ref().is_some_and(|t| t.development) {
                rep.development_tsa = true;
            }
            rep.items.push(item);
        }
    }
    if record.is_none() {
        // Every signature the ledger recorded must still be there: a deleted signature row
        // would otherwise look like a version that was never signed.
        let mut stored = std::collections::HashSet::new();
        r.for_each_signature(|s| {
            stored.insert((s.record_id, s.version_no));
            Ok(())
        })?;
        for (idx, rec, payload) in
            r.ledger_entries_of(mamori_domain::audit::actions::RECORD_SIGNED)?
        {
            let ev: serde_json::Value = serde_json::from_slice(&payload).unwrap_or_default();
            let version = ev["version"].as_i64();
            if let (Some(rec), Some(version)) = (rec, version)
                && !stored.contains(&(rec, version))
            {
                rep.missing_signatures.push(format!(
                    "記録 {rec} 第{version}版の電子署名が、台帳（#{idx}）には記録されているのに保存されていません（削除の可能性）"
                ));
            }
        }
        let mut sealed_in: HashMap<i64, u64> = HashMap::new();
        for cp in r.checkpoints()? {
            let Some((family, pos)) = r.checkpoint_family(cp.size)? else {
                continue;
            };
            *sealed_in.entry(family).or_default() += 1;
            let member = Member::Checkpoint {
                note: cp.note.into_bytes(),
            };
            let checked = evidence_record(r, family, pos, &member).and_then(|der| {
                ers::verify(&der, &member.objects(), &anchors.tsa)
                    .map_err(|e| ServiceError::new(ErrorCode::Evidence, e.message))
            });
            match checked {
                Ok(_) => rep.checkpoints_sealed += 1,
                Err(e) => rep
                    .checkpoint_problems
                    .push(format!("チェックポイント {}: {}", cp.size, e.message)),
            }
        }
        // The checkpoints table is not a ledger projection (its rows are signed notes), so
        // its evidence columns are checked against the sealing entries: a checkpoint taken out
        // of its evidence record, or one claiming a record that was never made, is named.
        for (idx, _, payload) in
            r.ledger_entries_of(mamori_domain::audit::actions::EVIDENCE_SEALED)?
        {
            let ev: serde_json::Value = serde_json::from_slice(&payload).unwrap_or_default();
            let (Some(family), Some(want)) = (
                ev["detail"]["family"].as_i64(),
                ev["detail"]["checkpoints"].as_u64(),
            ) else {
                continue;
            };
            let have = sealed_in.remove(&family).unwrap_or(0);
            if have != want {
                rep.checkpoint_problems.push(format!(
                    "証拠記録 {family}（台帳 #{idx}）はチェックポイント {want} 件を保護するはずですが、{have} 件がこの記録を指しています（付け替えまたは解除の可能性）"
                ));
            }
        }
        let mut unknown: Vec<_> = sealed_in.into_keys().collect();
        unknown.sort_unstable();
        for family in unknown {
            rep.checkpoint_problems.push(format!(
                "チェックポイントが、台帳に作成の記録がない証拠記録 {family} を指しています"
            ));
        }
    }
    Ok(rep)
}
