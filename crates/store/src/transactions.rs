//! Rows of the transaction-document pillar (電子帳簿保存法): documents with their current
//! search fields, every version, and each file's time-stamp; the search by date range, amount
//! range and counterparty, alone or combined, on the indexes.

use crate::sql::{OptionalExtension, Row, ToValue, params};
use mamori_domain::Millis;
use serde::Serialize;

use crate::{Reader, StoreError, WriteTx};

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TxDocumentRow {
    pub id: i64,
    pub current_version: i64,
    pub doc_type: String,
    pub direction: String,
    pub transaction_date: Option<String>,
    pub amount: Option<i64>,
    pub counterparty: Option<String>,
    pub registration_number: Option<String>,
    pub document_number: Option<String>,
    pub received_on: Option<String>,
    pub file_sha256: String,
    pub status: String,
    pub retention_until: String,
    pub stamp_due: Option<String>,
    pub registered_at: Millis,
    pub registered_by: Option<i64>,
    pub updated_at: Millis,
    pub stamp_attempts: i64,
    pub stamp_next_at: Option<Millis>,
    pub stamp_error: Option<String>,
}

const DOC_COLUMNS: &str = "id, current_version, doc_type, direction, transaction_date, amount, counterparty, registration_number, document_number, received_on, file_sha256, status, retention_until, stamp_due, registered_at, registered_by, updated_at, stamp_attempts, stamp_next_at, stamp_error";

fn doc_row(r: &Row<'_>) -> crate::sql::Result<TxDocumentRow> {
    Ok(TxDocumentRow {
        id: r.get(0)?,
        current_version: r.get(1)?,
        doc_type: r.get(2)?,
        direction: r.get(3)?,
        transaction_date: r.get(4)?,
        amount: r.get(5)?,
        counterparty: r.get(6)?,
        registration_number: r.get(7)?,
        document_number: r.get(8)?,
        received_on: r.get(9)?,
        file_sha256: r.get(10)?,
        status: r.get(11)?,
        retention_until: r.get(12)?,
        stamp_due: r.get(13)?,
        registered_at: r.get(14)?,
        registered_by: r.get(15)?,
        updated_at: r.get(16)?,
        stamp_attempts: r.get(17)?,
        stamp_next_at: r.get(18)?,
        stamp_error: r.get(19)?,
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct TxVersionRow {
    pub document_id: i64,
    pub version_no: i64,
    /// The `DocumentFields` as JSON.
    pub fields: String,
    pub file_sha256: String,
    pub file_name: String,
    pub media_type: String,
    /// `registered`, `corrected` or `cancelled`.
    pub change: String,
    pub reason: Option<String>,
    pub entered_by: Option<i64>,
    pub entered_at: Millis,
}

#[derive(Debug, Clone, Serialize)]
pub struct TxStampRow {
    pub document_id: i64,
    pub file_sha256: String,
    #[serde(skip)]
    pub token: Vec<u8>,
    pub gen_time: Millis,
    pub tsa: String,
    pub development: bool,
    pub stamped_at: Millis,
}

/// One document as the self-assessment looks at it: its search fields, deadline, the current
/// file's stamp, and its current fields (JSON) for the インボイス checks.
#[derive(Debug, Clone)]
pub struct TxFact {
    pub id: i64,
    pub current_version: i64,
    pub status: String,
    pub direction: String,
    pub transaction_date: Option<String>,
    pub amount: Option<i64>,
    pub counterparty: Option<String>,
    pub stamp_due: Option<String>,
    pub registered_at: Millis,
    pub stamp_gen_time: Option<Millis>,
    pub stamp_development: Option<bool>,
    /// The time-stamp token (for the accreditation of its TSA).
    pub stamp_token: Option<Vec<u8>>,
    pub fields: String,
}

/// What is written for a new document or version: the search columns (derived from the
/// fields by the service) and the version itself.
#[derive(Debug, Clone)]
pub struct TxWrite<'a> {
    pub doc_type: &'a str,
    pub direction: &'a str,
    pub transaction_date: Option<&'a str>,
    pub amount: Option<i64>,
    pub counterparty: Option<&'a str>,
    pub counterparty_key: Option<&'a str>,
    pub registration_number: Option<&'a str>,
    pub document_number: Option<&'a str>,
    pub received_on: Option<&'a str>,
    pub retention_until: &'a str,
    pub stamp_due: Option<&'a str>,
    pub fields_json: &'a str,
    pub file_sha256: &'a str,
    pub file_name: &'a str,
    pub media_type: &'a str,
}

/// The search (電子帳簿保存法施行規則 4条1項 / 2条6項6号): any of the ranges and the
/// counterparty, alone or together; `missing` finds documents where a field is empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TxQuery {
    pub date_from: Option<String>,
    pub date_to: Option<String>,
    pub amount_min: Option<i64>,
    pub amount_max: Option<i64>,
    /// Contained in the counterparty's search key (or equal to its registration number).
    pub counterparty_key: Option<String>,
    pub doc_type: Option<String>,
    pub direction: Option<String>,
    /// `transaction_date`, `amount` or `counterparty`: only documents where it is empty.
    pub missing: Vec<String>,
    pub include_cancelled: bool,
    pub limit: u32,
    pub offset: u32,
}

fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

impl Reader<'_> {
    pub fn tx_document(&self, id: i64) -> Result<Option<TxDocumentRow>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(&format!(
                "SELECT {DOC_COLUMNS} FROM tx_documents WHERE id = ?1"
            ))?
            .query_row([id], doc_row)
            .optional()?)
    }

    pub fn tx_versions(&self, id: i64) -> Result<Vec<TxVersionRow>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT document_id, version_no, fields, file_sha256, file_name, media_type, change, reason, entered_by, entered_at
             FROM tx_versions WHERE document_id = ?1 ORDER BY version_no",
        )?;
        Ok(st
            .query_map([id], |r| {
                Ok(TxVersionRow {
                    document_id: r.get(0)?,
                    version_no: r.get(1)?,
                    fields: r.get(2)?,
                    file_sha256: r.get(3)?,
                    file_name: r.get(4)?,
                    media_type: r.get(5)?,
                    change: r.get(6)?,
                    reason: r.get(7)?,
                    entered_by: r.get(8)?,
                    entered_at: r.get(9)?,
                })
            })?
            .collect::<Result<_, _>>()?)
    }

    pub fn tx_stamps(&self, id: i64) -> Result<Vec<TxStampRow>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT document_id, file_sha256, token, gen_time, tsa, development, stamped_at
             FROM tx_stamps WHERE document_id = ?1 ORDER BY gen_time",
        )?;
        Ok(st
            .query_map([id], |r| {
                Ok(TxStampRow {
                    document_id: r.get(0)?,
                    file_sha256: r.get(1)?,
                    token: r.get(2)?,
                    gen_time: r.get(3)?,
                    tsa: r.get(4)?,
                    development: r.get(5)?,
                    stamped_at: r.get(6)?,
                })
            })?
            .collect::<Result<_, _>>()?)
    }

    /// Active documents holding this file (a second registration of the same bytes).
    pub fn tx_documents_with_file(&self, sha256: &str) -> Result<Vec<i64>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT id FROM tx_documents WHERE file_sha256 = ?1 AND status = 'active' ORDER BY id",
        )?;
        Ok(st
            .query_map([sha256], |r| r.get(0))?
            .collect::<Result<_, _>>()?)
    }

    /// An active document with the same counterparty, document number and date.
    pub fn tx_same_document(
        &self,
        counterparty_key: &str,
        document_number: &str,
        transaction_date: Option<&str>,
    ) -> Result<Option<i64>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT id FROM tx_documents WHERE counterparty_key = ?1 AND document_number = ?2
                 AND COALESCE(transaction_date, '') = COALESCE(?3, '') AND status = 'active'
                 ORDER BY id LIMIT 1",
            )?
            .query_row(
                params![counterparty_key, document_number, transaction_date],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Documents whose time-stamp should be tried again by now.
    pub fn tx_stamps_due(&self, now: Millis, limit: u32) -> Result<Vec<TxDocumentRow>, StoreError> {
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT {DOC_COLUMNS} FROM tx_documents WHERE stamp_next_at IS NOT NULL AND stamp_next_at <= ?1 ORDER BY stamp_next_at LIMIT ?2"
        ))?;
        Ok(st
            .query_map(params![now, i64::from(limit)], doc_row)?
            .collect::<Result<_, _>>()?)
    }

    /// Counts for the status and the assessment: documents, those awaiting a stamp, those
    /// stamped by a development TSA.
    pub fn tx_counts(&self) -> Result<(i64, i64, i64), StoreError> {
        Ok(self.conn.query_row(
            "SELECT (SELECT COUNT(*) FROM tx_documents),
                    (SELECT COUNT(*) FROM tx_documents WHERE stamp_next_at IS NOT NULL),
                    (SELECT COUNT(*) FROM tx_stamps WHERE development = 1)",
            (),
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?)
    }

    /// Every document with what the self-assessment needs, in one query.
    pub fn tx_facts(&self) -> Result<Vec<TxFact>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT d.id, d.current_version, d.status, d.direction, d.transaction_date, d.amount, d.counterparty,
                    d.stamp_due, d.registered_at, s.gen_time, s.development, v.fields, s.token
             FROM tx_documents d
             JOIN tx_versions v ON v.document_id = d.id AND v.version_no = d.current_version
             LEFT JOIN tx_stamps s ON s.document_id = d.id AND s.file_sha256 = d.file_sha256
             ORDER BY d.id",
        )?;
        Ok(st
            .query_map((), |r| {
                Ok(TxFact {
                    id: r.get(0)?,
                    current_version: r.get(1)?,
                    status: r.get(2)?,
                    direction: r.get(3)?,
                    transaction_date: r.get(4)?,
                    amount: r.get(5)?,
                    counterparty: r.get(6)?,
                    stamp_due: r.get(7)?,
                    registered_at: r.get(8)?,
                    stamp_gen_time: r.get(9)?,
                    stamp_development: r.get(10)?,
                    fields: r.get(11)?,
                    stamp_token: r.get(12)?,
                })
            })?
            .collect::<Result<_, _>>()?)
    }

    /// The search; ordered by transaction date (empty last), then ID.
    pub fn tx_search(&self, q: &TxQuery) -> Result<Vec<TxDocumentRow>, StoreError> {
        let mut clauses: Vec<String> = Vec::new();
        let mut values: Vec<Box<dyn ToValue>> = Vec::new();
        let mut bind = |clause: &str, v: Box<dyn ToValue>, clauses: &mut Vec<String>| {
            values.push(v);
            clauses.push(clause.replace('?', &format!("?{}", values.len())));
        };
        if let Some(d) = &q.date_from {
            bind("transaction_date >= ?", Box::new(d.clone()), &mut clauses);
        }
        if let Some(d) = &q.date_to {
            bind("transaction_date <= ?", Box::new(d.clone()), &mut clauses);
        }
        if let Some(a) = q.amount_min {
            bind("amount >= ?", Box::new(a), &mut clauses);
        }
        if let Some(a) = q.amount_max {
            bind("amount <= ?", Box::new(a), &mut clauses);
        }
        if let Some(k) = q.counterparty_key.as_ref().filter(|k| !k.is_empty()) {
            bind(
                "counterparty_key LIKE ? ESCAPE '\\'",
                Box::new(format!("%{}%", like_escape(k))),
                &mut clauses,
            );
        }
        if let Some(t) = &q.doc_type {
            bind("doc_type = ?", Box::new(t.clone()), &mut clauses);
        }
        if let Some(d) = &q.direction {
            bind("direction = ?", Box::new(d.clone()), &mut clauses);
        }
        for m in &q.missing {
            let col = match m.as_str() {
                "transaction_date" => "transaction_date",
                "amount" => "amount",
                "counterparty" => "counterparty",
                other => {
                    return Err(StoreError::Schema(format!("no such search field {other}")));
                }
            };
            clauses.push(format!("{col} IS NULL"));
        }
        if !q.include_cancelled {
            clauses.push("status = 'active'".into());
        }
        let filter = if clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", clauses.join(" AND "))
        };
        let limit = if q.limit == 0 {
            200
        } else {
            q.limit.min(10_000)
        };
        let sql = format!(
            "SELECT {DOC_COLUMNS} FROM tx_documents {filter}
             ORDER BY transaction_date IS NULL, transaction_date, id LIMIT {limit} OFFSET {}",
            q.offset
        );
        let refs: Vec<&dyn ToValue> = values.iter().map(|v| v.as_ref()).collect();
        let mut st = self.conn.prepare(&sql)?;
        Ok(st
            .query_map(refs.as_slice(), doc_row)?
            .collect::<Result<_, _>>()?)
    }
}

impl Reader<'_> {
    pub fn registry_entry(
        &self,
        number: &str,
    ) -> Result<Option<mamori_domain::bookkeeping::registry::RegistryEntry>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT registration_number, kind, name, registered_on, cancelled_on, lapsed_on
                 FROM invoice_registry WHERE registration_number = ?1",
            )?
            .query_row([number], registry_row)
            .optional()?)
    }

    /// The digest of the whole registry (as the import computed it) and its row count.
    pub fn registry_digest(&self) -> Result<(String, u64), StoreError> {
        let mut st = self.conn.prepare(
            "SELECT registration_number, kind, name, registered_on, cancelled_on, lapsed_on
             FROM invoice_registry ORDER BY registration_number",
        )?;
        let mut rows = st.query(())?;
        let mut all = Vec::new();
        while let Some(r) = rows.next()? {
            all.push(registry_row(&r)?);
        }
        Ok((
            mamori_domain::bookkeeping::registry::digest(all.iter()),
            all.len() as u64,
        ))
    }
}

fn registry_row(
    r: &Row<'_>,
) -> crate::sql::Result<mamori_domain::bookkeeping::registry::RegistryEntry> {
    Ok(mamori_domain::bookkeeping::registry::RegistryEntry {
        number: r.get(0)?,
        kind: r.get(1)?,
        name: r.get(2)?,
        registered_on: r.get(3)?,
        cancelled_on: r.get(4)?,
        lapsed_on: r.get(5)?,
    })
}

impl WriteTx<'_> {
    /// Applies an import of the 公表サイト data (new and changed numbers, removals).
    pub fn apply_registry(
        &mut self,
        changes: &[mamori_domain::bookkeeping::registry::RegistryChange],
    ) -> Result<(usize, usize), StoreError> {
        use mamori_domain::bookkeeping::registry::RegistryChange;
        let (mut upserted, mut removed) = (0, 0);
        for c in changes {
            match c {
                RegistryChange::Upsert(e) => {
                    self.conn.execute(
                        "INSERT INTO invoice_registry (registration_number, kind, name, registered_on, cancelled_on, lapsed_on)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                         ON CONFLICT (registration_number) DO UPDATE SET kind = excluded.kind, name = excluded.name,
                         registered_on = excluded.registered_on, cancelled_on = excluded.cancelled_on, lapsed_on = excluded.lapsed_on",
                        params![e.number, e.kind, e.name, e.registered_on, e.cancelled_on, e.lapsed_on],
                    )?;
                    upserted += 1;
                }
                RegistryChange::Remove(n) => {
                    removed += self.conn.execute(
                        "DELETE FROM invoice_registry WHERE registration_number = ?1",
                        [n],
                    )?;
                }
            }
        }
        Ok((upserted, removed))
    }

    /// A new document with its first version; returns its ID.
    pub fn insert_tx_document(
        &mut self,
        w: &TxWrite<'_>,
        by: Option<i64>,
        now: Millis,
    ) -> Result<i64, StoreError> {
        let id: i64 = self.conn.query_row(
            "INSERT INTO tx_documents (current_version, doc_type, direction, transaction_date, amount, counterparty, counterparty_key, registration_number, document_number, received_on, file_sha256, status, retention_until, stamp_due, registered_at, registered_by, updated_at)
             VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'active', ?11, ?12, ?13, ?14, ?13) RETURNING id",
            params![
                w.doc_type,
                w.direction,
                w.transaction_date,
                w.amount,
                w.counterparty,
                w.counterparty_key,
                w.registration_number,
                w.document_number,
                w.received_on,
                w.file_sha256,
                w.retention_until,
                w.stamp_due,
                now,
                by
            ],
            |r| r.get(0),
        )?;
        self.insert_tx_version(id, 1, w, "registered", None, by, now)?;
        Ok(id)
    }

    #[allow(clippy::too_many_arguments)]
    fn insert_tx_version(
        &mut self,
        id: i64,
        version_no: i64,
        w: &TxWrite<'_>,
        change: &str,
        reason: Option<&str>,
        by: Option<i64>,
        now: Millis,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO tx_versions (document_id, version_no, fields, file_sha256, file_name, media_type, change, reason, entered_by, entered_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                id,
                version_no,
                w.fields_json,
                w.file_sha256,
                w.file_name,
                w.media_type,
                change,
                reason,
                by,
                now
            ],
        )?;
        Ok(())
    }

    /// A new version (`corrected` or `cancelled`) replacing the current one, only if the
    /// current one is still `expected_version`; returns the new version's number, or None when
    /// someone else changed the document first.
    #[allow(clippy::too_many_arguments)]
    pub fn add_tx_version(
        &mut self,
        id: i64,
        expected_version: i64,
        w: &TxWrite<'_>,
        change: &str,
        reason: &str,
        by: Option<i64>,
        now: Millis,
    ) -> Result<Option<i64>, StoreError> {
        let status = if change == "cancelled" {
            "cancelled"
        } else {
            "active"
        };
        let n = self.conn.execute(
            "UPDATE tx_documents SET current_version = current_version + 1, doc_type = ?3, direction = ?4,
             transaction_date = ?5, amount = ?6, counterparty = ?7, counterparty_key = ?8,
             registration_number = ?9, document_number = ?10, received_on = ?11, file_sha256 = ?12,
             status = ?13, retention_until = ?14, stamp_due = ?15, updated_at = ?16
             WHERE id = ?1 AND current_version = ?2 AND status = 'active'",
            params![
                id,
                expected_version,
                w.doc_type,
                w.direction,
                w.transaction_date,
                w.amount,
                w.counterparty,
                w.counterparty_key,
                w.registration_number,
                w.document_number,
                w.received_on,
                w.file_sha256,
                status,
                w.retention_until,
                w.stamp_due,
                now
            ],
        )?;
        if n != 1 {
            return Ok(None);
        }
        let next = expected_version + 1;
        self.insert_tx_version(id, next, w, change, Some(reason), by, now)?;
        Ok(Some(next))
    }

    pub fn insert_tx_stamp(&mut self, s: &TxStampRow) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO tx_stamps (document_id, file_sha256, token, gen_time, tsa, development, stamped_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING",
            params![
                s.document_id,
                s.file_sha256,
                s.token,
                s.gen_time,
                s.tsa,
                s.development,
                s.stamped_at
            ],
        )?;
        self.conn.execute(
            "UPDATE tx_documents SET stamp_next_at = NULL, stamp_error = NULL WHERE id = ?1 AND file_sha256 = ?2",
            params![s.document_id, s.file_sha256],
        )?;
        Ok(())
    }

    /// A stamp attempt failed: when to try again (None: give up until someone asks).
    pub fn note_tx_stamp_failure(
        &mut self,
        id: i64,
        error: &str,
        next: Option<Millis>,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE tx_documents SET stamp_attempts = stamp_attempts + 1, stamp_error = ?2, stamp_next_at = ?3 WHERE id = ?1",
            params![id, error, next],
        )?;
        Ok(())
    }

    /// A document whose stamp is due (a new document, or a correction with a new file).
    pub fn tx_stamp_wanted(&mut self, id: i64, at: Millis) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE tx_documents SET stamp_next_at = ?2, stamp_attempts = 0, stamp_error = NULL WHERE id = ?1",
            params![id, at],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Store, StoreOptions};

    /// Defence in depth behind `verify`: not even the application can rewrite or remove a
    /// version, a stamp or a document.
    #[test]
    fn history_cannot_be_rewritten_or_removed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        store
            .write_blocking(|tx| -> Result<(), StoreError> {
                let sha = "ab".repeat(32);
                tx.insert_blob(&sha, 1, "application/pdf", 0)?;
                let w = TxWrite {
                    doc_type: "invoice",
                    direction: "received",
                    transaction_date: Some("2026-11-30"),
                    amount: Some(1),
                    counterparty: None,
                    counterparty_key: None,
                    registration_number: None,
                    document_number: None,
                    received_on: None,
                    retention_until: "2037-03-31",
                    stamp_due: None,
                    fields_json: "{}",
                    file_sha256: &sha,
                    file_name: "a.pdf",
                    media_type: "application/pdf",
                };
                let id = tx.insert_tx_document(&w, None, 1)?;
                tx.insert_tx_stamp(&TxStampRow {
                    document_id: id,
                    file_sha256: sha.clone(),
                    token: vec![1],
                    gen_time: 1,
                    tsa: "t".into(),
                    development: true,
                    stamped_at: 1,
                })?;
                Ok(())
            })
            .unwrap();
        for sql in [
            "UPDATE tx_versions SET reason = 'x'",
            "DELETE FROM tx_versions",
            "DELETE FROM tx_documents",
            "UPDATE tx_stamps SET gen_time = 2",
            "DELETE FROM tx_stamps",
        ] {
            let r = store.write_blocking(move |tx| -> Result<usize, StoreError> {
                Ok(tx.conn.execute(sql, ())?)
            });
            assert!(r.is_err(), "{sql} was allowed");
        }
        store.close();
    }
}
