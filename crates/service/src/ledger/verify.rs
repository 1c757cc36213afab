//! `mamori verify`: re-hashes every blob, version and ledger entry, rebuilds the Merkle tree,
//! and checks it against every signed checkpoint (and one held outside, if given). Anything
//! changed or removed is named.
//!
//! Length: one file because it is one pass — the scan, the index check and the comparison
//! of every table's stored state with the state the ledger entries state share the batch and
//! report types; splitting them would export those internals to siblings.

use crate::ErrorCode;
use std::borrow::Cow;

use crossbeam_channel as crossbeam;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Instant;

use base64::Engine;
use ed25519_dalek::VerifyingKey;
use mamori_domain::content::RecordContent;
use mamori_ledger::{Frontier, SignedCheckpoint, leaf_hash};
use serde::{Deserialize, Serialize};

use crate::error::{Result, ServiceError};
use crate::instance::load_signing_key;

const MAX_PROBLEMS: usize = 200;

#[derive(Debug, Clone, Serialize, Default)]
pub struct VerifyReport {
    pub ok: bool,
    pub ledger_entries: u64,
    pub stored_hashes: u64,
    pub versions: u64,
    pub blobs: u64,
    pub checkpoints_checked: u64,
    pub latest_checkpoint_size: Option<u64>,
    pub root: String,
    pub problems: Vec<String>,
    pub problems_total: usize,
    pub notes: Vec<String>,
    pub seconds: f64,
    /// Rows compared with what the ledger stated about them.
    pub state_rows: u64,
    /// Files in the blob store that no row refers to.
    pub orphan_files: u64,
    /// What `verify` does not compare with the ledger, and why.
    pub not_covered: Vec<NotCovered>,
}

#[derive(Debug, Clone, Serialize)]
pub struct NotCovered {
    pub table: &'static str,
    pub column: Option<&'static str>,
    pub reason: &'static str,
}

/// The declared exceptions of the state comparison (see `mamori_store::state`).
pub fn not_covered() -> Vec<NotCovered> {
    use mamori_store::state::{NOT_COVERED_COLUMNS, NOT_COVERED_META, NOT_COVERED_TABLES};
    NOT_COVERED_TABLES
        .iter()
        .map(|(t, r)| NotCovered {
            table: t,
            column: None,
            reason: r,
        })
        .chain(NOT_COVERED_COLUMNS.iter().map(|(t, c, r)| NotCovered {
            table: t,
            column: Some(c),
            reason: r,
        }))
        .chain(NOT_COVERED_META.iter().map(|(k, r)| NotCovered {
            table: "meta",
            column: Some(k),
            reason: r,
        }))
        .collect()
}

impl VerifyReport {
    fn problem(&mut self, msg: String) {
        self.problems_total += 1;
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(msg);
        }
    }
}

#[derive(Deserialize)]
struct ActorId {
    id: i64,
}

/// The fields of a ledger payload that `verify` cross-checks, borrowed to avoid copying.
#[derive(Deserialize)]
struct EventCheck<'a> {
    v: u32,
    ts: i64,
    actor: Option<ActorId>,
    #[serde(borrow)]
    action: Cow<'a, str>,
    #[serde(borrow)]
    outcome: Cow<'a, str>,
    #[serde(borrow)]
    patient: Option<Cow<'a, str>>,
    record: Option<i64>,
    version: Option<i64>,
    #[serde(borrow)]
    version_digest: Option<Cow<'a, str>>,
}

/// Parses a C2SP verifier key `name+hex8+base64(0x01‖key)`.
pub fn parse_verifier_key(s: &str) -> Result<(String, VerifyingKey)> {
    let bad = || ServiceError::invalid("key", "検証鍵の形式が正しくありません（name+id+key）");
    let mut parts = s.trim().splitn(3, '+');
    let (name, _id, material) = (
        parts.next().ok_or_else(bad)?,
        parts.next().ok_or_else(bad)?,
        parts.next().ok_or_else(bad)?,
    );
    let raw = base64::engine::general_purpose::STANDARD
        .decode(material)
        .map_err(|_| bad())?;
    if raw.len() != 33 || raw[0] != 0x01 {
        return Err(bad());
    }
    let key =
        VerifyingKey::from_bytes(raw[1..].try_into().map_err(|_| bad())?).map_err(|_| bad())?;
    if mamori_ledger::key_id(name, &key)
        != <[u8; 4]>::try_from(hex::decode(_id).map_err(|_| bad())?.as_slice())
            .map_err(|_| bad())?
    {
        return Err(bad());
    }
    Ok((name.to_owned(), key))
}

pub struct VerifyOptions<'a> {
    /// A checkpoint kept outside the server administrator's control.
    pub external_checkpoint: Option<&'a str>,
    /// The verifier key to trust instead of the instance's own key file.
    pub trusted_key: Option<&'a str>,
    /// Skip re-hashing blobs (ledger and version rows only).
    pub skip_blobs: bool,
}

pub fn verify(dir: &Path, opts: &VerifyOptions<'_>) -> Result<VerifyReport> {
    let started = Instant::now();
    let mut rep = VerifyReport::default();
    let ro = crate::instance::read_only(dir).map_err(|e| {
        ServiceError::new(
            ErrorCode::NoInstance,
            format!("データベースを開けません: {e}"),
        )
    })?;
    let r = ro.get();
    let origin = r.meta("origin")?.unwrap_or_default();
    let recorded_vkey = r.meta("verifier_key")?;
    let (name, key) = match opts.trusted_key {
        // An outside verifier holds the public key and a copy of the data, never the private
        // key: the key given is what the checkpoints must be signed with.
        Some(k) => {
            if recorded_vkey.as_deref() != Some(k.trim()) {
                rep.problem(
                    "指定された公開鍵は、このインスタンスが初期化時に記録した鍵と異なります (verifier_key in the database differs from --trusted-key)"
                        .into(),
                );
            }
            parse_verifier_key(k)?
        }
        None => {
            let signing = load_signing_key(dir)?;
            let own_vkey = mamori_ledger::CheckpointSigner::new(origin.clone(), signing.clone())
                .verifier_key();
            if recorded_vkey.as_deref() != Some(own_vkey.as_str()) {
                rep.problem(
                    "署名鍵ファイルが初期化時に記録された鍵と一致しません (keys/ledger.key was replaced)"
                        .into(),
                );
            }
            (origin.clone(), signing.verifying_key())
        }
    };

    // Every root the rebuilt tree must reproduce, by size.
    let mut expected: HashMap<u64, ([u8; 32], String)> = HashMap::new();
    let stored = r.checkpoints()?;
    for cp in &stored {
        match SignedCheckpoint::open(&cp.note, &name, &key) {
            Ok(sc)
                if sc.checkpoint.size == cp.size
                    && sc.checkpoint.root == cp.root
                    && sc.checkpoint.origin == origin =>
            {
                expected.insert(
                    cp.size,
                    (
                        cp.root,
                        format!("保存済みチェックポイント (size {})", cp.size),
                    ),
                );
            }
            Ok(_) => rep.problem(format!(
                "checkpoint {}: 署名済みの内容と保存された値が一致しません",
                cp.size
            )),
            Err(e) => rep.problem(format!(
                "checkpoint {}: 署名を検証できません ({e})",
                cp.size
            )),
        }
    }
    rep.latest_checkpoint_size = stored.last().map(|c| c.size);
    if let Some(text) = opts.external_checkpoint {
        match SignedCheckpoint::open(text, &name, &key) {
            Ok(sc) if sc.checkpoint.origin != origin => rep.problem(format!(
                "指定されたチェックポイントは別の台帳 ({}) のものです",
                sc.checkpoint.origin
            )),
            Ok(sc) => {
                if let Some((root, _)) = expected.get(&sc.checkpoint.size)
                    && *root != sc.checkpoint.root
                {
                    rep.problem(format!(
                            "指定されたチェックポイント (size {}) と保存済みチェックポイントの root が異なります: 台帳が書き換えられています",
                            sc.checkpoint.size
                        ));
                }
                expected.insert(
                    sc.checkpoint.size,
                    (
                        sc.checkpoint.root,
                        format!("指定されたチェックポイント (size {})", sc.checkpoint.size),
                    ),
                );
            }
            Err(e) => rep.problem(format!("指定されたチェックポイントを検証できません: {e}")),
        }
    }

    // The ledger: rebuild the tree, compare every stored hash and every checkpoint root, and
    // re-derive the query indexes day by day.
    let mut frontier = Frontier::new();
    let mut next_idx: i64 = 0;
    let mut version_events: HashMap<(i64, i64), (i64, String)> = HashMap::new();
    let mut stated: StatedMap = HashMap::new();
    let mut stored_seen = 0u64;
    let indexed_upto = r.indexed_upto()?;
    let mut last_ts = i64::MIN;
    if let Some((root, what)) = expected.get(&0)
        && *root != frontier.root()
    {
        rep.problem(format!("{what}: 空の台帳の root が一致しません"));
    }
    // A reader thread (its own connection) reads rows, hashes leaves and parses payloads; this
    // thread rebuilds the tree and checks hashes, checkpoints and indexes.
    // Batches go back to the reader to be refilled: memory allocated on one thread and freed
    // on the other made the two contend for the allocator's lock on every row.
    let (tx, rx) = crossbeam::bounded::<Batch>(8);
    let (back_tx, back_rx) = crossbeam::bounded::<Batch>(16);
    let dir2 = dir.to_owned();
    let keys = std::hash::RandomState::new();
    let keys2 = keys.clone();
    let reader = std::thread::spawn(move || -> Result<(), mamori_store::StoreError> {
        let ro = crate::instance::read_only(&dir2)
            .map_err(|e| mamori_store::StoreError::Schema(e.to_string()))?;
        let fresh = |back: &crossbeam::Receiver<Batch>| {
            back.try_recv()
                .unwrap_or_else(|_| Batch::with_capacity(BATCH))
        };
        let mut batch = fresh(&back_rx);
        ro.get().for_each_raw_ledger_row(|row| {
            batch.push(&row, &keys2);
            if batch.rows.len() == BATCH
                && tx
                    .send(std::mem::replace(&mut batch, fresh(&back_rx)))
                    .is_err()
            {
                return Err(mamori_store::StoreError::Closed);
            }
            Ok(())
        })?;
        let _ = tx.send(batch);
        Ok(())
    });
    let mut day_check = IndexCheck {
        keys,
        ..Default::default()
    };
    for mut batch in rx {
        for p in batch.rows.drain(..) {
            let row = &p;
            let hashes = &batch.hashes[p.hashes.clone()];
            if row.idx != next_idx {
                rep.problem(format!(
                    "ledger entries {}..{} are missing (台帳の項目が削除されています)",
                    next_idx,
                    row.idx - 1
                ));
            }
            next_idx = row.idx + 1;
            if row.ts < last_ts {
                rep.problem(format!(
                    "ledger entry {}: 時刻が前の項目より前です (order altered)",
                    row.idx
                ));
            }
            last_ts = row.ts;
            let stored = frontier.append_leaf_hash(p.leaf);
            stored_seen += stored.len() as u64;
            let same = hashes.len() == stored.len() * 32
                && stored
                    .iter()
                    .zip(hashes.chunks(32))
                    .all(|(s, h)| s.hash.as_slice() == h);
            if !same {
                rep.problem(format!("ledger entry {}: 保存されたハッシュが内容と一致しません (entry or hashes changed)", row.idx));
            }
            match &p.parsed {
                Parsed::Unreadable => {
                    rep.problem(format!("ledger entry {}: 記録内容を読めません", row.idx))
                }
                Parsed::ColumnsDiffer => rep.problem(format!(
                    "ledger entry {}: 検索用の列が記録内容と一致しません (index columns altered)",
                    row.idx
                )),
                Parsed::Ok(Some((rec, ver, d))) => {
                    version_events.insert((*rec, *ver), (row.idx, d.clone()));
                }
                Parsed::Ok(None) => {}
            }
            for (t, k, d) in &p.state {
                stated.insert((t.clone(), k.clone()), (row.idx, *d));
            }
            if row.idx < indexed_upto {
                day_check.add(&r, &p, &mut rep)?;
            }
            if let Some((root, what)) = expected.get(&frontier.size())
                && *root != frontier.root()
            {
                rep.problem(format!(
                    "ledger entry {}: {what} と一致しません — それ以前の台帳が変更されています",
                    frontier.size() - 1
                ));
            }
        }
        batch.hashes.clear();
        let _ = back_tx.try_send(batch);
    }
    drop(back_tx);
    reader
        .join()
        .map_err(|_| ServiceError::internal("verify reader panicked"))??;
    day_check.finish(&r, &mut rep)?;
    let sizes = r.index_sizes()?;
    let want = (
        day_check.total_patient,
        day_check.total_actor,
        day_check.total_counts,
    );
    if sizes != want && rep.problems_total == 0 {
        rep.problem(format!(
            "検索用索引の件数が台帳と一致しません (index rows {sizes:?}, expected {want:?}); 索引に項目が追加されています"
        ));
    }
    let n = frontier.size();
    rep.ledger_entries = n;
    rep.root = hex::encode(frontier.root());
    if (indexed_upto as u64) > n {
        rep.problem(format!(
            "検索用索引が台帳にない項目 ({indexed_upto} 件目まで) を含むとしています"
        ));
    }
    rep.stored_hashes = stored_seen;
    let mut sizes: Vec<_> = expected.iter().collect();
    sizes.sort_by_key(|(s, _)| **s);
    for (size, (_, what)) in sizes {
        if *size > n {
            rep.problem(format!(
                "ledger truncated: {what} は {size} 件を含みますが、台帳には {n} 件しかありません（末尾の項目が削除されています）"
            ));
        } else {
            rep.checkpoints_checked += 1;
        }
    }
    if let Some(last) = rep.latest_checkpoint_size
        && n > last
    {
        rep.notes.push(format!("最新のチェックポイント以降に {} 件の項目があります（次のチェックポイントで署名されます）", n - last));
    }

    // Files no row refers to: content of a refused or interrupted write (serve removes them
    // after ORPHAN_AGE), reported so that nothing stored goes unaccounted for.
    let blobs = crate::instance::blob_store(dir)?;
    {
        let referenced: HashSet<String> = r.blob_ids()?.into_iter().collect();
        let orphans = blobs
            .files()?
            .into_iter()
            .filter(|(sha, _)| !referenced.contains(sha))
            .count();
        if orphans > 0 {
            rep.orphan_files = orphans as u64;
            rep.notes.push(format!(
                "どの記録からも参照されていないファイルが {orphans} 件あります（拒否・中断された書き込みの内容。稼働中の mamori が1時間以内に削除し、台帳に記録します）"
            ));
        }
    }

    // Every other stored fact: each covered row must be what the ledger last stated.
    if r.meta(mamori_store::state::BASELINE_KEY)?.is_some() {
        rep.state_rows = compare_state(&r, stated, &mut rep)?;
    } else {
        rep.notes.push(
            "この台帳にはまだ全データの基準が記録されていません（新しい版の mamori で一度開くと記録されます）。行ごとの照合は行っていません".into(),
        );
    }
    rep.not_covered = not_covered();

    // The NTA registry data, proven as a whole: the digest its import stated (meta, itself
    // stated in the ledger) against the table as it is.
    if let Some(stated) = r.meta(crate::transactions::REGISTRY_KEY)? {
        let stated: serde_json::Value = serde_json::from_str(&stated).unwrap_or_default();
        let (digest, rows) = r.registry_digest()?;
        if stated["digest"].as_str() != Some(digest.as_str()) {
            rep.problem(format!(
                "invoice_registry: 公表サイトのデータ（取込時 {} 件）が取込後に変わっています（現在 {rows} 件、ダイジェスト不一致）",
                stated["rows"]
            ));
        }
    }

    // Versions: each row must match what the ledger last recorded about it.
    let mut blob_ok: HashSet<String> = HashSet::new();
    let mut check_blob = |sha: &str, what: &str, rep: &mut VerifyReport| -> Option<Vec<u8>> {
        match blobs.get(sha) {
            Ok(bytes) => {
                if blob_ok.contains(sha)
                    || hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)) == sha
                {
                    blob_ok.insert(sha.to_owned());
                    Some(bytes)
                } else {
                    rep.problem(format!(
                        "blob {sha} ({what}, {}) の内容がハッシュと一致しません (changed)",
                        blobs.location(sha)
                    ));
                    None
                }
            }
            Err(_) => {
                rep.problem(format!(
                    "blob {sha} ({what}) is missing ({})",
                    blobs.location(sha)
                ));
                None
            }
        }
    };
    let mut seen_versions: HashSet<(i64, i64)> = HashSet::new();
    r.for_each_version(|v| {
        rep.versions += 1;
        let key = (v.record_id, v.version_no);
        seen_versions.insert(key);
        let label = format!("version {}/{}", v.record_id, v.version_no);
        match version_events.get(&key) {
            None => rep.problem(format!("{label}: 台帳に記録がありません (not in the ledger)")),
            Some((idx, digest)) => {
                if *idx != v.ledger_index {
                    rep.problem(format!("{label}: 台帳の最新の記録 (entry {idx}) と行の参照 (entry {}) が異なります", v.ledger_index));
                } else if *digest != v.facts().digest() {
                    rep.problem(format!("{label}: 行の内容が台帳 (entry {idx}) の記録と一致しません (row changed)"));
                }
            }
        }
        if !opts.skip_blobs
            && let Some(bytes) = check_blob(&v.content_sha256, &label, &mut rep) {
                match serde_json::from_slice::<RecordContent>(&bytes) {
                    Ok(c) => {
                        for a in c.attachments {
                            check_blob(&a.sha256, &format!("{label} の添付 {}", a.name), &mut rep);
                        }
                    }
                    Err(_) => rep.problem(format!("{label}: 内容を読めません")),
                }
            }
        Ok(())
    })?;
    let mut missing: Vec<_> = version_events
        .iter()
        .filter(|(k, _)| !seen_versions.contains(k))
        .collect();
    missing.sort();
    for ((rec, ver), (idx, _)) in missing {
        rep.problem(format!(
            "version {rec}/{ver}: 台帳 (entry {idx}) にありますがデータベースから削除されています"
        ));
    }
    if !opts.skip_blobs {
        for sha in r.blob_ids()? {
            check_blob(&sha, "登録済みファイル", &mut rep);
        }
    }
    rep.blobs = blob_ok.len() as u64;
    rep.ok = rep.problems_total == 0;
    rep.seconds = started.elapsed().as_secs_f64();
    Ok(rep)
}

/// The derived indexes the ledger implies, compared segment by segment (patient and staff
/// indexes) and day by day (daily counts) with what is stored. Patient IDs are compared by a
/// keyed hash (random per run), so a forged index entry cannot be made to collide.
#[derive(Default)]
struct IndexCheck {
    keys: std::hash::RandomState,
    seg: Option<i64>,
    by_patient: Vec<(u64, i64)>,
    by_actor: Vec<(i64, i64)>,
    day: Option<i64>,
    counts: std::collections::BTreeMap<(u64, i64), i64>,
    total_patient: i64,
    total_actor: i64,
    total_counts: i64,
}

type StoreResult<T = ()> = std::result::Result<T, mamori_store::StoreError>;

impl IndexCheck {
    fn add(
        &mut self,
        r: &mamori_store::Reader<'_>,
        row: &Prepared,
        rep: &mut VerifyReport,
    ) -> StoreResult {
        let seg = mamori_store::segment_of(row.idx);
        if self.seg != Some(seg) {
            self.finish_segment(r, rep)?;
            self.seg = Some(seg);
        }
        let day = mamori_store::day_of(row.ts);
        if self.day != Some(day) {
            self.finish_day(r, rep)?;
            self.day = Some(day);
        }
        if let Some(p) = row.patient {
            self.by_patient.push((p, row.idx));
        }
        if let Some(a) = row.actor {
            self.by_actor.push((a, row.idx));
        }
        if let (Some(p), Some(a), true) = (row.patient, row.actor, row.chart_access) {
            *self.counts.entry((p, a)).or_default() += 1;
        }
        Ok(())
    }

    fn finish(&mut self, r: &mamori_store::Reader<'_>, rep: &mut VerifyReport) -> StoreResult {
        self.finish_segment(r, rep)?;
        self.finish_day(r, rep)
    }

    fn finish_segment(
        &mut self,
        r: &mamori_store::Reader<'_>,
        rep: &mut VerifyReport,
    ) -> StoreResult {
        use std::hash::BuildHasher;
        let Some(seg) = self.seg.take() else {
            return Ok(());
        };
        let mut p = std::mem::take(&mut self.by_patient);
        let mut a = std::mem::take(&mut self.by_actor);
        p.sort_unstable();
        a.sort_unstable();
        self.total_patient += p.len() as i64;
        self.total_actor += a.len() as i64;
        let (gp, ga) = r.index_segment(seg)?;
        let mut gp: Vec<(u64, i64)> = gp
            .into_iter()
            .map(|(s, i)| (self.keys.hash_one(s.as_str()), i))
            .collect();
        gp.sort_unstable();
        let first = seg << mamori_store::SEGMENT_BITS;
        if gp != p {
            rep.problem(format!("ledger entries {first}.. の患者別索引が台帳と一致しません (audit_by_patient altered)"));
        }
        if ga != a {
            rep.problem(format!(
                "ledger entries {first}.. の職員別索引が台帳と一致しません (audit_by_actor altered)"
            ));
        }
        Ok(())
    }

    fn finish_day(&mut self, r: &mamori_store::Reader<'_>, rep: &mut VerifyReport) -> StoreResult {
        use std::hash::BuildHasher;
        let Some(day) = self.day.take() else {
            return Ok(());
        };
        let exp: Vec<(u64, i64, i64)> = std::mem::take(&mut self.counts)
            .into_iter()
            .map(|((p, a), n)| (p, a, n))
            .collect();
        self.total_counts += exp.len() as i64;
        let mut got: Vec<(u64, i64, i64)> = r
            .counts_of_day(day)?
            .into_iter()
            .map(|(p, a, n)| (self.keys.hash_one(p.as_str()), a, n))
            .collect();
        got.sort_unstable();
        if got != exp {
            let date = crate::ledger::audit::jst_date(mamori_store::day_start(day));
            rep.problem(format!(
                "{date} の閲覧回数の集計が台帳と一致しません (access_counts altered)"
            ));
        }
        Ok(())
    }
}

enum Parsed {
    Ok(Option<(i64, i64, String)>),
    ColumnsDiffer,
    Unreadable,
}

const BATCH: usize = 4096;

/// Rows prepared on the reader thread, with their stored hashes in one buffer.
struct Batch {
    rows: Vec<Prepared>,
    hashes: Vec<u8>,
}

impl Batch {
    fn with_capacity(n: usize) -> Self {
        Batch {
            rows: Vec::with_capacity(n),
            hashes: Vec::with_capacity(n * 80),
        }
    }

    fn push(&mut self, row: &mamori_store::RawRow<'_>, keys: &std::hash::RandomState) {
        let start = self.hashes.len();
        self.hashes.extend_from_slice(row.hashes);
        self.rows
            .push(Prepared::of(row, start..self.hashes.len(), keys));
    }
}

/// A ledger row with the work that needs no ordering already done (on the reader thread).
struct Prepared {
    idx: i64,
    ts: i64,
    leaf: mamori_ledger::Hash,
    /// Where its stored hashes are in the batch's buffer.
    hashes: std::ops::Range<usize>,
    parsed: Parsed,
    /// Keyed hash of the patient ID, so index checks compare integers, not strings.
    patient: Option<u64>,
    actor: Option<i64>,
    chart_access: bool,
    /// The rows this entry states: (table, key, digest of the values or `None` if deleted).
    state: Vec<StatedRow>,
}

type StatedRow = (String, String, Option<[u8; 32]>);
/// A row as an entry states it: (table, key, values or `None` if deleted).
type StatedValues = (
    String,
    String,
    Option<serde_json::Map<String, serde_json::Value>>,
);
/// The last statement about each row: (table, key) → (ledger entry, digest of the values).
type StatedMap = HashMap<(String, String), (i64, Option<[u8; 32]>)>;

#[derive(Deserialize)]
struct StateOnly {
    #[serde(default)]
    state: Option<Vec<StatedValues>>,
}

/// The rows an entry states, read only from payloads that carry them (most do not).
fn stated_rows(payload: &[u8]) -> Option<Vec<StatedValues>> {
    // `state` is the last field, an array of arrays: only such a payload ends in `]]}` (a
    // detail object ends in `}}`), so the other entries cost one comparison here.
    const MARK: &[u8] = b"\"state\":[";
    if !payload.ends_with(b"]]}") || !payload.windows(MARK.len()).any(|w| w == MARK) {
        return None;
    }
    serde_json::from_slice::<StateOnly>(payload).ok()?.state
}

impl Prepared {
    fn of(
        row: &mamori_store::RawRow<'_>,
        hashes: std::ops::Range<usize>,
        keys: &std::hash::RandomState,
    ) -> Self {
        use std::hash::BuildHasher;
        let parsed = fast_check(row).unwrap_or_else(|| serde_check(row));
        Self {
            idx: row.idx,
            ts: row.ts,
            leaf: leaf_hash(row.payload),
            hashes,
            parsed,
            patient: row.patient_id.map(|p| keys.hash_one(p)),
            actor: row.actor_id,
            chart_access: mamori_store::is_chart_access(row.action, row.outcome),
            state: stated_rows(row.payload)
                .unwrap_or_default()
                .into_iter()
                .map(|(t, k, v)| (t, k, v.map(|v| mamori_store::state::row_digest(&v))))
                .collect(),
        }
    }
}

/// Compares every covered row with what the ledger last stated about it, naming the table,
/// the row's key and, for a changed row, each column with both values.
fn compare_state(
    r: &mamori_store::Reader<'_>,
    stated: StatedMap,
    rep: &mut VerifyReport,
) -> Result<u64> {
    let mut seen: HashSet<(String, String)> = HashSet::new();
    let mut rows = 0u64;
    let mut differing: Vec<(
        String,
        String,
        i64,
        serde_json::Map<String, serde_json::Value>,
    )> = Vec::new();
    r.for_each_covered_row(|table, key, values| {
        rows += 1;
        let id = (table.to_owned(), key);
        match stated.get(&id) {
            Some((_, Some(d))) if *d == mamori_store::state::row_digest(&values) => {}
            Some((idx, Some(_))) => differing.push((id.0.clone(), id.1.clone(), *idx, values)),
            Some((idx, None)) => rep.problem(format!(
                "{} {}: 台帳 (entry {idx}) では削除された行が存在します (a row the ledger deleted is back)",
                id.0, id.1
            )),
            None => rep.problem(format!(
                "{} {}: 台帳が作成していない行です (a row the ledger never created)",
                id.0, id.1
            )),
        }
        seen.insert(id);
        Ok(())
    })?;
    for ((table, key), (idx, digest)) in &stated {
        if digest.is_some() && !seen.contains(&(table.clone(), key.clone())) {
            rep.problem(format!(
                "{table} {key}: 台帳 (entry {idx}) が記録した行がありません (a row the ledger created is gone)"
            ));
        }
    }
    for (table, key, idx, values) in differing {
        let said = r
            .ledger_row(idx as u64)?
            .and_then(|row| stated_rows(&row.payload))
            .and_then(|rows| {
                rows.into_iter()
                    .rev()
                    .find(|(t, k, _)| *t == table && *k == key)
                    .and_then(|(_, _, v)| v)
            })
            .unwrap_or_default();
        let mut named = false;
        for (col, now) in &values {
            let was = said.get(col).cloned().unwrap_or(serde_json::Value::Null);
            if &was != now {
                named = true;
                rep.problem(format!(
                    "{table} {key} 列 {col}: 台帳 (entry {idx}) では {was}、行では {now} (changed outside mamori)"
                ));
            }
        }
        if !named {
            rep.problem(format!(
                "{table} {key}: 台帳 (entry {idx}) の記録と一致しません"
            ));
        }
    }
    Ok(rows)
}

fn serde_check(row: &mamori_store::RawRow<'_>) -> Parsed {
    match serde_json::from_slice::<EventCheck<'_>>(row.payload) {
        Ok(ev) => {
            let same = ev.v == 1
                && ev.ts == row.ts
                && ev.actor.as_ref().map(|a| a.id) == row.actor_id
                && ev.action == row.action
                && ev.outcome == row.outcome
                && ev.patient.as_deref() == row.patient_id
                && ev.record == row.record_id;
            if !same {
                Parsed::ColumnsDiffer
            } else {
                match (ev.record, ev.version, ev.version_digest) {
                    (Some(rec), Some(ver), Some(d)) => Parsed::Ok(Some((rec, ver, d.into_owned()))),
                    _ => Parsed::Ok(None),
                }
            }
        }
        Err(_) => Parsed::Unreadable,
    }
}

/// A reader of the canonical `AuditEvent` v1 encoding (fields in declaration order, as serde
/// writes them). It answers only for payloads in exactly that shape with no escaped strings;
/// anything else goes to the full JSON parser. The leaf hash, not this check, is what proves
/// the payload unchanged.
fn fast_check(row: &mamori_store::RawRow<'_>) -> Option<Parsed> {
    let mut s = Scan {
        b: row.payload,
        i: 0,
    };
    s.lit(b"{\"v\":1,\"ts\":")?;
    let ts = s.int()?;
    s.lit(b",\"actor\":")?;
    let actor = if s.null() {
        None
    } else {
        s.lit(b"{\"id\":")?;
        let id = s.int()?;
        s.lit(b",\"login\":")?;
        s.string()?;
        s.lit(b",\"role\":")?;
        s.string()?;
        s.lit(b"}")?;
        Some(id)
    };
    s.lit(b",\"action\":")?;
    let action = s.string()?;
    s.lit(b",\"outcome\":")?;
    let outcome = s.string()?;
    s.lit(b",\"patient\":")?;
    let patient = s.opt_string()?;
    s.lit(b",\"record\":")?;
    let record = s.opt_int()?;
    s.lit(b",\"version\":")?;
    let version = s.opt_int()?;
    s.lit(b",\"content_sha256\":")?;
    s.opt_string()?;
    s.lit(b",\"version_digest\":")?;
    let digest = s.opt_string()?;
    s.lit(b",\"client\":")?;
    let same = ts == row.ts
        && actor == row.actor_id
        && action == row.action.as_bytes()
        && outcome == row.outcome.as_bytes()
        && patient == row.patient_id.map(str::as_bytes)
        && record == row.record_id;
    if !same {
        return Some(Parsed::ColumnsDiffer);
    }
    Some(Parsed::Ok(match (record, version, digest) {
        (Some(rec), Some(ver), Some(d)) => Some((rec, ver, String::from_utf8(d.to_vec()).ok()?)),
        _ => None,
    }))
}

struct Scan<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Scan<'a> {
    fn lit(&mut self, l: &[u8]) -> Option<()> {
        (self.b.get(self.i..self.i + l.len())? == l).then(|| self.i += l.len())
    }
    fn null(&mut self) -> bool {
        self.lit(b"null").is_some()
    }
    fn int(&mut self) -> Option<i64> {
        let start = self.i;
        if self.b.get(self.i) == Some(&b'-') {
            self.i += 1;
        }
        while self.b.get(self.i).is_some_and(u8::is_ascii_digit) {
            self.i += 1;
        }
        std::str::from_utf8(&self.b[start..self.i])
            .ok()?
            .parse()
            .ok()
    }
    fn string(&mut self) -> Option<&'a [u8]> {
        self.lit(b"\"")?;
        let start = self.i;
        loop {
            match *self.b.get(self.i)? {
                b'"' => break,
                b'\\' => return None,
                _ => self.i += 1,
            }
        }
        let s = &self.b[start..self.i];
        self.i += 1;
        Some(s)
    }
    fn opt_string(&mut self) -> Option<Option<&'a [u8]>> {
        if self.null() {
            Some(None)
        } else {
            self.string().map(Some)
        }
    }
    fn opt_int(&mut self) -> Option<Option<i64>> {
        if self.null() {
            Some(None)
        } else {
            self.int().map(Some)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mamori_domain::audit::{ActorRef, AuditEvent, Outcome};

    fn raw<'a>(e: &AuditEvent, payload: &'a [u8]) -> mamori_store::RawRow<'a> {
        mamori_store::RawRow {
            idx: 0,
            ts: e.ts,
            actor_id: e.actor.as_ref().map(|a| a.id),
            action: Box::leak(e.action.clone().into_boxed_str()),
            outcome: e.outcome.as_str(),
            patient_id: e.patient.clone().map(|p| &*Box::leak(p.into_boxed_str())),
            record_id: e.record,
            payload,
            hashes: &[],
        }
    }

    fn same(a: &Parsed, b: &Parsed) -> bool {
        match (a, b) {
            (Parsed::Ok(x), Parsed::Ok(y)) => x == y,
            (Parsed::ColumnsDiffer, Parsed::ColumnsDiffer)
            | (Parsed::Unreadable, Parsed::Unreadable) => true,
            _ => false,
        }
    }

    /// The fast reader agrees with the full JSON parser wherever it answers, and declines
    /// payloads it cannot read exactly (escaped strings).
    #[test]
    fn fast_check_agrees_with_serde() {
        let mut cases = Vec::new();
        for (i, patient) in [None, Some("P1"), Some("山田")].into_iter().enumerate() {
            let mut e = AuditEvent::new(
                1_700_000_000_000 + i as i64,
                None,
                "record.read",
                Outcome::Ok,
            );
            e.patient = patient.map(str::to_owned);
            cases.push(e.clone());
            e.actor = Some(ActorRef {
                id: 7,
                login: "dr.a".into(),
                role: "doctor".into(),
            });
            e.record = Some(3);
            e.version = Some(2);
            e.version_digest = Some("ab".repeat(32));
            e.detail = serde_json::json!({ "reason": "誤記\"入\"" });
            cases.push(e.clone());
            e.actor = Some(ActorRef {
                id: 7,
                login: "we\"ird".into(),
                role: "doctor".into(),
            });
            cases.push(e);
        }
        let mut answered = 0;
        for e in &cases {
            let payload = e.to_bytes();
            let row = raw(e, &payload);
            let full = serde_check(&row);
            assert!(matches!(full, Parsed::Ok(_)));
            if let Some(fast) = fast_check(&row) {
                answered += 1;
                assert!(same(&fast, &full), "{}", String::from_utf8_lossy(&payload));
            }
            // A column that disagrees with the payload is caught by both.
            let mut other = raw(e, &payload);
            other.ts += 1;
            assert!(matches!(serde_check(&other), Parsed::ColumnsDiffer));
            assert!(fast_check(&other).is_none_or(|p| matches!(p, Parsed::ColumnsDiffer)));
        }
        assert!(answered >= 6, "{answered}");
    }
}
