use std::collections::BTreeMap;

use mamori_domain::Millis;
use mamori_domain::kinds::RecordKind;
use mamori_domain::permission::Role;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};

use crate::ledger::{CHART_ACCESS, ROW_COLUMNS, day_of, day_start, row_from};
use crate::{
    AccessCount, Account, AuditFilter, CheckpointRow, LedgerRow, Patient, RecordRow, Session,
    Store, StoreError, VersionRow,
};

/// A pooled read-only connection; goes back to the pool when dropped.
pub struct ReaderGuard {
    conn: Option<Connection>,
    store: Store,
}

impl ReaderGuard {
    pub(crate) fn new(conn: Connection, store: Store) -> Self {
        Self {
            conn: Some(conn),
            store,
        }
    }

    pub fn get(&self) -> Reader<'_> {
        Reader::new(self.conn.as_ref().expect("connection present until drop"))
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
    conn: &'c Connection,
}

fn account_from(r: &Row<'_>) -> rusqlite::Result<Account> {
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

fn version_from(r: &Row<'_>) -> rusqlite::Result<VersionRow> {
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

fn record_from(r: &Row<'_>) -> rusqlite::Result<RecordRow> {
    Ok(RecordRow {
        id: r.get(0)?,
        patient_id: r.get(1)?,
        kind: r.get(2)?,
        created_at: r.get(3)?,
        created_by: r.get(4)?,
    })
}

fn patient_from(r: &Row<'_>) -> rusqlite::Result<Patient> {
    Ok(Patient {
        id: r.get(0)?,
        name_kanji: r.get(1)?,
        name_kana: r.get(2)?,
        birth_date: r.get(3)?,
        sex: r.get(4)?,
        created_at: r.get(5)?,
    })
}

fn role_from(r: &Row<'_>) -> rusqlite::Result<Role> {
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
    pub(crate) fn new(conn: &'c Connection) -> Self {
        Self { conn }
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
        Ok(st.query_map([], role_from)?.collect::<Result<_, _>>()?)
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
        Ok(st
            .query_map([], |r| {
                Ok(RecordKind {
                    code: r.get(0)?,
                    name_ja: r.get(1)?,
                    name_en: r.get(2)?,
                    retention_years: r.get(3)?,
                })
            })?
            .collect::<Result<_, _>>()?)
    }

    pub fn kind(&self, code: &str) -> Result<Option<RecordKind>, StoreError> {
        Ok(self.kinds()?.into_iter().find(|k| k.code == code))
    }

    pub fn account(&self, id: i64) -> Result<Option<Account>, StoreError> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = ?1");
        Ok(self
            .conn
            .prepare_cached(&sql)?
            .query_row([id], account_from)
            .optional()?)
    }

    pub fn account_by_login(&self, login: &str) -> Result<Option<Account>, StoreError> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE login = ?1");
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
            .query_map([], account_from)?
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
            "SELECT account_id, is_api_token, name, csrf, created_at, last_seen_at, expires_at, revoked_at
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
                })
            })
            .optional()?)
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
            .query_row("SELECT COALESCE(MAX(idx) + 1, 0) FROM ledger", [], |r| {
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
        let rows = st.query_map([], |r| {
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
    pub fn for_each_ledger_row(
        &self,
        mut f: impl FnMut(LedgerRow) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let sql = format!("SELECT {ROW_COLUMNS} FROM ledger ORDER BY idx");
        let mut st = self.conn.prepare(&sql)?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            f(row_from(r)?)?;
        }
        Ok(())
    }

    /// Streams stored Merkle hashes in stored-index order.
    pub fn for_each_stored_hash(
        &self,
        mut f: impl FnMut(i64, &[u8]) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT id, hash FROM ledger_hashes ORDER BY id")?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let id: i64 = r.get(0)?;
            let h = r.get_ref(1)?.as_blob().map_err(rusqlite::Error::from)?;
            f(id, h)?;
        }
        Ok(())
    }

    pub fn for_each_version(
        &self,
        mut f: impl FnMut(VersionRow) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let sql = format!("SELECT {VERSION_COLUMNS} FROM versions ORDER BY record_id, version_no");
        let mut st = self.conn.prepare(&sql)?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            f(version_from(r)?)?;
        }
        Ok(())
    }

    pub fn blob_ids(&self) -> Result<Vec<String>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT sha256 FROM blobs ORDER BY sha256")?;
        Ok(st.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?)
    }

    pub fn audit_events(&self, f: &AuditFilter) -> Result<Vec<LedgerRow>, StoreError> {
        let mut sql = format!("SELECT {ROW_COLUMNS} FROM ledger WHERE 1 = 1");
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        if let Some(p) = &f.patient {
            sql.push_str(" AND patient_id = ?");
            args.push(p.clone().into());
        }
        if let Some(a) = f.actor {
            sql.push_str(" AND actor_id = ?");
            args.push(a.into());
        }
        if let Some(p) = &f.action_prefix {
            sql.push_str(" AND action LIKE ? ESCAPE '\\'");
            args.push(like_prefix(p).into());
        }
        if let Some(t) = f.from {
            sql.push_str(" AND ts >= ?");
            args.push(t.into());
        }
        if let Some(t) = f.to {
            sql.push_str(" AND ts < ?");
            args.push(t.into());
        }
        if let Some(b) = f.before_idx {
            sql.push_str(" AND idx < ?");
            args.push(b.into());
        }
        sql.push_str(" ORDER BY idx DESC LIMIT ?");
        args.push(i64::from(f.limit.clamp(1, 10_000)).into());
        let mut st = self.conn.prepare_cached(&sql)?;
        Ok(st
            .query_map(params_from_iter(args), row_from)?
            .collect::<Result<_, _>>()?)
    }

    /// Chart openings per patient (and per staff member) in [from, to): whole JST days come
    /// from the daily counts, partial days at either edge from the ledger itself.
    pub fn access_counts(
        &self,
        from: Millis,
        to: Millis,
        patient: Option<&str>,
    ) -> Result<Vec<AccessCount>, StoreError> {
        let mut acc: BTreeMap<String, BTreeMap<i64, i64>> = BTreeMap::new();
        if to <= from {
            return Ok(Vec::new());
        }
        let first_full = if day_start(day_of(from)) == from {
            day_of(from)
        } else {
            day_of(from) + 1
        };
        let last_excl = day_of(to);
        let mut edges = Vec::new();
        if first_full < last_excl {
            let mut st = self.conn.prepare_cached(
                "SELECT patient_id, actor_id, SUM(n) FROM access_counts
                 WHERE day >= ?1 AND day < ?2 AND (?3 IS NULL OR patient_id = ?3) GROUP BY patient_id, actor_id",
            )?;
            let rows = st.query_map(params![first_full, last_excl, patient], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })?;
            for row in rows {
                let (p, a, n) = row?;
                *acc.entry(p).or_default().entry(a).or_default() += n;
            }
            edges.push((from, day_start(first_full)));
            edges.push((day_start(last_excl), to));
        } else {
            edges.push((from, to));
        }
        let placeholders = vec!["?"; CHART_ACCESS.len()].join(", ");
        let sql = format!(
            "SELECT patient_id, actor_id, COUNT(*) FROM ledger
             WHERE ts >= ? AND ts < ? AND patient_id IS NOT NULL AND outcome = 'ok' AND action IN ({placeholders})
               AND (? IS NULL OR patient_id = ?)
             GROUP BY patient_id, actor_id"
        );
        let mut st = self.conn.prepare_cached(&sql)?;
        for (a, b) in edges {
            if b <= a {
                continue;
            }
            let mut args: Vec<rusqlite::types::Value> = vec![a.into(), b.into()];
            args.extend(
                CHART_ACCESS
                    .iter()
                    .map(|s| rusqlite::types::Value::from(s.to_string())),
            );
            let p: rusqlite::types::Value = patient.map(str::to_owned).into();
            args.push(p.clone());
            args.push(p);
            let rows = st.query_map(params_from_iter(args), |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<i64>>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })?;
            for row in rows {
                let (p, a, n) = row?;
                *acc.entry(p).or_default().entry(a.unwrap_or(0)).or_default() += n;
            }
        }
        let mut out: Vec<AccessCount> = acc
            .into_iter()
            .map(|(patient_id, by)| {
                let total = by.values().sum();
                let mut by_actor: Vec<(i64, i64)> = by.into_iter().collect();
                by_actor.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(&y.0)));
                AccessCount {
                    patient_id,
                    total,
                    by_actor,
                }
            })
            .collect();
        out.sort_by(|x, y| {
            y.total
                .cmp(&x.total)
                .then_with(|| x.patient_id.cmp(&y.patient_id))
        });
        Ok(out)
    }
}

/// A read-only view of an instance that starts no writer (for `verify` and offline tools).
pub struct ReadOnly {
    conn: Connection,
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
        Ok(Self { conn })
    }

    pub fn get(&self) -> Reader<'_> {
        Reader::new(&self.conn)
    }
}

/// Walks the stored Merkle hashes in order, a chunk at a time.
pub struct HashCursor<'c> {
    conn: &'c Connection,
    next_id: i64,
    buf: std::collections::VecDeque<(i64, Vec<u8>)>,
    done: bool,
}

impl HashCursor<'_> {
    pub fn next_hash(&mut self) -> Result<Option<(i64, Vec<u8>)>, StoreError> {
        if self.buf.is_empty() && !self.done {
            let mut st = self.conn.prepare_cached(
                "SELECT id, hash FROM ledger_hashes WHERE id >= ?1 ORDER BY id LIMIT 8192",
            )?;
            let rows = st.query_map([self.next_id], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
            })?;
            for row in rows {
                self.buf.push_back(row?);
            }
            match self.buf.back() {
                Some((id, _)) => self.next_id = id + 1,
                None => self.done = true,
            }
        }
        Ok(self.buf.pop_front())
    }
}

impl<'c> Reader<'c> {
    pub fn hash_cursor(&self) -> HashCursor<'c> {
        HashCursor {
            conn: self.conn,
            next_id: 0,
            buf: Default::default(),
            done: false,
        }
    }
}
