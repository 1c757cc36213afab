use mamori_domain::Millis;
use mamori_domain::audit::{AuditEvent, actions};
use mamori_ledger::{Frontier, Hash, HashReader, stored_index};
use rusqlite::{Connection, OptionalExtension, params};

use crate::StoreError;

/// JST (UTC+9) calendar day number: clinics count accesses by their local day.
pub fn day_of(ts: Millis) -> i64 {
    (ts + 9 * 3_600_000).div_euclid(86_400_000)
}

/// First millisecond (UTC) of a JST day number.
pub fn day_start(day: i64) -> Millis {
    day * 86_400_000 - 9 * 3_600_000
}

/// Events that count as opening a patient's chart.
pub const CHART_ACCESS: [&str; 7] = [
    actions::PATIENT_READ,
    actions::RECORD_LIST,
    actions::RECORD_READ,
    actions::RECORD_HISTORY,
    actions::RECORD_DIFF,
    actions::RECORD_EXPORT,
    actions::ATTACHMENT_READ,
];

#[derive(Debug, Clone, serde::Serialize)]
pub struct LedgerRow {
    pub idx: i64,
    pub ts: Millis,
    pub actor_id: Option<i64>,
    pub action: String,
    pub outcome: String,
    pub patient_id: Option<String>,
    pub record_id: Option<i64>,
    #[serde(skip)]
    pub payload: Vec<u8>,
}

/// Stored Merkle hashes read from the database.
pub struct LedgerHashes<'c>(pub &'c Connection);

impl HashReader for LedgerHashes<'_> {
    type Error = String;
    fn stored(&self, i: u64) -> Result<Hash, String> {
        let mut st = self
            .0
            .prepare_cached("SELECT hash FROM ledger_hashes WHERE id = ?1")
            .map_err(|e| e.to_string())?;
        let v: Option<Vec<u8>> = st
            .query_row([i as i64], |r| r.get(0))
            .optional()
            .map_err(|e| e.to_string())?;
        v.and_then(|b| b.try_into().ok())
            .ok_or_else(|| format!("stored hash {i} is missing"))
    }
}

pub(crate) fn load_frontier(conn: &Connection) -> Result<Frontier, StoreError> {
    let size: i64 = conn.query_row("SELECT COALESCE(MAX(idx) + 1, 0) FROM ledger", [], |r| {
        r.get(0)
    })?;
    let hashes: i64 = conn.query_row(
        "SELECT COALESCE(MAX(id) + 1, 0) FROM ledger_hashes",
        [],
        |r| r.get(0),
    )?;
    let expect = mamori_ledger::stored_hash_count(size as u64) as i64;
    if hashes != expect {
        return Err(StoreError::Corrupt(format!(
            "the ledger has {size} entries but {hashes} stored hashes (expected {expect}); run `mamori verify`"
        )));
    }
    Frontier::load(&LedgerHashes(conn), size as u64).map_err(StoreError::Corrupt)
}

pub(crate) fn append(
    conn: &Connection,
    frontier: &mut Frontier,
    ev: &AuditEvent,
) -> Result<u64, StoreError> {
    let payload = ev.to_bytes();
    let idx = frontier.size();
    conn.prepare_cached(
        "INSERT INTO ledger (idx, ts, actor_id, action, outcome, patient_id, record_id, payload)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        idx as i64,
        ev.ts,
        ev.actor.as_ref().map(|a| a.id),
        ev.action,
        ev.outcome.as_str(),
        ev.patient,
        ev.record,
        payload
    ])?;
    let mut ins = conn.prepare_cached("INSERT INTO ledger_hashes (id, hash) VALUES (?1, ?2)")?;
    for s in frontier.append(&payload) {
        ins.execute(params![stored_index(s.level, s.index) as i64, &s.hash[..]])?;
    }
    if let (Some(p), Some(a), mamori_domain::audit::Outcome::Ok) =
        (&ev.patient, &ev.actor, ev.outcome)
    {
        if CHART_ACCESS.contains(&ev.action.as_str()) {
            conn.prepare_cached(
                "INSERT INTO access_counts (day, patient_id, actor_id, n) VALUES (?1, ?2, ?3, 1)
                 ON CONFLICT (day, patient_id, actor_id) DO UPDATE SET n = n + 1",
            )?
            .execute(params![day_of(ev.ts), p, a.id])?;
        }
    }
    Ok(idx)
}

pub(crate) fn row_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<LedgerRow> {
    Ok(LedgerRow {
        idx: r.get(0)?,
        ts: r.get(1)?,
        actor_id: r.get(2)?,
        action: r.get(3)?,
        outcome: r.get(4)?,
        patient_id: r.get(5)?,
        record_id: r.get(6)?,
        payload: r.get(7)?,
    })
}

pub(crate) const ROW_COLUMNS: &str =
    "idx, ts, actor_id, action, outcome, patient_id, record_id, payload";
