//! OAuth 2.0 clients of service accounts (SMART Backend Services) and the client assertions
//! they have used.

use crate::sql::{OptionalExtension, params};
use mamori_domain::Millis;
use serde::Serialize;

use crate::{Reader, StoreError, WriteTx};

#[derive(Debug, Clone, Serialize)]
pub struct OAuthClientRow {
    pub client_id: String,
    pub account_id: i64,
    pub name: String,
    /// The registered public JWK (JSON).
    pub jwk: String,
    /// The SMART system scopes it may be granted.
    pub scopes: Vec<String>,
    pub created_at: Millis,
    pub created_by: i64,
    pub revoked_at: Option<Millis>,
}

const COLUMNS: &str =
    "client_id, account_id, name, jwk, scopes, created_at, created_by, revoked_at";

fn row(r: &crate::sql::Row<'_>) -> crate::sql::Result<OAuthClientRow> {
    let scopes: String = r.get(4)?;
    Ok(OAuthClientRow {
        client_id: r.get(0)?,
        account_id: r.get(1)?,
        name: r.get(2)?,
        jwk: r.get(3)?,
        scopes: scopes.split_ascii_whitespace().map(str::to_owned).collect(),
        created_at: r.get(5)?,
        created_by: r.get(6)?,
        revoked_at: r.get(7)?,
    })
}

/// The name of the sessions (access tokens) issued to a client.
pub fn session_name(client_id: &str) -> String {
    format!("oauth:{client_id}")
}

impl Reader<'_> {
    pub fn oauth_client(&self, client_id: &str) -> Result<Option<OAuthClientRow>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM oauth_clients WHERE client_id = ?1"
            ))?
            .query_row([client_id], row)
            .optional()?)
    }

    pub fn oauth_clients(&self) -> Result<Vec<OAuthClientRow>, StoreError> {
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM oauth_clients ORDER BY created_at, client_id"
        ))?;
        Ok(st.query_map((), row)?.collect::<Result<_, _>>()?)
    }
}

impl WriteTx<'_> {
    pub fn insert_oauth_client(&mut self, c: &OAuthClientRow) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO oauth_clients (client_id, account_id, name, jwk, scopes, created_at, created_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                c.client_id,
                c.account_id,
                c.name,
                c.jwk,
                c.scopes.join(" "),
                c.created_at,
                c.created_by
            ],
        )?;
        Ok(())
    }

    /// False if there is no such client or it was already revoked.
    pub fn revoke_oauth_client(
        &mut self,
        client_id: &str,
        now: Millis,
    ) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "UPDATE oauth_clients SET revoked_at = ?2 WHERE client_id = ?1 AND revoked_at IS NULL",
            params![client_id, now],
        )?;
        Ok(n == 1)
    }

    /// Ends the access tokens a client was given (its sessions are named after it).
    pub fn revoke_oauth_tokens(&mut self, client_id: &str, now: Millis) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE sessions SET revoked_at = ?2 WHERE name = ?1 AND is_api_token = 1 AND revoked_at IS NULL",
            params![session_name(client_id), now],
        )?;
        Ok(())
    }

    /// Records a client assertion as used; false if it was used before (a replay). Assertions
    /// past their expiry are forgotten here: they can no longer be presented anyway.
    pub fn use_oauth_assertion(
        &mut self,
        client_id: &str,
        jti: &str,
        expires_at: Millis,
        now: Millis,
    ) -> Result<bool, StoreError> {
        self.conn.execute(
            "DELETE FROM oauth_assertions WHERE expires_at < ?1",
            params![now - 120_000],
        )?;
        let n = self.conn.execute(
            "INSERT INTO oauth_assertions (client_id, jti, expires_at) VALUES (?1, ?2, ?3)
             ON CONFLICT DO NOTHING",
            params![client_id, jti, expires_at],
        )?;
        Ok(n == 1)
    }
}
