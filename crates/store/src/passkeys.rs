//! Passkeys (WebAuthn credentials) registered as second factors.

use crate::sql::params;
use mamori_domain::Millis;
use serde::Serialize;

use crate::{Reader, StoreError, WriteTx};

#[derive(Debug, Clone, Serialize)]
pub struct PasskeyRow {
    pub id: i64,
    pub account_id: i64,
    #[serde(skip)]
    pub credential_id: Vec<u8>,
    #[serde(skip)]
    pub public_key: Vec<u8>,
    pub sign_count: u32,
    pub name: String,
    pub created_at: Millis,
    pub last_used_at: Option<Millis>,
}

impl Reader<'_> {
    pub fn passkeys(&self, account_id: i64) -> Result<Vec<PasskeyRow>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT id, account_id, credential_id, public_key, sign_count, name, created_at, last_used_at
             FROM passkeys WHERE account_id = ?1 ORDER BY id",
        )?;
        let rows = st.query_map([account_id], |r| {
            Ok(PasskeyRow {
                id: r.get(0)?,
                account_id: r.get(1)?,
                credential_id: r.get(2)?,
                public_key: r.get(3)?,
                sign_count: r.get(4)?,
                name: r.get(5)?,
                created_at: r.get(6)?,
                last_used_at: r.get(7)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

impl WriteTx<'_> {
    pub fn insert_passkey(
        &mut self,
        account_id: i64,
        credential_id: &[u8],
        public_key: &[u8],
        sign_count: u32,
        name: &str,
        now: Millis,
    ) -> Result<i64, StoreError> {
        let inserted: i64 = self.conn.query_row(
            "INSERT INTO passkeys (account_id, credential_id, public_key, sign_count, name, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
            params![account_id, credential_id, public_key, sign_count, name, now],
            |r| r.get(0),
        )?;
        Ok(inserted)
    }

    pub fn use_passkey(&mut self, id: i64, sign_count: u32, now: Millis) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE passkeys SET sign_count = ?2, last_used_at = ?3 WHERE id = ?1",
            params![id, sign_count, now],
        )?;
        Ok(())
    }

    /// Removes one of `account_id`'s passkeys (`id`), or all of them (`None`).
    pub fn delete_passkeys(
        &mut self,
        account_id: i64,
        id: Option<i64>,
    ) -> Result<usize, StoreError> {
        Ok(self.conn.execute(
            "DELETE FROM passkeys WHERE account_id = ?1 AND (CAST(?2 AS BIGINT) IS NULL OR id = ?2)",
            params![account_id, id],
        )?)
    }
}
