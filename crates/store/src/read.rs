//! The read side of the store: one `Reader` method per query (56 of them), each a prepared
//! statement and its row mapping. Long because the schema is wide, not because any query is;
//! the compliance tables' queries are in `compliance.rs`.

use std::collections::HashMap;

use mamori_domain::Millis;
use mamori_domain::kinds::RecordKind;
use mamori_domain::permission::Role;
use rusqlite::Connection;

use crate::sql::{Conn, OptionalExtension, Row, params};

use crate::ledger::{ROW_COLUMNS, day_of, day_start, row_from, segment_of};
use crate::{
    AccessCount, Account, AuditFilter, CertificateRow, CheckpointRow, EmergencyRow, LedgerRow,
    MaintenanceWindow, Patient, RecordRow, RoleProposalRow, Session, Store, StoreError, TotpRow,
    VersionRow,
};

/// A pooled read-only connection; goes back to the pool when dropped.
pub struct ReaderGuard {
    conn: Option<Held>,
    store: Store,
}

/// A reader's connection, from whichever database the store is on.
pub(crate) enum Held {
    Sqlite(crate::pool::Lent),
    Pg(crate::sql::PgConn),
}

impl ReaderGuard {
    pub(crate) fn new(conn: Held, store: Store) -> Self {
        Self {
            conn: Some(conn),
            store,
        }
    }

    pub fn get(&self) -> Reader<'_> {
        match self.conn.as_ref().expect("connection present until drop") {
            Held::Sqlite(l) => Reader::new(&l.conn),
            Held::Pg(c) => Reader::new(Conn::Pg(c)),
        }
    }
}

impl Drop for ReaderGuard {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            self.store.give_back(c);
        }
    }
}

/// The read side. Also available inside a write transaction (`WriteTx::read`).
pub struct Reader<'c> {
    pub(crate) conn: Conn<'c>,
}

fn account_from(r: &Row<'_>) -> crate::sql::Result<Account> {
    Ok(Account {
        id: r.get(0)?,
        login: r.get(1)?,
        display_name: r.get(2)?,
        role: r.get(3)?,
        is_service: r.get(4)?,
        active: r.get::<_, String>(5)? == "active",
        password_hash: r.get(6)?,
        password_changed_at: r.get(7)?,
        must_change_password: r.get(8)?,
        failed_logins: r.get(9)?,
        locked_until: r.get(10)?,
        last_login_at: r.get(11)?,
        created_at: r.get(12)?,
    })
}

const ACCOUNT_COLUMNS: &str =
    "id, login, display_name, role, is_service, status, password_hash, password_changed_at,
    must_change_password, failed_logins, locked_until, last_login_at, created_at";

fn version_from(r: &Row<'_>) -> crate::sql::Result<VersionRow> {
    Ok(VersionRow {
        record_id: r.get(0)?,
        version_no: r.get(1)?,
        state: r.get(2)?,
        kind: r.get(3)?,
        author_id: r.get(4)?,
        enterer_id: r.get(5)?,
        content_sha256: r.get(6)?,
        predecessor: r.get(7)?,
        reason: r.get(8)?,
        created_at: r.get(9)?,
        finalised_at: r.get(10)?,
        rejection_reason: r.get(11)?,
        ledger_index: r.get(12)?,
    })
}

const VERSION_COLUMNS: &str =
    "record_id, version_no, state, kind, author_id, enterer_id, content_sha256,
    predecessor, reason, created_at, finalised_at, rejection_reason, ledger_index";

fn record_from(r: &Row<'_>) -> crate::sql::Result<RecordRow> {
    Ok(RecordRow {
        id: r.get(0)?,
        patient_id: r.get(1)?,
        kind: r.get(2)?,
        created_at: r.get(3)?,
        created_by: r.get(4)?,
    })
}

fn patient_from(r: &Row<'_>) -> crate::sql::Result<Patient> {
    Ok(Patient {
        id: r.get(0)?,
        name_kanji: r.get(1)?,
        name_kana: r.get(2)?,
        birth_date: r.get(3)?,
        sex: r.get(4)?,
        created_at: r.get(5)?,
    })
}

fn role_from(r: &Row<'_>) -> crate::sql::Result<Role> {
    let grants: String = r.get(3)?;
    Ok(Role {
        code: r.get(0)?,
        name_ja: r.get(1)?,
        name_en: r.get(2)?,
        grants: serde_json::from_str(&grants).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(3, rusqlite::types::Type::Text, Box::new(e))
        })?,
        builtin: r.get(4)?,
    })
}

fn like_prefix(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 1);
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

impl<'c> Reader<'c> {
    pub(crate) fn new(conn: impl Into<Conn<'c>>) -> Self {
        Self { conn: conn.into() }
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    pub fn roles(&self) -> Result<Vec<Role>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT code, name_ja, name_en, grants, builtin FROM roles ORDER BY builtin DESC, code",
        )?;
        Ok(st.query_map((), role_from)?.collect::<Result<_, _>>()?)
    }

    pub fn role(&self, code: &str) -> Result<Option<Role>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT code, name_ja, name_en, grants, builtin FROM roles WHERE code = ?1",
        )?;
        Ok(st.query_row([code], role_from).optional()?)
    }

    pub fn kinds(&self) -> Result<Vec<RecordKind>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT code, name_ja, name_en, retention_years FROM record_kinds ORDER BY rowid",
        )?;
        Ok(st.query_map((), kind_from)?.collect::<Result<_, _>>()?)
    }

    pub fn kind(&self, code: &str) -> Result<Option<RecordKind>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT code, name_ja, name_en, retention_years FROM record_kinds WHERE code = ?1",
        )?;
        Ok(st.query_row([code], kind_from).optional()?)
    }

    pub fn account(&self, id: i64) -> Result<Option<Account>, StoreError> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = ?1");
        Ok(self
            .conn
            .prepare_cached(&sql)?
            .query_row([id], account_from)
            .optional()?)
    }

    /// The record another system's identifier names, if any.
    pub fn record_by_identifier(
        &self,
        system: &str,
        value: &str,
    ) -> Result<Option<i64>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT record_id FROM record_identifiers WHERE system = ?1 AND value = ?2",
            )?
            .query_row(params![system, value], |r| r.get(0))
            .optional()?)
    }

    /// The identifiers other systems gave a record.
    pub fn identifiers_of(&self, record_id: i64) -> Result<Vec<(String, String)>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT system, value FROM record_identifiers WHERE record_id = ?1 ORDER BY system, value",
        )?;
        Ok(st
            .query_map([record_id], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?)
    }

    pub fn account_by_login(&self, login: &str) -> Result<Option<Account>, StoreError> {
        // Login names are compared without case (older instances may hold `Dr.Tanaka`); the
        // exact spelling wins where two differ only by case.
        let sql = format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE login = ?1 COLLATE NOCASE
             ORDER BY login = ?1 DESC, id LIMIT 1"
        );
        Ok(self
            .conn
            .prepare_cached(&sql)?
            .query_row([login], account_from)
            .optional()?)
    }

    pub fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY id");
        Ok(self
            .conn
            .prepare_cached(&sql)?
            .query_map((), account_from)?
            .collect::<Result<_, _>>()?)
    }

    pub fn password_history(&self, account_id: i64, n: usize) -> Result<Vec<String>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached("SELECT hash FROM password_history WHERE account_id = ?1 ORDER BY set_at DESC, rowid DESC LIMIT ?2")?;
        Ok(st
            .query_map(params![account_id, n as i64], |r| r.get(0))?
            .collect::<Result<_, _>>()?)
    }

    pub fn session(&self, token_hash: &str) -> Result<Option<Session>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT account_id, is_api_token, name, csrf, created_at, last_seen_at, expires_at, revoked_at,
                    second_factor_pending, locked_at, scopes
             FROM sessions WHERE token_hash = ?1",
        )?;
        Ok(st
            .query_row([token_hash], |r| {
                Ok(Session {
                    account_id: r.get(0)?,
                    is_api_token: r.get(1)?,
                    name: r.get(2)?,
                    csrf: r.get(3)?,
                    created_at: r.get(4)?,
                    last_seen_at: r.get(5)?,
                    expires_at: r.get(6)?,
                    revoked_at: r.get(7)?,
                    second_factor_pending: r.get(8)?,
                    locked_at: r.get(9)?,
                    scopes: r.get(10)?,
                })
            })
            .optional()?)
    }

    pub fn totp(&self, account_id: i64) -> Result<Option<TotpRow>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT secret, enabled_at, last_step FROM totp WHERE account_id = ?1",
        )?;
        Ok(st
            .query_row([account_id], |r| {
                Ok(TotpRow {
                    secret: r.get(0)?,
                    enabled_at: r.get(1)?,
                    last_step: r.get(2)?,
                })
            })
            .optional()?)
    }

    pub fn recovery_codes_left(&self, account_id: i64) -> Result<u32, StoreError> {
        Ok(self.conn.query_row(
            "SELECT COUNT(*) FROM recovery_codes WHERE account_id = ?1 AND used_at IS NULL",
            [account_id],
            |r| r.get(0),
        )?)
    }

    /// Break-glass uses: those of `account` still active at `now`, or (account None) all,
    /// newest first, optionally only those not yet reviewed.
    pub fn emergency_accesses(
        &self,
        account: Option<i64>,
        active_at: Option<Millis>,
        unreviewed_only: bool,
    ) -> Result<Vec<EmergencyRow>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT id, account_id, COALESCE(patient_id, ''), reason, started_at, expires_at,
                    ended_at, reviewed_by, reviewed_at, review_comment, kind
             FROM emergency_access
             WHERE (CAST(?1 AS BIGINT) IS NULL OR account_id = ?1)
               AND (CAST(?2 AS BIGINT) IS NULL OR (ended_at IS NULL AND expires_at > ?2))
               AND (?3 = 0 OR reviewed_at IS NULL)
             ORDER BY id DESC LIMIT 1000",
        )?;
        let rows = st.query_map(params![account, active_at, unreviewed_only], |r| {
            Ok(EmergencyRow {
                id: r.get(0)?,
                account_id: r.get(1)?,
                patient_id: r.get(2)?,
                reason: r.get(3)?,
                started_at: r.get(4)?,
                expires_at: r.get(5)?,
                ended_at: r.get(6)?,
                reviewed_by: r.get(7)?,
                reviewed_at: r.get(8)?,
                review_comment: r.get(9)?,
                kind: r.get(10)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Maintenance windows, newest first (of one account, if given).
    pub fn maintenance_windows(
        &self,
        account: Option<i64>,
    ) -> Result<Vec<MaintenanceWindow>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT id, account_id, starts_at, ends_at, purpose, personal_info, requested_by,
                    requested_at, status, decided_by, decided_at, acknowledged_by,
                    acknowledged_at, acknowledgement
             FROM maintenance_windows WHERE (CAST(?1 AS BIGINT) IS NULL OR account_id = ?1)
             ORDER BY starts_at DESC, id DESC LIMIT 1000",
        )?;
        let rows = st.query_map([account], |r| {
            Ok(MaintenanceWindow {
                id: r.get(0)?,
                account_id: r.get(1)?,
                starts_at: r.get(2)?,
                ends_at: r.get(3)?,
                purpose: r.get(4)?,
                personal_info: r.get(5)?,
                requested_by: r.get(6)?,
                requested_at: r.get(7)?,
                status: r.get(8)?,
                decided_by: r.get(9)?,
                decided_at: r.get(10)?,
                acknowledged_by: r.get(11)?,
                acknowledged_at: r.get(12)?,
                acknowledgement: r.get(13)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn maintenance_window(&self, id: i64) -> Result<Option<MaintenanceWindow>, StoreError> {
        Ok(self
            .maintenance_windows(None)?
            .into_iter()
            .find(|w| w.id == id))
    }

    pub fn certificates(&self) -> Result<Vec<CertificateRow>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT serial, kind, subject, account_id, device_id, not_before, not_after, issued_at,
                    issued_by, revoked_at, revoke_reason, revoked_by
             FROM certificates ORDER BY issued_at DESC, serial",
        )?;
        let rows = st.query_map((), |r| {
            Ok(CertificateRow {
                serial: r.get(0)?,
                kind: r.get(1)?,
                subject: r.get(2)?,
                account_id: r.get(3)?,
                device_id: r.get(4)?,
                not_before: r.get(5)?,
                not_after: r.get(6)?,
                issued_at: r.get(7)?,
                issued_by: r.get(8)?,
                revoked_at: r.get(9)?,
                revoke_reason: r.get(10)?,
                revoked_by: r.get(11)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn certificate_revoked(&self, serial: &str) -> Result<Option<bool>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT revoked_at IS NOT NULL FROM certificates WHERE serial = ?1")?
            .query_row([serial], |r| r.get(0))
            .optional()?)
    }

    pub fn emergency_access(&self, id: i64) -> Result<Option<EmergencyRow>, StoreError> {
        Ok(self
            .emergency_accesses(None, None, false)?
            .into_iter()
            .find(|e| e.id == id))
    }

    /// For a sealed emergency account: Some(used_at) (None while unused); None otherwise.
    pub fn emergency_account(&self, account_id: i64) -> Result<Option<Option<Millis>>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT used_at FROM emergency_accounts WHERE account_id = ?1")?
            .query_row([account_id], |r| r.get(0))
            .optional()?)
    }

    pub fn two_factor_roles(&self) -> Result<Vec<String>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached("SELECT role_code FROM two_factor_roles ORDER BY role_code")?;
        let rows = st.query_map((), |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every covered row (see `state`), as (table, key, values).
    pub fn for_each_covered_row(
        &self,
        f: impl FnMut(
            &str,
            String,
            serde_json::Map<String, serde_json::Value>,
        ) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        crate::state::for_each_covered_row(self.conn, f)
    }

    /// Role changes waiting for a second administrator, then the latest decided ones.
    pub fn role_proposals(&self, limit: i64) -> Result<Vec<RoleProposalRow>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT id, role_code, proposal, reason, proposed_by, proposed_at, decided_by, decided_at, outcome
             FROM role_proposals ORDER BY outcome IS NOT NULL, id DESC LIMIT ?1",
        )?;
        let rows = st.query_map([limit], role_proposal_from)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn role_proposal(&self, id: i64) -> Result<Option<RoleProposalRow>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT id, role_code, proposal, reason, proposed_by, proposed_at, decided_by, decided_at, outcome
             FROM role_proposals WHERE id = ?1",
        )?;
        Ok(st.query_row([id], role_proposal_from).optional()?)
    }

    pub fn client_cert_roles(&self) -> Result<Vec<String>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached("SELECT role_code FROM client_cert_roles ORDER BY role_code")?;
        let rows = st.query_map((), |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn role_requires_client_cert(&self, code: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT 1 FROM client_cert_roles WHERE role_code = ?1")?
            .exists([code])?)
    }

    pub fn role_requires_two_factor(&self, code: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT 1 FROM two_factor_roles WHERE role_code = ?1")?
            .exists([code])?)
    }

    pub fn patient(&self, id: &str) -> Result<Option<Patient>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT id, name_kanji, name_kana, birth_date, sex, created_at FROM patients WHERE id = ?1",
        )?;
        Ok(st.query_row([id], patient_from).optional()?)
    }

    /// Patients whose ID or normalised kana starts with the query.
    pub fn search_patients(
        &self,
        id_prefix: &str,
        kana_prefix: &str,
        limit: u32,
    ) -> Result<Vec<Patient>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT id, name_kanji, name_kana, birth_date, sex, created_at FROM patients
             WHERE (?1 <> '' AND id LIKE ?2 ESCAPE '\\') OR (?3 <> '' AND kana_key LIKE ?4 ESCAPE '\\')
             ORDER BY kana_key, id LIMIT ?5",
        )?;
        Ok(st
            .query_map(
                params![
                    id_prefix,
                    like_prefix(id_prefix),
                    kana_prefix,
                    like_prefix(kana_prefix),
                    limit
                ],
                patient_from,
            )?
            .collect::<Result<_, _>>()?)
    }

    pub fn record(&self, id: i64) -> Result<Option<RecordRow>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT id, patient_id, kind, created_at, created_by FROM records WHERE id = ?1",
        )?;
        Ok(st.query_row([id], record_from).optional()?)
    }

    pub fn records_of_patient(&self, patient_id: &str) -> Result<Vec<RecordRow>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT id, patient_id, kind, created_at, created_by FROM records WHERE patient_id = ?1 ORDER BY created_at DESC, id DESC",
        )?;
        Ok(st
            .query_map([patient_id], record_from)?
            .collect::<Result<_, _>>()?)
    }

    pub fn versions(&self, record_id: i64) -> Result<Vec<VersionRow>, StoreError> {
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM versions WHERE record_id = ?1 ORDER BY version_no"
        );
        Ok(self
            .conn
            .prepare_cached(&sql)?
            .query_map([record_id], version_from)?
            .collect::<Result<_, _>>()?)
    }

    pub fn head(&self, record_id: i64) -> Result<Option<VersionRow>, StoreError> {
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM versions WHERE record_id = ?1 ORDER BY version_no DESC LIMIT 1"
        );
        Ok(self
            .conn
            .prepare_cached(&sql)?
            .query_row([record_id], version_from)
            .optional()?)
    }

    /// Heads waiting for `author_id`'s approval, oldest first.
    pub fn pending_for(&self, author_id: i64) -> Result<Vec<VersionRow>, StoreError> {
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM versions WHERE author_id = ?1 AND state = 'pending_approval' ORDER BY created_at"
        );
        Ok(self
            .conn
            .prepare_cached(&sql)?
            .query_map([author_id], version_from)?
            .collect::<Result<_, _>>()?)
    }

    pub fn blob_meta(&self, sha256: &str) -> Result<Option<(u64, String)>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached("SELECT size, media_type FROM blobs WHERE sha256 = ?1")?;
        Ok(st
            .query_row([sha256], |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)))
            .optional()?)
    }

    pub fn ledger_size(&self) -> Result<u64, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT COALESCE(MAX(idx) + 1, 0) FROM ledger", (), |r| {
                r.get::<_, i64>(0)
            })? as u64)
    }

    pub fn ledger_row(&self, idx: u64) -> Result<Option<LedgerRow>, StoreError> {
        let sql = format!("SELECT {ROW_COLUMNS} FROM ledger WHERE idx = ?1");
        Ok(self
            .conn
            .prepare_cached(&sql)?
            .query_row([idx as i64], row_from)
            .optional()?)
    }

    pub fn hashes(&self) -> crate::LedgerHashes<'_> {
        crate::LedgerHashes(self.conn)
    }

    pub fn checkpoints(&self) -> Result<Vec<CheckpointRow>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached("SELECT size, root, created_at, note FROM checkpoints ORDER BY size")?;
        let rows = st.query_map((), |r| {
            let root: Vec<u8> = r.get(1)?;
            Ok((r.get::<_, i64>(0)?, root, r.get(2)?, r.get(3)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (size, root, created_at, note) = row?;
            let root: [u8; 32] = root.try_into().map_err(|_| {
                StoreError::Corrupt(format!("checkpoint {size} has a malformed root"))
            })?;
            out.push(CheckpointRow {
                size: size as u64,
                root,
                created_at,
                note,
            });
        }
        Ok(out)
    }

    /// Streams the ledger in index order (for `verify`).
    /// Streams the ledger in index order without copying each row (for `verify`).
    pub fn for_each_raw_ledger_row(
        &self,
        mut f: impl FnMut(RawRow<'_>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let sql = format!("SELECT {ROW_COLUMNS} FROM ledger ORDER BY idx");
        let mut st = self.conn.prepare(&sql)?;
        let mut rows = st.query(())?;
        fn text<'r>(r: &'r Row<'_>, i: usize) -> Result<Option<&'r str>, StoreError> {
            Ok(r.get_ref(i)?
                .as_str_or_null()
                .map_err(|m| crate::sql::Error::conversion(0, m))?)
        }
        while let Some(r) = rows.next()? {
            let r = &r;
            f(RawRow {
                idx: r.get(0)?,
                ts: r.get(1)?,
                actor_id: r.get(2)?,
                action: text(r, 3)?.unwrap_or(""),
                outcome: text(r, 4)?.unwrap_or(""),
                patient_id: text(r, 5)?,
                record_id: r.get(6)?,
                payload: r
                    .get_ref(7)?
                    .as_blob()
                    .map_err(|m| crate::sql::Error::conversion(0, m))?,
                hashes: r
                    .get_ref(8)?
                    .as_blob()
                    .map_err(|m| crate::sql::Error::conversion(0, m))?,
            })?;
        }
        Ok(())
    }

    pub fn for_each_ledger_row(
        &self,
        mut f: impl FnMut(LedgerRow) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let sql = format!("SELECT {ROW_COLUMNS} FROM ledger ORDER BY idx");
        let mut st = self.conn.prepare(&sql)?;
        let mut rows = st.query(())?;
        while let Some(r) = rows.next()? {
            let r = &r;
            f(row_from(r)?)?;
        }
        Ok(())
    }

    pub fn for_each_version(
        &self,
        mut f: impl FnMut(VersionRow) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let sql = format!("SELECT {VERSION_COLUMNS} FROM versions ORDER BY record_id, version_no");
        let mut st = self.conn.prepare(&sql)?;
        let mut rows = st.query(())?;
        while let Some(r) = rows.next()? {
            let r = &r;
            f(version_from(r)?)?;
        }
        Ok(())
    }

    /// (record, version number, state, content hash) of every version in order: what a backup
    /// manifest vouches for, without building whole rows.
    pub fn for_each_version_fact(
        &self,
        mut f: impl FnMut(i64, i64, &str, &str),
    ) -> Result<(), StoreError> {
        let mut st = self.conn.prepare(
            "SELECT record_id, version_no, state, content_sha256 FROM versions ORDER BY record_id, version_no",
        )?;
        let mut rows = st.query(())?;
        while let Some(r) = rows.next()? {
            let r = &r;
            let state = r
                .get_ref(2)?
                .as_str()
                .map_err(|m| crate::sql::Error::conversion(0, m))?;
            let sha = r
                .get_ref(3)?
                .as_str()
                .map_err(|m| crate::sql::Error::conversion(0, m))?;
            f(r.get(0)?, r.get(1)?, state, sha);
        }
        Ok(())
    }

    pub fn blob_count(&self) -> Result<u64, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT count(*) FROM blobs", (), |r| r.get::<_, i64>(0))? as u64)
    }

    pub fn blob_ids(&self) -> Result<Vec<String>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT sha256 FROM blobs ORDER BY sha256")?;
        Ok(st.query_map((), |r| r.get(0))?.collect::<Result<_, _>>()?)
    }

    /// The first entry at or after `ts` (the ledger is ordered by time).
    /// How many entries with exactly `action` were written from `from` on: a count in SQLite,
    /// no row read out (monitoring asks every few seconds).
    pub fn count_action_since(&self, action: &str, from: Millis) -> Result<u64, StoreError> {
        let lo = self.idx_at_or_after(from)?;
        let n: i64 = self
            .conn
            .prepare_cached("SELECT count(*) FROM ledger WHERE idx >= ?1 AND action = ?2")?
            .query_row(params![lo, action], |r| r.get(0))?;
        Ok(n as u64)
    }

    pub fn idx_at_or_after(&self, ts: Millis) -> Result<i64, StoreError> {
        let (mut lo, mut hi) = (0i64, self.ledger_size()? as i64);
        let mut st = self
            .conn
            .prepare_cached("SELECT ts FROM ledger WHERE idx = ?1")?;
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let t: i64 = st.query_row([mid], |r| r.get(0))?;
            if t < ts {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }

    pub fn indexed_upto(&self) -> Result<i64, StoreError> {
        Ok(self
            .meta("indexed_upto")?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    fn rows_by_idx(&self, idxs: &[i64], out: &mut Vec<LedgerRow>) -> Result<(), StoreError> {
        let sql = format!("SELECT {ROW_COLUMNS} FROM ledger WHERE idx = ?1");
        let mut st = self.conn.prepare_cached(&sql)?;
        for i in idxs {
            out.push(st.query_row([i], row_from)?);
        }
        Ok(())
    }

    /// Audit events matching `f`, newest first (at most 10,000). Patient or staff filters seek
    /// the derived indexes segment by segment; entries not yet indexed are read from the ledger.
    pub fn audit_events(&self, f: &AuditFilter) -> Result<Vec<LedgerRow>, StoreError> {
        let capped = AuditFilter {
            limit: f.limit.clamp(1, 10_000),
            ..f.clone()
        };
        self.audit_events_unbounded(&capped)
    }

    fn audit_events_unbounded(&self, f: &AuditFilter) -> Result<Vec<LedgerRow>, StoreError> {
        let size = self.ledger_size()? as i64;
        let limit = f.limit.max(1) as usize;
        let lo = match f.from {
            Some(t) => self.idx_at_or_after(t)?,
            None => 0,
        };
        let mut hi = match f.to {
            Some(t) => self.idx_at_or_after(t)?,
            None => size,
        };
        if let Some(b) = f.before_idx {
            hi = hi.min(b);
        }
        let mut out: Vec<LedgerRow> = Vec::new();
        if lo >= hi {
            return Ok(out);
        }
        let keep = |r: &LedgerRow| {
            f.patient
                .as_ref()
                .is_none_or(|p| r.patient_id.as_ref() == Some(p))
                && f.actor.is_none_or(|a| r.actor_id == Some(a))
                && f.action_prefix
                    .as_ref()
                    .is_none_or(|p| r.action.starts_with(p.as_str()))
        };
        // 1. The not-yet-indexed tail, newest first.
        let upto = self.indexed_upto()?;
        let tail_lo = lo.max(upto);
        if tail_lo < hi {
            let sql = format!(
                "SELECT {ROW_COLUMNS} FROM ledger WHERE idx >= ?1 AND idx < ?2 ORDER BY idx DESC"
            );
            let mut st = self.conn.prepare_cached(&sql)?;
            let mut rows = st.query(params![tail_lo, hi])?;
            while let Some(r) = rows.next()? {
                let r = &r;
                let row = row_from(r)?;
                if keep(&row) {
                    out.push(row);
                    if out.len() >= limit {
                        return Ok(out);
                    }
                }
            }
        }
        let hi = hi.min(upto);
        if lo >= hi {
            return Ok(out);
        }
        // 2. The indexed part.
        let (table, key): (&str, crate::sql::Value) = match (&f.patient, f.actor) {
            (Some(p), _) => ("audit_by_patient", crate::sql::Value::Text(p.clone())),
            (None, Some(a)) => ("audit_by_actor", crate::sql::Value::Integer(a)),
            (None, None) => {
                let sql = format!(
                    "SELECT {ROW_COLUMNS} FROM ledger WHERE idx >= ?1 AND idx < ?2 ORDER BY idx DESC"
                );
                let mut st = self.conn.prepare_cached(&sql)?;
                let mut rows = st.query(params![lo, hi])?;
                while let Some(r) = rows.next()? {
                    let r = &r;
                    let row = row_from(r)?;
                    if keep(&row) {
                        out.push(row);
                        if out.len() >= limit {
                            break;
                        }
                    }
                }
                return Ok(out);
            }
        };
        let col = if table == "audit_by_patient" {
            "patient_id"
        } else {
            "actor_id"
        };
        let sql = format!(
            "SELECT idx FROM {table} WHERE seg = ?1 AND {col} = ?2 AND idx >= ?3 AND idx < ?4 ORDER BY idx DESC"
        );
        let (first_seg, last_seg) = (segment_of(lo), segment_of(hi - 1));
        let mut st = self.conn.prepare_cached(&sql)?;
        let mut seg = last_seg;
        while seg >= first_seg && out.len() < limit {
            let idxs: Vec<i64> = st
                .query_map(params![seg, key, lo, hi], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            let mut rows = Vec::with_capacity(idxs.len());
            self.rows_by_idx(&idxs, &mut rows)?;
            for row in rows {
                if keep(&row) {
                    out.push(row);
                    if out.len() >= limit {
                        break;
                    }
                }
            }
            seg -= 1;
        }
        Ok(out)
    }

    /// Chart openings per patient (and per staff member) in [from, to). Whole JST days come
    /// from the daily counts; partial days at either edge, and entries not yet indexed, are
    /// counted from the ledger itself. One patient's window is read through the patient index.
    pub fn access_counts(
        &self,
        from: Millis,
        to: Millis,
        patient: Option<&str>,
    ) -> Result<Vec<AccessCount>, StoreError> {
        let mut acc: HashMap<(String, i64), i64> = HashMap::new();
        if to <= from {
            return Ok(Vec::new());
        }
        if let Some(p) = patient {
            let f = AuditFilter {
                patient: Some(p.to_owned()),
                from: Some(from),
                to: Some(to),
                limit: u32::MAX,
                ..Default::default()
            };
            for row in self.audit_events_unbounded(&f)? {
                if let Some(a) = row
                    .actor_id
                    .filter(|_| crate::ledger::is_chart_access(&row.action, &row.outcome))
                {
                    *acc.entry((p.to_owned(), a)).or_default() += 1;
                }
            }
            return Ok(collect_counts(acc));
        }
        let upto = self.indexed_upto()?;
        let first_full = if day_start(day_of(from)) == from {
            day_of(from)
        } else {
            day_of(from) + 1
        };
        let last_excl = day_of(to);
        // Ledger index ranges [a, b) to count directly.
        let mut scans: Vec<(i64, i64)> = Vec::new();
        let lo = self.idx_at_or_after(from)?;
        let hi = self.idx_at_or_after(to)?;
        if first_full < last_excl {
            let mut st = self.conn.prepare_cached(
                "SELECT patient_id, actor_id, n FROM access_counts WHERE day >= ?1 AND day < ?2",
            )?;
            let mut rows = st.query(params![first_full, last_excl])?;
            while let Some(r) = rows.next()? {
                let r = &r;
                let p = r
                    .get_ref(0)?
                    .as_str()
                    .map_err(|m| crate::sql::Error::conversion(0, m))?;
                let (a, n): (i64, i64) = (r.get(1)?, r.get(2)?);
                match acc.get_mut(&(p.to_owned(), a)) {
                    Some(v) => *v += n,
                    None => {
                        acc.insert((p.to_owned(), a), n);
                    }
                }
            }
            // The daily counts cover the full days' entries up to `upto`; count the rest directly.
            let full_lo = self.idx_at_or_after(day_start(first_full))?;
            let full_hi = self.idx_at_or_after(day_start(last_excl))?;
            let counted_hi = full_hi.min(upto.max(full_lo));
            scans.push((lo, full_lo));
            scans.push((counted_hi, hi));
        } else {
            scans.push((lo, hi));
        }
        let access = crate::ledger::CHART_ACCESS
            .iter()
            .map(|a| format!("'{a}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT patient_id, actor_id FROM ledger
             WHERE idx >= ?1 AND idx < ?2 AND patient_id IS NOT NULL AND actor_id IS NOT NULL
               AND outcome = 'ok' AND action IN ({access})"
        ))?;
        for (a, b) in scans {
            if b <= a {
                continue;
            }
            let mut rows = st.query(params![a, b])?;
            while let Some(r) = rows.next()? {
                let r = &r;
                let p: String = r.get(0)?;
                *acc.entry((p, r.get(1)?)).or_default() += 1;
            }
        }
        Ok(collect_counts(acc))
    }

    /// The patient and staff index entries of one segment, sorted, for `verify` to compare.
    pub fn index_segment(&self, seg: i64) -> Result<SegmentIndex, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT patient_id, idx FROM audit_by_patient WHERE seg = ?1 ORDER BY patient_id, idx",
        )?;
        let p = st
            .query_map([seg], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        let mut st = self.conn.prepare_cached(
            "SELECT actor_id, idx FROM audit_by_actor WHERE seg = ?1 ORDER BY actor_id, idx",
        )?;
        let a = st
            .query_map([seg], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        Ok((p, a))
    }

    /// The daily chart-opening counts of one day, sorted, for `verify` to compare.
    pub fn counts_of_day(&self, day: i64) -> Result<Vec<(String, i64, i64)>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT patient_id, actor_id, n FROM access_counts WHERE day = ?1 ORDER BY patient_id, actor_id",
        )?;
        Ok(st
            .query_map([day], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?)
    }

    /// Number of rows in each derived index table (patient, actor, daily counts).
    pub fn index_sizes(&self) -> Result<(i64, i64, i64), StoreError> {
        let n = |t: &str| -> Result<i64, StoreError> {
            Ok(self
                .conn
                .query_row(&format!("SELECT COUNT(*) FROM {t}"), (), |r| r.get(0))?)
        };
        Ok((
            n("audit_by_patient")?,
            n("audit_by_actor")?,
            n("access_counts")?,
        ))
    }
}

fn collect_counts(acc: HashMap<(String, i64), i64>) -> Vec<AccessCount> {
    let mut by_patient: HashMap<String, Vec<(i64, i64)>> = HashMap::new();
    for ((p, a), n) in acc {
        by_patient.entry(p).or_default().push((a, n));
    }
    let mut out: Vec<AccessCount> = by_patient
        .into_iter()
        .map(|(patient_id, mut by_actor)| {
            by_actor.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(&y.0)));
            AccessCount {
                patient_id,
                total: by_actor.iter().map(|x| x.1).sum(),
                by_actor,
            }
        })
        .collect();
    out.sort_by(|x, y| {
        y.total
            .cmp(&x.total)
            .then_with(|| x.patient_id.cmp(&y.patient_id))
    });
    out
}

/// A ledger row borrowed from the database cursor.
pub struct RawRow<'r> {
    pub idx: i64,
    pub ts: Millis,
    pub actor_id: Option<i64>,
    pub action: &'r str,
    pub outcome: &'r str,
    pub patient_id: Option<&'r str>,
    pub record_id: Option<i64>,
    pub payload: &'r [u8],
    pub hashes: &'r [u8],
}

/// One segment's patient index entries (patient, idx) and staff entries (actor, idx).
pub type SegmentIndex = (Vec<(String, i64)>, Vec<(i64, i64)>);

/// A read-only view of an instance that starts no writer (for `verify` and offline tools).
pub struct ReadOnly {
    conn: Connection,
    /// On PostgreSQL, the snapshot's connection; `conn` is then an empty in-memory database
    /// that nothing reads.
    pg: Option<crate::sql::PgConn>,
}

impl ReadOnly {
    pub fn open(dir: &std::path::Path) -> Result<Self, StoreError> {
        let path = dir.join("mamori.db");
        if !path.exists() {
            return Err(StoreError::Schema(format!(
                "{} does not exist",
                path.display()
            )));
        }
        let conn = Connection::open_with_flags(
            &path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        // One read snapshot for the whole connection: a verifier running beside a live
        // server must see the ledger, versions and indexes as of one moment.
        conn.execute_batch("BEGIN")?;
        Ok(Self { conn, pg: None })
    }

    /// One read-only snapshot of an instance whose state is in PostgreSQL (repeatable read:
    /// the ledger, versions and indexes as of one moment, while nodes go on writing).
    pub fn open_postgres(db: &crate::postgres::Database) -> Result<Self, StoreError> {
        let pg = crate::sql::PgConn::connect(db)?;
        Conn::Pg(&pg).execute_batch("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")?;
        Ok(Self {
            conn: Connection::open_in_memory()?,
            pg: Some(pg),
        })
    }

    pub fn get(&self) -> Reader<'_> {
        match &self.pg {
            Some(pg) => Reader::new(Conn::Pg(pg)),
            None => Reader::new(&self.conn),
        }
    }

    /// The SQLite connection, for what exists only there (database images).
    pub(crate) fn conn(&self) -> Result<&Connection, StoreError> {
        match self.pg {
            None => Ok(&self.conn),
            Some(_) => Err(StoreError::Schema(
                "PostgreSQL の状態は SQLite のデータベース像として写せません".into(),
            )),
        }
    }

    /// Runs `f` and names every table its statements read (SQLite's authorizer, asked as each
    /// statement is prepared on this fresh connection). For tests that keep a cache's
    /// invalidation complete: what a cached read reads must be what invalidates it. SQLite
    /// only: on PostgreSQL the set is empty.
    pub fn tables_read<R>(
        &self,
        f: impl FnOnce(&Reader<'_>) -> R,
    ) -> (R, std::collections::BTreeSet<String>) {
        use rusqlite::hooks::{AuthAction, Authorization};
        let seen = std::sync::Arc::new(std::sync::Mutex::new(std::collections::BTreeSet::new()));
        let s2 = seen.clone();
        self.conn
            .authorizer(Some(move |ctx: rusqlite::hooks::AuthContext<'_>| {
                if let AuthAction::Read { table_name, .. } = ctx.action {
                    s2.lock()
                        .expect("tables read")
                        .insert(table_name.to_owned());
                }
                Authorization::Allow
            }));
        let r = f(&self.get());
        self.conn
            .authorizer(None::<fn(rusqlite::hooks::AuthContext<'_>) -> Authorization>);
        let tables = std::mem::take(&mut *seen.lock().expect("tables read"));
        (r, tables)
    }
}

impl ReadOnly {
    /// `BEGIN` is deferred: the snapshot is taken at the first read. Reading once here pins it
    /// before the image is made, if nothing was read yet.
    pub(crate) fn begin_snapshot(&self) -> Result<(), StoreError> {
        self.conn()?
            .query_row("SELECT count(*) FROM sqlite_schema", (), |_| Ok(()))?;
        Ok(())
    }
}

fn role_proposal_from(r: &Row<'_>) -> crate::sql::Result<RoleProposalRow> {
    Ok(RoleProposalRow {
        id: r.get(0)?,
        role_code: r.get(1)?,
        proposal: r.get(2)?,
        reason: r.get(3)?,
        proposed_by: r.get(4)?,
        proposed_at: r.get(5)?,
        decided_by: r.get(6)?,
        decided_at: r.get(7)?,
        outcome: r.get(8)?,
    })
}

fn kind_from(r: &Row<'_>) -> crate::sql::Result<RecordKind> {
    Ok(RecordKind {
        code: r.get(0)?,
        name_ja: r.get(1)?,
        name_en: r.get(2)?,
        retention_years: r.get(3)?,
    })
}
