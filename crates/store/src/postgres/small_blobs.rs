//! Content files beside a PostgreSQL database when the large ones live in a bucket: a record's
//! text (its content JSON, a few KiB) is kept in the database, attachments in the object
//! store. So a bucket that cannot be reached stops uploads but not the writing and reading of
//! text records (failure trial 4), and the database's replication covers the text.
//!
//! The rows are content-addressed like files: written before the transaction that refers to
//! them, never rewritten with other bytes, re-hashed by `verify` against the names the ledger
//! states, and removed only by the orphan sweep. They are not ledgered rows themselves — the
//! name is the proof — and a backup takes them with the bucket's files.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use super::Database;
use crate::sql::{Conn, OptionalExtension, PgConn};
use crate::{BlobBackend, StoreError};

/// Files up to this size go to the database; larger ones to the bucket.
pub const SMALL_FILE: usize = 64 * 1024;

pub(crate) const BLOB_BYTES_DDL: &str = "CREATE TABLE IF NOT EXISTS blob_bytes \
     (sha256 text PRIMARY KEY, bytes bytea NOT NULL, written bigint NOT NULL)";

/// The small files' table, with a few connections of its own.
pub struct PgBlobs {
    db: Database,
    idle: Mutex<Vec<PgConn>>,
}

impl std::fmt::Debug for PgBlobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PgBlobs")
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl PgBlobs {
    pub fn new(db: Database) -> Self {
        Self {
            db,
            idle: Mutex::new(Vec::new()),
        }
    }

    fn with<R>(&self, f: impl FnOnce(Conn<'_>) -> Result<R, StoreError>) -> Result<R, StoreError> {
        let c = match self.idle.lock().expect("blob connections").pop() {
            Some(c) if !c.is_closed() => c,
            _ => PgConn::connect(&self.db)?,
        };
        let r = f(Conn::Pg(&c));
        let mut idle = self.idle.lock().expect("blob connections");
        if !c.is_closed() && idle.len() < 4 {
            idle.push(c);
        }
        r
    }
}

impl BlobBackend for PgBlobs {
    fn put(&self, sha256_hex: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO blob_bytes (sha256, bytes, written) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (sha256) DO UPDATE SET written = excluded.written",
                crate::sql::params![sha256_hex, bytes.to_vec(), now_ms()],
            )?;
            Ok(())
        })
    }

    fn get(&self, sha256_hex: &str) -> Result<Vec<u8>, StoreError> {
        self.with(|c| {
            c.query_row(
                "SELECT bytes FROM blob_bytes WHERE sha256 = ?1",
                [sha256_hex],
                |r| r.get::<_, Vec<u8>>(0),
            )
            .optional()?
            .ok_or_else(|| {
                StoreError::Io(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("{sha256_hex} is not in the database"),
                ))
            })
        })
    }

    fn files(&self) -> Result<Vec<(String, SystemTime)>, StoreError> {
        self.with(|c| {
            let mut st = c.prepare("SELECT sha256, written FROM blob_bytes")?;
            let rows = st.query_map((), |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
            let mut out = Vec::new();
            for row in rows {
                let (sha, at) = row?;
                out.push((
                    sha,
                    SystemTime::UNIX_EPOCH + Duration::from_millis(at.max(0) as u64),
                ));
            }
            Ok(out)
        })
    }

    fn remove(&self, sha256_hex: &str) -> Result<(), StoreError> {
        let n = self
            .with(|c| Ok(c.execute("DELETE FROM blob_bytes WHERE sha256 = ?1", [sha256_hex])?))?;
        if n == 0 {
            return Err(StoreError::Io(std::io::ErrorKind::NotFound.into()));
        }
        Ok(())
    }

    fn location(&self, sha256_hex: &str) -> String {
        format!("PostgreSQL blob_bytes {sha256_hex}")
    }
}

/// Small files in one backend (the database), large ones in another (the bucket). Reads look
/// in the small one first, then the large one (files moved up by `store migrate` are all in
/// the bucket, whatever their size).
#[derive(Debug)]
pub struct Tiered {
    pub small: Arc<dyn BlobBackend>,
    pub large: Arc<dyn BlobBackend>,
}

fn not_found(e: &StoreError) -> bool {
    matches!(e, StoreError::Io(io) if io.kind() == std::io::ErrorKind::NotFound)
}

impl BlobBackend for Tiered {
    fn put(&self, sha256_hex: &str, bytes: &[u8]) -> Result<(), StoreError> {
        if bytes.len() <= SMALL_FILE {
            self.small.put(sha256_hex, bytes)
        } else {
            self.large.put(sha256_hex, bytes)
        }
    }

    fn get(&self, sha256_hex: &str) -> Result<Vec<u8>, StoreError> {
        match self.small.get(sha256_hex) {
            Err(e) if not_found(&e) => self.large.get(sha256_hex),
            other => other,
        }
    }

    fn files(&self) -> Result<Vec<(String, SystemTime)>, StoreError> {
        // A file in both (moved up, then written again) is listed once, with its newer age.
        let mut all: std::collections::HashMap<String, SystemTime> =
            self.large.files()?.into_iter().collect();
        for (sha, at) in self.small.files()? {
            let e = all.entry(sha).or_insert(at);
            *e = (*e).max(at);
        }
        Ok(all.into_iter().collect())
    }

    fn remove(&self, sha256_hex: &str) -> Result<(), StoreError> {
        match self.small.remove(sha256_hex) {
            Err(e) if not_found(&e) => self.large.remove(sha256_hex),
            other => other,
        }
    }

    fn location(&self, sha256_hex: &str) -> String {
        self.large.location(sha256_hex)
    }
}
