//! The tamper-evident log at the heart of mamori.
//!
//! Hashing and proofs follow RFC 6962 §2.1 (leaf = H(0x00‖data), node = H(0x01‖l‖r)) and the
//! verification algorithms of RFC 9162 §2.1.3.2 and §2.1.4.2. Checkpoints use the C2SP
//! `tlog-checkpoint` body signed as a C2SP `signed-note` with Ed25519. Nothing here performs
//! I/O: hashes are read through [`HashReader`], so any store can hold them.
#![forbid(unsafe_code)]

mod hash;
mod note;
mod proof;
mod tree;

pub use hash::{EMPTY_ROOT, Hash, empty_root, leaf_hash, node_hash};
pub use note::{Checkpoint, CheckpointSigner, NoteError, SignedCheckpoint, key_id};
pub use proof::{
    consistency_proof, inclusion_proof, root_at, subtree_hash, verify_consistency, verify_inclusion,
};
pub use tree::{
    Frontier, HashReader, StoredHash, completing_leaf, stored_hash_count, stored_index,
};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProofError {
    #[error("index {index} is outside a tree of size {size}")]
    OutOfRange { index: u64, size: u64 },
    #[error("the proof has the wrong length")]
    WrongLength,
    #[error("the proof does not lead to the expected root")]
    RootMismatch,
    #[error("a hash needed for the proof is missing from the store: {0}")]
    Missing(String),
}
