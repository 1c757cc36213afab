//! The FHIR interface's own rows: OAuth 2.0 clients of service accounts (SMART Backend
//! Services), the client assertions they have used, and the signed JP-CLINS documents.

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

/// A JP-CLINS document (FHIR document Bundle) signed by a version's author.
#[derive(Debug, Clone, Serialize)]
pub struct FhirDocumentRow {
    pub id: String,
    pub record_id: i64,
    pub version_no: i64,
    pub bundle_sha256: String,
    pub destination: String,
    pub signer_serial: String,
    pub signed_at: Millis,
    pub timestamped_at: Option<Millis>,
}

const DOC_COLUMNS: &str = "id, record_id, version_no, bundle_sha256, destination, signer_serial, signed_at, timestamped_at";

fn doc_row(r: &crate::sql::Row<'_>) -> crate::sql::Result<FhirDocumentRow> {
    Ok(FhirDocumentRow {
        id: r.get(0)?,
        record_id: r.get(1)?,
        version_no: r.get(2)?,
        bundle_sha256: r.get(3)?,
        destination: r.get(4)?,
        signer_serial: r.get(5)?,
        signed_at: r.get(6)?,
        timestamped_at: r.get(7)?,
    })
}

impl Reader<'_> {
    pub fn fhir_document(&self, id: &str) -> Result<Option<FhirDocumentRow>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(&format!(
                "SELECT {DOC_COLUMNS} FROM fhir_documents WHERE id = ?1"
            ))?
            .query_row([id], doc_row)
            .optional()?)
    }

    /// Every JP-CLINS document made of a record, oldest first.
    pub fn fhir_documents_of(&self, record_id: i64) -> Result<Vec<FhirDocumentRow>, StoreError> {
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT {DOC_COLUMNS} FROM fhir_documents WHERE record_id = ?1 ORDER BY signed_at, id"
        ))?;
        Ok(st
            .query_map([record_id], doc_row)?
            .collect::<Result<_, _>>()?)
    }

    /// How many documents were made of one version (the next one's number is this plus one).
    pub fn fhir_documents_of_version(
        &self,
        record_id: i64,
        version_no: i64,
    ) -> Result<Vec<FhirDocumentRow>, StoreError> {
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT {DOC_COLUMNS} FROM fhir_documents WHERE record_id = ?1 AND version_no = ?2 ORDER BY signed_at, id"
        ))?;
        Ok(st
            .query_map(params![record_id, version_no], doc_row)?
            .collect::<Result<_, _>>()?)
    }
}

impl WriteTx<'_> {
    /// False if a document with this ID exists.
    pub fn insert_fhir_document(&mut self, d: &FhirDocumentRow) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            &format!(
                "INSERT INTO fhir_documents ({DOC_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT DO NOTHING"
            ),
            params![
                d.id,
                d.record_id,
                d.version_no,
                d.bundle_sha256,
                d.destination,
                d.signer_serial,
                d.signed_at,
                d.timestamped_at
            ],
        )?;
        Ok(n == 1)
    }
}
