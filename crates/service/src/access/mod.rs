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
pub mod oauth;
pub mod passkeys;
pub mod second_factor;
pub mod server_cert;
pub mod settings;
pub(crate) mod sign_in_state;

use crate::error::{Result, ServiceError};

/// The comment that closes a review (a break-glass use, a maintenance report): required, at
/// most 1000 characters, trimmed. Checked inside the transaction so a refusal is ledgered.
/// `what` names it as the form does (確認の結果, 確認の内容).
pub(crate) fn review_comment<'a>(comment: &'a str, what: &str) -> Result<&'a str> {
    let c = comment.trim();
    if c.is_empty() || c.chars().count() > 1000 {
        return Err(ServiceError::invalid(
            "comment",
            format!("{what}を1000文字以内で記入してください"),
        ));
    }
    Ok(c)
}
