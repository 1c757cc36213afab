//! Backups of a mamori instance that survive ransomware: content-defined chunks, deduplicated,
//! compressed and sealed with AES-256-GCM under a key that never leaves the operator,
//! written once to a directory (NAS, removable medium) or an S3 bucket with Object Lock.
//!
//! A repository holds only objects that are never rewritten: `config`, `keys/*` (the master
//! key wrapped by a passphrase and/or a key file), `packs/*` (sealed chunks), `index/*` (which
//! chunk is where) and `snapshots/*` (a signed manifest per snapshot). The engine knows nothing
//! of mamori's database: the service layer hands it files and the facts to sign.
// The few system calls without a safe wrapper are allowed one by one, each with its reason.
#![deny(unsafe_code)]

pub mod engine;
pub mod erase;
pub mod error;
pub mod keys;
pub mod lock;
pub mod manifest;
pub mod paged;
pub mod repo;
pub mod s3;
pub mod seal;
pub mod target;
pub mod tree_hash;

pub use engine::{
    BackupOutcome, Prepared, Progress, PruneOutcome, PrunePlan, RestoreOutcome, Source,
    VerifyOutcome, backup, backup_prepared, prepare, prune, prune_plan, prune_planned, restore,
    restore_then, verify,
};
pub use erase::{EraseOutcome, erase};
pub use error::{BackupError, Result};
pub use keys::{KeyFile, KeyMaterial};
pub use lock::{LockKind, RepoLock};
pub use manifest::{FileEntry, Manifest, PagedEntry, SignedManifest};
pub use paged::{PageMark, PagedFile};
pub use repo::{Repository, SnapshotInfo};
pub use target::Target;

/// Opens `spec`: a directory path, or `s3://bucket/prefix?endpoint=…&region=…&lock_days=…`.
pub fn open_target(spec: &str) -> Result<Box<dyn Target>> {
    if spec.starts_with("s3://") {
        Ok(Box::new(s3::S3Target::from_url(spec)?))
    } else if spec.contains("://") {
        Err(BackupError::Invalid(format!(
            "バックアップ先 {spec} の形式が分かりません（ディレクトリか s3://バケット/接頭辞）"
        )))
    } else {
        Ok(Box::new(target::DirTarget::new(spec)))
    }
}
