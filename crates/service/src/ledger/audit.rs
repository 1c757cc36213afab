//! The audit trail: who opened whose chart, when, and how often (JAHIS 09-001 §6.2(6)).
//! Audit queries are themselves audited.

use std::collections::HashMap;
use std::sync::Arc;

use mamori_domain::Millis;
use mamori_domain::audit::{AuditEvent, actions};
use mamori_domain::permission::Action;
use mamori_store::AuditFilter;
use serde::Serialize;

use crate::error::{Result, ServiceError};
use crate::{Principal, Service};

const JST_OFFSET_MS: i64 = 9 * 3_600_000;

pub(crate) fn jst_datetime(ms: Millis) -> time::OffsetDateTime {
    let offset = time::UtcOffset::from_hms(9, 0, 0).expect("valid offset");
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .to_offset(offset)
}

/// `2026-11-23 14:05` in Japan time.
pub fn jst(ms: Millis) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]");
    jst_datetime(ms).format(&fmt).unwrap_or_default()
}

/// What one person did between `from` and `to` (optionally on one patient), newest first, at
/// most 10,000 entries: the ledger behind a break-glass review and a maintenance report.
pub(crate) fn actor_entries(
    r: &mamori_store::Reader<'_>,
    actor: i64,
    from: Millis,
    to: Millis,
    patient: Option<String>,
) -> Result<Vec<AuditEntry>> {
    let rows = r.audit_events(&mamori_store::AuditFilter {
        patient,
        actor: Some(actor),
        from: Some(from),
        to: Some(to),
        limit: 10_000,
        ..Default::default()
    })?;
    Ok(rows.into_iter().map(entry).collect())
}

pub fn jst_date(ms: Millis) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    jst_datetime(ms).format(&fmt).unwrap_or_default()
}

/// RFC 3339 in UTC, for machine-readable output.
pub fn rfc3339(ms: Millis) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// Also accepts `YYYY-MM-DDTHH:MM` as Japan time (what a browser's datetime-local sends).
pub fn parse_local_time(s: &str) -> Option<Millis> {
    let s = s.trim();
    if s.len() == 16 && s.as_bytes().get(10) == Some(&b'T') {
        let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]");
        let t = time::PrimitiveDateTime::parse(s, &fmt).ok()?;
        return Some(t.assume_utc().unix_timestamp() * 1000 - JST_OFFSET_MS);
    }
    parse_time(s)
}

/// Accepts `YYYY-MM-DD` (a JST day start), RFC 3339, or milliseconds since the epoch.
pub fn parse_time(s: &str) -> Option<Millis> {
    if let Ok(ms) = s.parse::<i64>() {
        return Some(ms);
    }
    if s.len() == 10 {
        let fmt = time::macros::format_description!("[year]-[month]-[day]");
        let d = time::Date::parse(s, &fmt).ok()?;
        let utc_midnight = d.midnight().assume_utc().unix_timestamp() * 1000;
        return Some(utc_midnight - JST_OFFSET_MS);
    }
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as Millis)
}

#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    pub index: i64,
    pub ts: Millis,
    pub time: String,
    pub actor_id: Option<i64>,
    pub actor_login: Option<String>,
    pub actor_role: Option<String>,
    pub action: String,
    pub outcome: String,
    pub patient_id: Option<String>,
    pub record_id: Option<i64>,
    pub version: Option<i64>,
    pub client: Option<String>,
    pub detail: serde_json::Value,
    /// Outside 08:00–19:00 JST or on a weekend: worth a second look.
    pub off_hours: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ActorCount {
    pub actor_id: i64,
    pub login: String,
    pub display_name: String,
    pub count: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PatientAccessCount {
    pub patient_id: String,
    pub patient_name: Option<String>,
    pub total: i64,
    pub by_actor: Vec<ActorCount>,
}

pub fn off_hours(ms: Millis) -> bool {
    let t = jst_datetime(ms);
    let weekend = matches!(t.weekday(), time::Weekday::Saturday | time::Weekday::Sunday);
    weekend || t.hour() < 8 || t.hour() >= 19
}

pub(crate) fn entry(row: mamori_store::LedgerRow) -> AuditEntry {
    let ev: Option<AuditEvent> = serde_json::from_slice(&row.payload).ok();
    AuditEntry {
        index: row.idx,
        ts: row.ts,
        time: jst(row.ts),
        actor_id: row.actor_id,
        actor_login: ev
            .as_ref()
            .and_then(|e| e.actor.as_ref().map(|a| a.login.clone())),
        actor_role: ev
            .as_ref()
            .and_then(|e| e.actor.as_ref().map(|a| a.role.clone())),
        action: row.action,
        outcome: row.outcome,
        patient_id: row.patient_id,
        record_id: row.record_id,
        version: ev.as_ref().and_then(|e| e.version),
        client: ev.as_ref().and_then(|e| e.client.clone()),
        detail: ev.map(|e| e.detail).unwrap_or(serde_json::Value::Null),
        off_hours: off_hours(row.ts),
    }
}

impl Service {
    pub async fn audit_events(
        self: &Arc<Self>,
        p: &Principal,
        filter: AuditFilter,
    ) -> Result<Vec<AuditEntry>> {
        let pc = p.clone();
        self.read_audited(p, actions::AUDIT_QUERY, move |_, r, t| {
            t.detail("query", "events");
            if let Some(x) = &filter.patient {
                t.detail("patient", x.clone());
            }
            if let Some(x) = filter.actor {
                t.detail("actor", x);
            }
            if let Some(x) = filter.from {
                t.detail("from", x);
            }
            if let Some(x) = filter.to {
                t.detail("to", x);
            }
            pc.require(Action::ReadAudit, None)?;
            let rows = r.audit_events(&filter)?;
            t.detail("results", rows.len());
            Ok(rows.into_iter().map(entry).collect())
        })
        .await
    }

    /// How many times each patient's chart was opened in [from, to), and by whom.
    pub async fn patient_access_counts(
        self: &Arc<Self>,
        p: &Principal,
        from: Millis,
        to: Millis,
        patient: Option<String>,
    ) -> Result<Vec<PatientAccessCount>> {
        let pc = p.clone();
        self.read_audited(p, actions::AUDIT_QUERY, move |_, r, t| {
            t.detail("query", "patient_access_counts");
            t.detail("from", from);
            t.detail("to", to);
            pc.require(Action::ReadAudit, None)?;
            if to <= from {
                return Err(ServiceError::invalid(
                    "to",
                    "期間の終わりは始まりより後にしてください",
                ));
            }
            if to - from > 400 * 86_400_000 {
                return Err(ServiceError::invalid("to", "期間は400日以内にしてください"));
            }
            let counts = r.access_counts(from, to, patient.as_deref())?;
            let accounts: HashMap<i64, mamori_store::Account> =
                r.accounts()?.into_iter().map(|a| (a.id, a)).collect();
            let mut out = Vec::with_capacity(counts.len());
            for c in counts {
                let name = r.patient(&c.patient_id)?.map(|p| p.name_kanji);
                out.push(PatientAccessCount {
                    patient_id: c.patient_id,
                    patient_name: name,
                    total: c.total,
                    by_actor: c
                        .by_actor
                        .into_iter()
                        .map(|(id, count)| ActorCount {
                            actor_id: id,
                            login: accounts
                                .get(&id)
                                .map(|a| a.login.clone())
                                .unwrap_or_default(),
                            display_name: accounts
                                .get(&id)
                                .map(|a| a.display_name.clone())
                                .unwrap_or_default(),
                            count,
                        })
                        .collect(),
                });
            }
            t.detail("results", out.len());
            Ok(out)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        let t = parse_time("2026-11-23").unwrap();
        assert_eq!(jst(t), "2026-11-23 00:00");
        assert_eq!(parse_time("2026-11-23T00:00:00+09:00"), Some(t));
        assert_eq!(parse_time("nonsense"), None);
        let local = parse_local_time("2026-11-23T09:30").unwrap();
        assert_eq!(jst(local), "2026-11-23 09:30");
        assert_eq!(parse_local_time("2026-11-23"), Some(t));
        assert_eq!(parse_local_time("2026-11-23T25:00"), None);
        assert!(off_hours(parse_time("2026-11-22T10:00:00+09:00").unwrap())); // Sunday
        assert!(!off_hours(parse_time("2026-11-24T10:00:00+09:00").unwrap()));
        assert!(off_hours(parse_time("2026-11-24T22:00:00+09:00").unwrap()));
    }
}
