//! Time-stamps: the configured TSAs (through the `outside` port) or the development TSA, and
//! the time-stamp that turns a CAdES-B-B signature into CAdES-B-T.

use super::*;

impl Service {
    /// The development TSA (kept parsed while its certificate needs no renewal).
    pub(super) fn dev_tsa(&self) -> Result<Arc<DevTsa>> {
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
    pub(super) fn load_dev_tsa(&self) -> Result<DevTsa> {
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

    /// Adds to a time-stamped `.p7s` the signer's CA chain and the CAs' current CRLs (the
    /// facility CA's own, and those of outside CAs the facility keeps in
    /// `evidence.signer_crls`): B-LT, checkable offline for as long as the evidence records
    /// that will cover it are renewed. Without a CRL of the signer's CA it stays B-T.
    pub(super) async fn with_validation_data(
        self: &Arc<Self>,
        p7s: Vec<u8>,
    ) -> (Vec<u8>, &'static str) {
        let made = async {
            let cert = cades::signer_certificate(&p7s).map_err(from_evidence)?;
            let anchors = self.evidence_anchors()?;
            let issuers = anchors.issuers_of(&cert);
            let mut crls: Vec<mamori_evidence::crl::Crl> = anchors
                .crls
                .iter()
                .filter(|c| c.list.tbs_cert_list.issuer == cert.parsed.tbs_certificate.issuer)
                .cloned()
                .collect();
            let facility = crate::access::ca::ca_pem(&self.data_dir)
                .and_then(|p| mamori_evidence::cert::Cert::from_pem_chain(&p).ok())
                .unwrap_or_default();
            if facility.iter().any(|ca| cert.is_signed_by(ca)) {
                let pem = self.crl_pem(7).await?;
                crls.extend(
                    mamori_evidence::crl::Crl::from_file_bytes(pem.as_bytes())
                        .map_err(from_evidence)?,
                );
            }
            if crls.is_empty() {
                return Ok::<_, ServiceError>(None);
            }
            Ok(Some(
                cades::with_validation_data(&p7s, &issuers, &crls).map_err(from_evidence)?,
            ))
        };
        match made.await {
            Ok(Some(longer)) => (longer, "CAdES-B-LT"),
            Ok(None) => (p7s, "CAdES-B-T"),
            Err(e) => {
                tracing::warn!(error = %e.message, "signature kept at B-T without validation data");
                (p7s, "CAdES-B-T")
            }
        }
    }

    /// Adds the signature time-stamp (B-T), or records the failure and when to retry.
    pub(super) async fn timestamp_signature(
        self: &Arc<Self>,
        sig: &SignatureRow,
    ) -> Result<TokenInfo> {
        let digest = cades::signature_value(&sig.p7s)
            .map(|v| mamori_evidence::sha256(&v).to_vec())
            .map_err(from_evidence)?;
        match self.time_stamp(digest).await {
            Ok((token, info)) => {
                let p7s =
                    cades::with_signature_timestamp(&sig.p7s, &token).map_err(from_evidence)?;
                let (p7s, level) = self.with_validation_data(p7s).await;
                let mut t = Target {
                    record: Some(sig.record_id),
                    version: Some(sig.version_no),
                    ..Default::default()
                };
                t.detail("gen_time", info.gen_time);
                t.detail("tsa", info.tsa_subject.clone());
                t.detail("tsa_serial", info.serial.clone());
                t.detail("policy", info.policy.clone());
                t.detail("level", level);
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
}

impl Service {
    /// Checks a stored RFC 3161 token over `digest` against the configured TSA roots (for
    /// stamps made outside the evidence pillar: transaction documents).
    pub(crate) fn check_time_stamp(&self, token: &[u8], digest: &[u8]) -> Result<TokenInfo> {
        let anchors = self.evidence_anchors()?;
        tsp::verify_token(token, digest, &anchors.tsa).map_err(from_evidence)
    }
}

impl Service {
    /// The TSA roots time-stamps are checked against, as PEM (put beside exported tokens so
    /// they can be checked with `openssl ts -verify` elsewhere).
    pub(crate) fn tsa_roots_pem(&self) -> Result<String> {
        Ok(self
            .evidence_anchors()?
            .tsa
            .iter()
            .map(|c| c.to_pem())
            .collect::<Vec<_>>()
            .join(""))
    }
}
