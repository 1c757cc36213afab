//! PostgreSQL: the store for sites that run several mamori nodes against one database
//! (issue #22). SQLite stays the default; nothing here is used unless a `postgres://` URL is
//! configured.
//!
//! The ledger is sequenced the way Tessera sequences a log on MySQL or Spanner: each node
//! commits its batch in one transaction that first locks the single coordinator row
//! (`ledger_head`: size, newest time, the tree's right edge), computes the Merkle hashes from
//! that stored edge, inserts the entries and moves the head. Two nodes can therefore never
//! assign the same index, and an index is only ever seen by others once its transaction
//! committed. Each batch carries a random id stored in the same transaction, so a node that
//! lost its connection during `COMMIT` finds out afterwards whether the batch is in — an
//! acknowledged entry is never missing and an entry is never written twice.

mod leader;
mod ledger;
mod schema;
mod verify;

use std::str::FromStr;

pub use leader::{LeaderOptions, Leadership, lock_key};
pub use ledger::{PgLedger, PgLedgerOptions, PgLedgerStats};
pub use tokio_postgres::Config;
pub use verify::{LedgerCheck, verify_ledger};

use crate::StoreError;
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::error::SqlState;

/// Parses a `postgres://` URL (or `key=value` string) and refuses one that would send patient
/// data in the clear to another machine: without TLS support in this build, only loopback
/// addresses and Unix sockets are accepted unless the URL says `sslmode=disable` explicitly
/// (a private network the operator vouches for).
pub fn parse_url(url: &str) -> Result<tokio_postgres::Config, StoreError> {
    let config = tokio_postgres::Config::from_str(url)
        .map_err(|e| StoreError::Schema(format!("the database URL cannot be read: {e}")))?;
    if config.get_hosts().is_empty() {
        return Err(StoreError::Schema(
            "the database URL names no host (postgres://user@host:5432/database)".into(),
        ));
    }
    let remote = config.get_hosts().iter().any(|h| match h {
        Host::Tcp(name) => !is_loopback(name),
        #[cfg(unix)]
        Host::Unix(_) => false,
    });
    if remote && config.get_ssl_mode() != SslMode::Disable {
        return Err(StoreError::Schema(
            "this build connects to PostgreSQL without TLS: use a loopback address or a Unix socket, \
             or add sslmode=disable to the URL if the network between mamori and the database is private"
                .into(),
        ));
    }
    Ok(config)
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|a| a.is_loopback())
}

/// Opens one connection; its I/O runs on a task of its own until the client is dropped.
pub async fn connect(
    config: &tokio_postgres::Config,
) -> Result<tokio_postgres::Client, StoreError> {
    let (client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(|e| StoreError::Unreachable(e.to_string()))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "PostgreSQL connection ended");
        }
    });
    Ok(client)
}

/// Whether a failed statement is worth running again on a fresh connection: the connection
/// broke, the server is restarting or failing over (a standby that is not yet primary answers
/// read-only), or the transaction lost a serialization race. Anything else is an answer.
pub(crate) fn retryable(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        None => true, // I/O: the connection itself failed
        Some(code) => [
            SqlState::T_R_SERIALIZATION_FAILURE,
            SqlState::T_R_DEADLOCK_DETECTED,
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CRASH_SHUTDOWN,
            SqlState::CANNOT_CONNECT_NOW,
            SqlState::READ_ONLY_SQL_TRANSACTION,
            SqlState::CONNECTION_FAILURE,
            SqlState::CONNECTION_EXCEPTION,
        ]
        .contains(code),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_that_would_leave_the_machine_in_the_clear_are_refused() {
        for ok in [
            "postgres://mamori@127.0.0.1:5432/mamori",
            "postgres://mamori@localhost/mamori",
            "postgres://mamori@[::1]:5432/mamori",
            "postgres://mamori@db.clinic.local/mamori?sslmode=disable",
            "host=/run/postgresql dbname=mamori user=mamori",
            "postgres://m@127.0.0.1:5432,127.0.0.1:5433/m?target_session_attrs=read-write",
        ] {
            parse_url(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in [
            "postgres://mamori@db.clinic.local/mamori",
            "postgres://mamori@10.0.0.5/mamori?sslmode=prefer",
            "postgres://m@127.0.0.1:5432,10.0.0.6:5432/m",
            "postgres://",
            "mysql://x",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }
}
