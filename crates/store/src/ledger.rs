use crate::sql::{Conn, OptionalExtension, params};
use mamori_domain::Millis;
use mamori_domain::audit::{AuditEvent, actions};
use mamori_ledger::{Frontier, Hash, HashReader, completing_leaf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

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

pub fn is_chart_access(action: &str, outcome: &str) -> bool {
    outcome == "ok" && CHART_ACCESS.contains(&action)
}

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
    #[serde(skip)]
    pub hashes: Vec<u8>,
}

/// What the writer keeps in memory about the ledger.
#[derive(Debug, Clone)]
pub(crate) struct LedgerState {
    pub frontier: Frontier,
    /// Time of the newest entry: later entries never go back in time, so the ledger is also
    /// ordered by time and a time range is an index range.
    pub last_ts: Millis,
    /// First entry not yet in the query indexes.
    pub indexed_upto: u64,
    /// The connection's durability setting, restored after index transactions.
    pub sync_pragma: &'static str,
    /// Set while the clock is not trusted: every entry appended meanwhile says so.
    pub clock_unsynchronised: Arc<AtomicBool>,
}

/// Stored Merkle hashes, read from the row of the entry that completed each subtree.
pub struct LedgerHashes<'c>(pub Conn<'c>);

impl HashReader for LedgerHashes<'_> {
    type Error = String;
    fn stored(&self, level: u8, index: u64) -> Result<Hash, String> {
        let leaf = completing_leaf(level, index);
        let mut st = self
            .0
            .prepare_cached("SELECT hashes FROM ledger WHERE idx = ?1")
            .map_err(|e| e.to_string())?;
        let blob: Option<Vec<u8>> = st
            .query_row([leaf as i64], |r| r.get(0))
            .optional()
            .map_err(|e| e.to_string())?;
        let at = level as usize * 32;
        blob.and_then(|b| b.get(at..at + 32).and_then(|s| s.try_into().ok()))
            .ok_or_else(|| format!("the hash of subtree {level}/{index} (entry {leaf}) is missing"))
    }
}

pub(crate) fn load_state(conn: Conn<'_>) -> Result<LedgerState, StoreError> {
    let (size, last_ts): (i64, Option<i64>) = conn.query_row(
        "SELECT COALESCE(MAX(idx) + 1, 0), MAX(ts) FROM ledger",
        (),
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let frontier = Frontier::load(&LedgerHashes(conn), size as u64).map_err(|e| {
        StoreError::Corrupt(format!(
            "cannot rebuild the ledger's tree edge ({e}); run `mamori verify`"
        ))
    })?;
    let indexed_upto = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'indexed_upto'",
            (),
            |r| r.get::<_, String>(0),
        )
        .optional()?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Ok(LedgerState {
        frontier,
        last_ts: last_ts.unwrap_or(i64::MIN),
        indexed_upto,
        sync_pragma: "FULL",
        clock_unsynchronised: Arc::new(AtomicBool::new(false)),
    })
}

/// Appends one event. Its time is raised to the previous entry's if the clock went back.
pub(crate) fn append(
    conn: Conn<'_>,
    state: &mut LedgerState,
    ev: &AuditEvent,
) -> Result<u64, StoreError> {
    let unsynchronised = state.clock_unsynchronised.load(Ordering::Relaxed);
    // The rows changed since the previous entry go into this one, with their new values.
    let changes = crate::state::take_changes(conn)?;
    let adjusted;
    let ev = if ev.ts < state.last_ts || unsynchronised || changes.is_some() {
        let mut e = AuditEvent {
            ts: ev.ts.max(state.last_ts),
            ..ev.clone()
        };
        if let Some(c) = changes {
            e.state = Some(c);
        }
        if unsynchronised {
            if !e.detail.is_object() {
                e.detail = serde_json::Value::Object(Default::default());
            }
            e.detail["clock"] = "unsynchronised".into();
        }
        adjusted = e;
        &adjusted
    } else {
        ev
    };
    let payload = ev.to_bytes();
    let idx = state.frontier.size();
    let stored = state.frontier.append(&payload);
    let mut hashes = Vec::with_capacity(stored.len() * 32);
    for s in &stored {
        hashes.extend_from_slice(&s.hash);
    }
    conn.prepare_cached(
        "INSERT INTO ledger (idx, ts, actor_id, action, outcome, patient_id, record_id, payload, hashes)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        idx as i64,
        ev.ts,
        ev.actor.as_ref().map(|a| a.id),
        ev.action,
        ev.outcome.as_str(),
        ev.patient,
        ev.record,
        payload,
        hashes
    ])?;
    state.last_ts = ev.ts;
    Ok(idx)
}

/// Entries per segment of the derived indexes.
pub const SEGMENT_BITS: u32 = 14;

pub fn segment_of(idx: i64) -> i64 {
    idx >> SEGMENT_BITS
}

/// The JST day of `ts`, in SQL (the same as [`day_of`] for times after 1970).
const SQL_DAY: &str = "((ts + 32400000) / 86400000)";

/// Adds up to `limit` not-yet-indexed entries to the query indexes; returns how many.
/// Set-based, so SQLite derives the rows itself, in key order.
pub(crate) fn index_pending(
    conn: Conn<'_>,
    state: &mut LedgerState,
    limit: u64,
) -> Result<u64, StoreError> {
    let from = state.indexed_upto;
    let to = state.frontier.size().min(from.saturating_add(limit));
    if from >= to {
        return Ok(0);
    }
    let range = params![from as i64, to as i64];
    conn.prepare_cached(&format!(
        "INSERT INTO audit_by_patient (seg, patient_id, idx)
         SELECT idx >> {SEGMENT_BITS}, patient_id, idx FROM ledger
         WHERE idx >= ?1 AND idx < ?2 AND patient_id IS NOT NULL ORDER BY 1, 2, 3"
    ))?
    .execute(range)?;
    conn.prepare_cached(&format!(
        "INSERT INTO audit_by_actor (seg, actor_id, idx)
         SELECT idx >> {SEGMENT_BITS}, actor_id, idx FROM ledger
         WHERE idx >= ?1 AND idx < ?2 AND actor_id IS NOT NULL ORDER BY 1, 2, 3"
    ))?
    .execute(range)?;
    let access = CHART_ACCESS
        .iter()
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(", ");
    conn.prepare_cached(&format!(
        "INSERT INTO access_counts (day, patient_id, actor_id, n)
         SELECT {SQL_DAY}, patient_id, actor_id, COUNT(*) FROM ledger
         WHERE idx >= ?1 AND idx < ?2 AND patient_id IS NOT NULL AND actor_id IS NOT NULL
           AND outcome = 'ok' AND action IN ({access})
         GROUP BY 1, 2, 3
         ON CONFLICT (day, patient_id, actor_id) DO UPDATE SET n = access_counts.n + excluded.n"
    ))?
    .execute(range)?;
    conn.prepare_cached(
        "INSERT INTO meta (key, value) VALUES ('indexed_upto', ?1) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )?
    .execute([to.to_string()])?;
    state.indexed_upto = to;
    Ok(to - from)
}

#[cfg(test)]
#[test]
fn sql_day_matches_day_of() {
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    for ts in [
        0i64,
        1_795_482_000_000,
        1_795_449_599_999,
        1_795_449_600_000,
        1_700_000_000_123,
    ] {
        let d: i64 = conn
            .query_row(
                &format!("SELECT {}", SQL_DAY.replace("ts", &ts.to_string())),
                (),
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(d, day_of(ts), "{ts}");
    }
}

pub(crate) fn row_from(r: &crate::sql::Row<'_>) -> crate::sql::Result<LedgerRow> {
    Ok(LedgerRow {
        idx: r.get(0)?,
        ts: r.get(1)?,
        actor_id: r.get(2)?,
        action: r.get(3)?,
        outcome: r.get(4)?,
        patient_id: r.get(5)?,
        record_id: r.get(6)?,
        payload: r.get(7)?,
        hashes: r.get(8)?,
    })
}

pub(crate) const ROW_COLUMNS: &str =
    "idx, ts, actor_id, action, outcome, patient_id, record_id, payload, hashes";
