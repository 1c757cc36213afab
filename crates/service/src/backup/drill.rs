//! Restore drills: a snapshot restored into a scratch directory and checked the way
//! `mamori verify` checks a live instance, so a backup is known to be restorable, not assumed.

use super::*;

#[derive(Clone, Debug, Serialize)]
pub struct DrillReport {
    pub ok: bool,
    pub target: String,
    pub snapshot: String,
    pub snapshot_created_at: String,
    /// Restore, open and verify, end to end: the recovery time this drill proved.
    pub seconds: f64,
    pub restore_seconds: f64,
    pub verify_seconds: f64,
    pub bytes: u64,
    pub files: usize,
    pub started: bool,
    pub verify_ok: bool,
    pub ledger_size: u64,
    pub ledger_root: String,
    pub ledger_matches: bool,
    pub records_match: bool,
    pub problems: Vec<String>,
    pub kept_at: Option<PathBuf>,
}

/// A restore drill: restores `snapshot` (or the newest) into scratch space under `scratch`,
/// verifies it in full, opens it as an instance, and compares its ledger and records with the
/// signed manifest. Never touches the live instance; the scratch copy is removed unless
/// `keep` is set.
pub fn drill(
    target: &str,
    snapshot: Option<&str>,
    key: &KeyMaterial,
    scratch: &Path,
    keep: bool,
    progress: &dyn Progress,
) -> Result<DrillReport> {
    let started = std::time::Instant::now();
    let repo = open_repository(target, key)?;
    let id = repo.resolve(snapshot)?;
    let dest = scratch.join(format!("mamori-drill-{}", crate::crypto::random_hex(4)));
    let restored = mamori_backup::restore(&repo, &id, &dest, None, progress)?;
    let restore_seconds = started.elapsed().as_secs_f64();
    let cleanup = |d: &Path| {
        if !keep {
            let _ = std::fs::remove_dir_all(d);
        }
    };
    let mut problems = Vec::new();
    let expected: Option<InstanceFacts> =
        serde_json::from_value(restored.manifest.facts.clone()).ok();
    if expected.is_none() {
        problems.push("目録にインスタンスの事実（台帳の大きさと根）がありません".to_owned());
    }
    let v_started = std::time::Instant::now();
    let verified = crate::ledger::verify::verify(
        &dest,
        &crate::ledger::verify::VerifyOptions {
            external_checkpoint: None,
            trusted_key: None,
            skip_blobs: false,
        },
    );
    let verify_seconds = v_started.elapsed().as_secs_f64();
    let verify_ok = match &verified {
        Ok(r) if r.ok => true,
        Ok(r) => {
            problems.extend(r.problems.iter().take(20).cloned());
            false
        }
        Err(e) => {
            problems.push(e.to_string());
            false
        }
    };
    // Opening it as an instance is what a restore after an incident does next.
    let started_ok = match crate::instance::open(&dest) {
        Ok(svc) => {
            svc.store().close();
            true
        }
        Err(e) => {
            problems.push(format!("復元したインスタンスを起動できません: {e}"));
            false
        }
    };
    let found = instance_facts(&dest);
    let (ledger_matches, records_match, ledger_size, ledger_root) = match (&found, &expected) {
        (Ok(f), Some(e)) => {
            let l = f.ledger_size == e.ledger_size
                && f.ledger_root == e.ledger_root
                && f.origin == e.origin;
            let r = f.versions == e.versions && f.versions_digest == e.versions_digest;
            if !l {
                problems.push(format!(
                    "台帳が目録と合いません（目録: {} 件 {}, 復元: {} 件 {}）",
                    e.ledger_size, e.ledger_root, f.ledger_size, f.ledger_root
                ));
            }
            if !r {
                problems.push("記録の版が目録と合いません".to_owned());
            }
            (l, r, f.ledger_size, f.ledger_root.clone())
        }
        (Err(e), _) => {
            problems.push(e.to_string());
            (false, false, 0, String::new())
        }
        (Ok(f), None) => (false, false, f.ledger_size, f.ledger_root.clone()),
    };
    // A manifest must be signed by the key of the instance it describes.
    if let Ok(f) = &found {
        let key = manifest_key_of(&f.verifier_key);
        if let Err(e) = repo
            .load_snapshot(&id)
            .and_then(|s| s.verified(key.as_ref()))
        {
            problems.push(e.to_string());
        }
    }
    cleanup(&dest);
    let ok = problems.is_empty() && verify_ok && started_ok && ledger_matches && records_match;
    Ok(DrillReport {
        ok,
        target: repo.target().describe(),
        snapshot: id,
        snapshot_created_at: restored.manifest.created_at.clone(),
        seconds: started.elapsed().as_secs_f64(),
        restore_seconds,
        verify_seconds,
        bytes: restored.bytes,
        files: restored.files,
        started: started_ok,
        verify_ok,
        ledger_size,
        ledger_root,
        ledger_matches,
        records_match,
        problems,
        kept_at: keep.then_some(dest),
    })
}

impl Service {
    /// Runs a restore drill of the newest snapshot of the first configured target in the
    /// background (into scratch space under the data directory) and records it.
    pub async fn drill_now(self: &Arc<Self>, p: &Principal) -> Result<()> {
        let pc = p.clone();
        self.write_audited(
            Some(p),
            actions::BACKUP_REQUESTED,
            Target::default(),
            move |_, _, t| {
                t.detail("drill", true);
                pc.require(Action::AdminSettings, None)
            },
        )
        .await?;
        let target = self.configured_targets()?.swap_remove(0);
        let key = configured_key(&self.data_dir, &self.config.backup)?;
        let turn = self.claim_backup_runner().await?;
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let scratch = this.data_dir.join(STAGING);
            let t2 = target.clone();
            let result = crate::scheduler::in_background(move || {
                std::fs::create_dir_all(&scratch).map_err(|e| io(&scratch, e))?;
                drill(&t2, None, &key, &scratch, false, &NoProgress)
            })
            .await
            .unwrap_or_else(Err);
            let detail = match result {
                Ok(report) => report.detail(),
                Err(e) => serde_json::json!({
                    "ok": false,
                    "target": target_label(&target),
                    "problems": [e.message],
                }),
            };
            if let Err(e) = this
                .record_system_event(actions::BACKUP_DRILL, detail)
                .await
            {
                tracing::error!(error = %e, "could not record a restore drill in the ledger");
            }
            drop(turn);
        });
        Ok(())
    }
}
