//! PDFs of finalised records and the structure of their PAdES signatures: writing the document
//! (`render`), the incremental updates that add a signature, a document time-stamp or the
//! validation data (`update`), and finding what a file's signatures cover (`inspect`). The
//! CMS inside is the evidence crate's; this crate never hashes for trust beyond the byte
//! ranges, and does no I/O.

pub mod inspect;
pub mod render;
pub mod update;

pub use inspect::{PdfSignature, SignatureKind, docmdp_permission, signatures};
pub use render::{FontFile, Letter, render};
pub use update::{
    Dss, Field, Placeholder, SigningRequest, append_dss, fill_contents, prepare_signature,
    with_contents,
};

#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    #[error("フォントを使えません: {0}")]
    Font(String),
    #[error("ページを組めません")]
    Layout,
    #[error("PDF を書けません: {0}")]
    Write(String),
    #[error("PDF として読めません: {0}")]
    Malformed(String),
    #[error("暗号化された PDF には署名できません")]
    Encrypted,
    #[error("署名の領域に収まりません（{needed} バイト、用意は {room} バイト）")]
    TooLarge { needed: usize, room: usize },
}

impl PdfError {
    /// A stable English code for APIs and logs.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Font(_) => "pdf_font",
            Self::Layout => "pdf_layout",
            Self::Write(_) => "pdf_write",
            Self::Malformed(_) => "pdf_malformed",
            Self::Encrypted => "pdf_encrypted",
            Self::TooLarge { .. } => "pdf_signature_too_large",
        }
    }
}

pub type Result<T> = std::result::Result<T, PdfError>;

pub(crate) fn malformed(e: impl std::fmt::Display) -> PdfError {
    PdfError::Malformed(e.to_string())
}
