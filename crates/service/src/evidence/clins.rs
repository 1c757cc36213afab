//! JP-CLINS 診療情報提供書 documents: when the author of a finalised 紹介状 prepares it for a
//! destination, mamori makes the FHIR document Bundle (`mamori_fhir::clins`) with the signed
//! PDF of the same version inside, and the author signs it with the key of their open window —
//! their own act, never a background job or another person's — with a time-stamp when a TSA
//! answers. The signature is verified before the Bundle is kept (a blob, a row, a ledger entry
//! with its hash and destination); whoever may export the record can fetch it again, re-hashed
//! on the way out.

use std::sync::Arc;

use mamori_domain::audit::actions;
use mamori_domain::permission::Action;
use mamori_evidence::cades;
use mamori_fhir::clins::{self, ReferralFacts};
use mamori_fhir::patient::PatientFacts;
use mamori_store::{FhirDocumentRow, SIGNED_PDF_LETTER};
use serde_json::Value;

use super::from_evidence;
use crate::error::{ErrorCode, Result, ServiceError};
use crate::{Principal, Service, Target};

/// A signed document as kept: its ID and the Bundle.
#[derive(Debug, Clone)]
pub struct ClinsDocument {
    pub id: String,
    pub bundle: Value,
    pub record_id: i64,
    pub version_no: i64,
}

/// What the author gives when preparing a 紹介状 to send: the destination, the purpose (the
/// record's title when not given), the problem, the version (the newest finalised one when not
/// given).
pub type ReferralRequest = mamori_fhir::clins::Asked;

/// Whether `p` may prepare this record's JP-CLINS document (what the record page offers): a
/// 紹介状 whose newest finalised version `p` wrote, and the right to send it out.
pub fn may_prepare_referral_document(p: &Principal, view: &crate::records::RecordView) -> bool {
    view.kind == clins::REFERRAL_KIND
        && p.role.allows(Action::PrintExport, Some(&view.kind))
        && view
            .versions
            .iter()
            .rev()
            .find(|v| v.state == "finalised")
            .is_some_and(|v| v.author.id == p.account.id)
}

impl Service {
    /// Makes and signs the JP-CLINS 診療情報提供書 of a finalised 紹介状, for its author in their
    /// open signing window.
    pub async fn sign_referral_document(
        self: &Arc<Self>,
        p: &Principal,
        record_id: i64,
        req: ReferralRequest,
    ) -> Result<ClinsDocument> {
        let (rec, versions, patient) = self
            .store
            .read(move |r| {
                let rec = r.record(record_id)?;
                let versions = r.versions(record_id)?;
                let patient = match &rec {
                    Some(rec) => r.patient(&rec.patient_id)?,
                    None => None,
                };
                Ok::<_, mamori_store::StoreError>((rec, versions, patient))
            })
            .await?;
        let rec = rec.ok_or_else(|| ServiceError::not_found("記録"))?;
        let mut t = Target {
            record: Some(record_id),
            patient: Some(rec.patient_id.clone()),
            ..Default::default()
        };
        t.detail("format", "jp-clins");
        t.detail("destination", req.to.organization.clone());
        let refuse = |e: ServiceError, t: Target| {
            let svc = self.clone();
            async move {
                svc.refuse::<ClinsDocument>(p, actions::SIGNING_REFUSED, t, e)
                    .await
            }
        };
        if let Err(e) = p.require(Action::PrintExport, Some(&rec.kind)) {
            return refuse(e, t).await;
        }
        if rec.kind != clins::REFERRAL_KIND {
            return refuse(
                ServiceError::invalid(
                    "kind",
                    "JP-CLINS の診療情報提供書にできるのは紹介状（referral）の記録だけです",
                ),
                t,
            )
            .await;
        }
        let version = versions
            .iter()
            .filter(|v| v.state == "finalised")
            .filter(|v| req.version.is_none_or(|n| v.version_no == n))
            .max_by_key(|v| v.version_no)
            .cloned();
        let Some(version) = version else {
            return refuse(
                ServiceError::invalid(
                    "version",
                    "確定した版がありません（診療情報提供書は確定した紹介状から作ります）",
                ),
                t,
            )
            .await;
        };
        t.version = Some(version.version_no);
        if p.account.id != version.author_id {
            return refuse(
                ServiceError::forbidden(
                    "診療情報提供書に署名できるのは、この紹介状の作成者（責任者）本人だけです",
                ),
                t,
            )
            .await;
        }
        let (row, cert, key) = self.open_window(p)?;
        let now = self.now();
        if let Err(why) = self.check_qualification(&rec.kind, &cert).await {
            return refuse(ServiceError::forbidden(why), t).await;
        }
        let patient = patient.ok_or_else(|| ServiceError::not_found("患者"))?;
        let content = self.load_content(&version.content_sha256)?;
        let author = self.signer_name(version.author_id).await?;
        let (rid, vno) = (record_id, version.version_no);
        let (pdf_row, earlier) = self
            .store
            .read(move |r| {
                Ok::<_, mamori_store::StoreError>((
                    r.signed_pdf(rid, vno, SIGNED_PDF_LETTER)?,
                    r.fhir_documents_of_version(rid, vno)?.len(),
                ))
            })
            .await?;
        let pdf = match pdf_row {
            Some(row) => Some(self.checked_blob(&row.pdf_sha256, "署名付き PDF のファイル")?),
            None => None,
        };
        let institution = self.config.facility.institution_code.trim().to_owned();
        let facts = ReferralFacts {
            institution_code: institution.clone(),
            facility: self.facility().to_owned(),
            record_id,
            version_no: version.version_no,
            serial: earlier as i64 + 1,
            finalised_at: version.finalised_at.unwrap_or(version.created_at),
            made_at: now,
            patient: PatientFacts {
                id: patient.id.clone(),
                name_kanji: patient.name_kanji.clone(),
                name_kana: patient.name_kana.clone(),
                birth_date: patient.birth_date.clone(),
                sex: patient.sex.clone(),
                created_at: patient.created_at,
            },
            author,
            to: req.to.clone(),
            purpose: req.purpose.clone().unwrap_or_else(|| content.title.clone()),
            problem: req.problem.clone(),
            body: content.body.clone(),
            pdf,
        };
        let ctx = mamori_fhir::Context::new(&institution);
        let bundle = match clins::referral(&facts, &ctx) {
            Ok(b) => b,
            Err(r) => {
                let field = match r.expression.as_deref() {
                    Some("referralToOrganization") => "Parameters.parameter.referralToOrganization",
                    Some("purpose") => "Parameters.parameter.purpose",
                    _ => "facility.institution_code",
                };
                let e = ServiceError::invalid(field, r.message);
                return refuse(e, t).await;
            }
        };
        let id = bundle["identifier"]["value"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let mut bundle = bundle;
        bundle["id"] = Value::String(id.clone());
        let signed = clins::signed_bytes(&bundle);
        let anchors = self.evidence_anchors()?;
        let issuers = anchors.issuers_of(&cert);
        let p7s = cades::sign_detached(&signed, &cert, &issuers, key.as_ref(), now)
            .map_err(from_evidence)?;
        let digest = cades::signature_value(&p7s)
            .map(|v| mamori_evidence::sha256(&v).to_vec())
            .map_err(from_evidence)?;
        let (p7s, stamped_at) = if self.tsa_configured() {
            match self.time_stamp(digest).await {
                Ok((token, info)) => (
                    cades::with_signature_timestamp(&p7s, &token).map_err(from_evidence)?,
                    Some(info.gen_time),
                ),
                Err(_) => (p7s, None),
            }
        } else {
            (p7s, None)
        };
        cades::verify_detached(&p7s, &signed, &anchors.signers, &anchors.tsa)
            .map_err(from_evidence)?;
        let bundle = clins::with_signature(bundle, now, &p7s);
        let bytes = serde_json::to_vec(&bundle).map_err(ServiceError::internal)?;
        let (sha, held) = self.store.blobs().put_held(&bytes)?;
        let doc = FhirDocumentRow {
            id: id.clone(),
            record_id,
            version_no: version.version_no,
            bundle_sha256: sha.clone(),
            destination: req.to.organization.clone(),
            signer_serial: row.serial.clone(),
            signed_at: now,
            timestamped_at: stamped_at,
        };
        t.content_sha256 = Some(version.content_sha256.clone());
        t.detail("document_id", id.clone());
        t.detail("bundle_sha256", sha.clone());
        t.detail("signer_serial", row.serial.clone());
        t.detail("timestamped", stamped_at.is_some());
        let size = bytes.len() as u64;
        let written = self
            .write_audited(
                Some(p),
                actions::RECORD_FHIR_DOCUMENT_SIGNED,
                t,
                move |_, tx, _| {
                    tx.insert_blob(&doc.bundle_sha256, size, mamori_fhir::MEDIA_TYPE, now)?;
                    if !tx.insert_fhir_document(&doc)? {
                        return Err(ServiceError::new(
                            ErrorCode::Exists,
                            "同じ番号の診療情報提供書が同時に作られました。もう一度作成してください",
                        ));
                    }
                    Ok(())
                },
            )
            .await;
        drop(held);
        self.discard_if_refused(&written, vec![sha]).await;
        written?;
        Ok(ClinsDocument {
            id,
            bundle,
            record_id,
            version_no: version.version_no,
        })
    }

    /// A signed JP-CLINS document, for whoever may export its record (a `record.export`
    /// entry). The file is re-hashed on the way out.
    pub async fn referral_document(
        self: &Arc<Self>,
        p: &Principal,
        id: &str,
    ) -> Result<ClinsDocument> {
        let pc = p.clone();
        let id_c = id.to_owned();
        let row = self
            .read_audited(p, actions::RECORD_EXPORT, move |_, r, t| {
                t.detail("format", "jp-clins");
                t.detail("document_id", mamori_fhir::smart::clip(&id_c));
                let row = r
                    .fhir_document(&id_c)?
                    .ok_or_else(|| ServiceError::not_found("診療情報提供書"))?;
                t.version = Some(row.version_no);
                Self::readable_for_export(r, &pc, row.record_id, t)?;
                Ok(row)
            })
            .await?;
        let bytes = self.checked_blob(&row.bundle_sha256, "診療情報提供書のファイル")?;
        let bundle = serde_json::from_slice(&bytes).map_err(ServiceError::internal)?;
        Ok(ClinsDocument {
            id: row.id,
            bundle,
            record_id: row.record_id,
            version_no: row.version_no,
        })
    }

    /// The JP-CLINS documents made of a record, for its page (which has already been read
    /// under the record's rights and ledgered).
    pub async fn referral_documents_of(
        self: &Arc<Self>,
        record_id: i64,
    ) -> Result<Vec<FhirDocumentRow>> {
        Ok(self
            .store
            .read(move |r| r.fhir_documents_of(record_id))
            .await?)
    }
}
