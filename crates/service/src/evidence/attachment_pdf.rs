//! An uploaded PDF (a consent form the patient signed, an outside report) signed by the
//! version's author with the same key, window and checks as the letter mamori makes: the
//! author's signature is added as an incremental update, so whatever the file said and
//! whoever signed it before stays exactly as it was.
//!
//! A file mamori cannot sign honestly is refused with the reason and nothing is stored:
//! encrypted (its bytes are not what a reader shows), unreadable, too large, locked by a
//! certification signature, or carrying a signature that does not verify against the roots the
//! facility trusts (a countersignature would lend it weight it has not earned).

use std::sync::Arc;

use mamori_domain::audit::actions;
use mamori_evidence::pades;
use mamori_pdf::{Field, SigningRequest};

use super::from_evidence;
use super::read::Anchors;
use crate::error::{Result, ServiceError};
use crate::{ErrorCode, Principal, Service, Target};

fn not_signable(why: impl Into<String>) -> ServiceError {
    ServiceError::new(ErrorCode::PdfNotSignable, why)
}

/// The refusal a reader's verdict on the file becomes.
fn unreadable(e: mamori_pdf::PdfError) -> ServiceError {
    match e {
        mamori_pdf::PdfError::Encrypted => not_signable(
            "暗号化（パスワード・権限設定）された PDF には署名できません。保護を外した PDF を添付し直してください",
        ),
        other => not_signable(format!("PDF として読めないため署名できません: {other}")),
    }
}

fn too_large(max_bytes: u64, size: u64) -> ServiceError {
    ServiceError::new(
        ErrorCode::TooLarge,
        format!(
            "署名できる PDF は {} MiB までです（この添付は {:.1} MiB。evidence.pdf_sign_max_mb で変えられます）",
            max_bytes >> 20,
            size as f64 / 1_048_576.0
        ),
    )
}

/// What is checked before the author's key is used: the file and the signatures already in it.
fn check_signable(
    bytes: &[u8],
    anchors: &Anchors,
    max_bytes: u64,
) -> Result<Vec<pades::PdfSignatureReport>> {
    if bytes.len() as u64 > max_bytes {
        return Err(too_large(max_bytes, bytes.len() as u64));
    }
    // ISO 32000: the header is within the first 1024 bytes.
    if !bytes[..bytes.len().min(1024)]
        .windows(5)
        .any(|w| w == b"%PDF-")
    {
        return Err(not_signable("この添付は PDF ではありません"));
    }
    if mamori_pdf::docmdp_permission(bytes).map_err(unreadable)? == Some(1) {
        return Err(not_signable(
            "この PDF は最初の署名者（作成者署名）が一切の変更を禁じているため、署名を加えられません",
        ));
    }
    if mamori_pdf::signatures(bytes)
        .map_err(unreadable)?
        .is_empty()
    {
        return Ok(Vec::new());
    }
    pades::verify(bytes, &anchors.for_pdf(true), &anchors.tsa).map_err(|e| {
        not_signable(format!(
            "この PDF には検証できない署名があるため、署名を加えられません: {}（署名者の認証局を evidence.signer_trust、マイナンバーカードの署名なら evidence.jpki_trust に設定してください）",
            e.message
        ))
    })
}

impl Service {
    /// Signs the PDF attachment `sha256` of a finalised version for its author, in their
    /// open signing window, up to B-LTA like the letter. Returns the level reached.
    pub async fn sign_attachment_pdf(
        self: &Arc<Self>,
        p: &Principal,
        record_id: i64,
        version_no: i64,
        sha256: &str,
    ) -> Result<&'static str> {
        let sha = sha256.to_ascii_lowercase();
        let (rec, version, signed_before) = self
            .store
            .read({
                let sha = sha.clone();
                move |r| {
                    let v = r
                        .versions(record_id)?
                        .into_iter()
                        .find(|v| v.version_no == version_no);
                    Ok((
                        r.record(record_id)?,
                        v,
                        r.signed_pdf(record_id, version_no, &sha)?.is_some(),
                    ))
                }
            })
            .await?;
        let rec = rec.ok_or_else(|| ServiceError::not_found("記録"))?;
        let version = version.ok_or_else(|| ServiceError::not_found("版"))?;
        let mut t = Target {
            record: Some(record_id),
            version: Some(version_no),
            patient: Some(rec.patient_id.clone()),
            ..Default::default()
        };
        t.detail("attachment_sha256", sha.clone());
        let refuse = |e: ServiceError| {
            let (svc, t) = (self.clone(), t.clone());
            async move {
                svc.refuse::<&'static str>(p, actions::SIGNING_REFUSED, t, e)
                    .await
            }
        };
        if p.account.id != version.author_id {
            return refuse(ServiceError::forbidden(
                "添付 PDF に署名できるのは、この版の作成者（責任者）本人だけです",
            ))
            .await;
        }
        if version.state != "finalised" {
            return refuse(ServiceError::invalid(
                "state",
                "確定していない版の添付には署名しません",
            ))
            .await;
        }
        if signed_before {
            return Err(ServiceError::new(
                ErrorCode::Exists,
                "この添付 PDF には既に署名しています",
            ));
        }
        let content = self.load_content(&version.content_sha256)?;
        let Some(att) = content.attachments.iter().find(|a| a.sha256 == sha) else {
            return Err(ServiceError::not_found("この版の添付ファイル"));
        };
        let (row, cert, key) = self.open_window(p)?;
        let now = self.now();
        if let Err(why) = self.check_qualification(&rec.kind, &cert).await {
            return refuse(ServiceError::forbidden(why)).await;
        }
        let max = self.config.evidence.pdf_sign_max_mb.max(1) << 20;
        if att.size > max {
            return refuse(too_large(max, att.size)).await;
        }
        let bytes = self.checked_blob(&sha, "添付ファイル")?;
        let anchors = self.evidence_anchors()?;
        let author = self.signer_name(version.author_id).await?;
        let checked = {
            let anchors = anchors.clone();
            tokio::task::spawn_blocking(move || -> Result<_> {
                check_signable(&bytes, &anchors, max)?;
                mamori_pdf::prepare_signature(
                    &bytes,
                    &SigningRequest {
                        field: Field::Signature,
                        signing_unix: Some(now / 1000),
                        name: Some(author),
                        reason: Some("作成者（責任者）としての電子署名（添付文書）".into()),
                        location: None,
                        room: super::pdf::CONTENTS_ROOM,
                    },
                )
                .map_err(unreadable)
            })
            .await
            .map_err(ServiceError::internal)?
        };
        let placeholder = match checked {
            Ok(p) => p,
            Err(e) => return refuse(e).await,
        };
        let issuers = anchors.issuers_of(&cert);
        let (cert_c, bytes) = (cert.clone(), placeholder.signed_bytes());
        let cms = tokio::task::spawn_blocking(move || {
            pades::sign(&bytes, &cert_c, &issuers, key.as_ref()).map_err(from_evidence)
        })
        .await
        .map_err(ServiceError::internal)??;
        self.finish_pdf(p, &rec, &version, placeholder, cms, &row.serial, now, &sha)
            .await
    }

    pub(super) async fn signer_name(self: &Arc<Self>, account_id: i64) -> Result<String> {
        Ok(self
            .store
            .read(move |r| r.account(account_id))
            .await?
            .map(|a| a.display_name)
            .unwrap_or_default())
    }
}

/// One signature found in an uploaded PDF, as shown beside the attachment.
#[derive(Clone, Debug, serde::Serialize)]
pub struct UploadedSignature {
    pub signer: String,
    /// The holder's name when it is a マイナンバーカード signature.
    pub jpki_holder: Option<String>,
    pub jpki_test_card: bool,
    pub level: String,
    pub validated_at: Option<mamori_domain::Millis>,
}

/// The signatures already in an uploaded PDF, verified against the facility's roots (staff
/// signers and マイナンバーカード): `Ok(empty)` when it has none, `Err(reason)` when one fails.
pub fn uploaded_signatures(
    bytes: &[u8],
    anchors: &Anchors,
) -> std::result::Result<Vec<UploadedSignature>, String> {
    let sigs = match mamori_pdf::signatures(bytes) {
        Ok(s) => s,
        Err(mamori_pdf::PdfError::Encrypted) => {
            return Err("暗号化された PDF のため署名を確認できません".into());
        }
        Err(e) => return Err(e.to_string()),
    };
    if sigs.is_empty() {
        return Ok(Vec::new());
    }
    let reports =
        pades::verify(bytes, &anchors.for_pdf(true), &anchors.tsa).map_err(|e| e.message)?;
    Ok(reports
        .into_iter()
        .filter_map(|r| r.signature)
        .map(|s| UploadedSignature {
            signer: s.signer_subject,
            jpki_holder: s.jpki.as_ref().map(|h| h.name.clone()),
            jpki_test_card: s.jpki.as_ref().is_some_and(|h| h.test_card),
            level: s.level.to_owned(),
            validated_at: Some(s.validated_at),
        })
        .collect())
}
