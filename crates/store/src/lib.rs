//! Storage for mamori.
//!
//! All SQL lives here. The service layer sees two narrow surfaces: [`WriteTx`] (inside one
//! group-committed transaction, owned by a single writer thread that also appends to the
//! ledger) and [`Reader`] (read-only connections that never wait on the writer). A PostgreSQL
//! backend implements the same two surfaces.
#![forbid(unsafe_code)]

mod access_watch;
mod blobs;
mod compliance;
mod copy;
mod db_image;
pub mod disk;
mod error;
mod evidence;
pub mod fhir;
mod ledger;
mod model;
mod page_map;
mod passkeys;
pub mod pool;
pub mod postgres;
mod read;
mod schema;
mod shared;
pub mod sql;
pub mod state;
mod transactions;
mod upgrade;
mod wal_checkpointer;
mod wal_frames;
mod write_tx;
mod writer;

pub use access_watch::ACCESS_TABLES;
pub use blobs::{BlobBackend, BlobStore, DiskBlobs, Held};
pub use compliance::{
    AnswerRow, AssessmentRow, AssetRow, ContactRow, EvidenceRow, RegisterRow, RiskRow,
};
pub use copy::{Copied, Migrated, copy_into_sqlite, copy_tables, migrate_to_postgres};
pub use db_image::{DatabaseImage, ImageMark};
pub use error::StoreError;
pub use evidence::{
    AwaitingSignature, CheckpointMember, EvidenceHead, EvidenceStamp, EvidenceTree,
    SIGNED_PDF_LETTER, SignatureRow, SignedPdfRow, SigningCertRow, SigningRequest,
};
pub use fhir::{FhirDocumentRow, OAuthClientRow};
pub use ledger::{
    LedgerHashes, LedgerRow, SEGMENT_BITS, day_of, day_start, is_chart_access, segment_of,
};
pub use model::*;
pub use passkeys::PasskeyRow;
pub use read::{RawRow, ReadOnly, Reader};
pub use schema::VERSION as SCHEMA_VERSION;
pub use shared::Turn;
pub use transactions::{TxDocumentRow, TxFact, TxQuery, TxStampRow, TxVersionRow, TxWrite};
pub use upgrade::{PRE_UPGRADE_DIR, Upgrade};
pub use write_tx::WriteTx;
pub use writer::{Durability, Store, StoreOptions, WriterStats};

/// A file SQLite or mamori keeps beside the database: `mamori.db-wal`, `mamori.db-pages`.
pub(crate) fn beside(db: &std::path::Path, suffix: &str) -> std::path::PathBuf {
    let mut name = db.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    db.with_file_name(name)
}

/// Restricts a file to its owner: keys and the database hold secrets and patient data.
#[cfg(unix)]
pub fn restrict_file(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

#[cfg(unix)]
pub fn restrict_dir(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
}

#[cfg(not(unix))]
pub fn restrict_file(_: &std::path::Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(not(unix))]
pub fn restrict_dir(_: &std::path::Path) -> std::io::Result<()> {
    Ok(())
}
