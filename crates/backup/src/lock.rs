//! Repository locks, kept the way restic keeps them: a small object under `locks/` per
//! process using the repository. A backup holds a shared lock from the moment it reads the
//! index (it deduplicates against the packs listed there) until its snapshot is written; a
//! prune holds an exclusive one from its listing until its last delete. So two prunes, or a
//! prune and a backup from two machines, never interleave: a prune could otherwise delete a
//! pack that a snapshot being written still needs.
//!
//! Taking a lock is write-then-check: the lock object is written first and the locks listed
//! afterwards, so of two processes racing for the repository at least one sees the other and
//! steps back. A holder rewrites its lock every [`REFRESH_EVERY`]; a lock not refreshed for
//! [`STALE_AFTER`] (its process died with the machine), or one of a process on this host that
//! no longer runs, is stale and ignored.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{BackupError, Result};
use crate::seal::random_bytes;
use crate::target::Target;

pub const LOCKS: &str = "locks/";
pub const REFRESH_EVERY: Duration = Duration::from_secs(5 * 60);
pub const STALE_AFTER: Duration = Duration::from_secs(30 * 60);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockKind {
    /// Backups (and reading): any number at once, never beside an exclusive lock.
    Shared,
    /// Prune: alone.
    Exclusive,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct LockFile {
    host: String,
    pid: u32,
    exclusive: bool,
    /// What holds it ("backup", "prune"), for the message another process shows.
    purpose: String,
    /// Seconds since the Unix epoch.
    created: i64,
    refreshed: i64,
}

impl LockFile {
    fn stale(&self, now: i64, this_host: &str) -> bool {
        if now - self.refreshed > STALE_AFTER.as_secs() as i64 {
            return true;
        }
        self.host == this_host && self.pid != std::process::id() && !process_alive(self.pid)
    }

    fn describe(&self) -> String {
        let since = time::OffsetDateTime::from_unix_timestamp(self.created)
            .map(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default()
            })
            .unwrap_or_default();
        format!(
            "{}（{} のプロセス {}、{} から）",
            if self.exclusive {
                format!("{}（排他）", self.purpose)
            } else {
                self.purpose.clone()
            },
            self.host,
            self.pid,
            since
        )
    }
}

fn process_alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        std::path::Path::new(&format!("/proc/{pid}")).exists()
    } else {
        true
    }
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// A lock held on a repository; released when dropped.
pub struct RepoLock {
    target: Arc<dyn Target>,
    kind: LockKind,
    name: Arc<Mutex<String>>,
    stop: Option<mpsc::Sender<()>>,
    refresher: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for RepoLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RepoLock")
            .field("kind", &self.kind)
            .field(
                "name",
                &self.name.lock().map(|n| n.clone()).unwrap_or_default(),
            )
            .finish()
    }
}

impl RepoLock {
    pub fn kind(&self) -> LockKind {
        self.kind
    }

    /// Takes a lock of `kind` for `purpose`, or says who holds the repository.
    pub fn take(target: Arc<dyn Target>, kind: LockKind, purpose: &str) -> Result<RepoLock> {
        let host = crate::engine::hostname();
        // Fail early (and without writing) when someone visibly holds it.
        conflicts(target.as_ref(), kind, None, &host)?;
        let t = now();
        let file = LockFile {
            host: host.clone(),
            pid: std::process::id(),
            exclusive: kind == LockKind::Exclusive,
            purpose: purpose.to_owned(),
            created: t,
            refreshed: t,
        };
        let name = write(target.as_ref(), &file)?;
        // Then look again: a process that wrote its lock at the same moment is seen now.
        if let Err(e) = conflicts(target.as_ref(), kind, Some(&name), &host) {
            let _ = target.delete_lock(&name);
            return Err(e);
        }
        let name = Arc::new(Mutex::new(name));
        let (stop, stopped) = mpsc::channel::<()>();
        let (t2, n2) = (target.clone(), name.clone());
        let refresher = std::thread::Builder::new()
            .name("mamori-repo-lock".into())
            .spawn(move || {
                let mut file = file;
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(REFRESH_EVERY)
                {
                    file.refreshed = now();
                    // A new object, then the old one removed: lock objects are never
                    // rewritten, so a write-once target can hold them too.
                    if let Ok(new) = write(t2.as_ref(), &file) {
                        let old = std::mem::replace(&mut *n2.lock().expect("lock name"), new);
                        let _ = t2.delete_lock(&old);
                    }
                }
            })
            .map_err(|e| BackupError::Io(format!("lock refresher: {e}")))?;
        Ok(RepoLock {
            target,
            kind,
            name,
            stop: Some(stop),
            refresher: Some(refresher),
        })
    }

    /// The lock object's current name (it changes each time the lock is refreshed).
    pub fn name(&self) -> String {
        self.name.lock().map(|n| n.clone()).unwrap_or_default()
    }

    /// Requires that this lock is exclusive (what deleting needs).
    pub fn require_exclusive(&self) -> Result<()> {
        if self.kind == LockKind::Exclusive {
            Ok(())
        } else {
            Err(BackupError::Invalid(
                "削除には排他ロックが必要です（内部エラー）".into(),
            ))
        }
    }
}

impl Drop for RepoLock {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(h) = self.refresher.take() {
            let _ = h.join();
        }
        let name = self.name.lock().map(|n| n.clone()).unwrap_or_default();
        if let Err(e) = self.target.delete_lock(&name) {
            tracing::warn!(lock = %name, error = %e, "could not remove the repository lock");
        }
    }
}

fn write(target: &dyn Target, file: &LockFile) -> Result<String> {
    let name = format!("{LOCKS}{}", hex::encode(random_bytes::<16>()));
    let bytes = serde_json::to_vec(file).map_err(|e| BackupError::Io(e.to_string()))?;
    target.put_lock(&name, &bytes)?;
    Ok(name)
}

/// The live locks that forbid taking one of `kind` (other than `own`).
fn conflicts(target: &dyn Target, kind: LockKind, own: Option<&str>, host: &str) -> Result<()> {
    let now = now();
    for name in target.list_current(LOCKS)? {
        if Some(name.as_str()) == own {
            continue;
        }
        let file = match target.get(&name) {
            Ok(bytes) => match serde_json::from_slice::<LockFile>(&bytes) {
                Ok(f) => f,
                // Unreadable: it may be anyone's; never guess that a repository is free.
                Err(_) => {
                    return Err(BackupError::RepoLocked(format!(
                        "読めないロック {name}（不要なら削除してください）"
                    )));
                }
            },
            // Removed since the listing: its holder let go.
            Err(BackupError::Missing { .. }) => continue,
            Err(e) => return Err(e),
        };
        if file.stale(now, host) {
            continue;
        }
        if kind == LockKind::Exclusive || file.exclusive {
            return Err(BackupError::RepoLocked(file.describe()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::DirTarget;

    fn dir_target() -> (tempfile::TempDir, Arc<dyn Target>) {
        let d = tempfile::tempdir().unwrap();
        let t: Arc<dyn Target> = Arc::new(DirTarget::new(d.path()));
        (d, t)
    }

    #[test]
    fn shared_locks_coexist_and_exclude_an_exclusive_one() {
        let (_d, t) = dir_target();
        let a = RepoLock::take(t.clone(), LockKind::Shared, "backup").unwrap();
        let b = RepoLock::take(t.clone(), LockKind::Shared, "backup").unwrap();
        let e = RepoLock::take(t.clone(), LockKind::Exclusive, "prune").unwrap_err();
        assert!(matches!(e, BackupError::RepoLocked(_)), "{e}");
        drop((a, b));
        let x = RepoLock::take(t.clone(), LockKind::Exclusive, "prune").unwrap();
        let e = RepoLock::take(t.clone(), LockKind::Shared, "backup").unwrap_err();
        assert!(e.to_string().contains("prune"), "{e}");
        drop(x);
        assert!(
            t.list_current(LOCKS).unwrap().is_empty(),
            "released locks are removed"
        );
    }

    #[test]
    fn stale_locks_and_locks_of_dead_processes_are_ignored_unreadable_ones_are_not() {
        let (_d, t) = dir_target();
        let old = LockFile {
            host: "another-machine".into(),
            pid: 1,
            exclusive: true,
            purpose: "prune".into(),
            created: now() - 7200,
            refreshed: now() - STALE_AFTER.as_secs() as i64 - 60,
        };
        write(t.as_ref(), &old).unwrap();
        let dead = LockFile {
            host: crate::engine::hostname(),
            pid: u32::MAX - 1,
            refreshed: now(),
            ..old.clone()
        };
        write(t.as_ref(), &dead).unwrap();
        drop(RepoLock::take(t.clone(), LockKind::Exclusive, "prune").unwrap());
        let live = LockFile {
            host: "another-machine".into(),
            refreshed: now(),
            ..old
        };
        write(t.as_ref(), &live).unwrap();
        assert!(RepoLock::take(t.clone(), LockKind::Shared, "backup").is_err());
        let (_d2, t2) = dir_target();
        t2.put_lock("locks/garbage", b"{not json").unwrap();
        assert!(RepoLock::take(t2.clone(), LockKind::Shared, "backup").is_err());
    }

    #[test]
    fn of_two_racing_exclusive_takers_at_most_one_wins() {
        for _ in 0..20 {
            let (_d, t) = dir_target();
            let start = std::sync::Barrier::new(2);
            let won: Vec<bool> = std::thread::scope(|s| {
                let hs: Vec<_> = (0..2)
                    .map(|_| {
                        let t = t.clone();
                        let start = &start;
                        s.spawn(move || {
                            start.wait();
                            let l = RepoLock::take(t, LockKind::Exclusive, "prune");
                            // Hold it long enough for the other to look.
                            std::thread::sleep(Duration::from_millis(20));
                            l.is_ok()
                        })
                    })
                    .collect();
                hs.into_iter().map(|h| h.join().unwrap()).collect()
            });
            assert!(won.iter().filter(|w| **w).count() <= 1, "{won:?}");
        }
    }
}
