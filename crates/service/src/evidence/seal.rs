//! Evidence records (RFC 4998): the sweep that retries due time-stamps (it never signs), sealing signatures into hash trees, and renewing them before their algorithms or
//! certificates weaken.

use super::*;

/// Signatures per evidence record at most. Marking each member is a row change stated in the
/// sealing ledger entry; 10,752 at once held the writer 592 ms (every chart read waits for its
/// own ledger entry behind it), 1,024 hold it about 55 ms.
pub const SEAL_BATCH: usize = 1024;

/// The stored form of a tree (`family` 0: a new family, the tree's own id).
pub(super) fn tree_row(
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
    /// The periodic evidence work of `serve`: retry due time-stamps, seal when the interval has passed, renew what needs renewal.
    pub async fn evidence_sweep(self: &Arc<Self>, force_seal: bool) -> Result<SweepReport> {
        let mut rep = SweepReport::default();
        if !self.config.evidence.sign {
            return Ok(rep);
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
        rep.pdfs_renewed = self.renew_pdfs().await?;
        Ok(rep)
    }

    pub(super) fn hash_alg(&self) -> Result<HashAlg> {
        HashAlg::parse(&self.config.evidence.hash).ok_or_else(|| {
            ServiceError::new(
                ErrorCode::Config,
                "evidence.hash は sha256 か sha512 にしてください",
            )
        })
    }

    /// Seals every time-stamped signature and checkpoint not yet in an evidence record, each
    /// batch of at most `SEAL_BATCH` signatures under one archive time-stamp. `None` when there
    /// was nothing new; otherwise the totals and the newest record.
    pub async fn seal_evidence(self: &Arc<Self>) -> Result<Option<SealReport>> {
        if !self.tsa_configured() {
            return Ok(None);
        }
        let alg = self.hash_alg()?;
        self.checkpoint_now().await?;
        let mut total: Option<SealReport> = None;
        loop {
            let (sigs, cps) = self
                .store
                .read(|r| {
                    Ok((
                        r.unsealed_signatures(Some(SEAL_BATCH))?,
                        r.unsealed_checkpoints()?,
                    ))
                })
                .await?;
            if sigs.is_empty() && cps.is_empty() {
                break;
            }
            let more = sigs.len() == SEAL_BATCH;
            let rep = self.seal_batch(alg, sigs, cps).await?;
            total = Some(match total {
                None => rep,
                Some(t) => SealReport {
                    signatures: t.signatures + rep.signatures,
                    checkpoints: t.checkpoints + rep.checkpoints,
                    ..rep
                },
            });
            if !more {
                break;
            }
        }
        Ok(total)
    }

    /// One evidence record over `sigs` and `cps`: its tree, its archive time-stamp, and every
    /// member marked, in one transaction.
    async fn seal_batch(
        self: &Arc<Self>,
        alg: HashAlg,
        sigs: Vec<mamori_store::SignatureRow>,
        cps: Vec<mamori_store::CheckpointMember>,
    ) -> Result<SealReport> {
        let (sigs2, cps2) = (sigs.clone(), cps.clone());
        let tree = crate::scheduler::in_background(move || -> Result<HashTree> {
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
        .await??;
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
                    token: token.clone(),
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
        Ok(SealReport {
            family,
            signatures: sigs.len(),
            checkpoints: cps.len(),
            root: hex::encode(root),
            gen_time: info.gen_time,
        })
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

    pub(super) async fn renew_hash_tree(
        self: &Arc<Self>,
        family: i64,
        alg: HashAlg,
    ) -> Result<RenewReport> {
        let this = Arc::clone(self);
        let (tree, chain_no) =
            crate::scheduler::in_background(move || -> Result<(HashTree, i64)> {
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
            .await??;
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
                token: token.clone(),
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
}
