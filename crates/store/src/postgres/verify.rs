//! Re-derives the PostgreSQL ledger from its entries alone: every stored hash from the payloads,
//! the indexes without gaps, times in order, the query columns from the payload, and the
//! coordinator row from the result. The root it returns is the one the SQLite ledger has for
//! the same entries.

use mamori_domain::audit::AuditEvent;
use mamori_ledger::{Frontier, Hash};
use tokio_postgres::Client;

use crate::StoreError;

/// What `verify_ledger` found. `problems` is empty when the ledger is intact.
#[derive(Debug, Clone)]
pub struct LedgerCheck {
    pub size: u64,
    pub root: Hash,
    pub problems: Vec<String>,
}

/// Rows read per query: keyset pages keep memory flat however long the ledger is.
const PAGE: i64 = 20_000;

pub async fn verify_ledger(client: &Client) -> Result<LedgerCheck, StoreError> {
    let page = client
        .prepare(
            "SELECT idx, ts, actor_id, action, outcome, patient_id, record_id, payload, hashes
             FROM ledger WHERE idx >= $1 ORDER BY idx LIMIT $2",
        )
        .await?;
    // Read in one snapshot, so that appends by running nodes do not count as a head mismatch.
    client
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await?;
    let mut problems = Vec::new();
    let mut frontier = Frontier::new();
    let mut next = 0i64;
    let mut last_ts = i64::MIN;
    let mut gap = false;
    while !gap {
        let rows = client.query(&page, &[&next, &PAGE]).await?;
        let Some(last) = rows.last() else { break };
        let after = last.get::<_, i64>(0) + 1;
        for r in &rows {
            let idx: i64 = r.get(0);
            let ts: i64 = r.get(1);
            if idx != frontier.size() as i64 {
                problems.push(format!(
                    "ledger entries {}..{} are missing (台帳の項目が削除されています)",
                    frontier.size(),
                    idx - 1
                ));
                // Further entries cannot be checked against a tree that lacks these.
                gap = true;
                break;
            }
            if ts < last_ts {
                problems.push(format!(
                    "ledger entry {idx}: 時刻が前の項目より前です (order altered)"
                ));
            }
            last_ts = ts;
            let payload: &[u8] = r.get(7);
            let hashes: &[u8] = r.get(8);
            let stored = frontier.append(payload);
            let same = hashes.len() == stored.len() * 32
                && stored
                    .iter()
                    .zip(hashes.chunks(32))
                    .all(|(s, h)| s.hash == h);
            if !same {
                problems.push(format!(
                    "ledger entry {idx}: 保存されたハッシュが内容と一致しません (entry or hashes changed)"
                ));
            }
            match serde_json::from_slice::<AuditEvent>(payload) {
                Ok(ev) => {
                    let columns_agree = ev.ts == ts
                        && ev.actor.as_ref().map(|a| a.id) == r.get::<_, Option<i64>>(2)
                        && ev.action == r.get::<_, &str>(3)
                        && ev.outcome.as_str() == r.get::<_, &str>(4)
                        && ev.patient.as_deref() == r.get::<_, Option<&str>>(5)
                        && ev.record == r.get::<_, Option<i64>>(6);
                    if !columns_agree {
                        problems.push(format!(
                            "ledger entry {idx}: 検索用の列が記録内容と一致しません (index columns altered)"
                        ));
                    }
                }
                Err(_) => problems.push(format!("ledger entry {idx}: 記録内容を読めません")),
            }
        }
        next = after;
    }
    let head = client
        .query_one(
            "SELECT size, last_ts, edge FROM ledger_head WHERE id = 1",
            &[],
        )
        .await?;
    client.batch_execute("COMMIT").await?;
    let (size, head_ts, edge): (i64, i64, &[u8]) = (head.get(0), head.get(1), head.get(2));
    if size as u64 != frontier.size() || edge != frontier.edge_bytes().as_slice() {
        problems.push(format!(
            "the ledger head says {size} entries with another tree edge than the {} entries re-derive \
             (台帳の末尾が削除または改ざんされています)",
            frontier.size()
        ));
    } else if frontier.size() > 0 && head_ts != last_ts {
        problems.push("the ledger head's time differs from the newest entry's".into());
    }
    Ok(LedgerCheck {
        size: frontier.size(),
        root: frontier.root(),
        problems,
    })
}
