//! Backups of a whole instance, their restore drills, and what the administrator is shown.
//!
//! The engine (mamori-backup) knows files; this module knows the instance: it copies the
//! database at one consistent moment while the server keeps writing, lists blobs, keys and
//! configuration, and signs into the manifest what the instance vouches for (ledger size and
//! root, a digest of every record version). A drill restores a snapshot into scratch space,
//! opens it as an instance, runs the full `verify` on it and compares it with those facts.
//!
//! Every run, failure, verification, drill and offline copy goes into the ledger. A command
//! run beside a live server cannot write the ledger (the server holds it), so it leaves the
//! event in `outbox/` and the server records it within a minute.
//!
//! Owns: running, verifying, pruning, restoring and drilling backups (here) and erasing a
//! retired target (`erase`). Calls `compliance::registers` to record an erasure.

mod drill;
pub mod erase;
mod paged_db;
mod status;
pub use drill::*;
pub use status::*;

use crate::ErrorCode;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ed25519_dalek::SigningKey;
use mamori_backup::engine::NoProgress;
use mamori_backup::keys::KdfParams;
use mamori_backup::{
    BackupError, BackupOutcome, KeyMaterial, Progress, PruneOutcome, Repository, Source,
};
use mamori_domain::Millis;
use mamori_domain::audit::actions;
use mamori_domain::permission::Action;
use mamori_ledger::Frontier;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::BackupConfig;
use crate::error::{Result, ServiceError};
use crate::ledger::operator::{Act, Journal, Recorded};
use crate::{Principal, Service, Target};

pub use mamori_backup::KeyFile;

pub use crate::ledger::operator::OUTBOX;
const STAGING: &str = "backup-staging";

impl From<BackupError> for ServiceError {
    fn from(e: BackupError) -> Self {
        let code = match &e {
            BackupError::WrongKey => ErrorCode::BackupWrongKey,
            BackupError::NoKey => ErrorCode::BackupNoKey,
            BackupError::Missing { .. } => ErrorCode::BackupMissing,
            BackupError::Corrupt { .. } => ErrorCode::BackupCorrupt,
            BackupError::NoSnapshot(_) => ErrorCode::BackupNoSnapshot,
            BackupError::NoRepository(_) => ErrorCode::BackupNoRepository,
            BackupError::Locked(_) => ErrorCode::BackupLocked,
            BackupError::RepoLocked(_) => ErrorCode::BackupRepoLocked,
            BackupError::Invalid(_) => ErrorCode::InvalidInput,
            BackupError::Io(_) => ErrorCode::BackupIo,
        };
        ServiceError::new(code, e.to_string())
    }
}

/// What the instance vouches for in each manifest, and what a drill must find again.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct InstanceFacts {
    pub facility: String,
    pub origin: String,
    pub verifier_key: String,
    pub ledger_size: u64,
    pub ledger_root: String,
    pub versions: u64,
    /// SHA-256 over every version's (record, number, state, content hash), in order.
    pub versions_digest: String,
    pub blobs: u64,
    /// The newest signed checkpoint (C2SP note) at the snapshot's moment, as the ledger holds it.
    #[serde(default)]
    pub checkpoint: Option<String>,
}

/// Reads the facts of the instance database in `dir` (one read snapshot).
pub fn instance_facts(dir: &Path) -> Result<InstanceFacts> {
    facts_of(&crate::instance::read_only(dir)?.get())
}

fn facts_of(r: &mamori_store::Reader<'_>) -> Result<InstanceFacts> {
    let size = r.ledger_size()?;
    let root = Frontier::load(&r.hashes(), size)
        .map_err(|e| ServiceError::new(ErrorCode::Corrupt, format!("台帳を読めません: {e}")))?
        .root();
    let mut h = Sha256::new();
    let mut versions = 0u64;
    let mut line = String::new();
    r.for_each_version_fact(|record, no, state, sha| {
        use std::fmt::Write;
        versions += 1;
        line.clear();
        let _ = writeln!(line, "{record}:{no}:{state}:{sha}");
        h.update(line.as_bytes());
    })?;
    Ok(InstanceFacts {
        facility: r.meta("facility")?.unwrap_or_default(),
        origin: r.meta("origin")?.unwrap_or_default(),
        verifier_key: r.meta("verifier_key")?.unwrap_or_default(),
        ledger_size: size,
        ledger_root: hex::encode(root),
        versions,
        versions_digest: hex::encode(h.finalize()),
        blobs: r.blob_count()?,
        checkpoint: r.checkpoints()?.pop().map(|c| c.note),
    })
}

/// The key for a repository: a key file (printed at the key ceremony) and/or a passphrase.
pub fn key_material(key_file: Option<&Path>, passphrase: Option<String>) -> Result<KeyMaterial> {
    let key_file = match key_file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                ServiceError::new(
                    ErrorCode::BackupNoKey,
                    format!("鍵ファイル {} を読めません: {e}", path.display()),
                )
            })?;
            Some(KeyFile::parse(&text)?)
        }
        None => None,
    };
    let m = KeyMaterial {
        passphrase: passphrase.filter(|p| !p.is_empty()).map(Into::into),
        key_file,
    };
    if m.is_empty() {
        return Err(BackupError::NoKey.into());
    }
    Ok(m)
}

/// The key the server itself uses for scheduled backups (`backup.key_file`, relative to the
/// data directory, and/or MAMORI_BACKUP_PASSPHRASE).
pub fn configured_key(dir: &Path, cfg: &BackupConfig) -> Result<KeyMaterial> {
    let file = (!cfg.key_file.is_empty()).then(|| {
        let p = PathBuf::from(&cfg.key_file);
        if p.is_absolute() { p } else { dir.join(p) }
    });
    key_material(
        file.as_deref(),
        std::env::var("MAMORI_BACKUP_PASSPHRASE").ok(),
    )
}

/// A read snapshot of the database and the list of everything else to back up.
pub struct Staged {
    pub sources: Vec<Source>,
    pub facts: InstanceFacts,
    /// Files made for this backup (a PostgreSQL instance's database copy), removed after.
    pub _made: Option<tempfile::TempDir>,
}

fn io(what: &Path, e: std::io::Error) -> ServiceError {
    ServiceError::new(
        ErrorCode::BackupIo,
        format!("{} を読めません: {e}", what.display()),
    )
}

/// Takes a read snapshot of the database (while the server may be writing) and lists the
/// instance's files. Blobs are content-addressed and written before the transaction that
/// references them, so every blob the snapshot names is already on disk when the directory is
/// listed. The database is read in place by the backup, only the parts changed since the
/// previous snapshot when the page map can tell (`paged_db.rs`).
pub fn stage(dir: &Path, include_keys: bool) -> Result<Staged> {
    if !dir.join("mamori.db").exists() && crate::instance::is_instance(dir) {
        return stage_postgres(dir, include_keys);
    }
    if !dir.join("mamori.db").exists() {
        return Err(ServiceError::new(
            ErrorCode::NoInstance,
            format!("{} にインスタンスがありません", dir.display()),
        ));
    }
    // One read snapshot for the facts and the database image: they describe the same moment.
    let image = mamori_store::DatabaseImage::open(dir)?;
    let mut s = Staged {
        facts: image.with_reader(facts_of)?,
        sources: Vec::new(),
        _made: None,
    };
    s.sources.push(Source::paged(
        "mamori.db",
        Arc::new(paged_db::PagedDb(image)),
    ));
    s.sources.push(Source::file(
        crate::config::CONFIG_FILE,
        dir.join(crate::config::CONFIG_FILE),
    ));
    files_of(dir, include_keys, &mut s.sources)?;
    Ok(s)
}

/// A PostgreSQL instance is backed up as a SQLite database: its tables copied, in one
/// repeatable-read snapshot, into a SQLite file of the same schema — the same rows, the same
/// ledger entries byte for byte, the facts of that snapshot in the manifest. Restores and
/// drills are then those of any instance; the restored copy is a SQLite instance (its
/// configuration names no database), which `mamori store migrate --to` moves into a new
/// PostgreSQL database.
fn stage_postgres(dir: &Path, include_keys: bool) -> Result<Staged> {
    let made = tempfile::Builder::new()
        .prefix(".backup-")
        .tempdir_in(dir)
        .map_err(|e| io(dir, e))?;
    let snapshot = crate::instance::read_only(dir)?;
    let db = made.path().join("mamori.db");
    mamori_store::copy_into_sqlite(&snapshot, &db)?;
    let facts = facts_of(&snapshot.get())?;
    drop(snapshot);
    let mut config = crate::config::Config::load(dir)?;
    // The restored copy is one self-contained SQLite instance: its files come back into
    // its `blobs/` from wherever they are now.
    let bucket = crate::instance::blob_backend(&config)?;
    config.database = Default::default();
    let config_file = made.path().join(crate::config::CONFIG_FILE);
    std::fs::write(&config_file, config.to_toml()).map_err(|e| io(&config_file, e))?;
    let mut sources = vec![
        Source::file("mamori.db", db),
        Source::file(crate::config::CONFIG_FILE, config_file),
    ];
    files_of(dir, include_keys, &mut sources)?;
    if let Some(bucket) = bucket {
        bucket_files(mamori_store::BlobStore::with_backend(bucket), &mut sources)?;
    }
    Ok(Staged {
        sources,
        facts,
        _made: Some(made),
    })
}

/// Keys (when asked), the server's certificate and the content files.
fn files_of(dir: &Path, include_keys: bool, sources: &mut Vec<Source>) -> Result<()> {
    if include_keys {
        // With its subdirectories: the signing keys' tokens (`keys/tokens/<token>/…`), each
        // object encrypted under its holder's PIN.
        list_tree(&dir.join(crate::instance::KEY_DIR), "keys", sources)?;
        // The server's HTTPS key and certificate: a restored instance serves as before.
        let tls = crate::access::server_cert::TLS_DIR;
        list_files(&dir.join(tls), tls, sources)?;
    }
    let blobs = dir.join("blobs");
    if blobs.exists() {
        for entry in std::fs::read_dir(&blobs).map_err(|e| io(&blobs, e))? {
            let entry = entry.map_err(|e| io(&blobs, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            // file_type() comes with the directory listing: no stat per entry.
            if name != "tmp" && entry.file_type().is_ok_and(|t| t.is_dir()) {
                let from = sources.len();
                list_files(&entry.path(), &format!("blobs/{name}"), sources)?;
                // Named by their SHA-256 and never rewritten.
                for src in &mut sources[from..] {
                    src.immutable = true;
                }
            }
        }
    }
    Ok(())
}

/// The content files in a bucket, under the names they have on disk (`blobs/ab/cdef…`). Each
/// is fetched only when the previous snapshot lacks it (they are never rewritten), and its
/// bytes must hash to its name.
fn bucket_files(blobs: mamori_store::BlobStore, sources: &mut Vec<Source>) -> Result<()> {
    let mut names: Vec<String> = blobs.files()?.into_iter().map(|(sha, _)| sha).collect();
    names.sort();
    for sha in names {
        let (b, name) = (blobs.clone(), sha.clone());
        sources.push(Source::fetched(
            format!("blobs/{}/{}", &sha[..2], &sha[2..]),
            move || {
                let bytes = b.get(&name).map_err(std::io::Error::other)?;
                let got = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
                if got != name {
                    return Err(std::io::Error::other(format!(
                        "{name} の内容が名前と合いません（{got}）"
                    )));
                }
                Ok(bytes)
            },
        ));
    }
    Ok(())
}

fn list_files(dir: &Path, prefix: &str, out: &mut Vec<Source>) -> Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| io(dir, e))?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for name in names {
        out.push(Source::file(format!("{prefix}/{name}"), dir.join(&name)));
    }
    Ok(())
}

/// `list_files`, and the same in every subdirectory.
fn list_tree(dir: &Path, prefix: &str, out: &mut Vec<Source>) -> Result<()> {
    list_files(dir, prefix, out)?;
    if !dir.exists() {
        return Ok(());
    }
    let mut subdirs: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| io(dir, e))?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    subdirs.sort();
    for name in subdirs {
        list_tree(&dir.join(&name), &format!("{prefix}/{name}"), out)?;
    }
    Ok(())
}

fn kdf() -> KdfParams {
    KdfParams::default()
}

/// What one backup run produced, as recorded in the ledger.
#[derive(Clone, Debug, Serialize)]
pub struct BackupRun {
    pub outcome: BackupOutcome,
    pub created_repository: bool,
    pub pruned: Option<PruneOutcome>,
    pub ledger_size: u64,
    pub ledger_root: String,
}

impl BackupRun {
    pub fn detail(&self) -> serde_json::Value {
        serde_json::json!({
            "target": self.outcome.target,
            "snapshot": self.outcome.snapshot,
            "files": self.outcome.files,
            "total_bytes": self.outcome.total_bytes,
            "stored_bytes": self.outcome.stored_bytes,
            "seconds": (self.outcome.seconds * 1000.0).round() / 1000.0,
            "locked_until": self.outcome.locked_until,
            "ledger_size": self.ledger_size,
            "ledger_root": self.ledger_root,
            "pruned": self.pruned.as_ref().map(|p| p.removed.len()),
        })
    }
}

/// Backs the instance in `dir` up to `target` (creating the repository on first use) and,
/// when `keep` is given, prunes to that many generations.
pub fn run_backup(
    dir: &Path,
    target: &str,
    key: &KeyMaterial,
    include_keys: bool,
    keep: Option<u32>,
    progress: &dyn Progress,
) -> Result<BackupRun> {
    let started = std::time::Instant::now();
    let signer: SigningKey = crate::instance::load_signing_key(dir)?;
    // The instance's side (database image, file list) and the repository's side (index,
    // previous snapshot) are gathered at the same time.
    let (staged, repo) = std::thread::scope(|scope| {
        let staging = scope.spawn(|| stage(dir, include_keys));
        let repo = mamori_backup::open_target(target)
            .and_then(|t| Repository::open_or_init(t, key, kdf()))
            .and_then(|(repo, created)| Ok((mamori_backup::prepare(&repo)?, repo, created)))
            .map_err(ServiceError::from);
        (staging.join().expect("staging thread"), repo)
    });
    let staged = staged?;
    let (prepared, repo, created) = repo?;
    tracing::debug!(
        phase = "instance staged, repository prepared",
        ms = started.elapsed().as_secs_f64() * 1e3,
        "backup"
    );
    let facts = serde_json::to_value(&staged.facts).map_err(ServiceError::internal)?;
    let outcome = mamori_backup::backup_prepared(
        &repo,
        prepared,
        &staged.sources,
        facts,
        &signer,
        progress,
        started,
    )?;
    let pruned = match keep {
        Some(n) => Some(mamori_backup::prune(&repo, n as usize)?),
        None => None,
    };
    Ok(BackupRun {
        outcome,
        created_repository: created,
        pruned,
        ledger_size: staged.facts.ledger_size,
        ledger_root: staged.facts.ledger_root.clone(),
    })
}

pub fn open_repository(target: &str, key: &KeyMaterial) -> Result<Repository> {
    Ok(Repository::open(mamori_backup::open_target(target)?, key)?)
}

/// The instance key (ed25519, raw) a manifest must be signed with, from a verifier key text.
pub fn manifest_key_of(verifier_key: &str) -> Option<[u8; 32]> {
    use base64::Engine;
    let b64 = verifier_key.rsplit('+').next()?;
    let raw = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    // The note verifier key is 1 algorithm byte followed by the 32-byte key.
    raw.get(1..33)?.try_into().ok()
}

impl DrillReport {
    pub fn detail(&self) -> serde_json::Value {
        serde_json::json!({
            "ok": self.ok,
            "target": self.target,
            "snapshot": self.snapshot,
            "seconds": (self.seconds * 1000.0).round() / 1000.0,
            "bytes": self.bytes,
            "ledger_size": self.ledger_size,
            "ledger_root": self.ledger_root,
            "ledger_matches": self.ledger_matches,
            "records_match": self.records_match,
            "verify_ok": self.verify_ok,
            "problems": self.problems.iter().take(20).collect::<Vec<_>>(),
        })
    }
}

/// `mamori backup prune`: the plan (which snapshots go) is in the instance's ledger before
/// anything is deleted, the outcome after. Without a ledger to record in, nothing is pruned.
/// The second value is set when the outcome could not be recorded (the plan was).
pub fn prune_recorded(
    data: &Path,
    target: &str,
    key: &KeyMaterial,
    keep: u32,
) -> Result<(PruneOutcome, Option<ServiceError>)> {
    let journal = Journal::open(data)?;
    let result = (|| {
        let repo = open_repository(target, key)?;
        // Held from the listing to the last delete: no backup or other prune in between.
        let lock = repo.lock(mamori_backup::LockKind::Exclusive, "prune")?;
        let plan = mamori_backup::prune_plan(&repo, keep as usize, &lock)?;
        let label = target_label(target);
        if plan.remove.is_empty() {
            return Ok((
                PruneOutcome {
                    kept: plan.keep,
                    ..PruneOutcome::default()
                },
                None,
            ));
        }
        journal.record(Act::new(
            actions::BACKUP_PRUNE_PLANNED,
            serde_json::json!({"target": label, "keep": keep, "remove": plan.remove,
                "kept": plan.keep}),
        ))?;
        let out = mamori_backup::prune_planned(&repo, &plan, &lock)?;
        drop(lock);
        let recorded = journal
            .record(Act::new(
                actions::BACKUP_PRUNED,
                serde_json::json!({"target": label, "kept": out.kept.len(),
                    "removed": out.removed, "still_locked": out.still_locked,
                    "packs_removed": out.packs_removed, "bytes_freed": out.bytes_freed}),
            ))
            .err();
        Ok((out, recorded))
    })();
    journal.close();
    result
}

/// `mamori restore`: a snapshot into a new instance directory. The restore is recorded in the
/// restored instance's own ledger (its outbox if the copy has no keys yet; the first start
/// records it) before the directory gets its name.
pub fn restore_recorded(
    target: &str,
    snapshot: &str,
    to: &Path,
    key: &KeyMaterial,
    progress: &dyn Progress,
) -> Result<(mamori_backup::RestoreOutcome, Recorded)> {
    let repo = open_repository(target, key)?;
    let id = repo.resolve(Some(snapshot))?;
    let label = target_label(target);
    let recorded = std::sync::Mutex::new(None);
    let out = mamori_backup::restore_then(&repo, &id, to, None, progress, &|staged, manifest| {
        let facts = &manifest.facts;
        let act = Act::new(
            actions::BACKUP_RESTORED,
            serde_json::json!({"target": label, "snapshot": id,
                "snapshot_created_at": manifest.created_at,
                "ledger_size": facts["ledger_size"], "ledger_root": facts["ledger_root"]}),
        );
        let journal = match Journal::open(staged) {
            Ok(j) => j,
            // A backup taken without keys: they are put back by hand before the first start.
            Err(e) if e.code == ErrorCode::Key => Journal::outbox_of(staged),
            Err(e) => {
                return Err(BackupError::Invalid(format!(
                    "復元したインスタンスを開けません: {e}"
                )));
            }
        };
        let r = journal.record(act);
        journal.close();
        match r {
            Ok(where_) => {
                *recorded.lock().expect("recorded") = Some(where_);
                Ok(())
            }
            Err(e) => Err(BackupError::Invalid(format!(
                "復元を台帳に記録できないため、復元したものを消しました: {e}"
            ))),
        }
    })?;
    let where_ = recorded
        .into_inner()
        .expect("recorded")
        .unwrap_or(Recorded::Outbox);
    Ok((out, where_))
}

impl TargetStatus {
    /// The newest run to this target failed.
    pub fn failing(&self) -> bool {
        self.last_failure_at
            .is_some_and(|f| self.last_ok_at.is_none_or(|ok| f > ok))
    }
}

impl BackupWarning {
    pub fn message_ja(&self) -> String {
        match self {
            BackupWarning::NoTargets => {
                "バックアップ先が設定されていません（mamori.toml の [backup] targets）".into()
            }
            BackupWarning::NeverBackedUp { target } => {
                format!("{target} にはまだバックアップが成功していません")
            }
            BackupWarning::Overdue { target, hours } => {
                format!("{target} の最後の成功したバックアップから {hours} 時間が過ぎています")
            }
            BackupWarning::LastRunFailed { target, error } => {
                format!("{target} への直近のバックアップが失敗しました: {error}")
            }
            BackupWarning::NoOfflineCopy => {
                "ネットワークから切り離した媒体への保管がまだ記録されていません".into()
            }
            BackupWarning::OfflineOverdue { days } => {
                format!("最後にオフライン媒体へ保管してから {days} 日が過ぎています")
            }
            BackupWarning::NoDrill => {
                "復元訓練がまだ行われていません（mamori backup drill）".into()
            }
            BackupWarning::DrillOverdue { days } => {
                format!("最後に成功した復元訓練から {days} 日が過ぎています")
            }
            BackupWarning::DrillFailed => "直近の復元訓練が失敗しました".into(),
        }
    }

    pub fn message_en(&self) -> String {
        match self {
            BackupWarning::NoTargets => {
                "No backup target is configured ([backup] targets in mamori.toml).".into()
            }
            BackupWarning::NeverBackedUp { target } => {
                format!("No backup to {target} has succeeded yet.")
            }
            BackupWarning::Overdue { target, hours } => {
                format!("{hours} hours since the last successful backup to {target}.")
            }
            BackupWarning::LastRunFailed { target, error } => {
                format!("The latest backup to {target} failed: {error}")
            }
            BackupWarning::NoOfflineCopy => {
                "No copy on a disconnected medium has been recorded yet.".into()
            }
            BackupWarning::OfflineOverdue { days } => {
                format!("{days} days since the last offline copy.")
            }
            BackupWarning::NoDrill => {
                "No restore drill has been run yet (mamori backup drill).".into()
            }
            BackupWarning::DrillOverdue { days } => {
                format!("{days} days since the last passing restore drill.")
            }
            BackupWarning::DrillFailed => "The latest restore drill failed.".into(),
        }
    }
}

fn may_see_backups(p: &Principal) -> Result<()> {
    p.require(Action::AdminSettings, None)
        .or_else(|_| p.require(Action::ReadAudit, None))
}

impl Service {
    /// Records that a snapshot was copied to a medium that was then disconnected.
    pub async fn record_offline_copy(
        self: &Arc<Self>,
        p: &Principal,
        target: &str,
        medium: &str,
        note: &str,
    ) -> Result<OfflineCopy> {
        let medium = medium.trim().to_owned();
        let target = target_label(target.trim());
        let note = note.trim().to_owned();
        if medium.is_empty() || medium.chars().count() > 100 {
            return Err(ServiceError::invalid(
                "medium",
                "媒体の名前（ラベル）を100文字以内で入力してください",
            ));
        }
        if note.chars().count() > 500 {
            return Err(ServiceError::invalid("note", "メモは500文字以内です"));
        }
        let by = p.account.login.clone();
        let pc = p.clone();
        self.write_audited(
            Some(p),
            actions::BACKUP_OFFLINE,
            Target::default(),
            move |this, tx, t| {
                pc.require(Action::AdminSettings, None)?;
                let status = this.backup_status_in(&tx.read())?;
                let snapshot = status
                    .targets
                    .iter()
                    .find(|s| s.target == target)
                    .and_then(|s| s.last_snapshot.clone())
                    .ok_or_else(|| {
                        ServiceError::invalid(
                            "target",
                            "このバックアップ先には成功したバックアップがありません。先にバックアップを取ってください",
                        )
                    })?;
                t.detail("target", target.clone());
                t.detail("medium", medium.clone());
                t.detail("snapshot", snapshot.clone());
                t.detail("note", note.clone());
                Ok(OfflineCopy {
                    at: this.now(),
                    medium: medium.clone(),
                    target: target.clone(),
                    snapshot: snapshot.clone(),
                    by: Some(by.clone()),
                    note: note.clone(),
                })
            },
        )
        .await
    }

    fn configured_targets(&self) -> Result<Vec<String>> {
        let targets = self.config.backup.target_list();
        if targets.is_empty() {
            return Err(ServiceError::invalid(
                "targets",
                "バックアップ先が設定されていません（mamori.toml の [backup] targets）",
            ));
        }
        Ok(targets)
    }

    /// Whether a backup, drill or erasure is running now (on any node). Blocking on
    /// PostgreSQL (one query): call it off the async workers.
    pub fn backup_in_progress(&self) -> Result<bool> {
        Ok(self.store.turn_taken(BACKUP_TURN)?)
    }

    /// One backup, drill or erasure at a time on the whole instance; held until the runner
    /// drops the turn.
    pub(crate) async fn claim_backup_runner(&self) -> Result<mamori_store::Turn> {
        self.store.try_turn(BACKUP_TURN).await?.ok_or_else(|| {
            ServiceError::new(
                ErrorCode::BackupRunning,
                "バックアップか復元訓練が実行中です。終わるまでお待ちください",
            )
        })
    }

    /// Starts a backup of every configured target in the background (a person asked, or the
    /// schedule). Refused while one runs.
    pub async fn backup_now(self: &Arc<Self>, p: Option<&Principal>) -> Result<()> {
        if let Some(p) = p {
            let pc = p.clone();
            self.write_audited(
                Some(p),
                actions::BACKUP_REQUESTED,
                Target::default(),
                move |_, _, _| pc.require(Action::AdminSettings, None),
            )
            .await?;
        }
        let targets = self.configured_targets()?;
        let key = match configured_key(&self.data_dir, &self.config.backup) {
            Ok(k) => k,
            Err(e) => {
                // Shown on the status page (and retried hourly by the schedule).
                for target in &targets {
                    let detail = serde_json::json!({
                        "target": target_label(target),
                        "target_spec": target_label(target),
                        "error": e.message,
                        "code": e.code,
                    });
                    self.record_system_event(actions::BACKUP_FAILED, detail)
                        .await?;
                }
                return Err(e);
            }
        };
        let turn = self.claim_backup_runner().await?;
        let this = Arc::clone(self);
        tokio::spawn(async move {
            for target in targets {
                let (dir, cfg, key2, t2) = (
                    this.data_dir.clone(),
                    this.config.backup.clone(),
                    key.clone(),
                    target.clone(),
                );
                let result = crate::scheduler::in_background(move || {
                    run_backup(
                        &dir,
                        &t2,
                        &key2,
                        cfg.include_keys,
                        Some(cfg.keep),
                        &NoProgress,
                    )
                })
                .await
                .unwrap_or_else(Err);
                let (action, detail) = match result {
                    Ok(run) => {
                        let mut d = run.detail();
                        d["target_spec"] = target_label(&target).into();
                        (actions::BACKUP_COMPLETED, d)
                    }
                    Err(e) => {
                        tracing::error!(target = %target_label(&target), error = %e, "backup failed");
                        (
                            actions::BACKUP_FAILED,
                            serde_json::json!({
                                "target": target_label(&target),
                                "target_spec": target_label(&target),
                                "error": e.message,
                                "code": e.code,
                            }),
                        )
                    }
                };
                if let Err(e) = this.record_system_event(action, detail).await {
                    tracing::error!(error = %e, "could not record a backup in the ledger");
                }
            }
            drop(turn);
        });
        Ok(())
    }
}

/// The turn a backup, drill or erasure holds.
const BACKUP_TURN: &str = "backup";
