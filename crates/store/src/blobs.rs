use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use crate::StoreError;

/// Where content-addressed files are kept: a directory (the default) or an object store.
/// Names are SHA-256 hex; a file is never rewritten with other bytes.
pub trait BlobBackend: Send + Sync + std::fmt::Debug {
    /// Stores `bytes` under `sha256_hex` durably before returning. When the name exists, the
    /// bytes are already there; its age is refreshed instead (the orphan sweep spares young
    /// files, and this one is about to be referenced).
    fn put(&self, sha256_hex: &str, bytes: &[u8]) -> Result<(), StoreError>;
    fn get(&self, sha256_hex: &str) -> Result<Vec<u8>, StoreError>;
    /// Every stored name with when it was last written or refreshed.
    fn files(&self) -> Result<Vec<(String, std::time::SystemTime)>, StoreError>;
    /// Removes a file; a missing one is `StoreError::Io` of kind `NotFound`.
    fn remove(&self, sha256_hex: &str) -> Result<(), StoreError>;
    /// Where a file is, for people (a path, or `s3://bucket/key`).
    fn location(&self, sha256_hex: &str) -> String;
}

/// Content-addressed files: the name is the SHA-256 of the bytes, so a file cannot change
/// without `verify` noticing, and identical attachments are stored once.
#[derive(Clone, Debug)]
pub struct BlobStore {
    backend: Arc<dyn BlobBackend>,
    /// Files a request has stored and not yet referenced (or given up): the clean-up of a
    /// refused write leaves these alone, whoever else stored the same bytes.
    inflight: Arc<Mutex<HashMap<String, usize>>>,
}

/// A request's claim on a file it stored, until its transaction has run.
#[derive(Debug)]
pub struct Held {
    store: BlobStore,
    pub sha256: String,
}

/// Another claim on the same file (a write that may run again keeps its own).
impl Clone for Held {
    fn clone(&self) -> Self {
        *self
            .store
            .inflight
            .lock()
            .expect("inflight blobs")
            .entry(self.sha256.clone())
            .or_default() += 1;
        Self {
            store: self.store.clone(),
            sha256: self.sha256.clone(),
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut m = self.store.inflight.lock().expect("inflight blobs");
        if let Some(n) = m.get_mut(&self.sha256) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.sha256);
            }
        }
    }
}

fn check_name(sha256_hex: &str) -> Result<(), StoreError> {
    if sha256_hex.len() != 64 || !sha256_hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(StoreError::Corrupt(format!("bad blob id {sha256_hex}")));
    }
    Ok(())
}

impl BlobStore {
    /// Files in a directory of this machine.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, StoreError> {
        Ok(Self::with_backend(Arc::new(DiskBlobs::open(root)?)))
    }

    /// Files wherever `backend` keeps them.
    pub fn with_backend(backend: Arc<dyn BlobBackend>) -> Self {
        Self {
            backend,
            inflight: Default::default(),
        }
    }

    /// `put`, with a claim on the file until the returned `Held` is dropped (the claim comes
    /// first, so a clean-up that sees no claim cannot remove a file this request relies on).
    pub fn put_held(&self, bytes: &[u8]) -> Result<(String, Held), StoreError> {
        let sha = hex::encode(Sha256::digest(bytes));
        *self
            .inflight
            .lock()
            .expect("inflight blobs")
            .entry(sha.clone())
            .or_default() += 1;
        let held = Held {
            store: self.clone(),
            sha256: sha.clone(),
        };
        self.put(bytes)?;
        Ok((sha, held))
    }

    pub fn in_flight(&self, sha256_hex: &str) -> bool {
        self.inflight
            .lock()
            .expect("inflight blobs")
            .contains_key(sha256_hex)
    }

    /// Stores bytes durably and returns their hash. Called before the transaction that
    /// references the blob, so a crash can leave an unreferenced blob but never a reference to
    /// a missing one.
    pub fn put(&self, bytes: &[u8]) -> Result<String, StoreError> {
        let hash = hex::encode(Sha256::digest(bytes));
        self.backend.put(&hash, bytes)?;
        Ok(hash)
    }

    pub fn get(&self, sha256_hex: &str) -> Result<Vec<u8>, StoreError> {
        check_name(sha256_hex)?;
        self.backend.get(sha256_hex)
    }

    /// Re-hashes one blob; Ok(false) when its bytes no longer match its name.
    pub fn check(&self, sha256_hex: &str) -> Result<bool, StoreError> {
        let bytes = self.get(sha256_hex)?;
        Ok(hex::encode(Sha256::digest(&bytes)) == sha256_hex)
    }

    /// Where a file is, for messages.
    pub fn location(&self, sha256_hex: &str) -> String {
        self.backend.location(sha256_hex)
    }

    /// Every stored file's name (its SHA-256) and when it was last written or reused.
    pub fn files(&self) -> Result<Vec<(String, std::time::SystemTime)>, StoreError> {
        self.backend.files()
    }

    /// Removes a stored file (only for the orphan sweep and the clean-up of a refused write,
    /// which decide in the group commit, where no reference to it can be in the making).
    pub fn remove(&self, sha256_hex: &str) -> Result<(), StoreError> {
        check_name(sha256_hex)?;
        self.backend.remove(sha256_hex)
    }
}

/// Files under a directory: `ab/cdef…` (the first two hex digits as a subdirectory).
#[derive(Debug)]
pub struct DiskBlobs {
    root: PathBuf,
}

impl DiskBlobs {
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let root = root.into();
        fs::create_dir_all(root.join("tmp"))?;
        crate::restrict_dir(&root)?;
        Ok(Self { root })
    }

    pub fn path_of(&self, sha256_hex: &str) -> PathBuf {
        let (a, b) = sha256_hex.split_at(2.min(sha256_hex.len()));
        self.root.join(a).join(b)
    }
}

impl BlobBackend for DiskBlobs {
    /// Write, fsync, rename, fsync the directory.
    fn put(&self, hash: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let dest = self.path_of(hash);
        if dest.exists() {
            if let Ok(f) = File::options().append(true).open(&dest) {
                let _ = f.set_modified(std::time::SystemTime::now());
            }
            return Ok(());
        }
        let dir = dest.parent().expect("blob path has a parent");
        // Unique per write: two requests storing the same bytes at once must not share (and
        // truncate) one temporary file.
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = self
            .root
            .join("tmp")
            .join(format!("{hash}.{}.{n}", std::process::id()));
        let written = (|| -> std::io::Result<()> {
            fs::create_dir_all(dir)?;
            let mut f = File::options().write(true).create_new(true).open(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            crate::restrict_file(&tmp)?;
            fs::rename(&tmp, &dest)?;
            sync_dir(dir)
        })();
        if let Err(e) = written {
            // A part written before the disk filled up would hold the space it needs.
            let _ = fs::remove_file(&tmp);
            return Err(match crate::disk::from_io(&e, &self.root) {
                Some(u) => StoreError::Unwritable(u),
                None => e.into(),
            });
        }
        Ok(())
    }

    fn get(&self, sha256_hex: &str) -> Result<Vec<u8>, StoreError> {
        Ok(fs::read(self.path_of(sha256_hex))?)
    }

    fn files(&self) -> Result<Vec<(String, std::time::SystemTime)>, StoreError> {
        let mut out = Vec::new();
        for d in fs::read_dir(&self.root)? {
            let d = d?;
            let name = d.file_name().to_string_lossy().into_owned();
            if name.len() != 2 || !d.file_type()?.is_dir() {
                continue;
            }
            for f in fs::read_dir(d.path())? {
                let f = f?;
                let rest = f.file_name().to_string_lossy().into_owned();
                let sha = format!("{name}{rest}");
                if sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()) {
                    out.push((sha, f.metadata()?.modified()?));
                }
            }
        }
        Ok(out)
    }

    fn remove(&self, sha256_hex: &str) -> Result<(), StoreError> {
        fs::remove_file(self.path_of(sha256_hex))?;
        Ok(())
    }

    fn location(&self, sha256_hex: &str) -> String {
        self.path_of(sha256_hex).display().to_string()
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()?;
    }
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_get_check() {
        let d = tempfile::tempdir().unwrap();
        let b = BlobStore::open(d.path().join("blobs")).unwrap();
        let h = b.put(b"hello").unwrap();
        assert_eq!(
            h,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(b.get(&h).unwrap(), b"hello");
        assert!(b.check(&h).unwrap());
        std::fs::write(b.location(&h), b"hellO").unwrap();
        assert!(!b.check(&h).unwrap());
        assert!(b.get("../../etc/passwd").is_err());
    }

    #[test]
    fn identical_uploads_at_once_all_succeed_and_leave_one_whole_file() {
        let d = tempfile::tempdir().unwrap();
        let b = BlobStore::open(d.path().join("blobs")).unwrap();
        let bytes: Vec<u8> = (0..4 << 20).map(|i: u32| (i % 251) as u8).collect();
        for _round in 0..5 {
            let _ = std::fs::remove_dir_all(d.path().join("blobs"));
            let b = BlobStore::open(d.path().join("blobs")).unwrap();
            let start = std::sync::Barrier::new(8);
            let results: Vec<_> = std::thread::scope(|s| {
                let hs: Vec<_> = (0..8)
                    .map(|_| {
                        s.spawn(|| {
                            start.wait();
                            b.put(&bytes)
                        })
                    })
                    .collect();
                hs.into_iter().map(|h| h.join().unwrap()).collect()
            });
            for r in &results {
                assert!(r.is_ok(), "{r:?}");
            }
            let h = results[0].as_ref().unwrap();
            assert!(b.check(h).unwrap(), "the stored file is whole");
            assert_eq!(
                std::fs::read_dir(d.path().join("blobs/tmp"))
                    .unwrap()
                    .count(),
                0,
                "no temporary file is left"
            );
        }
        drop(b);
    }
}
