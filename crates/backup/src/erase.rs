//! Erasing a repository mamori wrote, when its medium is retired or its contract ends
//! (情報の破棄, guideline システム運用編 7; JAHIS 09-001 §6.3). Every object is deleted, on S3
//! every version of it; what a write-once medium still protects is named, and stays sealed
//! under a key whose wrapped copies (`keys/*`) are deleted with the rest.

use crate::error::{BackupError, Result};
use crate::lock::{LOCKS, RepoLock};
use crate::repo::Repository;

/// What an erasure did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct EraseOutcome {
    pub repository: String,
    pub described: String,
    /// Objects found before erasing (lock objects not counted).
    pub objects: usize,
    pub deleted: usize,
    /// Objects a retention period (Object Lock, a read-only medium) still keeps.
    pub still_locked: Vec<String>,
}

impl EraseOutcome {
    pub fn complete(&self) -> bool {
        self.still_locked.is_empty() && self.deleted == self.objects
    }
}

/// The order that keeps an interrupted erasure safe and repeatable: first nothing can be
/// restored (snapshots), then the data, and the key slots and `config` last, so a second run
/// can still open the repository and finish.
fn rank(name: &str) -> u8 {
    match name.split('/').next().unwrap_or("") {
        "snapshots" => 0,
        "index" => 1,
        "packs" => 2,
        "keys" => 4,
        "config" => 5,
        _ => 3,
    }
}

/// Deletes every object of `repo` under an exclusive lock (the key proved it is ours).
pub fn erase(repo: &Repository, lock: &RepoLock) -> Result<EraseOutcome> {
    lock.require_exclusive()?;
    let target = repo.target();
    let mut names: Vec<String> = target
        .list("")?
        .into_iter()
        .filter(|n| !n.starts_with(LOCKS))
        .collect();
    names.sort_by(|a, b| rank(a).cmp(&rank(b)).then_with(|| a.cmp(b)));
    let mut out = EraseOutcome {
        repository: repo.config.id.clone(),
        described: target.describe(),
        objects: names.len(),
        ..EraseOutcome::default()
    };
    for name in &names {
        match target.delete(name) {
            Ok(()) => out.deleted += 1,
            Err(BackupError::Locked(_)) => out.still_locked.push(name.clone()),
            Err(e) => return Err(e),
        }
    }
    // Stale locks of processes that died; ours goes when it is dropped.
    let own = lock.name();
    for name in target.list(LOCKS)? {
        if name != own {
            let _ = target.delete_lock(&name);
        }
    }
    Ok(out)
}
