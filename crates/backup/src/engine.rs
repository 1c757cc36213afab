//! Backup, restore, verify and prune over a repository.
//!
//! Backup is a pipeline sized to the machine: one thread reads and cuts files into chunks,
//! workers hash, compress and seal new chunks, one thread fills packs and writes them. Files
//! unchanged since the previous snapshot (same path, size and modification time) are not read
//! again, which is what keeps a daily run short.
//!
//! Length: the snapshot pipeline (scan, chunk, seal, pack, commit) and restore share the
//! workers' state, so they stay in one file; about 80 lines are tests.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Instant, UNIX_EPOCH};

use std::io::Read;
use std::sync::Arc;

use crossbeam_channel::{bounded, unbounded};
use ed25519_dalek::SigningKey;
use fastcdc::v2020::{FastCDC, Normalization};
use rand_core::{OsRng, RngCore};
use serde::Serialize;
use time::OffsetDateTime;

use crate::error::{BackupError, Result};
use crate::manifest::{FileEntry, MANIFEST_FORMAT, Manifest, SignedManifest};
use crate::paged::{PART, Paged, PagedFile, Plan};
use crate::repo::{IndexFile, Loc, PackEntry, Repository, now_text, pack_name};
use crate::seal::{Sealer, open_chunk, random_bytes};

/// Reports progress in bytes; the CLI draws a bar with throughput from it.
pub trait Progress: Sync {
    fn start(&self, _what: &str, _total_bytes: u64) {}
    fn advance(&self, _bytes: u64) {}
    fn finish(&self) {}
}

pub struct NoProgress;
impl Progress for NoProgress {}

/// One file to back up: where it goes in the snapshot, and where to read it now.
#[derive(Clone, Debug)]
pub struct Source {
    pub path: String,
    pub file: PathBuf,
    /// Never rewritten once it exists (content-addressed, like mamori's blobs): when the
    /// previous snapshot has it, it is taken from there without even a stat.
    pub immutable: bool,
    /// Read in fixed parts from a source that knows which parts changed (the database).
    pub paged: Option<Paged>,
    /// Bytes asked for when the file is read, not a path (a content file in a bucket).
    pub fetch: Option<Fetch>,
}

/// How a fetched source's bytes are got; asked only when the parent snapshot lacks the file.
#[derive(Clone)]
pub struct Fetch(pub Arc<dyn Fn() -> std::io::Result<Vec<u8>> + Send + Sync>);

impl std::fmt::Debug for Fetch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Fetch")
    }
}

impl Source {
    pub fn file(path: impl Into<String>, file: impl Into<PathBuf>) -> Self {
        Source {
            path: path.into(),
            file: file.into(),
            immutable: false,
            paged: None,
            fetch: None,
        }
    }

    /// An immutable file whose bytes `fetch` gets (from an object store) when it is read.
    pub fn fetched(
        path: impl Into<String>,
        fetch: impl Fn() -> std::io::Result<Vec<u8>> + Send + Sync + 'static,
    ) -> Self {
        Source {
            immutable: true,
            fetch: Some(Fetch(Arc::new(fetch))),
            ..Source::file(path, PathBuf::new())
        }
    }

    /// A file read in fixed parts, only the changed ones when the parent snapshot allows.
    pub fn paged(path: impl Into<String>, file: Arc<dyn PagedFile>) -> Self {
        Source {
            paged: Some(Paged(file)),
            ..Source::file(path, PathBuf::new())
        }
    }

    pub fn immutable(path: impl Into<String>, file: impl Into<PathBuf>) -> Self {
        Source {
            immutable: true,
            ..Source::file(path, file)
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct BackupOutcome {
    pub snapshot: String,
    pub target: String,
    pub files: usize,
    pub files_unchanged: usize,
    pub total_bytes: u64,
    /// Bytes read and chunked this run (unchanged files are not read).
    pub read_bytes: u64,
    pub new_chunks: usize,
    /// Sealed bytes written to the target this run.
    pub stored_bytes: u64,
    pub locked_until: Option<String>,
    pub seconds: f64,
}

/// One more worker than cores: a worker waiting on its pack write leaves a core to the others.
fn workers() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(2, 8)
        + 1
}

fn mtime_ms(meta: &fs::Metadata) -> i64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn new_snapshot_id() -> String {
    let t = OffsetDateTime::now_utc();
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}.{:03}Z-{}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond(),
        hex::encode(random_bytes::<3>())
    )
}

enum Done {
    Chunk {
        file: usize,
        seq: usize,
        id: [u8; 32],
        /// A part's BLAKE3 chaining value (or, for a file of one part, its hash).
        cv: Option<[u8; 32]>,
    },
    File {
        file: usize,
        size: u64,
        blake3: String,
        chunks: usize,
        mtime_ms: i64,
    },
}

/// Files up to this size are restored from one buffer.
const WHOLE_FILE: u64 = 64 << 20;

/// One chunk: a range of a shared read window (no copy per chunk).
struct Job {
    file: usize,
    seq: usize,
    buf: Arc<Vec<u8>>,
    off: usize,
    len: usize,
    hash: PartHash,
}

/// What a worker hashes besides the chunk id, for a part of a paged file.
#[derive(Clone, Copy)]
enum PartHash {
    None,
    /// The chaining value of the part at this offset.
    Cv(u64),
    /// The file's hash (a file of one part).
    Root,
}

impl Job {
    fn data(&self) -> &[u8] {
        &self.buf[self.off..self.off + self.len]
    }

    fn part_hash(&self) -> Option<[u8; 32]> {
        match self.hash {
            PartHash::None => None,
            PartHash::Cv(at) => Some(crate::tree_hash::part_cv(at, self.data())),
            PartHash::Root => Some(*blake3::hash(self.data()).as_bytes()),
        }
    }
}

/// Reads the parts `plan` does not take from the parent, a window at a time, and hands each on;
/// the parts it takes go straight to the chunk list. False when the workers stopped.
fn read_paged(
    file: usize,
    src: &dyn PagedFile,
    plan: &Plan,
    pool: &mut WindowPool,
    progress: &dyn Progress,
    jobs: &crossbeam_channel::Sender<Job>,
    done: &crossbeam_channel::Sender<Done>,
) -> Result<bool> {
    let per_window = (WINDOW / PART) as usize;
    let mut i = 0;
    while i < plan.parts {
        if let Some((id, cv)) = plan.reuse[i] {
            let _ = done.send(Done::Chunk {
                file,
                seq: i,
                id,
                cv: Some(cv),
            });
            i += 1;
            continue;
        }
        let mut j = i + 1;
        while j < plan.parts && plan.reuse[j].is_none() && j - i < per_window {
            j += 1;
        }
        let start = i as u64 * PART;
        let end = (j as u64 * PART).min(plan.len);
        let mut buf = pool.take((end - start) as usize);
        buf.resize((end - start) as usize, 0);
        src.read_at(start, &mut buf)?;
        progress.advance(end - start);
        let buf = Arc::new(buf);
        pool.keep(&buf);
        for k in i..j {
            let off = (k - i) as u64 * PART;
            let job = Job {
                file,
                seq: k,
                buf: buf.clone(),
                off: off as usize,
                len: PART.min(end - start - off) as usize,
                hash: if plan.single() {
                    PartHash::Root
                } else {
                    PartHash::Cv(k as u64 * PART)
                },
            };
            if jobs.send(job).is_err() {
                return Ok(false);
            }
        }
        i = j;
    }
    let _ = done.send(Done::File {
        file,
        size: plan.len,
        blake3: String::new(),
        chunks: plan.parts,
        mtime_ms: 0,
    });
    Ok(true)
}

/// Sets a file's `seq`th chunk (or part hash); they arrive from the workers in any order.
fn put(list: &mut Vec<Option<[u8; 32]>>, seq: usize, v: [u8; 32]) {
    if list.len() <= seq {
        list.resize(seq + 1, None);
    }
    list[seq] = Some(v);
}

/// The whole file's hash of a paged file, from its parts' hashes.
fn paged_hash(plan: &Plan, cvs: &[[u8; 32]]) -> String {
    match cvs {
        [] => blake3::hash(&[]).to_hex().to_string(),
        [root] if plan.single() => hex::encode(root),
        _ => crate::tree_hash::root(cvs, PART, plan.len)
            .to_hex()
            .to_string(),
    }
}

/// Bytes read per window. Cut points do not depend on it: the last chunk of a window is
/// carried over and cut again with what follows.
const WINDOW: u64 = 32 << 20;

/// Stats every file source that needs it (None for paged sources and immutable files the
/// parent has), on a few threads.
fn stat_all(
    sources: &[Source],
    parent: &HashMap<String, FileEntry>,
) -> Result<Vec<Option<(u64, i64)>>> {
    let stat = |s: &Source| -> Result<Option<(u64, i64)>> {
        if s.paged.is_some() || s.fetch.is_some() || (s.immutable && parent.contains_key(&s.path)) {
            return Ok(None);
        }
        let m = fs::metadata(&s.file)
            .map_err(|e| BackupError::Io(format!("{}: {e}", s.file.display())))?;
        Ok(Some((m.len(), mtime_ms(&m))))
    };
    let per = sources.len().div_ceil(workers()).max(256);
    std::thread::scope(|scope| {
        let parts: Vec<_> = sources
            .chunks(per)
            .map(|part| scope.spawn(move || part.iter().map(stat).collect::<Result<Vec<_>>>()))
            .collect();
        let mut out = Vec::with_capacity(sources.len());
        for p in parts {
            out.extend(p.join().expect("stat thread")?);
        }
        Ok(out)
    })
}

/// Read windows handed back for reuse once every chunk of them is sealed: allocating and
/// freeing tens of megabytes per window costs page faults and TLB shootdowns on every one.
#[derive(Default)]
struct WindowPool(Vec<Arc<Vec<u8>>>);

impl WindowPool {
    fn take(&mut self, capacity: usize) -> Vec<u8> {
        let free = self.0.iter().position(|b| Arc::strong_count(b) == 1);
        match free.map(|i| Arc::try_unwrap(self.0.swap_remove(i))) {
            Some(Ok(mut v)) => {
                v.clear();
                v.reserve(capacity);
                v
            }
            _ => Vec::with_capacity(capacity),
        }
    }

    fn keep(&mut self, buf: &Arc<Vec<u8>>) {
        if self.0.len() < 8 {
            self.0.push(buf.clone());
        }
    }
}

/// Reads `f` window by window, cuts it into content-defined chunks and hands each on; returns
/// the file's size and BLAKE3 hash.
fn chunk_file(
    mut f: impl Read,
    pool: &mut WindowPool,
    params: &crate::repo::ChunkerParams,
    seed: u64,
    progress: &dyn Progress,
    mut emit: impl FnMut(Arc<Vec<u8>>, usize, usize) -> bool,
) -> std::io::Result<(u64, String, bool)> {
    let mut hasher = blake3::Hasher::new();
    let mut size = 0u64;
    let mut carry: Vec<u8> = Vec::new();
    loop {
        let mut buf = pool.take(carry.len() + WINDOW as usize);
        buf.extend_from_slice(&carry);
        let n = (&mut f).take(WINDOW).read_to_end(&mut buf)?;
        let eof = (n as u64) < WINDOW;
        hasher.update(&buf[carry.len()..]);
        size += n as u64;
        progress.advance(n as u64);
        let buf = Arc::new(buf);
        pool.keep(&buf);
        let cuts: Vec<(usize, usize)> = FastCDC::with_level_and_seed(
            &buf,
            params.min,
            params.avg,
            params.max,
            Normalization::Level1,
            seed,
        )
        .map(|c| (c.offset, c.length))
        .collect();
        let whole = if eof {
            cuts.len()
        } else {
            cuts.len().saturating_sub(1)
        };
        for &(off, len) in &cuts[..whole] {
            if !emit(buf.clone(), off, len) {
                return Ok((size, String::new(), false));
            }
        }
        carry = match cuts.get(whole) {
            Some(&(off, len)) if !eof => buf[off..off + len].to_vec(),
            _ => Vec::new(),
        };
        if eof {
            return Ok((size, hasher.finalize().to_hex().to_string(), true));
        }
    }
}

/// Takes one snapshot of `sources` into `repo`, signed with `signer`; `facts` is what the
/// instance vouches for (ledger root and size, records) and goes into the manifest as is.
pub fn backup(
    repo: &Repository,
    sources: &[Source],
    facts: serde_json::Value,
    signer: &SigningKey,
    progress: &dyn Progress,
) -> Result<BackupOutcome> {
    let started = Instant::now();
    let prepared = prepare(repo)?;
    backup_prepared(repo, prepared, sources, facts, signer, progress, started)
}

/// What a run needs from the repository before it reads anything: which chunks exist, and
/// the previous snapshot's files. Loadable while the caller gathers its sources.
pub struct Prepared {
    index: HashMap<[u8; 32], Loc>,
    parent_id: Option<String>,
    parent: HashMap<String, FileEntry>,
    /// Held from reading the index until the snapshot is written: a prune in between could
    /// remove a pack this run deduplicates against.
    lock: crate::RepoLock,
}

pub fn prepare(repo: &Repository) -> Result<Prepared> {
    let lock = repo.lock(crate::LockKind::Shared, "backup")?;
    let index = repo.load_index()?;
    let parent_id = repo.snapshot_ids()?.pop();
    let parent: HashMap<String, FileEntry> = match &parent_id {
        Some(id) => match repo.load_snapshot(id).and_then(|s| s.verified(None)) {
            Ok(m) => m.files.into_iter().map(|f| (f.path.clone(), f)).collect(),
            Err(_) => HashMap::new(),
        },
        None => HashMap::new(),
    };
    Ok(Prepared {
        index,
        parent_id,
        parent,
        lock,
    })
}

/// `backup` with the repository state loaded beforehand; `started` is when the run began.
pub fn backup_prepared(
    repo: &Repository,
    prepared: Prepared,
    sources: &[Source],
    facts: serde_json::Value,
    signer: &SigningKey,
    progress: &dyn Progress,
    started: Instant,
) -> Result<BackupOutcome> {
    let Prepared {
        index,
        lock: _lock,
        parent_id,
        mut parent,
    } = prepared;

    // Decide which files must be read.
    let mut entries: Vec<Option<FileEntry>> = Vec::with_capacity(sources.len());
    let mut to_read: Vec<(usize, &Source, u64)> = Vec::new();
    let mut total_bytes = 0u64;
    let mut unchanged = 0usize;
    // Only files whose size or modification time changed are read again. The stat calls
    // are spread over threads: an instance has tens of thousands of small files.
    // Files whose chunks are only in packs of an earlier release are read and stored again
    // (AES-256-GCM); the prune after it drops the old packs.
    let legacy: HashSet<[u8; 32]> = index
        .iter()
        .filter(|(_, loc)| loc.legacy)
        .map(|(c, _)| *c)
        .collect();
    if !legacy.is_empty() {
        parent.retain(|_, f| {
            !f.chunks
                .iter()
                .any(|c| parse_chunk(c).map_or(true, |c| legacy.contains(&c)))
        });
    }
    let metas: Vec<Option<(u64, i64)>> = stat_all(sources, &parent)?;
    let mut plans: HashMap<usize, Plan> = HashMap::new();
    for (i, s) in sources.iter().enumerate() {
        if let Some(paged) = &s.paged {
            let plan = crate::paged::plan(&*paged.0, parent.remove(&s.path).as_ref());
            total_bytes += plan.len;
            entries.push(None);
            to_read.push((i, s, plan.read_bytes()));
            plans.insert(i, plan);
            continue;
        }
        if s.immutable
            && let Some(p) = parent.remove(&s.path)
        {
            total_bytes += p.size;
            unchanged += 1;
            entries.push(Some(p));
            continue;
        }
        if s.fetch.is_some() {
            // Its size is known once fetched; progress counts it then.
            entries.push(None);
            to_read.push((i, s, 0));
            continue;
        }
        let Some((len, mtime)) = metas[i] else {
            unreachable!("every file source not taken above was stat-ed");
        };
        total_bytes += len;
        // The parent is the newest snapshot, which pruning never removes: its chunks are there.
        let reuse = parent
            .remove(&s.path)
            .filter(|p| p.size == len && p.mtime_ms == mtime);
        match reuse {
            Some(p) => {
                unchanged += 1;
                entries.push(Some(p));
            }
            None => {
                entries.push(None);
                to_read.push((i, s, len));
            }
        }
    }
    let read_total: u64 = to_read.iter().map(|(_, _, len)| *len).sum();
    let phase = |what: &str| {
        tracing::debug!(
            phase = what,
            ms = started.elapsed().as_secs_f64() * 1e3,
            "backup"
        )
    };
    phase("planned");
    progress.start("バックアップ", read_total);

    let seen: Mutex<HashSet<[u8; 32]>> = Mutex::new(
        index
            .iter()
            .filter(|(_, loc)| !loc.legacy)
            .map(|(c, _)| *c)
            .collect(),
    );
    let params = repo.config.chunker.clone();
    let pack_size = repo.config.pack_size;
    let n_workers = workers();
    let (job_tx, job_rx) = bounded::<Job>(n_workers * 4);
    let (done_tx, done_rx) = unbounded::<Done>();
    let key = &repo.key;
    let packs: Mutex<Vec<PackEntry>> = Mutex::new(Vec::new());
    let stored = std::sync::atomic::AtomicU64::new(0);
    let new_chunks = AtomicUsize::new(0);

    let mut chunk_lists: HashMap<usize, Vec<Option<[u8; 32]>>> = HashMap::new();
    let mut cv_lists: HashMap<usize, Vec<Option<[u8; 32]>>> = HashMap::new();
    let mut file_facts: HashMap<usize, (u64, String, usize, i64)> = HashMap::new();

    let (read_result, worker_results) = std::thread::scope(|scope| {
        let reader = {
            let done_tx = done_tx.clone();
            let (to_read, params, plans) = (&to_read, &params, &plans);
            scope.spawn(move || -> Result<()> {
                let mut pool = WindowPool::default();
                for (i, s, _) in to_read {
                    if let (Some(paged), Some(plan)) = (&s.paged, plans.get(i)) {
                        let read = read_paged(
                            *i, &*paged.0, plan, &mut pool, progress, &job_tx, &done_tx,
                        )?;
                        if !read {
                            return Ok(());
                        }
                        continue;
                    }
                    let mut seq = 0usize;
                    let mut emit = |buf, off, len| {
                        let sent = job_tx.send(Job {
                            file: *i,
                            seq,
                            buf,
                            off,
                            len,
                            hash: PartHash::None,
                        });
                        seq += 1;
                        sent.is_ok()
                    };
                    let (size, blake3, whole, mtime) = if let Some(fetch) = &s.fetch {
                        let bytes =
                            (fetch.0)().map_err(|e| BackupError::Io(format!("{}: {e}", s.path)))?;
                        let (size, blake3, whole) = chunk_file(
                            std::io::Cursor::new(bytes),
                            &mut pool,
                            params,
                            key.cdc_seed,
                            progress,
                            &mut emit,
                        )?;
                        (size, blake3, whole, 0)
                    } else {
                        let f = File::open(&s.file)
                            .map_err(|e| BackupError::Io(format!("{}: {e}", s.file.display())))?;
                        let mtime = mtime_ms(&f.metadata()?);
                        let (size, blake3, whole) =
                            chunk_file(f, &mut pool, params, key.cdc_seed, progress, &mut emit)
                                .map_err(|e| {
                                    BackupError::Io(format!("{}: {e}", s.file.display()))
                                })?;
                        (size, blake3, whole, mtime)
                    };
                    if !whole {
                        return Ok(()); // the workers stopped; their error is reported
                    }
                    let _ = done_tx.send(Done::File {
                        file: *i,
                        size,
                        blake3,
                        chunks: seq,
                        mtime_ms: mtime,
                    });
                }
                Ok(())
            })
        };
        // Each worker hashes, compresses and seals into its own pack and writes it when full,
        // so that writing (a large share of the work) runs in parallel too.
        let mut handles = Vec::new();
        for _ in 0..n_workers {
            let job_rx = job_rx.clone();
            let done_tx = done_tx.clone();
            let (seen, packs, stored, new_chunks) = (&seen, &packs, &stored, &new_chunks);
            handles.push(scope.spawn(move || -> Result<()> {
                let mut sealer = Sealer::default();
                let mut pack: Vec<u8> = Vec::with_capacity(pack_size + (9 << 20));
                let mut blobs: Vec<(String, u64, u32, u32)> = Vec::new();
                let flush = |pack: &mut Vec<u8>, blobs: &mut Vec<(String, u64, u32, u32)>| {
                    if pack.is_empty() {
                        return Ok::<(), BackupError>(());
                    }
                    let id = *blake3::hash(pack).as_bytes();
                    repo.target.put_deferred(&pack_name(&id), pack)?;
                    stored.fetch_add(pack.len() as u64, Ordering::Relaxed);
                    packs.lock().expect("packs").push(PackEntry {
                        id: hex::encode(id),
                        blobs: std::mem::take(blobs),
                        cipher: Some(crate::repo::PACK_CIPHER.to_owned()),
                    });
                    pack.clear();
                    Ok(())
                };
                for job in job_rx {
                    let data = job.data();
                    let id = key.chunk_id(data);
                    if seen.lock().expect("seen set").insert(id) {
                        let start = pack.len();
                        sealer.seal_into(&mut pack, &key.enc, &id, data);
                        blobs.push((
                            hex::encode(id),
                            start as u64,
                            (pack.len() - start) as u32,
                            data.len() as u32,
                        ));
                        new_chunks.fetch_add(1, Ordering::Relaxed);
                        if pack.len() >= pack_size {
                            flush(&mut pack, &mut blobs)?;
                        }
                    }
                    let _ = done_tx.send(Done::Chunk {
                        file: job.file,
                        seq: job.seq,
                        id,
                        cv: job.part_hash(),
                    });
                }
                flush(&mut pack, &mut blobs)
            }));
        }
        drop(done_tx);
        drop(job_rx);
        for d in done_rx {
            match d {
                Done::Chunk { file, seq, id, cv } => {
                    put(chunk_lists.entry(file).or_default(), seq, id);
                    if let Some(cv) = cv {
                        put(cv_lists.entry(file).or_default(), seq, cv);
                    }
                }
                Done::File {
                    file,
                    size,
                    blake3,
                    chunks,
                    mtime_ms,
                } => {
                    file_facts.insert(file, (size, blake3, chunks, mtime_ms));
                }
            }
        }
        (
            reader.join().expect("reader thread"),
            handles
                .into_iter()
                .map(|h| h.join().expect("worker thread"))
                .collect::<Vec<_>>(),
        )
    });
    for r in worker_results {
        r?;
    }
    read_result?;
    progress.finish();
    // Every pack is durable before an index or snapshot names it.
    repo.target.sync()?;
    phase("packs written and synced");
    let packs = packs.into_inner().expect("packs");
    let new_chunks = new_chunks.into_inner();
    let stored_bytes = stored.into_inner();

    for (i, _, _) in &to_read {
        let (size, mut blake3, n, mtime_ms) = file_facts.remove(i).ok_or_else(|| {
            BackupError::Io(format!("{} を読み切れませんでした", sources[*i].path))
        })?;
        let list = chunk_lists.remove(i).unwrap_or_default();
        if list.len() != n || list.iter().any(Option::is_none) {
            return Err(BackupError::Io(format!(
                "{} のチャンクがそろいません",
                sources[*i].path
            )));
        }
        let mut paged = None;
        if let Some(plan) = plans.get(i) {
            let cvs: Option<Vec<[u8; 32]>> =
                cv_lists.remove(i).unwrap_or_default().into_iter().collect();
            let cvs = cvs.filter(|c| c.len() == n).ok_or_else(|| {
                BackupError::Io(format!(
                    "{} の部分のハッシュがそろいません",
                    sources[*i].path
                ))
            })?;
            blake3 = paged_hash(plan, &cvs);
            paged = plan.entry(&cvs);
        }
        entries[*i] = Some(FileEntry {
            path: sources[*i].path.clone(),
            size,
            mtime_ms,
            blake3,
            chunks: list
                .into_iter()
                .map(|c| hex::encode(c.expect("checked")))
                .collect(),
            paged,
        });
    }
    let files: Vec<FileEntry> = entries
        .into_iter()
        .map(|e| e.expect("every file"))
        .collect();

    // Packs, then their index, then the snapshot: a crash leaves unreferenced packs at worst.
    if !packs.is_empty() {
        repo.write_index(&IndexFile {
            packs: packs.clone(),
        })?;
    }
    phase("index written");
    let locked_until = extend_locks(repo, &index, &packs, &files)?;
    let id = new_snapshot_id();
    let manifest = Manifest {
        format: MANIFEST_FORMAT.into(),
        snapshot: id.clone(),
        created_at: now_text(),
        created_ms: OffsetDateTime::now_utc().unix_timestamp_nanos() as i64 / 1_000_000,
        host: hostname(),
        tool: format!("mamori {}", env!("CARGO_PKG_VERSION")),
        parent: parent_id,
        total_bytes,
        locked_until: locked_until.clone(),
        facts,
        files,
    };
    let files_count = manifest.files.len();
    repo.write_snapshot(&id, &SignedManifest::sign(&manifest, signer))?;
    phase("snapshot written");
    Ok(BackupOutcome {
        snapshot: id,
        target: repo.target.describe(),
        files: files_count,
        files_unchanged: unchanged,
        total_bytes,
        read_bytes: read_total,
        new_chunks,
        stored_bytes,
        locked_until,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// On a write-once target, keeps every older object the new snapshot relies on locked at
/// least as long as the new snapshot itself (a deduplicated chunk from last month must not
/// expire while this snapshot still needs it).
fn extend_locks(
    repo: &Repository,
    index: &HashMap<[u8; 32], Loc>,
    new_packs: &[PackEntry],
    files: &[FileEntry],
) -> Result<Option<String>> {
    let Some(days) = repo.target.lock_days() else {
        return Ok(None);
    };
    let until = OffsetDateTime::now_utc() + time::Duration::days(i64::from(days));
    let fresh: HashSet<&str> = new_packs.iter().map(|p| p.id.as_str()).collect();
    let mut old_packs: HashSet<[u8; 32]> = HashSet::new();
    for f in files {
        for c in &f.chunks {
            if let Some(loc) = hex::decode(c)
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .and_then(|id| index.get(&id))
                && !fresh.contains(hex::encode(loc.pack).as_str())
            {
                old_packs.insert(loc.pack);
            }
        }
    }
    for pack in &old_packs {
        repo.target.extend_lock(&pack_name(pack), until)?;
    }
    for name in repo
        .target
        .list("index/")?
        .into_iter()
        .chain(repo.target.list("keys/")?)
        .chain(["config".to_owned()])
    {
        repo.target.extend_lock(&name, until)?;
    }
    Ok(Some(
        until
            .replace_nanosecond(0)
            .expect("zero")
            .format(&time::format_description::well_known::Rfc3339)
            .expect("RFC 3339"),
    ))
}

/// This machine's name, as the kernel has it (a container's /etc/hostname may be absent).
pub(crate) fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

fn parse_chunk(c: &str) -> Result<[u8; 32]> {
    hex::decode(c)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| BackupError::corrupt("チャンク", c, "識別子が不正"))
}

/// Opens a sealed chunk and proves it is chunk `id` (its keyed hash), or None.
fn open_verified(repo: &Repository, id: &[u8; 32], sealed: &[u8], loc: &Loc) -> Option<Vec<u8>> {
    open_chunk(&repo.key.enc, id, sealed, loc.raw_len as usize)
        .filter(|data| repo.key.chunk_id(data) == *id)
}

/// Reads one chunk back and proves it is the one asked for.
fn read_chunk(repo: &Repository, index: &HashMap<[u8; 32], Loc>, id: &[u8; 32]) -> Result<Vec<u8>> {
    let loc = index.get(id).ok_or_else(|| BackupError::Missing {
        what: "チャンク",
        name: hex::encode(id),
    })?;
    let name = pack_name(&loc.pack);
    let range = (loc.offset, u64::from(loc.len));
    let open_it = |sealed: &[u8]| open_verified(repo, id, sealed, loc);
    let first = repo.target.get_range(&name, range.0, range.1);
    if let Some(data) = first.as_ref().ok().and_then(|s| open_it(s)) {
        return Ok(data);
    }
    // Overwritten on a versioned, locked target: the original version is still there.
    for older in repo.target.older_copies(&name, Some(range))? {
        if let Some(data) = open_it(&older) {
            return Ok(data);
        }
    }
    first?;
    Err(BackupError::corrupt(
        "パック",
        &name,
        format!(
            "チャンク {} を復号できないか、内容が識別子と合いません",
            hex::encode(id)
        ),
    ))
}

#[derive(Clone, Debug, Serialize)]
pub struct RestoreOutcome {
    pub snapshot: String,
    pub to: PathBuf,
    pub files: usize,
    pub bytes: u64,
    pub seconds: f64,
    pub manifest: Manifest,
}

/// Restores `snapshot` into `dest`, which must not exist yet. Files are written to a sibling
/// directory first and moved into place only when every one has been checked against the
/// manifest, so a failed restore leaves nothing behind that looks like an instance.
pub fn restore(
    repo: &Repository,
    snapshot: &str,
    dest: &Path,
    expected_key: Option<&[u8; 32]>,
    progress: &dyn Progress,
) -> Result<RestoreOutcome> {
    restore_then(repo, snapshot, dest, expected_key, progress, &|_, _| Ok(()))
}

/// Restores like [`restore`], and calls `before_publish` with the complete, synced copy
/// before it gets its name: if that fails (say, the restore cannot be recorded), the copy is
/// removed and `dest` never appears.
pub fn restore_then(
    repo: &Repository,
    snapshot: &str,
    dest: &Path,
    expected_key: Option<&[u8; 32]>,
    progress: &dyn Progress,
    before_publish: &dyn Fn(&Path, &crate::Manifest) -> Result<()>,
) -> Result<RestoreOutcome> {
    let started = Instant::now();
    if dest.exists()
        && fs::read_dir(dest)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(BackupError::Invalid(format!(
            "復元先 {} は空ではありません。新しいディレクトリを指定してください（稼働中のインスタンスには書き込みません）",
            dest.display()
        )));
    }
    let manifest = repo.load_snapshot(snapshot)?.verified(expected_key)?;
    let index = repo.load_index()?;
    for f in &manifest.files {
        for c in &f.chunks {
            if !index.contains_key(&parse_chunk(c)?) {
                return Err(BackupError::Missing {
                    what: "チャンク",
                    name: format!("{c}（{}）", f.path),
                });
            }
        }
    }
    let parent = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(parent)?;
    let staging = parent.join(format!(
        ".{}.restoring-{}",
        dest.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        hex::encode(random_bytes::<4>())
    ));
    create_private_dir(&staging)?;
    // Durable before it is moved into place: one flush for all files.
    let result = restore_files(repo, &index, &manifest, &staging, progress).and_then(|()| {
        let files: Vec<PathBuf> = manifest
            .files
            .iter()
            .map(|f| staging.join(&f.path))
            .collect();
        crate::target::sync_all_of(&staging, &files)?;
        before_publish(&staging, &manifest)
    });
    if let Err(e) = result {
        let _ = fs::remove_dir_all(&staging);
        return Err(e);
    }
    if dest.exists() {
        fs::remove_dir(dest)?;
    }
    fs::rename(&staging, dest)?;
    Ok(RestoreOutcome {
        snapshot: snapshot.to_owned(),
        to: dest.to_owned(),
        files: manifest.files.len(),
        bytes: manifest.total_bytes,
        seconds: started.elapsed().as_secs_f64(),
        manifest,
    })
}

fn create_private_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

fn restore_files(
    repo: &Repository,
    index: &HashMap<[u8; 32], Loc>,
    manifest: &Manifest,
    staging: &Path,
    progress: &dyn Progress,
) -> Result<()> {
    progress.start("復元", manifest.total_bytes);
    // Directories first, once each (not a mkdir and chmod per file).
    let mut dirs: Vec<&str> = manifest
        .files
        .iter()
        .filter_map(|f| f.path.rsplit_once('/').map(|(d, _)| d))
        .collect();
    dirs.sort_unstable();
    dirs.dedup();
    for d in dirs {
        if !crate::target::is_plain_relative(d) {
            return Err(BackupError::corrupt("目録", d, "不正なパス"));
        }
        create_private_dir(&staging.join(d))?;
    }
    // In the order the packs hold them: reads then move forward through each pack, which the
    // disk and the kernel's read-ahead reward, instead of jumping between packs.
    let mut order: Vec<(&FileEntry, ([u8; 32], u64))> = manifest
        .files
        .iter()
        .map(|f| {
            let at = f
                .chunks
                .first()
                .and_then(|c| parse_chunk(c).ok())
                .and_then(|c| index.get(&c))
                .map_or(([0; 32], 0), |l| (l.pack, l.offset));
            (f, at)
        })
        .collect();
    order.sort_by_key(|o| o.1);
    let next = AtomicUsize::new(0);
    let first_error: Mutex<Option<BackupError>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..workers() {
            scope.spawn(|| {
                loop {
                    if first_error.lock().expect("error slot").is_some() {
                        return;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((f, _)) = order.get(i) else {
                        return;
                    };
                    if let Err(e) = restore_one(repo, index, f, staging, progress) {
                        first_error.lock().expect("error slot").get_or_insert(e);
                        return;
                    }
                }
            });
        }
    });
    progress.finish();
    match first_error.into_inner().expect("error slot") {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn restore_one(
    repo: &Repository,
    index: &HashMap<[u8; 32], Loc>,
    f: &FileEntry,
    staging: &Path,
    progress: &dyn Progress,
) -> Result<()> {
    if !crate::target::is_plain_relative(&f.path) {
        return Err(BackupError::corrupt("目録", &f.path, "不正なパス"));
    }
    let out = staging.join(&f.path);
    let mut hasher = blake3::Hasher::new();
    let mut size = 0u64;
    if f.size <= WHOLE_FILE {
        // Small and medium files (every attachment) are assembled in memory and written
        // past the page cache in one go.
        let mut whole = Vec::with_capacity(f.size as usize);
        for c in &f.chunks {
            let data = read_chunk(repo, index, &parse_chunk(c)?)?;
            hasher.update(&data);
            progress.advance(data.len() as u64);
            whole.extend_from_slice(&data);
        }
        size = whole.len() as u64;
        crate::target::write_new_file(&out, &whole)?;
    } else {
        let mut file = {
            let mut o = fs::OpenOptions::new();
            o.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                o.mode(0o600);
            }
            o.open(&out)?
        };
        for c in &f.chunks {
            let data = read_chunk(repo, index, &parse_chunk(c)?)?;
            hasher.update(&data);
            size += data.len() as u64;
            file.write_all(&data)?;
            progress.advance(data.len() as u64);
        }
        crate::target::start_writeback(&file);
    }
    if size != f.size || hasher.finalize().to_hex().as_str() != f.blake3 {
        return Err(BackupError::corrupt(
            "復元したファイル",
            &f.path,
            "大きさかハッシュが目録と合いません",
        ));
    }
    Ok(())
}

#[derive(Clone, Debug, Serialize, Default)]
pub struct VerifyOutcome {
    pub ok: bool,
    pub quick: bool,
    pub snapshots: usize,
    pub packs_checked: usize,
    pub packs_total: usize,
    pub chunks_checked: usize,
    pub bytes_read: u64,
    pub problems: Vec<String>,
    pub seconds: f64,
}

/// Reads back what the snapshots need and checks every byte: each snapshot's signature, that
/// every chunk is indexed, and that each pack is whole and every chunk in it opens to its id.
/// `quick` reads a random sample of the packs instead of all of them.
pub fn verify(
    repo: &Repository,
    snapshot: Option<&str>,
    quick: bool,
    expected_key: Option<&[u8; 32]>,
    progress: &dyn Progress,
) -> Result<VerifyOutcome> {
    let started = Instant::now();
    let mut out = VerifyOutcome {
        quick,
        ..Default::default()
    };
    let ids = match snapshot {
        Some(id) => vec![repo.resolve(Some(id))?],
        None => repo.snapshot_ids()?,
    };
    let index = repo.load_index()?;
    let mut needed: HashMap<[u8; 32], Vec<[u8; 32]>> = HashMap::new();
    for id in &ids {
        out.snapshots += 1;
        let manifest = match repo
            .load_snapshot(id)
            .and_then(|s| s.verified(expected_key))
        {
            Ok(m) => m,
            Err(BackupError::NoSnapshot(id)) => return Err(BackupError::NoSnapshot(id)),
            Err(e) => {
                out.problems.push(format!("スナップショット {id}: {e}"));
                continue;
            }
        };
        for f in &manifest.files {
            for c in &f.chunks {
                let chunk = parse_chunk(c)?;
                match index.get(&chunk) {
                    Some(loc) => needed.entry(loc.pack).or_default().push(chunk),
                    None => out.problems.push(format!(
                        "スナップショット {id} の {} のチャンク {c} が索引にありません",
                        f.path
                    )),
                }
            }
        }
    }
    let mut packs: Vec<[u8; 32]> = needed.keys().copied().collect();
    packs.sort();
    out.packs_total = packs.len();
    if quick && packs.len() > 4 {
        let want = (packs.len() / 10).max(4);
        for i in 0..want {
            let j = i + (OsRng.next_u64() as usize) % (packs.len() - i);
            packs.swap(i, j);
        }
        packs.truncate(want);
    }
    let total: u64 = packs
        .iter()
        .flat_map(|p| needed[p].iter())
        .filter_map(|c| index.get(c))
        .map(|l| u64::from(l.len))
        .sum();
    progress.start("検証", total);
    for pack in &packs {
        let name = pack_name(pack);
        out.packs_checked += 1;
        let bytes = match repo.target.get(&name) {
            Ok(b) => b,
            Err(e) => {
                out.problems.push(e.to_string());
                continue;
            }
        };
        out.bytes_read += bytes.len() as u64;
        if blake3::hash(&bytes).as_bytes() != pack {
            out.problems.push(
                BackupError::corrupt("パック", &name, "内容がハッシュと合いません").to_string(),
            );
        }
        let mut chunks = needed[pack].clone();
        chunks.sort();
        chunks.dedup();
        for chunk in chunks {
            let loc = &index[&chunk];
            progress.advance(u64::from(loc.len));
            let start = loc.offset as usize;
            let end = start + loc.len as usize;
            let ok = bytes
                .get(start..end)
                .is_some_and(|sealed| open_verified(repo, &chunk, sealed, loc).is_some());
            out.chunks_checked += 1;
            if !ok {
                out.problems.push(format!(
                    "パック {name} のチャンク {} が壊れています",
                    hex::encode(chunk)
                ));
            }
        }
    }
    progress.finish();
    out.ok = out.problems.is_empty();
    out.seconds = started.elapsed().as_secs_f64();
    Ok(out)
}

#[derive(Clone, Debug, Serialize, Default)]
pub struct PruneOutcome {
    pub kept: Vec<String>,
    pub removed: Vec<String>,
    /// Snapshots past the generation count that the target still refuses to delete.
    pub still_locked: Vec<String>,
    pub packs_removed: usize,
    pub bytes_freed: u64,
}

/// What a prune will remove: decided (and recorded) before anything is deleted.
#[derive(Clone, Debug, Serialize, Default, PartialEq, Eq)]
pub struct PrunePlan {
    pub keep: Vec<String>,
    pub remove: Vec<String>,
}

/// The newest `keep` snapshots (at least one) are the generations kept; older ones go.
/// Made under the exclusive lock the prune then runs under.
pub fn prune_plan(repo: &Repository, keep: usize, lock: &crate::RepoLock) -> Result<PrunePlan> {
    lock.require_exclusive()?;
    let keep = keep.max(1);
    let ids = repo.snapshot_ids()?;
    let cut = ids.len().saturating_sub(keep);
    Ok(PrunePlan {
        keep: ids[cut..].to_vec(),
        remove: ids[..cut].to_vec(),
    })
}

/// Keeps the newest `keep` snapshots (the generations) and removes older ones where the target
/// allows it, then packs no remaining snapshot uses.
pub fn prune(repo: &Repository, keep: usize) -> Result<PruneOutcome> {
    let lock = repo.lock(crate::LockKind::Exclusive, "prune")?;
    let plan = prune_plan(repo, keep, &lock)?;
    prune_planned(repo, &plan, &lock)
}

/// Removes the planned snapshots where the target allows it, then packs that no snapshot
/// left in the repository uses. A locked object is left alone; a chunk that any remaining
/// snapshot uses is never removed, including snapshots written after the plan was made.
pub fn prune_planned(
    repo: &Repository,
    plan: &PrunePlan,
    lock: &crate::RepoLock,
) -> Result<PruneOutcome> {
    lock.require_exclusive()?;
    let mut out = PruneOutcome::default();
    for id in &plan.remove {
        match repo.target.delete(&format!("snapshots/{id}")) {
            Ok(()) => out.removed.push(id.clone()),
            Err(BackupError::Locked(_)) => out.still_locked.push(id.clone()),
            Err(e) => return Err(e),
        }
    }
    // Listed again: what is there now is what must stay readable.
    let remaining: Vec<String> = repo
        .snapshot_ids()?
        .into_iter()
        .filter(|id| !out.removed.contains(id))
        .collect();
    out.kept = remaining
        .iter()
        .filter(|id| !plan.remove.contains(id))
        .cloned()
        .collect();
    let mut used: HashSet<[u8; 32]> = HashSet::new();
    for id in &remaining {
        // A snapshot that cannot be read still counts as using everything: never guess.
        let manifest = repo.load_snapshot(id)?.verified(None)?;
        for f in manifest.files {
            for c in f.chunks {
                used.insert(parse_chunk(&c)?);
            }
        }
    }
    let index_files = repo.index_files()?;
    // Where each chunk is read from: a legacy pack whose every used chunk is also in a
    // current pack is no longer needed.
    let read_from = repo.load_index()?;
    let mut live = IndexFile::default();
    let mut dead: Vec<(String, u64)> = Vec::new();
    for (_, file) in &index_files {
        for pack in &file.packs {
            let this = parse_chunk(&pack.id).ok();
            let needed = pack.blobs.iter().any(|(c, ..)| {
                parse_chunk(c).map_or(true, |c| {
                    used.contains(&c) && read_from.get(&c).is_none_or(|loc| Some(loc.pack) == this)
                })
            });
            if needed {
                live.packs.push(pack.clone());
            } else {
                let size: u64 = pack.blobs.iter().map(|b| u64::from(b.2)).sum();
                dead.push((pack.id.clone(), size));
            }
        }
    }
    if dead.is_empty() {
        return Ok(out);
    }
    // New index first, then old indexes, then packs: at no moment does an index name a
    // removed pack that a later backup could deduplicate against.
    let new_index = repo.write_index(&live)?;
    for (name, _) in &index_files {
        if *name != new_index {
            match repo.target.delete(name) {
                Ok(()) | Err(BackupError::Locked(_)) => {}
                Err(e) => return Err(e),
            }
        }
    }
    for (id, size) in dead {
        let pack: [u8; 32] = parse_chunk(&id)?;
        match repo.target.delete(&pack_name(&pack)) {
            Ok(()) => {
                out.packs_removed += 1;
                out.bytes_freed += size;
            }
            Err(BackupError::Locked(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod legacy_packs {
    use super::*;
    use crate::keys::KdfParams;
    use crate::target::DirTarget;
    use crate::{KeyMaterial, Repository};

    /// Makes the repository's indexes look as an earlier release wrote them (no cipher named).
    fn forget_ciphers(repo: &Repository) {
        for (name, mut file) in repo.index_files().unwrap() {
            for p in &mut file.packs {
                p.cipher = None;
            }
            repo.write_index(&file).unwrap();
            repo.target.delete(&name).unwrap();
        }
    }

    #[test]
    fn the_next_backup_stores_legacy_chunks_again_and_a_prune_drops_the_old_packs() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        fs::create_dir_all(&data).unwrap();
        fs::write(data.join("mamori.db"), "診療録。".repeat(100_000)).unwrap();
        let sources = vec![Source::file("mamori.db", data.join("mamori.db"))];
        let key = KeyMaterial {
            passphrase: Some("correct horse battery staple".to_string().into()),
            key_file: None,
        };
        let cheap = KdfParams {
            m_kib: 256,
            t: 1,
            p: 1,
        };
        let open = || {
            Repository::open_or_init(Box::new(DirTarget::new(tmp.path().join("t"))), &key, cheap)
                .unwrap()
                .0
        };
        let signer = SigningKey::from_bytes(&[5u8; 32]);
        let repo = open();
        let first = backup(&repo, &sources, serde_json::json!({}), &signer, &NoProgress).unwrap();
        // Unchanged data: nothing new is stored while the packs are current.
        let again = backup(&repo, &sources, serde_json::json!({}), &signer, &NoProgress).unwrap();
        assert_eq!(again.stored_bytes, 0);
        forget_ciphers(&repo);
        assert!(repo.load_index().unwrap().values().all(|l| l.legacy));
        let old_packs: HashSet<[u8; 32]> = repo
            .load_index()
            .unwrap()
            .values()
            .map(|l| l.pack)
            .collect();

        // The same unchanged data is now read and stored again in current packs.
        let migrated =
            backup(&repo, &sources, serde_json::json!({}), &signer, &NoProgress).unwrap();
        assert!(migrated.stored_bytes > 0, "{migrated:?}");
        let index = repo.load_index().unwrap();
        assert!(index.values().all(|l| !l.legacy), "read from the new packs");
        // Every snapshot still restores, the oldest included.
        let out = tmp.path().join("restored");
        restore(&repo, &first.snapshot, &out, None, &NoProgress).unwrap();
        assert_eq!(
            fs::read(out.join("mamori.db")).unwrap(),
            fs::read(data.join("mamori.db")).unwrap()
        );
        // A prune keeping every snapshot still drops the legacy packs: nothing reads them.
        let lock = repo.lock(crate::LockKind::Exclusive, "prune").unwrap();
        let plan = prune_plan(&repo, 10, &lock).unwrap();
        let pruned = prune_planned(&repo, &plan, &lock).unwrap();
        drop(lock);
        assert_eq!(pruned.packs_removed, old_packs.len(), "{pruned:?}");
        for p in &old_packs {
            assert!(repo.target.get(&pack_name(p)).is_err(), "old pack left");
        }
        let v = verify(&repo, None, false, None, &NoProgress).unwrap();
        assert!(v.problems.is_empty(), "{:?}", v.problems);
    }
}
