//! Throw-away servers for mamori's tests.
//!
//! A test that needs PostgreSQL starts its own cluster from Debian's binaries (`apt install
//! postgresql`; `.ci/run` installs it), in a temporary directory, listening on 127.0.0.1 only,
//! and removes it when dropped. As root the cluster runs as the `postgres` user, because the
//! server refuses to run as root. A missing installation fails the test with the command that
//! fixes it: a test that silently skipped would prove nothing.
#![forbid(unsafe_code)]

pub mod keys;
pub mod moto;
pub mod nginx;
pub mod pdf;
pub mod postgres;
pub mod softhsm;
pub use softhsm::softhsm;
