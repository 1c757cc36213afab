//! Files backed up in fixed parts whose changes the source can tell (the database): a part
//! unchanged since the previous snapshot is taken from it without being read, so an incremental
//! backup costs what changed, not what the file has grown to.

use std::sync::Arc;

use crate::manifest::{FileEntry, PagedEntry};

/// Bytes per part: a power of two (the whole-file hash is merged from the parts' hashes) and a
/// multiple of the database page size. Small enough that a day's scattered page changes do not
/// drag in much unchanged data, large enough that a large database is a few tens of thousands
/// of chunks.
pub const PART: u64 = 128 * 1024;

/// After this many backups that took unchanged parts from their parent, the next reads
/// everything: a change the source could not see (a bug, a file edited by hand with its time
/// put back) cannot outlive that.
pub const FULL_EVERY: u32 = 24;

/// The change-tracking state a file was read in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageMark {
    pub map: String,
    pub round: u64,
}

/// A file read in place at one consistent moment, which can say what changed since a mark it
/// gave earlier.
pub trait PagedFile: Send + Sync {
    fn len(&self) -> u64;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// None when changes cannot be told for this reading.
    fn mark(&self) -> Option<PageMark>;
    /// For each part of `part` bytes, whether it may differ from the reading marked `since`;
    /// None when that cannot be told.
    fn changed_since(&self, since: &PageMark, part: u64) -> Option<Vec<bool>>;
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()>;
}

#[derive(Clone)]
pub struct Paged(pub Arc<dyn PagedFile>);

impl std::fmt::Debug for Paged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Paged({} bytes)", self.0.len())
    }
}

/// Which parts a run reads, and what it takes from the parent for the others.
pub(crate) struct Plan {
    pub len: u64,
    pub parts: usize,
    /// (chunk id, chaining value) of each part taken from the parent; None: read it.
    pub reuse: Vec<Option<([u8; 32], [u8; 32])>>,
    pub mark: Option<PageMark>,
    pub since_full: u32,
}

impl Plan {
    pub(crate) fn read_bytes(&self) -> u64 {
        self.reuse
            .iter()
            .enumerate()
            .filter(|(_, r)| r.is_none())
            .map(|(i, _)| PART.min(self.len - i as u64 * PART))
            .sum()
    }

    /// One part only: its hash is the file's root hash, never a chaining value to reuse.
    pub(crate) fn single(&self) -> bool {
        self.len <= PART
    }
}

fn hex32(s: &str) -> Option<[u8; 32]> {
    hex::decode(s).ok()?.try_into().ok()
}

pub(crate) fn plan(file: &dyn PagedFile, parent: Option<&FileEntry>) -> Plan {
    let len = file.len();
    let parts = len.div_ceil(PART) as usize;
    let mark = file.mark();
    let mut plan = Plan {
        len,
        parts,
        reuse: vec![None; parts],
        mark: mark.clone(),
        since_full: 0,
    };
    let Some((p, pe)) = parent.and_then(|p| Some((p, p.paged.as_ref()?))) else {
        return plan;
    };
    if mark.is_none()
        || plan.single()
        || p.size <= PART
        || pe.part != PART
        || pe.since_full + 1 >= FULL_EVERY
        || pe.cvs.len() != p.chunks.len()
    {
        return plan;
    }
    let since = PageMark {
        map: pe.map.clone(),
        round: pe.round,
    };
    let Some(changed) = file.changed_since(&since, PART) else {
        return plan;
    };
    // Parts whole in both the parent and this file; the last, shorter part only when the size
    // is the same.
    let same = if p.size == len {
        parts
    } else {
        (p.size / PART).min(len / PART) as usize
    };
    for i in 0..same {
        if !changed.get(i).copied().unwrap_or(true)
            && let (Some(id), Some(cv)) = (hex32(&p.chunks[i]), hex32(&pe.cvs[i]))
        {
            plan.reuse[i] = Some((id, cv));
        }
    }
    plan.since_full = pe.since_full + 1;
    plan
}

impl Plan {
    /// The manifest's record of this file, from every part's chaining value.
    pub(crate) fn entry(&self, cvs: &[[u8; 32]]) -> Option<PagedEntry> {
        let mark = self.mark.as_ref()?;
        Some(PagedEntry {
            part: PART,
            map: mark.map.clone(),
            round: mark.round,
            since_full: self.since_full,
            cvs: cvs.iter().map(hex::encode).collect(),
        })
    }
}
