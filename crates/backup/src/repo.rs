//! A repository on a target: its configuration, keys, chunk index and snapshots.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::{BackupError, Result};
use crate::keys::{self, KdfParams, KeyMaterial, KeySlot, MasterKey};
use crate::manifest::{Manifest, SignedManifest};
use crate::seal::{open, random_bytes, seal};
use crate::target::Target;

pub const REPO_FORMAT: &str = "mamori-backup/1";
const CONFIG: &str = "config";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ChunkerParams {
    pub min: usize,
    pub avg: usize,
    pub max: usize,
}

impl Default for ChunkerParams {
    /// restic's sizes: large enough that the index stays small (the database is not cut by
    /// content but in fixed parts, `paged.rs`).
    fn default() -> Self {
        ChunkerParams {
            min: 512 * 1024,
            avg: 1024 * 1024,
            max: 8 * 1024 * 1024,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RepoConfig {
    pub format: String,
    pub id: String,
    pub created_at: String,
    pub chunker: ChunkerParams,
    pub pack_size: usize,
    pub cipher: String,
    pub compression: String,
}

/// Where a chunk lives: pack, offset, sealed length, plain length.
#[derive(Clone, Debug)]
pub struct Loc {
    pub pack: [u8; 32],
    pub offset: u64,
    pub len: u32,
    pub raw_len: u32,
    /// In a pack of an earlier release (XChaCha20-Poly1305): still readable, but the next
    /// backup stores the chunk again under AES-256-GCM and a prune then drops the old pack.
    pub legacy: bool,
}

/// The cipher recorded for packs written by this release; packs without one are legacy.
pub(crate) const PACK_CIPHER: &str = "aes-256-gcm";

#[derive(Serialize, Deserialize, Default)]
pub(crate) struct IndexFile {
    pub packs: Vec<PackEntry>,
}

#[derive(Serialize, Deserialize, Clone)]
pub(crate) struct PackEntry {
    pub id: String,
    /// (chunk id, offset, sealed length, plain length)
    pub blobs: Vec<(String, u64, u32, u32)>,
    /// How the pack's chunks are sealed; absent in indexes of earlier releases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cipher: Option<String>,
}

impl PackEntry {
    pub(crate) fn legacy(&self) -> bool {
        self.cipher.as_deref() != Some(PACK_CIPHER)
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct SnapshotInfo {
    pub id: String,
    pub created_at: String,
    pub files: usize,
    pub total_bytes: u64,
    pub locked_until: Option<String>,
    pub facts: serde_json::Value,
}

pub struct Repository {
    pub(crate) target: std::sync::Arc<dyn Target>,
    pub config: RepoConfig,
    pub(crate) key: MasterKey,
}

pub(crate) fn pack_name(id: &[u8; 32]) -> String {
    let h = hex::encode(id);
    format!("packs/{}/{h}", &h[..2])
}

fn parse_id(hex_id: &str, what: &'static str) -> Result<[u8; 32]> {
    hex::decode(hex_id)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| BackupError::corrupt(what, hex_id, "識別子が不正"))
}

impl Repository {
    /// Opens the repository on `target` with `material`.
    pub fn open(target: Box<dyn Target>, material: &KeyMaterial) -> Result<Self> {
        let raw = match target.get(CONFIG) {
            Ok(raw) => raw,
            Err(BackupError::Missing { .. }) => {
                return Err(BackupError::NoRepository(target.describe()));
            }
            Err(e) => return Err(e),
        };
        let config: RepoConfig = serde_json::from_slice(&raw)
            .map_err(|e| BackupError::corrupt("リポジトリの設定", CONFIG, e.to_string()))?;
        if config.format != REPO_FORMAT {
            return Err(BackupError::Invalid(format!(
                "リポジトリの形式 {} はこの版の mamori では読めません",
                config.format
            )));
        }
        let mut slots = Vec::new();
        for name in target.list("keys/")? {
            let bytes = target.get(&name)?;
            match serde_json::from_slice::<KeySlot>(&bytes) {
                Ok(slot) => slots.push(slot),
                Err(e) => {
                    return Err(BackupError::corrupt("鍵", &name, e.to_string()));
                }
            }
        }
        let key = keys::unlock(material, &config.id, &slots)?;
        Ok(Repository {
            target: target.into(),
            config,
            key,
        })
    }

    /// Opens the repository, creating it first when the target holds none.
    pub fn open_or_init(
        target: Box<dyn Target>,
        material: &KeyMaterial,
        kdf: KdfParams,
    ) -> Result<(Self, bool)> {
        match target.get(CONFIG) {
            Ok(_) => Ok((Self::open(target, material)?, false)),
            Err(BackupError::Missing { .. }) => Ok((Self::init(target, material, kdf)?, true)),
            Err(e) => Err(e),
        }
    }

    fn init(target: Box<dyn Target>, material: &KeyMaterial, kdf: KdfParams) -> Result<Self> {
        target.check_ready()?;
        let config = RepoConfig {
            format: REPO_FORMAT.into(),
            id: hex::encode(random_bytes::<16>()),
            created_at: now_text(),
            chunker: ChunkerParams::default(),
            pack_size: 16 * 1024 * 1024,
            // Objects name their own format; this says what new ones are written with.
            cipher: "aes-256-gcm".into(),
            compression: "zstd".into(),
        };
        let (key, slots) = keys::create_slots(material, &config.id, kdf)?;
        for slot in &slots {
            let bytes = serde_json::to_vec_pretty(slot).expect("slot serialises");
            let name = format!(
                "keys/{}",
                hex::encode(&blake3::hash(&bytes).as_bytes()[..16])
            );
            target.put(&name, &bytes)?;
        }
        // The configuration goes last: a repository is usable once it exists.
        target.put(
            CONFIG,
            &serde_json::to_vec_pretty(&config).expect("config serialises"),
        )?;
        Ok(Repository {
            target: target.into(),
            config,
            key,
        })
    }

    pub fn target(&self) -> &dyn Target {
        self.target.as_ref()
    }

    /// Takes a repository lock (see `lock`): shared for a backup, exclusive for a prune.
    pub fn lock(&self, kind: crate::LockKind, purpose: &str) -> Result<crate::RepoLock> {
        crate::RepoLock::take(self.target.clone(), kind, purpose)
    }

    /// Every chunk the repository holds, from all index objects; a chunk stored both in a
    /// legacy pack and a current one is read from the current one.
    pub fn load_index(&self) -> Result<HashMap<[u8; 32], Loc>> {
        let mut map: HashMap<[u8; 32], Loc> = HashMap::new();
        for (_, file) in self.index_files()? {
            for pack in file.packs {
                let pack_id = parse_id(&pack.id, "パック")?;
                let legacy = pack.legacy();
                for (chunk, offset, len, raw_len) in pack.blobs {
                    let loc = Loc {
                        pack: pack_id,
                        offset,
                        len,
                        raw_len,
                        legacy,
                    };
                    match map.entry(parse_id(&chunk, "チャンク")?) {
                        std::collections::hash_map::Entry::Occupied(mut e) => {
                            if e.get().legacy && !legacy {
                                e.insert(loc);
                            }
                        }
                        std::collections::hash_map::Entry::Vacant(e) => {
                            e.insert(loc);
                        }
                    }
                }
            }
        }
        Ok(map)
    }

    pub(crate) fn index_files(&self) -> Result<Vec<(String, IndexFile)>> {
        let mut out = Vec::new();
        for name in self.target.list("index/")? {
            let sealed = self.target.get(&name)?;
            let plain = open(&self.key.enc, &sealed, b"index")
                .ok_or_else(|| BackupError::corrupt("索引", &name, "復号できません"))?;
            let json = zstd::stream::decode_all(&plain[..])
                .map_err(|e| BackupError::corrupt("索引", &name, e.to_string()))?;
            let file: IndexFile = serde_json::from_slice(&json)
                .map_err(|e| BackupError::corrupt("索引", &name, e.to_string()))?;
            out.push((name, file));
        }
        Ok(out)
    }

    pub(crate) fn write_index(&self, file: &IndexFile) -> Result<String> {
        let json = serde_json::to_vec(file).expect("index serialises");
        let packed = zstd::bulk::compress(&json, 3).map_err(|e| BackupError::Io(e.to_string()))?;
        let sealed = seal(&self.key.enc, &packed, b"index");
        let name = format!("index/{}", blake3::hash(&sealed).to_hex());
        self.target.put(&name, &sealed)?;
        Ok(name)
    }

    /// Snapshot ids, oldest first (ids begin with their UTC time).
    pub fn snapshot_ids(&self) -> Result<Vec<String>> {
        let mut ids: Vec<String> = self
            .target
            .list("snapshots/")?
            .into_iter()
            .filter_map(|n| n.strip_prefix("snapshots/").map(str::to_owned))
            .collect();
        ids.sort();
        Ok(ids)
    }

    pub fn load_snapshot(&self, id: &str) -> Result<SignedManifest> {
        if id.is_empty() || id.contains('/') {
            return Err(BackupError::NoSnapshot(id.to_owned()));
        }
        let name = format!("snapshots/{id}");
        let sealed = match self.target.get(&name) {
            Ok(s) => s,
            Err(BackupError::Missing { .. }) => return Err(BackupError::NoSnapshot(id.to_owned())),
            Err(e) => return Err(e),
        };
        let plain = open(&self.key.enc, &sealed, name.as_bytes())
            .or_else(|| {
                // Overwritten on a versioned, locked target: the original is still there.
                self.target
                    .older_copies(&name, None)
                    .ok()?
                    .iter()
                    .find_map(|old| open(&self.key.enc, old, name.as_bytes()))
            })
            .ok_or_else(|| {
                BackupError::corrupt(
                    "スナップショット",
                    id,
                    "復号できません（途中で切れているか、改ざんされています）",
                )
            })?;
        SignedManifest::from_object(&plain)
            .ok_or_else(|| BackupError::corrupt("スナップショット", id, "形式が不正です"))
    }

    pub(crate) fn write_snapshot(&self, id: &str, signed: &SignedManifest) -> Result<()> {
        let name = format!("snapshots/{id}");
        self.target.put(
            &name,
            &seal(&self.key.enc, &signed.to_object(), name.as_bytes()),
        )
    }

    /// Every snapshot with its summary (signatures checked; a bad one is an error).
    pub fn snapshots(&self) -> Result<Vec<SnapshotInfo>> {
        let mut out = Vec::new();
        for id in self.snapshot_ids()? {
            let m: Manifest = self.load_snapshot(&id)?.verified(None)?;
            out.push(SnapshotInfo {
                id,
                created_at: m.created_at,
                files: m.files.len(),
                total_bytes: m.total_bytes,
                locked_until: m.locked_until,
                facts: m.facts,
            });
        }
        Ok(out)
    }

    /// The newest snapshot, or the one named; `NoSnapshot` when there is none.
    pub fn resolve(&self, id: Option<&str>) -> Result<String> {
        match id {
            Some(id) if id != "latest" => Ok(id.to_owned()),
            _ => self
                .snapshot_ids()?
                .pop()
                .ok_or_else(|| BackupError::NoSnapshot("latest".into())),
        }
    }
}

pub(crate) fn now_text() -> String {
    OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .expect("zero")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("RFC 3339")
}
