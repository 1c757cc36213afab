//! Which pages of the database file changed since a given moment, so that an incremental backup
//! reads only those (issue #20: an incremental must not grow with the ledger).
//!
//! In WAL mode only a checkpoint writes the database file, and mamori's checkpointer is the
//! only one (the writer's automatic checkpoint and the checkpoint on close are off). Before each
//! checkpoint it records, for every page the log holds, the number of this round; the record is
//! durable before the checkpoint may copy a page. A backup notes the round it started in; a
//! later backup re-reads a page only when its round is newer, or the page is in the log now.
//!
//! A change the map cannot have seen (another SQLite client writing the file, a file put back
//! by hand) shows as a different file identity or modification time than the checkpointer left,
//! and the map starts over under a new id: a backup whose parent carries another id reads
//! everything. The map is derived state (never backed up, safe to delete: the next backup is
//! then a full one).
//!
//! File: an 80-byte header (magic, id, round, page size, the database file's identity as the
//! checkpointer left it), then one little-endian u64 round per page, from page 1.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use rand_core::{OsRng, RngCore};

const MAGIC: &[u8; 8] = b"MMPGMAP1";
const HEADER: u64 = 80;

/// The database file as the checkpointer last left it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct FileStamp {
    dev: u64,
    ino: u64,
    pub(crate) size: u64,
    mtime_ns: i64,
}

impl FileStamp {
    pub(crate) fn of(path: &Path) -> std::io::Result<Self> {
        let m = std::fs::metadata(path)?;
        Ok(FileStamp {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime_ns: m.mtime() * 1_000_000_000 + m.mtime_nsec(),
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub id: [u8; 16],
    /// The newest round whose pages are recorded.
    pub round: u64,
    pub stamp: FileStamp,
}

pub(crate) struct PageMap {
    file: File,
}

/// Where the map of `db` lives.
pub(crate) fn path_of(db: &Path) -> PathBuf {
    crate::beside(db, "-pages")
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

impl PageMap {
    /// Opens the map of `db`, or starts a new one (new id) when there is none or it is unreadable.
    pub(crate) fn open_or_create(db: &Path) -> std::io::Result<Self> {
        let path = path_of(db);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        crate::restrict_file(&path)?;
        let map = PageMap { file };
        map.file.lock()?;
        let fresh = map.header().is_err();
        if fresh {
            map.start_over(FileStamp::of(db).unwrap_or_default())?;
        }
        map.file.unlock()?;
        Ok(map)
    }

    /// Opens an existing map for reading; None when there is none.
    pub(crate) fn open_existing(db: &Path) -> std::io::Result<Option<Self>> {
        match File::open(path_of(db)) {
            Ok(file) => Ok(Some(PageMap { file })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub(crate) fn lock(&self) -> std::io::Result<MapLock<'_>> {
        self.file.lock()?;
        Ok(MapLock(&self.file))
    }

    pub(crate) fn lock_shared(&self) -> std::io::Result<MapLock<'_>> {
        self.file.lock_shared()?;
        Ok(MapLock(&self.file))
    }

    pub(crate) fn header(&self) -> std::io::Result<Header> {
        let mut h = [0u8; HEADER as usize];
        self.file.read_exact_at(&mut h, 0)?;
        if &h[..8] != MAGIC {
            return Err(std::io::Error::other("not a page map"));
        }
        Ok(Header {
            id: h[8..24].try_into().expect("16 bytes"),
            round: u64_at(&h, 24),
            stamp: FileStamp {
                dev: u64_at(&h, 40),
                ino: u64_at(&h, 48),
                size: u64_at(&h, 56),
                mtime_ns: u64_at(&h, 64) as i64,
            },
        })
    }

    fn write_header(&self, h: &Header) -> std::io::Result<()> {
        let mut b = [0u8; HEADER as usize];
        b[..8].copy_from_slice(MAGIC);
        b[8..24].copy_from_slice(&h.id);
        b[24..32].copy_from_slice(&h.round.to_le_bytes());
        b[40..48].copy_from_slice(&h.stamp.dev.to_le_bytes());
        b[48..56].copy_from_slice(&h.stamp.ino.to_le_bytes());
        b[56..64].copy_from_slice(&h.stamp.size.to_le_bytes());
        b[64..72].copy_from_slice(&(h.stamp.mtime_ns as u64).to_le_bytes());
        self.file.write_all_at(&b, 0)
    }

    /// Forgets every recorded page under a new id: what the map says can no longer be trusted.
    pub(crate) fn start_over(&self, stamp: FileStamp) -> std::io::Result<()> {
        let mut id = [0u8; 16];
        OsRng.fill_bytes(&mut id);
        self.file.set_len(HEADER)?;
        self.write_header(&Header {
            id,
            round: 0,
            stamp,
        })?;
        self.file.sync_all()
    }

    /// Records `pages` as changed in round `round` and makes it durable: only then may a
    /// checkpoint copy them into the database file.
    pub(crate) fn record(&self, header: &Header, round: u64, pages: &[u32]) -> std::io::Result<()> {
        let value = round.to_le_bytes();
        let mut run: Vec<u8> = Vec::new();
        let mut i = 0;
        // `pages` is sorted: consecutive pages go in one write.
        while i < pages.len() {
            let mut j = i + 1;
            while j < pages.len() && pages[j] == pages[j - 1] + 1 {
                j += 1;
            }
            run.clear();
            for _ in i..j {
                run.extend_from_slice(&value);
            }
            self.file
                .write_all_at(&run, HEADER + u64::from(pages[i] - 1) * 8)?;
            i = j;
        }
        self.write_header(&Header {
            round,
            ..header.clone()
        })?;
        self.file.sync_data()
    }

    /// Notes the database file as the checkpointer leaves it. Not synced: after a power cut a
    /// stale stamp only makes the next backup a full one.
    pub(crate) fn stamp(&self, header: &Header, stamp: FileStamp) -> std::io::Result<()> {
        self.write_header(&Header {
            stamp,
            ..header.clone()
        })
    }

    /// The round of every page (index 0 is page 1); pages past the end were never recorded.
    pub(crate) fn rounds(&self) -> std::io::Result<Vec<u64>> {
        let len = self.file.metadata()?.len().saturating_sub(HEADER);
        let mut bytes = vec![0u8; (len / 8 * 8) as usize];
        self.file.read_exact_at(&mut bytes, HEADER)?;
        Ok(bytes
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect())
    }
}

/// An advisory lock on the map, released when dropped.
pub(crate) struct MapLock<'a>(&'a File);

impl Drop for MapLock<'_> {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_rounds_read_back_and_starting_over_forgets_them() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("mamori.db");
        std::fs::write(&db, b"x").unwrap();
        let map = PageMap::open_or_create(&db).unwrap();
        let h = map.header().unwrap();
        assert_eq!(h.round, 0);
        assert_eq!(h.stamp, FileStamp::of(&db).unwrap());
        map.record(&h, 1, &[2, 3, 4, 9]).unwrap();
        let h1 = map.header().unwrap();
        map.record(&h1, 2, &[3]).unwrap();
        assert_eq!(map.rounds().unwrap(), vec![0, 1, 2, 1, 0, 0, 0, 0, 1]);
        let h2 = map.header().unwrap();
        assert_eq!((h2.id, h2.round), (h.id, 2));
        // Reopened: the same map.
        let again = PageMap::open_or_create(&db).unwrap();
        assert_eq!(again.header().unwrap(), h2);
        map.start_over(FileStamp::default()).unwrap();
        let h3 = map.header().unwrap();
        assert_ne!(h3.id, h.id);
        assert!(map.rounds().unwrap().is_empty());
        // A file that is not a map is replaced by a fresh one.
        std::fs::write(path_of(&db), b"garbage").unwrap();
        let fresh = PageMap::open_or_create(&db).unwrap();
        assert_eq!(fresh.header().unwrap().round, 0);
    }
}
