//! Who may do what: accounts (`accounts`), sign-in and sessions (`auth`), the limits that keep
//! one caller from exhausting the server (`guard`), second factors (`second_factor`,
//! `passkeys`), break-glass access (`emergency`), maintenance engineers' work windows
//! (`maintenance`), roles, their grants and record kinds (`settings`), and the facility CA with
//! its client certificates (`ca`). Calls `ledger` through the audited read and write; `ca` reads
//! keys with `evidence`'s PEM reader.

pub mod accounts;
pub mod auth;
pub mod ca;
pub mod emergency;
pub mod guard;
pub mod maintenance;
pub mod passkeys;
pub mod second_factor;
pub mod settings;
