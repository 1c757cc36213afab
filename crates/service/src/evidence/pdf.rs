//! Signed PDFs of finalised versions (PAdES): for the record kinds the facility names
//! (`evidence.pdf_kinds`: 紹介状, 同意書, 診断書 by default), the author's act of signing in their
//! open window also makes the document a patient or another clinic receives, and signs it with
//! the same key in its token. The PDF is checked by mamori's own PAdES verification before it is
//! stored, so nothing half-signed is ever kept; its file is a blob and the ledger states its
//! hash and level.

use std::sync::Arc;

use mamori_domain::Millis;
use mamori_domain::audit::actions;
use mamori_evidence::cades::{self, RawSigner};
use mamori_evidence::cert::Cert;
use mamori_evidence::crl::Crl;
use mamori_evidence::pades;
use mamori_evidence::tsp::TokenInfo;
use mamori_pdf::{Dss, Field, FontFile, Letter, Placeholder, SigningRequest};
use mamori_store::{RecordRow, SIGNED_PDF_LETTER, SignedPdfRow, VersionRow};

use super::from_evidence;
use crate::error::{Result, ServiceError};
use crate::ledger::audit::jst;
use crate::{ErrorCode, Principal, Service, Target};

/// Bytes kept in `/Contents` for the CMS: the signer's chain and a time-stamp token with its
/// TSA's chain fit with room to spare.
pub(super) const CONTENTS_ROOM: usize = 24 * 1024;

fn pdf_err(e: mamori_pdf::PdfError) -> ServiceError {
    ServiceError::new(
        ErrorCode::Evidence,
        format!("署名付き PDF を作れません: {e}"),
    )
}

impl Service {
    /// The letter's text: whose record, who is responsible, what it says.
    async fn letter(self: &Arc<Self>, rec: &RecordRow, v: &VersionRow) -> Result<Letter> {
        let (rec_c, v_c) = (rec.clone(), v.clone());
        let (kind, patient, author, author_role, enterer) = self
            .store
            .read(move |r| {
                let name =
                    |id: i64| -> std::result::Result<(String, String), mamori_store::StoreError> {
                        let a = r.account(id)?;
                        let role = match &a {
                            Some(a) => r.role(&a.role)?.map(|x| x.name_ja).unwrap_or_default(),
                            None => String::new(),
                        };
                        Ok((a.map(|a| a.display_name).unwrap_or_default(), role))
                    };
                let (author, role) = name(v_c.author_id)?;
                let enterer = if v_c.enterer_id == v_c.author_id {
                    None
                } else {
                    Some(name(v_c.enterer_id)?.0)
                };
                Ok((
                    r.kind(&rec_c.kind)?
                        .map_or_else(|| rec_c.kind.clone(), |k| k.name_ja),
                    r.patient(&rec_c.patient_id)?,
                    author,
                    role,
                    enterer,
                ))
            })
            .await?;
        let content = self.load_content(&v.content_sha256)?;
        let patient = patient.ok_or_else(|| ServiceError::not_found("患者"))?;
        let finalised = v.finalised_at.unwrap_or(v.created_at);
        let mut heading = vec![
            self.facility().to_owned(),
            format!(
                "患者: {}（{}） {}　生年月日 {}",
                patient.name_kanji, patient.id, patient.name_kana, patient.birth_date
            ),
            format!(
                "作成者（責任者）: {author}（{author_role}）　確定 {}",
                jst(finalised)
            ),
        ];
        if let Some(e) = enterer {
            heading.push(format!("代行入力: {e}　入力 {}", jst(v.created_at)));
        }
        if let Some(r) = &v.reason {
            heading.push(format!("修正の理由: {r}"));
        }
        heading.push(
            "この文書には作成者の電子署名とタイムスタンプがあります（PDF 閲覧ソフトの署名パネルで確認できます）"
                .into(),
        );
        let mut body = content.body.clone();
        if !content.attachments.is_empty() {
            body.push_str("\n\n添付:");
            for a in &content.attachments {
                body.push_str(&format!("\n・{}（SHA-256 {}）", a.name, a.sha256));
            }
        }
        Ok(Letter {
            title: format!("{kind} — {}", content.title),
            heading,
            body,
            footer: format!(
                "{}　記録 {} 第 {} 版　台帳 #{}",
                self.facility(),
                v.record_id,
                v.version_no,
                v.ledger_index
            ),
            created_unix: finalised / 1000,
            author,
            language: "ja".into(),
        })
    }

    fn pdf_font(&self) -> Result<FontFile> {
        let (path, index) = self.config.evidence.pdf_font_path().ok_or_else(|| {
            ServiceError::new(
                ErrorCode::Evidence,
                "PDF に埋め込む日本語フォントが見つかりません（evidence.pdf_font を設定するか、apt-get install fonts-noto-cjk）",
            )
        })?;
        let data = std::fs::read(&path).map_err(|e| {
            ServiceError::new(
                ErrorCode::Evidence,
                format!("フォント {} を読めません: {e}", path.display()),
            )
        })?;
        Ok(FontFile { data, index })
    }

    /// Makes, signs (B-T when a TSA answers, else B-B), checks and stores the PDF of a version
    /// its author has just signed, with the key of their open window. Returns the level.
    /// Appends what a verifier needs years later (every certificate the file's signatures and
    /// time-stamps rely on, the facility CA's fresh CRL and the outside CAs' CRLs the facility
    /// keeps) to the Document Security Store, then a document time-stamp over all of it.
    async fn extend_lta(self: &Arc<Self>, pdf: &[u8]) -> Result<(Vec<u8>, TokenInfo)> {
        let anchors = self.evidence_anchors()?;
        let mut certs: Vec<Vec<u8>> = Vec::new();
        let mut add = |c: &Cert| {
            if !certs.contains(&c.der) {
                certs.push(c.der.clone());
            }
        };
        for s in mamori_pdf::signatures(pdf).map_err(pdf_err)? {
            for c in cades::certificates(&s.contents) {
                add(&c);
            }
            if let Ok(Some(token)) = cades::signature_timestamp(&s.contents) {
                for c in cades::certificates(&token) {
                    add(&c);
                }
            }
        }
        for c in anchors.signers.iter().chain(anchors.tsa.iter()) {
            add(c);
        }
        let mut crls = Vec::new();
        if crate::access::ca::ca_pem(&self.data_dir).is_some() {
            let pem = self.crl_pem(7).await?;
            for c in Crl::from_file_bytes(pem.as_bytes()).map_err(from_evidence)? {
                crls.push(c.to_der().map_err(from_evidence)?);
            }
        }
        for c in &anchors.crls {
            crls.push(c.to_der().map_err(from_evidence)?);
        }
        let with_dss = mamori_pdf::append_dss(
            pdf,
            &Dss {
                certs,
                crls,
                ocsps: Vec::new(),
            },
        )
        .map_err(pdf_err)?;
        let placeholder =
            mamori_pdf::prepare_signature(&with_dss, &SigningRequest::doc_timestamp(CONTENTS_ROOM))
                .map_err(pdf_err)?;
        let digest = mamori_evidence::sha256(&placeholder.signed_bytes()).to_vec();
        let (token, info) = self.time_stamp(digest).await?;
        let out = mamori_pdf::with_contents(placeholder, &token).map_err(pdf_err)?;
        Ok((out, info))
    }

    /// The sweep's part for signed PDFs: a signature time-stamp a TSA outage left out is added
    /// (in place: `/Contents` is outside every signed range), B-LTA is completed, and a file
    /// whose newest document time-stamp's TSA certificate expires within `renew_days` gets
    /// fresh validation data and a new document time-stamp. Each new file is a ledger entry.
    pub(super) async fn renew_pdfs(self: &Arc<Self>) -> Result<usize> {
        if !self.tsa_configured() {
            return Ok(0);
        }
        let before = self.now() + self.config.evidence.renew_days as Millis * 86_400_000;
        let due = self
            .store
            .read(move |r| r.signed_pdfs_due(before, 50))
            .await?;
        let mut n = 0;
        for row in due {
            match self.renew_pdf(row).await {
                Ok(()) => n += 1,
                Err(e) => tracing::warn!(error = %e.message, "signed PDF not renewed"),
            }
        }
        Ok(n)
    }

    async fn renew_pdf(self: &Arc<Self>, row: SignedPdfRow) -> Result<()> {
        let mut pdf = self.store.blobs().get(&row.pdf_sha256)?;
        if hex::encode(mamori_evidence::sha256(&pdf)) != row.pdf_sha256 {
            return Err(ServiceError::new(
                ErrorCode::Evidence,
                "署名付き PDF のファイルが記録と一致しないため更新しません",
            ));
        }
        let mut next = row.clone();
        if row.timestamped_at.is_none() {
            let sig = mamori_pdf::signatures(&pdf)
                .map_err(pdf_err)?
                .into_iter()
                .next()
                .ok_or_else(|| ServiceError::internal("signed PDF without a signature"))?;
            let digest = cades::signature_value(&sig.contents)
                .map(|v| mamori_evidence::sha256(&v).to_vec())
                .map_err(from_evidence)?;
            let (token, info) = self.time_stamp(digest).await?;
            let cms =
                cades::with_signature_timestamp(&sig.contents, &token).map_err(from_evidence)?;
            mamori_pdf::fill_contents(&mut pdf, sig.contents_at, sig.room, &cms)
                .map_err(pdf_err)?;
            next.timestamped_at = Some(info.gen_time);
            next.level = "PAdES-B-T".into();
        }
        let (pdf, info) = self.extend_lta(&pdf).await?;
        next.level = "PAdES-B-LTA".into();
        next.tsa_not_after = Some(info.tsa_not_after);
        let anchors = self.evidence_anchors()?;
        let signers = anchors.for_pdf(row.attachment().is_some());
        pades::verify(&pdf, &signers, &anchors.tsa).map_err(from_evidence)?;
        let (sha, held) = self.store.blobs().put_held(&pdf)?;
        next.pdf_sha256 = sha.clone();
        let rec = self
            .store
            .read({
                let id = row.record_id;
                move |r| r.record(id)
            })
            .await?
            .ok_or_else(|| ServiceError::not_found("記録"))?;
        let mut t = Target {
            record: Some(row.record_id),
            version: Some(row.version_no),
            patient: Some(rec.patient_id),
            ..Default::default()
        };
        if let Some(a) = row.attachment() {
            t.detail("attachment_sha256", a.to_owned());
        }
        t.detail("previous_sha256", row.pdf_sha256.clone());
        t.detail("pdf_sha256", sha.clone());
        t.detail("pdf_size", pdf.len());
        t.detail("level", next.level.clone());
        t.detail("gen_time", info.gen_time);
        t.detail("tsa_not_after", info.tsa_not_after);
        let (size, now, previous) = (pdf.len() as u64, self.now(), row.pdf_sha256.clone());
        let written = self
            .write_audited(None, actions::RECORD_PDF_RENEWED, t, move |_, tx, _| {
                tx.insert_blob(&next.pdf_sha256, size, "application/pdf", now)?;
                if !tx.update_signed_pdf(&next, &previous)? {
                    return Err(ServiceError::new(
                        ErrorCode::Conflict,
                        "署名付き PDF は別の処理で更新されました",
                    ));
                }
                Ok(())
            })
            .await;
        drop(held);
        self.discard_if_refused(&written, vec![sha]).await;
        written
    }

    /// The version's PDF with an empty signature field whose `/M` is `signing_time`: the same
    /// version and time give the same bytes, so the two calls of a signature made outside
    /// mamori see the same document.
    pub(super) async fn pdf_placeholder(
        self: &Arc<Self>,
        rec: &RecordRow,
        version: &VersionRow,
        signing_time: Millis,
    ) -> Result<Placeholder> {
        let letter = self.letter(rec, version).await?;
        let font = self.pdf_font()?;
        tokio::task::spawn_blocking(move || -> Result<_> {
            let pdf = mamori_pdf::render(&letter, &font).map_err(pdf_err)?;
            mamori_pdf::prepare_signature(
                &pdf,
                &SigningRequest {
                    field: Field::Signature,
                    signing_unix: Some(signing_time / 1000),
                    name: Some(letter.author.clone()),
                    reason: Some("作成者（責任者）としての電子署名".into()),
                    location: None,
                    room: CONTENTS_ROOM,
                },
            )
            .map_err(pdf_err)
        })
        .await
        .map_err(ServiceError::internal)?
    }

    /// Makes and signs the PDF with a key mamori holds (the author's open window).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn sign_pdf(
        self: &Arc<Self>,
        p: &Principal,
        rec: &RecordRow,
        version: &VersionRow,
        signer_serial: &str,
        cert: &Cert,
        chain: &[Cert],
        key: Arc<dyn RawSigner + Send + Sync>,
        now: Millis,
    ) -> Result<&'static str> {
        let placeholder = self.pdf_placeholder(rec, version, now).await?;
        let (cert_c, chain_c, bytes) = (cert.clone(), chain.to_vec(), placeholder.signed_bytes());
        let cms = tokio::task::spawn_blocking(move || {
            pades::sign(&bytes, &cert_c, &chain_c, key.as_ref()).map_err(from_evidence)
        })
        .await
        .map_err(ServiceError::internal)??;
        self.finish_pdf(
            p,
            rec,
            version,
            placeholder,
            cms,
            signer_serial,
            now,
            SIGNED_PDF_LETTER,
        )
        .await
    }

    /// Time-stamps the signature (B-T), adds validation data and a document time-stamp
    /// (B-LTA), verifies the file and stores it. Returns the level. `source` is
    /// [`SIGNED_PDF_LETTER`] or the signed attachment's SHA-256.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn finish_pdf(
        self: &Arc<Self>,
        p: &Principal,
        rec: &RecordRow,
        version: &VersionRow,
        placeholder: Placeholder,
        cms: Vec<u8>,
        signer_serial: &str,
        now: Millis,
        source: &str,
    ) -> Result<&'static str> {
        let digest = cades::signature_value(&cms)
            .map(|v| mamori_evidence::sha256(&v).to_vec())
            .map_err(from_evidence)?;
        let (cms, gen_time) = match self.time_stamp(digest).await {
            Ok((token, info)) => (
                cades::with_signature_timestamp(&cms, &token).map_err(from_evidence)?,
                Some(info.gen_time),
            ),
            Err(_) => (cms, None),
        };
        let pdf = mamori_pdf::with_contents(placeholder, &cms).map_err(pdf_err)?;
        // Validation data and a document time-stamp at once (B-LTA), when a TSA answers.
        let (pdf, level, tsa_not_after) = match gen_time {
            Some(_) => match self.extend_lta(&pdf).await {
                Ok((longer, info)) => (longer, "PAdES-B-LTA", Some(info.tsa_not_after)),
                Err(_) => (pdf, "PAdES-B-T", None),
            },
            None => (pdf, "PAdES-B-B", None),
        };
        let anchors = self.evidence_anchors()?;
        let signers = anchors.for_pdf(source != SIGNED_PDF_LETTER);
        pades::verify(&pdf, &signers, &anchors.tsa).map_err(from_evidence)?;
        let (sha, held) = self.store.blobs().put_held(&pdf)?;
        let row = SignedPdfRow {
            record_id: version.record_id,
            version_no: version.version_no,
            source: source.to_owned(),
            pdf_sha256: sha.clone(),
            level: level.to_owned(),
            signer_serial: signer_serial.to_owned(),
            signed_at: now,
            timestamped_at: gen_time,
            tsa_not_after,
        };
        let mut t = Target {
            record: Some(version.record_id),
            version: Some(version.version_no),
            patient: Some(rec.patient_id.clone()),
            content_sha256: Some(version.content_sha256.clone()),
            ..Default::default()
        };
        if source != SIGNED_PDF_LETTER {
            t.detail("attachment_sha256", source.to_owned());
        }
        t.detail("pdf_sha256", sha.clone());
        t.detail("pdf_size", pdf.len());
        t.detail("level", level);
        t.detail("signer_serial", signer_serial.to_owned());
        let size = pdf.len() as u64;
        let written = self
            .write_audited(Some(p), actions::RECORD_PDF_SIGNED, t, move |_, tx, _| {
                tx.insert_blob(&row.pdf_sha256, size, "application/pdf", now)?;
                if !tx.insert_signed_pdf(&row)? {
                    return Err(ServiceError::new(
                        ErrorCode::Exists,
                        "この PDF には既に署名しています",
                    ));
                }
                Ok(())
            })
            .await;
        drop(held);
        self.discard_if_refused(&written, vec![sha]).await;
        written?;
        Ok(level)
    }
}

/// A version's signed PDF, for download.
#[derive(Debug, Clone)]
pub struct SignedPdf {
    pub bytes: Vec<u8>,
    pub file_name: String,
    pub level: String,
}

impl Service {
    /// The signed PDF of one version (its letter, or with `attachment` the signed copy of that
    /// uploaded PDF), for whoever may print and export the record (and read it); the download
    /// is a ledger entry like any export. The file is re-hashed on the way out, so a changed
    /// file is an error, never a download.
    pub async fn signed_pdf(
        self: &Arc<Self>,
        p: &Principal,
        record_id: i64,
        version_no: i64,
        attachment: Option<&str>,
    ) -> Result<SignedPdf> {
        let pc = p.clone();
        let source = attachment
            .map(str::to_ascii_lowercase)
            .unwrap_or_else(|| SIGNED_PDF_LETTER.to_owned());
        let row = self
            .read_audited(p, actions::RECORD_EXPORT, move |_, r, t| {
                // What was asked for is in the entry, a refusal included.
                t.version = Some(version_no);
                t.detail("format", "pdf");
                if source != SIGNED_PDF_LETTER {
                    t.detail("attachment_sha256", source.clone());
                }
                let rec = Self::readable_for_export(r, &pc, record_id, t)?;
                pc.require(mamori_domain::permission::Action::Read, Some(&rec.kind))?;
                let row = r
                    .signed_pdf(record_id, version_no, &source)?
                    .ok_or_else(|| ServiceError::not_found("この版の署名付き PDF"))?;
                t.detail("pdf_sha256", row.pdf_sha256.clone());
                Ok(row)
            })
            .await?;
        let bytes = self.checked_blob(&row.pdf_sha256, "署名付き PDF のファイル")?;
        let file_name = match row.attachment() {
            None => format!("record-{record_id}-v{version_no}.pdf"),
            Some(a) => format!("record-{record_id}-v{version_no}-{}-signed.pdf", &a[..12]),
        };
        Ok(SignedPdf {
            bytes,
            file_name,
            level: row.level,
        })
    }
}
