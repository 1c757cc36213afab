//! The database as one file image at one read snapshot, read in place for a backup while the
//! server keeps writing, and which parts of it changed since an earlier image.
//!
//! Pages that are not in the write-ahead log are read straight from the database file: while
//! the snapshot is open no checkpoint can copy a frame newer than it, and the pages a checkpoint
//! may still copy are all in the log. Those are read through SQLite (`sqlite_dbpage`), which
//! gives each page as this snapshot sees it.

use std::collections::BTreeSet;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Mutex;

use crate::page_map::{FileStamp, PageMap};
use crate::wal_frames::{WalCursor, scan};
use crate::{ReadOnly, Reader, StoreError};

/// Which page-map state an image was taken in. An image taken later under the same map can
/// tell which of its pages may differ from this one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageMark {
    pub map: String,
    pub round: u64,
}

struct MapView {
    mark: ImageMark,
    rounds: Vec<u64>,
}

pub struct DatabaseImage {
    ro: Mutex<ReadOnly>,
    file: File,
    page_size: u32,
    pages: u32,
    in_log: BTreeSet<u32>,
    map: Option<MapView>,
}

impl DatabaseImage {
    /// Opens a read snapshot of the instance in `dir` (a server may be writing).
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let db = dir.join("mamori.db");
        let map = PageMap::open_existing(&db)?;
        // Under the map's lock no checkpoint round runs: every round recorded so far finished
        // before this snapshot, and every later one gets a higher number.
        let lock = map.as_ref().map(PageMap::lock_shared).transpose()?;
        let header = match &map {
            Some(m) => m
                .header()
                .ok()
                .filter(|h| FileStamp::of(&db).is_ok_and(|s| s == h.stamp)),
            None => None,
        };
        let ro = ReadOnly::open(dir)?;
        ro.begin_snapshot()?;
        drop(lock);
        let map = match (map, header) {
            (Some(m), Some(h)) => Some(MapView {
                mark: ImageMark {
                    map: hex::encode(h.id),
                    round: h.round,
                },
                rounds: m.rounds()?,
            }),
            _ => None,
        };
        let (page_size, pages): (u32, u32) = {
            let c = ro.conn()?;
            (
                c.query_row("PRAGMA page_size", (), |r| r.get(0))?,
                c.query_row("PRAGMA page_count", (), |r| r.get(0))?,
            )
        };
        let file = File::open(&db)?;
        let wal = crate::beside(&db, "-wal");
        let bound =
            file.metadata()?.len() / 512 + std::fs::metadata(&wal).map_or(0, |m| m.len()) / 536 + 1;
        let found = scan(
            &wal,
            &mut WalCursor::default(),
            bound.min(u32::MAX as u64) as u32,
        )?;
        Ok(DatabaseImage {
            ro: Mutex::new(ro),
            file,
            page_size,
            pages,
            in_log: found.pages.into_iter().collect(),
            map,
        })
    }

    /// Reads through the same snapshot the image is of.
    pub fn with_reader<R>(&self, f: impl FnOnce(&Reader<'_>) -> R) -> R {
        f(&self.ro.lock().expect("image snapshot").get())
    }

    pub fn len(&self) -> u64 {
        u64::from(self.pages) * u64::from(self.page_size)
    }

    pub fn is_empty(&self) -> bool {
        self.pages == 0
    }

    pub fn page_size(&self) -> u32 {
        self.page_size
    }

    /// None when changes cannot be told for this image (no page map, or the database file was
    /// written by something other than mamori's checkpointer since).
    pub fn mark(&self) -> Option<ImageMark> {
        self.map.as_ref().map(|m| m.mark.clone())
    }

    /// For each extent of `extent` bytes, whether it may differ from the image marked `since`;
    /// None when that cannot be told (another map, or extents not made of whole pages).
    pub fn changed_since(&self, since: &ImageMark, extent: u64) -> Option<Vec<bool>> {
        let map = self.map.as_ref()?;
        let page = u64::from(self.page_size);
        if since.map != map.mark.map
            || since.round > map.mark.round
            || extent == 0
            || !extent.is_multiple_of(page)
        {
            return None;
        }
        let per = extent / page;
        let n = self.len().div_ceil(extent) as usize;
        let mut changed = vec![false; n];
        let mut mark = |pgno: u64| {
            if let Some(c) = changed.get_mut(((pgno - 1) / per) as usize) {
                *c = true;
            }
        };
        for (i, round) in map.rounds.iter().enumerate() {
            if *round > since.round {
                mark(i as u64 + 1);
            }
        }
        for p in &self.in_log {
            mark(u64::from(*p));
        }
        Some(changed)
    }

    /// The whole image in memory, made by SQLite from the same snapshot (for small databases,
    /// and as the reference `read_at` is tested against).
    pub fn to_vec(&self) -> Result<Vec<u8>, StoreError> {
        let ro = self.ro.lock().expect("image snapshot");
        Ok(ro.conn()?.serialize(rusqlite::DatabaseName::Main)?.to_vec())
    }

    /// Fills `buf` with the image's bytes from `offset` (page-aligned).
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), StoreError> {
        let page = u64::from(self.page_size);
        if !offset.is_multiple_of(page) || offset + buf.len() as u64 > self.len() {
            return Err(StoreError::Corrupt(format!(
                "image read outside the database: {offset}+{}",
                buf.len()
            )));
        }
        let mut got = 0usize;
        while got < buf.len() {
            match self.file.read_at(&mut buf[got..], offset + got as u64)? {
                0 => break,
                n => got += n,
            }
        }
        let first = (offset / page + 1) as u32;
        let last = ((offset + buf.len() as u64).div_ceil(page)) as u32;
        let ro = self.ro.lock().expect("image snapshot");
        let mut stmt = ro
            .conn()?
            .prepare_cached("SELECT data FROM sqlite_dbpage WHERE pgno = ?1")?;
        for p in self.in_log.range(first..=last) {
            let at = ((u64::from(*p) - 1) * page - offset) as usize;
            let data: Vec<u8> = stmt.query_row([p], |r| r.get(0))?;
            let end = (at + data.len()).min(buf.len());
            buf[at..end].copy_from_slice(&data[..end - at]);
        }
        // Past the end of the file, every page must have come from the log.
        let mut p = offset + got as u64;
        while p < offset + buf.len() as u64 {
            if !self.in_log.contains(&((p / page + 1) as u32)) {
                return Err(StoreError::Corrupt(format!(
                    "database page {} is neither in the file nor in the log",
                    p / page + 1
                )));
            }
            p += page;
        }
        Ok(())
    }
}
