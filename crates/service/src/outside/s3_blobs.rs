//! Content files (attachments, evidence documents) in an S3-compatible bucket instead of the
//! data directory: the same content-addressed names (`ab/cdef…`), through the backup pillar's
//! S3 client (SigV4, retries with back-off, path-style or virtual-hosted addressing).
//!
//! Selected by `[database] blobs = "s3://…"` beside a PostgreSQL database, where it holds the
//! files larger than `SMALL_FILE` (the database holds the rest: `postgres::Tiered`).

use mamori_backup::BackupError;
use mamori_backup::s3::{Credentials, S3Target};
use mamori_backup::target::Target;
use mamori_store::{BlobBackend, StoreError};

/// A person waits on an upload: a few quick attempts ride out a throttling answer or a
/// dropped connection, and an unreachable bucket is reported within about two seconds
/// (backups, which nobody waits on, retry for a minute).
const INTERACTIVE: mamori_backup::s3::Retry = mamori_backup::s3::Retry {
    attempts: 3,
    first: std::time::Duration::from_millis(200),
    longest: std::time::Duration::from_secs(1),
};

pub struct S3Blobs {
    target: S3Target,
    url: String,
}

impl std::fmt::Debug for S3Blobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Blobs").field("url", &self.url).finish()
    }
}

fn key(sha256_hex: &str) -> String {
    format!("{}/{}", &sha256_hex[..2], &sha256_hex[2..])
}

impl S3Blobs {
    /// `s3://bucket/prefix?endpoint=…&region=…[&addressing=virtual]`. Objects are not locked
    /// unless `lock_days` is given (the orphan sweep must be able to remove a refused write's
    /// file).
    pub fn open(url: &str, creds: Credentials) -> Result<Self, StoreError> {
        let with_lock = if url.contains("lock_days=") {
            url.to_owned()
        } else if url.contains('?') {
            format!("{url}&lock_days=0")
        } else {
            format!("{url}?lock_days=0")
        };
        let target = S3Target::from_url_with(&with_lock, creds)
            .map_err(|e| StoreError::Schema(e.to_string()))?
            .with_retry(INTERACTIVE);
        Ok(Self::from_target(target))
    }

    pub fn from_target(target: S3Target) -> Self {
        Self {
            url: target.describe(),
            target,
        }
    }
}

/// The backup client's errors in the store's terms: a bucket that cannot be reached is
/// `Unreachable` (the request is refused, nothing kept), a missing object is a missing file.
fn store_error(e: BackupError) -> StoreError {
    match e {
        BackupError::Missing { name, .. } => StoreError::Io(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{name} is not in the bucket"),
        )),
        BackupError::Io(m) => StoreError::Unreachable(m),
        BackupError::Corrupt { name, why, .. } => StoreError::Corrupt(format!("{name}: {why}")),
        other => StoreError::Database(other.to_string()),
    }
}

impl BlobBackend for S3Blobs {
    fn put(&self, sha256_hex: &str, bytes: &[u8]) -> Result<(), StoreError> {
        // The same bytes again: writing them anew refreshes the object's age, as on disk.
        self.target
            .put(&key(sha256_hex), bytes)
            .map_err(store_error)
    }

    fn get(&self, sha256_hex: &str) -> Result<Vec<u8>, StoreError> {
        self.target.get(&key(sha256_hex)).map_err(store_error)
    }

    fn files(&self) -> Result<Vec<(String, std::time::SystemTime)>, StoreError> {
        Ok(self
            .target
            .list_dated("")
            .map_err(store_error)?
            .into_iter()
            .filter_map(|(name, at)| {
                let sha = name.replace('/', "");
                (sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()))
                    .then(|| (sha, at.into()))
            })
            .collect())
    }

    fn remove(&self, sha256_hex: &str) -> Result<(), StoreError> {
        let k = key(sha256_hex);
        // Deleting what is not there succeeds on S3; say so as the disk would.
        match self.target.get_range(&k, 0, 1) {
            Err(BackupError::Missing { .. }) => {
                return Err(StoreError::Io(std::io::ErrorKind::NotFound.into()));
            }
            Err(e) => return Err(store_error(e)),
            Ok(_) => {}
        }
        self.target.delete(&k).map_err(store_error)
    }

    fn location(&self, sha256_hex: &str) -> String {
        format!("{}/{}", self.url.trim_end_matches('/'), key(sha256_hex))
    }
}
