//! The engine end to end on a directory target: round trip, incremental runs, generations, and
//! each failure mode an operator can meet (wrong key, missing, corrupted or truncated objects).

use std::fs;
use std::path::Path;

use ed25519_dalek::SigningKey;
use mamori_backup::engine::NoProgress;
use mamori_backup::keys::KdfParams;
use mamori_backup::target::DirTarget;
use mamori_backup::*;
use rand_core::{OsRng, RngCore};

const CHEAP: KdfParams = KdfParams {
    m_kib: 256,
    t: 1,
    p: 1,
};

fn key() -> KeyMaterial {
    KeyMaterial {
        passphrase: Some("correct horse battery staple".to_string().into()),
        key_file: None,
    }
}

fn repo(dir: &Path, k: &KeyMaterial) -> Result<Repository> {
    Repository::open_or_init(Box::new(DirTarget::new(dir)), k, CHEAP).map(|(r, _)| r)
}

fn sources(dir: &Path) -> Vec<Source> {
    let mut out = Vec::new();
    for name in ["mamori.db", "blobs/ab/cdef", "keys/ledger.key"] {
        out.push(Source::file(name, dir.join(name)));
    }
    out
}

fn instance(dir: &Path) {
    fs::create_dir_all(dir.join("blobs/ab")).unwrap();
    fs::create_dir_all(dir.join("keys")).unwrap();
    let mut noise = vec![0u8; 3 * 1024 * 1024 + 17];
    OsRng.fill_bytes(&mut noise);
    fs::write(dir.join("blobs/ab/cdef"), &noise).unwrap();
    fs::write(dir.join("mamori.db"), "診療録の本文。".repeat(200_000)).unwrap();
    fs::write(dir.join("keys/ledger.key"), "00".repeat(32)).unwrap();
}

fn same_tree(a: &Path, b: &Path) {
    for s in sources(a) {
        assert_eq!(
            fs::read(&s.file).unwrap(),
            fs::read(b.join(&s.path)).unwrap(),
            "{}",
            s.path
        );
    }
}

#[test]
fn round_trip_incremental_and_generations() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, target) = (tmp.path().join("data"), tmp.path().join("target"));
    instance(&data);
    let signer = SigningKey::from_bytes(&[9u8; 32]);
    let r = repo(&target, &key()).unwrap();
    let facts = serde_json::json!({"ledger": {"size": 3}});
    let first = backup(&r, &sources(&data), facts.clone(), &signer, &NoProgress).unwrap();
    assert_eq!(first.files, 3);
    assert_eq!(first.files_unchanged, 0);
    assert!(first.stored_bytes < first.total_bytes, "text compressed");

    // Second run: only the changed file is read; the attachment is not stored again.
    let mut db = fs::read(data.join("mamori.db")).unwrap();
    db[1000..1010].copy_from_slice(b"0123456789");
    fs::write(data.join("mamori.db"), &db).unwrap();
    let second = backup(&r, &sources(&data), facts.clone(), &signer, &NoProgress).unwrap();
    assert_eq!(second.files_unchanged, 2);
    assert_eq!(second.read_bytes, db.len() as u64);
    assert!(second.stored_bytes < first.stored_bytes / 4, "{second:?}");

    // Reopened with the same passphrase, the newest snapshot restores byte for byte.
    let r = repo(&target, &key()).unwrap();
    let out = tmp.path().join("restored");
    let restored = restore(
        &r,
        &second.snapshot,
        &out,
        Some(&signer.verifying_key().to_bytes()),
        &NoProgress,
    )
    .unwrap();
    assert_eq!(restored.manifest.facts, facts);
    same_tree(&data, &out);
    // The older one too (its chunks are shared).
    let out1 = tmp.path().join("restored1");
    restore(&r, &first.snapshot, &out1, None, &NoProgress).unwrap();
    assert_ne!(fs::read(out1.join("mamori.db")).unwrap(), db);

    let v = verify(&r, None, false, None, &NoProgress).unwrap();
    assert!(v.ok, "{v:?}");
    assert_eq!(v.snapshots, 2);

    // A restore never writes into a directory that already holds something.
    let err = restore(&r, &second.snapshot, &out, None, &NoProgress).unwrap_err();
    assert!(err.to_string().contains("空ではありません"), "{err}");
    // A manifest signed by another key is refused when the instance key is expected.
    let err = restore(
        &r,
        &second.snapshot,
        &tmp.path().join("x"),
        Some(&[1u8; 32]),
        &NoProgress,
    )
    .unwrap_err();
    assert!(matches!(err, BackupError::Corrupt { .. }), "{err}");

    // Generations: three more runs, keep 2; the kept ones still verify and restore.
    for _ in 0..3 {
        db[5] = db[5].wrapping_add(1);
        fs::write(data.join("mamori.db"), &db).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1100));
        backup(&r, &sources(&data), facts.clone(), &signer, &NoProgress).unwrap();
    }
    let pruned = prune(&r, 2).unwrap();
    assert_eq!(pruned.kept.len(), 2);
    assert_eq!(pruned.removed.len(), 3);
    assert!(pruned.packs_removed > 0, "{pruned:?}");
    let v = verify(&r, None, false, None, &NoProgress).unwrap();
    assert!(v.ok && v.snapshots == 2, "{v:?}");
    let out2 = tmp.path().join("restored2");
    restore(&r, &pruned.kept[1], &out2, None, &NoProgress).unwrap();
    same_tree(&data, &out2);
}

#[test]
fn failure_modes_are_named_and_leave_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, target) = (tmp.path().join("data"), tmp.path().join("target"));
    instance(&data);
    let signer = SigningKey::from_bytes(&[9u8; 32]);
    let file = KeyFile::generate();
    let by_file = KeyMaterial {
        passphrase: None,
        key_file: Some(file),
    };
    let r = repo(&target, &by_file).unwrap();
    let snap = backup(
        &r,
        &sources(&data),
        serde_json::json!({}),
        &signer,
        &NoProgress,
    )
    .unwrap()
    .snapshot;

    // Wrong key, and no key.
    let err = repo(&target, &key()).err().unwrap();
    assert!(matches!(err, BackupError::WrongKey), "{err}");
    assert!(err.to_string().contains("鍵が違います"));
    let err = Repository::open(Box::new(DirTarget::new(&target)), &KeyMaterial::default())
        .err()
        .unwrap();
    assert!(matches!(err, BackupError::NoKey));

    let packs: Vec<_> = walk(&target.join("packs"));
    assert!(!packs.is_empty());
    let writable = |p: &Path| {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(p, fs::Permissions::from_mode(0o600)).unwrap();
    };

    // Corrupted chunk: one flipped byte in a pack.
    let pack = &packs[0];
    let good = fs::read(pack).unwrap();
    let mut bad = good.clone();
    bad[good.len() / 2] ^= 0x40;
    writable(pack);
    fs::write(pack, &bad).unwrap();
    let v = verify(&r, None, false, None, &NoProgress).unwrap();
    assert!(!v.ok);
    assert!(
        v.problems.iter().any(|p| p.contains("壊れています")),
        "{v:?}"
    );
    let out = tmp.path().join("r1");
    let err = restore(&r, &snap, &out, None, &NoProgress).unwrap_err();
    assert!(matches!(err, BackupError::Corrupt { .. }), "{err}");
    assert!(!out.exists(), "a failed restore leaves no directory");
    assert_eq!(
        fs::read_dir(tmp.path()).unwrap().count(),
        2,
        "no staging left behind"
    );

    // Missing chunk: the pack is gone. (Each step reopens the repository, as each command
    // does: an open target keeps packs it has read open.)
    fs::remove_file(pack).unwrap();
    let r = repo(&target, &by_file).unwrap();
    let v = verify(&r, None, true, None, &NoProgress).unwrap();
    assert!(
        !v.ok && v.problems.iter().any(|p| p.contains("見つかりません")),
        "{v:?}"
    );
    let err = restore(&r, &snap, &out, None, &NoProgress).unwrap_err();
    assert!(matches!(err, BackupError::Missing { .. }), "{err}");
    fs::write(pack, &good).unwrap();
    let r = repo(&target, &by_file).unwrap();
    assert!(verify(&r, None, false, None, &NoProgress).unwrap().ok);

    // Truncated snapshot.
    let snap_file = target.join("snapshots").join(&snap);
    let bytes = fs::read(&snap_file).unwrap();
    writable(&snap_file);
    fs::write(&snap_file, &bytes[..bytes.len() / 2]).unwrap();
    let err = restore(&r, &snap, &out, None, &NoProgress).unwrap_err();
    assert!(err.to_string().contains("途中で切れているか"), "{err}");
    let v = verify(&r, Some(&snap), false, None, &NoProgress).unwrap();
    assert!(!v.ok);
    // An unknown snapshot id.
    assert!(matches!(
        restore(&r, "20990101T000000Z-000000", &out, None, &NoProgress),
        Err(BackupError::NoSnapshot(_))
    ));
    assert!(!out.exists());
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Runs `f` again while the repository is held by someone else, as an operator would.
fn until_free(mut f: impl FnMut() -> Result<String>) -> std::result::Result<String, String> {
    for _ in 0..200 {
        match f() {
            Err(e) if e.code() == "repo_locked" => {
                let mut b = [0u8; 1];
                OsRng.fill_bytes(&mut b);
                std::thread::sleep(std::time::Duration::from_millis(2 + u64::from(b[0] % 20)));
            }
            other => return other.map_err(|e| e.code().to_owned()),
        }
    }
    Err("still locked after 200 tries".into())
}

/// Issue #17.2: prunes and backups from several processes (here threads, each with its own
/// view of the repository) take turns through the repository lock; whatever interleaving
/// happens, every snapshot left can be read back whole.
#[test]
fn concurrent_prunes_and_backups_never_cost_a_snapshot_a_pack() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, target) = (tmp.path().join("data"), tmp.path().join("target"));
    instance(&data);
    let signer = SigningKey::from_bytes(&[9u8; 32]);
    let facts = serde_json::json!({});
    {
        let r = repo(&target, &key()).unwrap();
        for i in 0..4u8 {
            // Each generation changes the attachment, so each has packs of its own to lose.
            let mut noise = vec![0u8; 512 * 1024];
            OsRng.fill_bytes(&mut noise);
            noise[0] = i;
            fs::write(data.join("blobs/ab/cdef"), &noise).unwrap();
            backup(&r, &sources(&data), facts.clone(), &signer, &NoProgress).unwrap();
        }
    }
    let start = std::sync::Barrier::new(3);
    let outcomes: Vec<std::result::Result<String, String>> = std::thread::scope(|s| {
        let prunes: Vec<_> = (0..2)
            .map(|_| {
                let (target, start) = (&target, &start);
                s.spawn(move || {
                    let r = repo(target, &key()).unwrap();
                    start.wait();
                    until_free(|| prune(&r, 1).map(|o| format!("pruned {}", o.removed.len())))
                })
            })
            .collect();
        let backup_run = {
            let (target, start, data, signer, facts) = (&target, &start, &data, &signer, &facts);
            s.spawn(move || {
                let r = repo(target, &key()).unwrap();
                start.wait();
                until_free(|| {
                    backup(&r, &sources(data), facts.clone(), signer, &NoProgress)
                        .map(|o| format!("backup {}", o.snapshot))
                })
            })
        };
        let mut all: Vec<_> = prunes.into_iter().map(|h| h.join().unwrap()).collect();
        all.push(backup_run.join().unwrap());
        all
    });
    assert!(outcomes.iter().all(|o| o.is_ok()), "{outcomes:?}");
    let r = repo(&target, &key()).unwrap();
    let checked = verify(&r, None, false, None, &NoProgress).unwrap();
    assert!(checked.ok, "{:?} after {outcomes:?}", checked.problems);
    for id in r.snapshot_ids().unwrap() {
        let out = tmp.path().join(format!("restore-{id}"));
        restore(&r, &id, &out, None, &NoProgress).unwrap();
    }
    assert!(
        r.target().list_current("locks/").unwrap().is_empty(),
        "every lock was released"
    );
}

/// The interleaving that loses data without a lock, step by step: a backup has read the index
/// (and will reuse chunks that only old generations' packs hold), then a prune from another
/// machine removes those generations. The prune must be refused until the backup is done.
#[test]
fn a_prune_cannot_remove_packs_a_running_backup_reuses() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, target) = (tmp.path().join("data"), tmp.path().join("target"));
    instance(&data);
    let signer = SigningKey::from_bytes(&[9u8; 32]);
    let facts = serde_json::json!({});
    let r = repo(&target, &key()).unwrap();
    let first = fs::read(data.join("blobs/ab/cdef")).unwrap();
    backup(&r, &sources(&data), facts.clone(), &signer, &NoProgress).unwrap();
    let mut other = vec![0u8; 1024 * 1024];
    OsRng.fill_bytes(&mut other);
    fs::write(data.join("blobs/ab/cdef"), &other).unwrap();
    backup(&r, &sources(&data), facts.clone(), &signer, &NoProgress).unwrap();
    // The attachment goes back to what only the first generation holds.
    fs::write(data.join("blobs/ab/cdef"), &first).unwrap();

    let started = std::time::Instant::now();
    let prepared = prepare(&r).unwrap();
    let elsewhere = repo(&target, &key()).unwrap();
    let refused = prune(&elsewhere, 1).unwrap_err();
    assert_eq!(refused.code(), "repo_locked", "{refused}");
    assert!(refused.to_string().contains("backup"), "{refused}");
    let third = backup_prepared(
        &r,
        prepared,
        &sources(&data),
        facts,
        &signer,
        &NoProgress,
        started,
    )
    .unwrap();
    // Afterwards the prune runs, and the new snapshot still has every pack it needs.
    let pruned = prune(&elsewhere, 1).unwrap();
    assert_eq!(pruned.removed.len(), 2);
    let out = tmp.path().join("restored");
    restore(&r, &third.snapshot, &out, None, &NoProgress).unwrap();
    assert_eq!(fs::read(out.join("blobs/ab/cdef")).unwrap(), first);
}

#[test]
fn an_erased_repository_leaves_nothing_and_cannot_be_opened() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, target) = (tmp.path().join("data"), tmp.path().join("target"));
    instance(&data);
    let signer = SigningKey::from_bytes(&[9u8; 32]);
    let r = repo(&target, &key()).unwrap();
    backup(
        &r,
        &sources(&data),
        serde_json::json!({}),
        &signer,
        &NoProgress,
    )
    .unwrap();
    let lock = r.lock(LockKind::Exclusive, "erase").unwrap();
    let out = erase(&r, &lock).unwrap();
    drop(lock);
    assert!(out.complete(), "{out:?}");
    assert_eq!(out.repository, r.config.id);
    assert!(
        out.objects >= 5,
        "config, key slot, pack, index, snapshot: {out:?}"
    );
    assert!(walk(&target).is_empty(), "left behind: {:?}", walk(&target));
    assert!(matches!(
        Repository::open(Box::new(DirTarget::new(&target)), &key()),
        Err(BackupError::NoRepository(_))
    ));
    // Only with the lock held exclusively.
    let r = repo(&target, &key()).unwrap();
    let shared = r.lock(LockKind::Shared, "backup").unwrap();
    assert!(erase(&r, &shared).is_err());
}

/// A medium whose retention still protects some objects (as Object Lock in compliance mode).
struct Retained(DirTarget, &'static str);

impl Target for Retained {
    fn describe(&self) -> String {
        self.0.describe()
    }
    fn put(&self, name: &str, bytes: &[u8]) -> Result<()> {
        self.0.put(name, bytes)
    }
    fn get(&self, name: &str) -> Result<Vec<u8>> {
        self.0.get(name)
    }
    fn get_range(&self, name: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        self.0.get_range(name, offset, len)
    }
    fn list(&self, prefix: &str) -> Result<Vec<String>> {
        self.0.list(prefix)
    }
    fn delete(&self, name: &str) -> Result<()> {
        if name.starts_with(self.1) {
            return Err(BackupError::Locked(name.to_owned()));
        }
        self.0.delete(name)
    }
}

#[test]
fn what_a_retention_period_keeps_is_named_and_the_key_slots_go_anyway() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, target) = (tmp.path().join("data"), tmp.path().join("target"));
    instance(&data);
    let signer = SigningKey::from_bytes(&[9u8; 32]);
    let r = repo(&target, &key()).unwrap();
    backup(
        &r,
        &sources(&data),
        serde_json::json!({}),
        &signer,
        &NoProgress,
    )
    .unwrap();
    let packs = walk(&target.join("packs")).len();
    let r = Repository::open(
        Box::new(Retained(DirTarget::new(&target), "packs/")),
        &key(),
    )
    .unwrap();
    let lock = r.lock(LockKind::Exclusive, "erase").unwrap();
    let out = erase(&r, &lock).unwrap();
    drop(lock);
    assert!(!out.complete());
    assert_eq!(out.still_locked.len(), packs, "{out:?}");
    assert!(out.still_locked.iter().all(|n| n.starts_with("packs/")));
    assert_eq!(out.deleted + out.still_locked.len(), out.objects);
    // The packs stay, but nothing that could unlock them: no key slot, no config.
    assert!(!target.join("keys").exists() || walk(&target.join("keys")).is_empty());
    assert!(!target.join("config").exists());
}
