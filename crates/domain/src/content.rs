//! Record content and attachments, with canonical bytes that the ledger commits to.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::DomainError;

pub const MAX_TITLE_CHARS: usize = 200;
pub const MAX_BODY_CHARS: usize = 200_000;
pub const MAX_ATTACHMENTS: usize = 50;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentRef {
    pub name: String,
    pub media_type: String,
    pub sha256: String,
    pub size: u64,
}

/// Field order is fixed by the struct, so the JSON bytes are canonical for a given value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordContent {
    /// Format version of this encoding, so verifiers can evolve without breaking old data.
    pub v: u32,
    pub title: String,
    pub body: String,
    pub attachments: Vec<AttachmentRef>,
}

impl RecordContent {
    pub fn new(
        title: &str,
        body: &str,
        attachments: Vec<AttachmentRef>,
    ) -> Result<Self, DomainError> {
        let title = title.trim();
        if title.is_empty() {
            return Err(DomainError::Invalid("表題を入力してください".into()));
        }
        if title.chars().count() > MAX_TITLE_CHARS {
            return Err(DomainError::Invalid(format!(
                "表題は{MAX_TITLE_CHARS}文字以内にしてください"
            )));
        }
        if body.chars().count() > MAX_BODY_CHARS {
            return Err(DomainError::Invalid(format!(
                "本文は{MAX_BODY_CHARS}文字以内にしてください"
            )));
        }
        if attachments.len() > MAX_ATTACHMENTS {
            return Err(DomainError::Invalid(format!(
                "添付は{MAX_ATTACHMENTS}件までです"
            )));
        }
        Ok(Self {
            v: 1,
            title: title.to_owned(),
            body: body.to_owned(),
            attachments,
        })
    }

    pub fn canonical_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("content serialises")
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Attachment types kept for the long term (保存性): formats readable without special software.
pub const ALLOWED_MEDIA_TYPES: [&str; 4] =
    ["application/pdf", "image/jpeg", "image/png", "image/tiff"];

/// Identifies a file by its leading bytes; the declared type is never trusted alone.
pub fn sniff_media_type(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"%PDF-") {
        Some("application/pdf")
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(b"II*\0") || bytes.starts_with(b"MM\0*") {
        Some("image/tiff")
    } else {
        None
    }
}

/// A file name safe to show and to put in an export: no path, no control characters.
pub fn clean_file_name(name: &str) -> Result<String, DomainError> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("").trim();
    if base.is_empty() || base == "." || base == ".." {
        return Err(DomainError::Invalid("ファイル名が正しくありません".into()));
    }
    if base.chars().any(char::is_control) || base.chars().count() > 200 {
        return Err(DomainError::Invalid("ファイル名が正しくありません".into()));
    }
    Ok(base.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_validation() {
        assert!(RecordContent::new("  ", "x", vec![]).is_err());
        assert!(RecordContent::new(&"あ".repeat(201), "x", vec![]).is_err());
        let c = RecordContent::new(" 初診 ", "頭痛", vec![]).unwrap();
        assert_eq!(c.title, "初診");
        assert_eq!(
            c.canonical_bytes(),
            RecordContent::new("初診", "頭痛", vec![])
                .unwrap()
                .canonical_bytes()
        );
    }

    #[test]
    fn sniffing() {
        assert_eq!(sniff_media_type(b"%PDF-1.7\n"), Some("application/pdf"));
        assert_eq!(
            sniff_media_type(b"\x89PNG\r\n\x1a\n...."),
            Some("image/png")
        );
        assert_eq!(sniff_media_type(b"MZ\x90\0"), None);
        assert_eq!(sniff_media_type(b""), None);
    }

    #[test]
    fn file_names() {
        assert_eq!(
            clean_file_name("C:\\scan\\紹介状.pdf").unwrap(),
            "紹介状.pdf"
        );
        assert_eq!(clean_file_name("../../etc/passwd").unwrap(), "passwd");
        assert!(clean_file_name("..").is_err());
        assert!(clean_file_name("a\nb").is_err());
    }
}
