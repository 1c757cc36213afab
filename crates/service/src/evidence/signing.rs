//! Signing finalised versions: each author's signing key and certificate (issued by the
//! facility CA), the statement signed for a version, and the stored CAdES signature.

use super::*;
use mamori_evidence::cades::RawSigner;

impl Service {
    /// Makes `row` the account's current signing certificate, recorded in the ledger.
    pub(super) async fn record_signing_cert(
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

    /// The account and the subject of its signing certificate: name, facility, 職種 and login.
    pub(super) async fn signer_subject(
        self: &Arc<Self>,
        account_id: i64,
    ) -> Result<(mamori_store::Account, Vec<(DnType, String)>)> {
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
        let subject = vec![
            (DnType::CommonName, account.display_name.clone()),
            (DnType::OrganizationName, self.facility().to_owned()),
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
        Ok((account, subject))
    }

    /// A finalised version that has no signature yet, with what its statement names; `None`
    /// when it is signed already.
    pub(super) async fn unsigned_version(
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
    pub(super) fn statement(&self, u: &Unsigned) -> Result<Vec<u8>> {
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

    /// Whether `cert` carries a qualification (hcRole) that records of `kind` require
    /// (`evidence.qualifications`): an HPKI one, or the facility CA's own statement when
    /// `evidence.facility_qualifications` allows it. The refusal says what was needed and found.
    pub(super) async fn check_qualification(
        self: &Arc<Self>,
        kind: &str,
        cert: &Cert,
    ) -> std::result::Result<(), String> {
        use mamori_evidence::hcrole::{self, HcRole};
        let cfg = &self.config.evidence;
        let Some(required) = cfg.qualifications.get(kind).filter(|r| !r.is_empty()) else {
            return Ok(());
        };
        let roles = hcrole::roles(cert);
        let counts = |r: &HcRole| r.is_hpki() || (r.is_facility() && cfg.facility_qualifications);
        if roles
            .iter()
            .any(|r| counts(r) && required.iter().any(|q| q == &r.name))
        {
            return Ok(());
        }
        let needed: Vec<String> = required
            .iter()
            .map(|q| {
                HcRole {
                    scheme: String::new(),
                    name: q.clone(),
                }
                .name_ja()
            })
            .collect();
        let found: Vec<String> = roles.iter().map(HcRole::label_ja).collect();
        let k = kind.to_owned();
        let kind = self
            .store
            .read(move |r| r.kind(&k))
            .await
            .ok()
            .flatten()
            .map_or_else(|| kind.to_owned(), |k| k.name_ja);
        Err(format!(
            "{kind}には {} の資格 (hcRole) を示す証明書での署名が必要です。署名者の証明書の資格: {}{}",
            needed.join("・"),
            if found.is_empty() {
                "なし".to_owned()
            } else {
                found.join("、")
            },
            if cfg.facility_qualifications {
                ""
            } else {
                "（施設CAによる資格は認めない設定です）"
            }
        ))
    }

    /// Whether this author signs outside mamori (HPKI card, cloud signing service).
    pub(super) fn signs_externally(&self, login: &str) -> bool {
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
        // Authors who sign outside mamori are left alone before any statement is built: their
        // versions wait for the external-signing API.
        if self.signs_externally(u.author_login()) {
            return Ok(none(Some(
                "作成者の外部署名（HPKI カード等）を待っています",
            )));
        }
        // Only the author's own act signs, inside the author's open window: never a background
        // job, never someone else acting on the record.
        let awaiting = |why: &str| SignOutcome {
            signed: false,
            timestamped: false,
            message: Some(why.to_owned()),
        };
        let Some(p) = p else {
            return Ok(awaiting("作成者の署名を待っています"));
        };
        if p.account.id != u.version.author_id {
            return Ok(awaiting("作成者の署名を待っています"));
        }
        let Some((row, cert, key)) = self.window_of(p) else {
            return Ok(awaiting(
                "署名ウィンドウが開いていないため、署名を待っています（署名用 PIN で開くと署名されます）",
            ));
        };
        if self.now() >= row.not_after {
            return Ok(awaiting(
                "署名用証明書の有効期限が切れています。電子署名のページで新しい署名鍵を作ってください",
            ));
        }
        if let Err(why) = self.check_qualification(&u.rec.kind, &cert).await {
            let mut t = Target {
                record: Some(record_id),
                version: Some(version_no),
                patient: Some(u.rec.patient_id.clone()),
                ..Default::default()
            };
            t.detail("signer_serial", row.serial.clone());
            let e = ServiceError::forbidden(why.clone());
            let _ = self.refuse::<()>(p, actions::SIGNING_REFUSED, t, e).await;
            return Ok(awaiting(&why));
        }
        let stmt = self.statement(&u)?;
        let (rec, version) = (u.rec, u.version);
        let cert = &cert;
        let now = self.now();
        let anchors = self.evidence_anchors()?;
        let issuers = anchors.issuers_of(cert);
        let p7s = cades::sign_detached(&stmt, cert, &issuers, key.as_ref(), now)
            .map_err(from_evidence)?;
        let mut outcome = self
            .store_signature(
                Some(p),
                &rec,
                &version,
                stmt,
                p7s,
                &row.serial,
                cert,
                now,
                false,
            )
            .await?;
        // The document itself, signed in the same act with the same key; a failure leaves the
        // statement's signature standing and says why.
        if outcome.signed && self.config.evidence.pdf_for(&rec.kind) {
            let signer: Arc<dyn RawSigner + Send + Sync> = key.clone();
            if let Err(e) = self
                .sign_pdf(p, &rec, &version, &row.serial, cert, &issuers, signer, now)
                .await
            {
                tracing::warn!(record = record_id, version = version_no, error = %e.message, "signed PDF not made");
                outcome.message = Some(e.message);
            }
        }
        Ok(outcome)
    }

    /// Time-stamps a fresh signature and stores both in one commit (B-B alone when no TSA
    /// answers: it is retried later).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn store_signature(
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
        let (p7s, token_info, error, level) = match stamped {
            Ok((token, info)) => {
                let stamped =
                    cades::with_signature_timestamp(&p7s, &token).map_err(from_evidence)?;
                let (p7s, level) = self.with_validation_data(stamped).await;
                (p7s, Some(info), None, level)
            }
            Err(e) => (p7s, None, Some(e.message), "CAdES-B-B"),
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
                t.detail("level", level);
                t.detail("gen_time", info.gen_time);
                t.detail("tsa", info.tsa_subject.clone());
                t.detail("tsa_serial", info.serial.clone());
            }
            None => {
                t.detail("level", level);
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
}
