//! A record's content on disk: the title, body and attachments stored as blobs ahead of the
//! write's transaction (so the transaction stays short), the attachments a new version keeps, and
//! the files of a refused write removed again.

use super::*;

/// The stored content, its files (sha, size, media type), and this request's claims on them.
pub(super) type StoredContent = (
    RecordContent,
    String,
    Vec<(String, u64, String)>,
    Vec<mamori_store::Held>,
);

/// The files a prepared write stored, for removal if the write is refused.
pub(super) fn stored_files(prepared: &Result<StoredContent>) -> Vec<String> {
    prepared
        .as_ref()
        .map(|(_, _, _, held)| held.iter().map(|h| h.sha256.clone()).collect())
        .unwrap_or_default()
}

/// Records the blobs a new version refers to (already written to disk).
pub(super) fn register_blobs(
    tx: &mut WriteTx<'_>,
    blobs: &[(String, u64, String)],
    now: i64,
) -> Result<()> {
    for (sha, size, media) in blobs {
        tx.insert_blob(sha, *size, media, now)?;
    }
    Ok(())
}

impl Service {
    pub(crate) fn load_content(&self, sha: &str) -> Result<RecordContent> {
        if let Some(c) = self.content_cache.get(sha) {
            return Ok(c);
        }
        let bytes = self.store.blobs().get(sha)?;
        let content: RecordContent = serde_json::from_slice(&bytes)
            .map_err(|e| ServiceError::internal(format!("content blob {sha}: {e}")))?;
        self.content_cache.put(sha, &content, bytes.len());
        Ok(content)
    }

    /// Stores new attachments and the content as blobs (before the transaction that refers to them).
    pub(super) fn store_content(
        &self,
        title: &str,
        body: &str,
        kept: Vec<AttachmentRef>,
        uploads: Vec<Upload>,
    ) -> Result<StoredContent> {
        let mut attachments = kept;
        let mut blobs = Vec::new();
        let mut held = Vec::new();
        for u in uploads {
            let name = clean_file_name(&u.name)
                .map_err(|e| ServiceError::from(e).with_field("attachments"))?;
            if u.bytes.is_empty() {
                return Err(ServiceError::invalid(
                    "attachments",
                    format!("添付ファイル「{name}」が空です"),
                ));
            }
            if u.bytes.len() as u64 > self.config.records.max_attachment_bytes {
                return Err(ServiceError::new(
                    ErrorCode::TooLarge,
                    format!(
                        "添付ファイル「{name}」が大きすぎます（上限 {} MB）",
                        self.config.records.max_attachment_bytes / (1024 * 1024)
                    ),
                )
                .with_field("attachments"));
            }
            let media = sniff_media_type(&u.bytes)
                .filter(|m| ALLOWED_MEDIA_TYPES.contains(m))
                .ok_or_else(|| {
                    ServiceError::new(
                        ErrorCode::UnsupportedType,
                        format!(
                            "添付ファイル「{name}」の形式は使えません（PDF・JPEG・PNG・TIFF のみ）"
                        ),
                    )
                    .with_field("attachments")
                })?;
            let (sha, h) = self.store.blobs().put_held(&u.bytes)?;
            held.push(h);
            blobs.push((sha.clone(), u.bytes.len() as u64, media.to_owned()));
            attachments.push(AttachmentRef {
                name,
                media_type: media.into(),
                sha256: sha,
                size: u.bytes.len() as u64,
            });
        }
        let content = RecordContent::new(title, body, attachments)
            .map_err(|e| ServiceError::from(e).with_field("title"))?;
        let bytes = content.canonical_bytes();
        let (sha, h) = self.store.blobs().put_held(&bytes)?;
        held.push(h);
        blobs.push((sha.clone(), bytes.len() as u64, "application/json".into()));
        Ok((content, sha, blobs, held))
    }

    /// Carried-over attachments must come from the version being replaced.
    pub(super) fn kept_attachments(
        &self,
        head: Option<&VersionRow>,
        keep: &[String],
    ) -> Result<Vec<AttachmentRef>> {
        if keep.is_empty() {
            return Ok(Vec::new());
        }
        let Some(h) = head else {
            return Err(ServiceError::invalid(
                "keep_attachments",
                "引き継ぐ添付ファイルがありません",
            ));
        };
        let prev = self.load_content(&h.content_sha256)?;
        keep.iter()
            .map(|s| {
                prev.attachments
                    .iter()
                    .find(|a| &a.sha256 == s)
                    .cloned()
                    .ok_or_else(|| {
                        ServiceError::invalid(
                            "keep_attachments",
                            "引き継ぐ添付ファイルが前の版にありません",
                        )
                    })
            })
            .collect()
    }
}

/// Record contents recently read, by their SHA-256. A content blob is named by its hash and
/// never rewritten, so a cached content is the content; the cache only saves the file read and
/// the JSON parse of a chart opened again. Bounded by the bytes it holds.
pub(crate) struct ContentCache {
    map: std::sync::Mutex<(HashMap<String, RecordContent>, usize)>,
}

/// Most content bytes kept (a chart's text is a few kilobytes).
const CONTENT_CACHE_BYTES: usize = 32 << 20;

impl Default for ContentCache {
    fn default() -> Self {
        ContentCache {
            map: std::sync::Mutex::new((HashMap::new(), 0)),
        }
    }
}

impl ContentCache {
    fn get(&self, sha: &str) -> Option<RecordContent> {
        self.map.lock().ok()?.0.get(sha).cloned()
    }

    fn put(&self, sha: &str, content: &RecordContent, size: usize) {
        if size > CONTENT_CACHE_BYTES / 64 {
            return;
        }
        if let Ok(mut m) = self.map.lock() {
            if m.1 + size > CONTENT_CACHE_BYTES {
                m.0.clear();
                m.1 = 0;
            }
            if m.0.insert(sha.to_owned(), content.clone()).is_none() {
                m.1 += size;
            }
        }
    }
}
