//! Signatures made outside mamori (an HPKI card in the signer's own tool): the signing task
//! handed out, the returned signature checked and stored, and imported signing identities.

use super::*;

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
    /// For the kinds with a signed PDF (`evidence.pdf_kinds`): the PDF's signed attributes
    /// (DER, base64) to sign the same way; its value goes back as `pdf_signature_base64`.
    pub pdf_to_be_signed: Option<String>,
    pub pdf_digest_sha256: Option<String>,
}

/// A signer certificate its CA's CRL lists as revoked.
fn revoked(at: Millis) -> ServiceError {
    ServiceError::invalid(
        "certificate",
        format!(
            "署名者の証明書は {} に失効しています（認証局の CRL: evidence.signer_crls）",
            mamori_evidence::format_time(at)
        ),
    )
}

impl Service {
    /// Only the version's author, in a role that may finalise its kind, signs it; checked
    /// before anything about the version's state is revealed.
    /// Whether `p` may sign this version outside mamori; a refusal is in the ledger under
    /// `action`.
    pub(super) async fn external_signer_check(
        self: &Arc<Self>,
        p: &Principal,
        record_id: i64,
        version_no: i64,
        action: &'static str,
    ) -> Result<()> {
        let check = self.external_signer_rule(p, record_id, version_no).await;
        self.gate(p, action, check).await
    }

    pub(super) async fn external_signer_rule(
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
        let (rec, version, stmt) = match self.unsigned_version(record_id, version_no).await? {
            Some(u) => (u.rec.clone(), u.version.clone(), self.statement(&u)?),
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
        if let Some(at) = anchors.revoked_at(&signer, &certs)
            && at <= now
        {
            let t = Target {
                record: Some(record_id),
                version: Some(version_no),
                patient: Some(rec.patient_id.clone()),
                ..Default::default()
            };
            let e = revoked(at);
            return self
                .refuse(p, actions::RECORD_SIGNING_REQUESTED, t, e)
                .await;
        }
        if let Err(why) = self.check_qualification(&rec.kind, &signer).await {
            let t = Target {
                record: Some(record_id),
                version: Some(version_no),
                patient: Some(rec.patient_id.clone()),
                ..Default::default()
            };
            let e = ServiceError::invalid("certificate", why);
            return self
                .refuse(p, actions::RECORD_SIGNING_REQUESTED, t, e)
                .await;
        }
        let prepared = cades::prepare(&stmt, &signer, now).map_err(from_evidence)?;
        // The document too, for the kinds that have one: its signed attributes over the byte
        // range of the PDF as it will be (the same bytes are made again at step 2).
        let pdf_prepared = if self.config.evidence.pdf_for(&rec.kind) {
            let placeholder = self.pdf_placeholder(&rec, &version, now).await?;
            Some(
                mamori_evidence::pades::prepare(&placeholder.signed_bytes(), &signer)
                    .map_err(from_evidence)?,
            )
        } else {
            None
        };
        let task = SigningTask {
            record_id,
            version_no,
            to_be_signed: b64.encode(&prepared.to_be_signed),
            digest_sha256: hex::encode(mamori_evidence::sha256(&prepared.to_be_signed)),
            signing_time: now,
            statement: b64.encode(&stmt),
            pdf_to_be_signed: pdf_prepared.as_ref().map(|p| b64.encode(&p.to_be_signed)),
            pdf_digest_sha256: pdf_prepared
                .as_ref()
                .map(|p| hex::encode(mamori_evidence::sha256(&p.to_be_signed))),
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
        self.complete_external_signature_with_pdf(p, record_id, version_no, signature_b64, None)
            .await
    }

    /// Step 2 with the signature value over the PDF's signed attributes as well (for the kinds
    /// with a signed PDF): the statement is signed first; the PDF, made again byte for byte,
    /// gets its signature checked against the certificate, then its time-stamps and validation
    /// data. A PDF value that does not verify leaves no PDF and says why.
    pub async fn complete_external_signature_with_pdf(
        self: &Arc<Self>,
        p: &Principal,
        record_id: i64,
        version_no: i64,
        signature_b64: &str,
        pdf_signature_b64: Option<&str>,
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
        // The PDF's value is decoded before anything is stored, so a malformed one refuses the
        // whole call.
        let pdf_signature = match pdf_signature_b64.map(str::trim).filter(|s| !s.is_empty()) {
            Some(s) => Some(
                base64::engine::general_purpose::STANDARD
                    .decode(s)
                    .map_err(|_| {
                        ServiceError::invalid(
                            "pdf_signature_base64",
                            "PDF の署名値は base64 で指定してください",
                        )
                    })?,
            ),
            None => None,
        };
        let mut outcome = self
            .store_signature(
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
            .await?;
        if outcome.signed && self.config.evidence.pdf_for(&rec.kind) {
            let made = match pdf_signature {
                None => Err(ServiceError::invalid(
                    "pdf_signature_base64",
                    "PDF の署名値 (pdf_signature_base64) がないため、署名付き PDF は作られていません",
                )),
                Some(value) => {
                    async {
                        let placeholder = self
                            .pdf_placeholder(&rec, &version, req.signing_time)
                            .await?;
                        let prepared =
                            mamori_evidence::pades::prepare(&placeholder.signed_bytes(), &signer)
                                .map_err(from_evidence)?;
                        let cms =
                            cades::assemble(prepared, algorithm, &value, &chain).map_err(|e| {
                                ServiceError::invalid(
                                    "pdf_signature_base64",
                                    format!("PDF の署名値を検証できません: {}", e.message),
                                )
                            })?;
                        self.finish_pdf(
                            p,
                            &rec,
                            &version,
                            placeholder,
                            cms,
                            &signer.serial_hex(),
                            req.signing_time,
                            mamori_store::SIGNED_PDF_LETTER,
                        )
                        .await
                    }
                    .await
                }
            };
            if let Err(e) = made {
                outcome.message = Some(e.message);
            }
        }
        Ok(outcome)
    }

    /// Imports a signing identity from PKCS#12 (e.g. an HPKI certificate with its key) for the
    /// account `login`: the key must match the certificate, and the certificate chain to a
    /// trusted signer root (the facility CA or `evidence.signer_trust`). The key goes into a new
    /// token of its own under `pin`, the holder's signing PIN (typed by the holder), and becomes
    /// the account's current signing key; nothing of it stays in a file. For the command line.
    pub async fn import_signing_identity(
        self: &Arc<Self>,
        login: &str,
        p12: &[u8],
        password: &str,
        pin: &str,
    ) -> Result<SigningCertRow> {
        self.check_pin_form(pin)?;
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
        if let Some(at) = anchors.revoked_at(&cert, &certs)
            && at <= now
        {
            return Err(revoked(at).with_field("p12"));
        }
        let serial = cert.serial_hex();
        let module = self.token_module()?;
        let (label, token_pin) = (
            super::window::token_label(&serial),
            super::window::token_pin(&serial, pin),
        );
        let pkcs8 = chain.key().to_vec();
        tokio::task::spawn_blocking(move || module.import_key(&label, &token_pin, &pkcs8))
            .await
            .map_err(ServiceError::internal)?
            .map_err(super::window::token_error)?;
        let row = SigningCertRow {
            serial: serial.clone(),
            account_id: account.id,
            cert: cert.der.clone(),
            source: super::window::SOURCE_TOKEN_IMPORTED.into(),
            not_before: cert.not_before(),
            not_after: cert.not_after(),
            created_at: now,
            retired_at: None,
        };
        let mut t = Target::default();
        t.detail("subject", cert.subject());
        t.detail("issuer", cert.issuer());
        t.detail("token", super::window::token_label(&serial));
        self.close_signing_windows(Some(account.id), None);
        self.record_signing_cert(actions::SIGNING_CERT_IMPORTED, &row, &account.login, t)
            .await?;
        Ok(row)
    }
}
