//! The auditor's pages: search the audit trail, per-patient access counts, accesses outside
//! working hours, CSV export, and the ledger's checkpoint and verification status. Every
//! query here is itself a ledger entry (the service records it).

use mamori_service::ErrorCode;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use mamori_service::access::accounts::StaffEntry;
use mamori_service::ledger::audit::{AuditEntry, PatientAccessCount, jst, jst_date, parse_time};
use mamori_service::ledger::{CheckpointView, VerificationView};
use mamori_service::{Principal, Service, ServiceError};
use mamori_store::AuditFilter;
use serde::Deserialize;

use crate::error::status_of;
use crate::i18n::{Lang, t};
use crate::ui::form::{SignedForm, SignedIn};
use crate::ui::{Layout, error_page, lang_of, layout, render, say};

type Svc = State<Arc<Service>>;

const PAGE: u32 = 200;
const DAY_MS: i64 = 86_400_000;

pub fn routes() -> axum::Router<Arc<Service>> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/audit", get(search_page))
        .route("/audit/export.csv", get(export_csv))
        .route("/audit/counts", get(counts_page))
        .route("/audit/ledger", get(ledger_page))
        .route("/audit/ledger/verify", post(verify_now))
        .route("/audit/ledger/checkpoint", post(checkpoint_now))
}

/// What the action filter offers: code prefixes, each labelled `audit.group.<prefix>` in the
/// message files (actions themselves are `action.<code>`; an unknown code shows as itself).
const ACTION_GROUPS: &[&str] = &[
    "record.read",
    "record.",
    "patient.",
    "attachment.",
    "auth.",
    "auth.login_failed",
    "account.",
    "role.",
    "audit.",
    "emergency.",
    "maintenance.",
    "ledger.",
    "compliance.",
    "asset.",
];

/// An action as words (`action.<code>` in the message files), or its code if it has none.
pub(crate) fn action_label(lang: Lang, code: &str) -> String {
    crate::i18n::lookup(lang, &format!("action.{code}"))
        .unwrap_or(code)
        .to_owned()
}

pub(crate) fn outcome_label(lang: Lang, outcome: &str) -> &'static str {
    match outcome {
        "ok" => t(lang, "audit.outcome_ok"),
        "denied" => t(lang, "audit.outcome_denied"),
        _ => t(lang, "audit.outcome_failed"),
    }
}

#[derive(Deserialize, Default, Clone)]
pub struct SearchQuery {
    #[serde(default)]
    patient: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    off_hours: String,
    before: Option<i64>,
}

impl SearchQuery {
    /// The filter for the store; `to` is an inclusive day.
    fn filter(&self, limit: u32) -> Result<AuditFilter, ServiceError> {
        let day = |s: &str, field: &'static str| -> Result<Option<i64>, ServiceError> {
            match s.trim() {
                "" => Ok(None),
                x => parse_time(x).map(Some).ok_or_else(|| {
                    ServiceError::invalid(field, "日付は YYYY-MM-DD の形で入力してください")
                }),
            }
        };
        let actor = match self.actor.trim() {
            "" => None,
            x => Some(
                x.parse()
                    .map_err(|_| ServiceError::invalid("actor", "職員の指定が正しくありません"))?,
            ),
        };
        let from = day(&self.from, "from")?;
        let to = day(&self.to, "to")?.map(|t| t + DAY_MS);
        if let (Some(f), Some(t)) = (from, to)
            && t <= f
        {
            return Err(ServiceError::invalid(
                "to",
                "期間の終わりは始まりより後にしてください",
            ));
        }
        Ok(AuditFilter {
            patient: Some(self.patient.trim().to_owned()).filter(|p| !p.is_empty()),
            actor,
            action_prefix: Some(self.action.clone()).filter(|a| !a.is_empty()),
            from,
            to,
            limit,
            before_idx: self.before,
        })
    }

    fn query_string(&self) -> String {
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("patient", &self.patient),
            ("actor", &self.actor),
            ("action", &self.action),
            ("from", &self.from),
            ("to", &self.to),
            ("off_hours", &self.off_hours),
        ] {
            if !v.is_empty() {
                s.append_pair(k, v);
            }
        }
        s.finish()
    }
}

pub struct EventRow {
    pub index: i64,
    pub time: String,
    pub off_hours: bool,
    pub actor: String,
    pub role: String,
    pub action: String,
    pub outcome: &'static str,
    pub refused: bool,
    pub patient: String,
    pub record: String,
    pub client: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct SearchPage {
    layout: Layout,
    tab: &'static str,
    q: SearchQuery,
    staff: Vec<StaffEntry>,
    groups: Vec<(&'static str, &'static str)>,
    searched: bool,
    rows: Vec<EventRow>,
    error: Option<String>,
    error_field: String,
    older: Option<String>,
    csv: String,
}

fn rows_of(entries: &[AuditEntry], off_only: bool, lang: Lang) -> Vec<EventRow> {
    entries
        .iter()
        .filter(|e| !off_only || e.off_hours)
        .map(|e| EventRow {
            index: e.index,
            time: jst(e.ts),
            off_hours: e.off_hours,
            actor: e.actor_login.clone().unwrap_or_default(),
            role: e.actor_role.clone().unwrap_or_default(),
            action: action_label(lang, &e.action),
            outcome: outcome_label(lang, &e.outcome),
            refused: e.outcome != "ok",
            patient: e.patient_id.clone().unwrap_or_default(),
            record: e
                .record_id
                .map(|r| match e.version {
                    Some(v) => format!("{r} / v{v}"),
                    None => r.to_string(),
                })
                .unwrap_or_default(),
            client: e.client.clone().unwrap_or_default(),
        })
        .collect()
}

async fn search_page(
    State(svc): Svc,
    headers: HeaderMap,
    SignedIn(p): SignedIn,
    Query(q): Query<SearchQuery>,
) -> Response {
    let lang = lang_of(&headers);
    // The staff list is itself audited and refused to those without the audit right, so a
    // nurse who types /audit gets the refusal page (and the attempt is in the ledger).
    let staff = match svc.staff_directory(&p).await {
        Ok(s) => s,
        Err(e) => return error_page(&svc, &headers, Some(&p), &e),
    };
    let searched = !q.query_string().is_empty() || q.before.is_some();
    let (mut rows, mut error, mut error_field, mut older) = (Vec::new(), None, String::new(), None);
    let mut status = StatusCode::OK;
    // With no filter the page shows the newest events.
    let run = async {
        let filter = q.filter(PAGE)?;
        svc.audit_events(&p, filter).await
    };
    {
        match run.await {
            Ok(entries) => {
                if entries.len() as u32 >= PAGE
                    && let Some(last) = entries.last()
                {
                    older = Some(format!("{}&before={}", q.query_string(), last.index));
                }
                rows = rows_of(&entries, q.off_hours == "on", lang);
            }
            Err(e) if e.code == ErrorCode::Forbidden => {
                return error_page(&svc, &headers, Some(&p), &e);
            }
            Err(e) => {
                status = status_of(e.code);
                error_field = e.field.unwrap_or("").to_owned();
                error = Some(say(&headers, &e));
            }
        }
    }
    let groups = ACTION_GROUPS
        .iter()
        .map(|code| (*code, t(lang, &format!("audit.group.{code}"))))
        .collect();
    let csv = q.query_string();
    render(
        status,
        SearchPage {
            layout: layout(&svc, &headers, Some(&p), p.csrf.clone()),
            tab: "search",
            q,
            staff,
            groups,
            searched,
            rows,
            error,
            error_field,
            older,
            csv,
        },
    )
}

fn csv_of(entries: &[AuditEntry], off_only: bool, lang: Lang) -> Vec<u8> {
    let head = [
        "ledger_index",
        "time_jst",
        "off_hours",
        "actor_id",
        "actor_login",
        "actor_role",
        "action",
        "action_code",
        "outcome",
        "patient_id",
        "record_id",
        "version",
        "client",
        "detail",
    ];
    let rows = entries
        .iter()
        .filter(|e| !off_only || e.off_hours)
        .map(|e| {
            [
                e.index.to_string(),
                jst(e.ts),
                if e.off_hours { "1" } else { "0" }.to_owned(),
                e.actor_id.map(|x| x.to_string()).unwrap_or_default(),
                e.actor_login.clone().unwrap_or_default(),
                e.actor_role.clone().unwrap_or_default(),
                action_label(lang, &e.action),
                e.action.clone(),
                e.outcome.clone(),
                e.patient_id.clone().unwrap_or_default(),
                e.record_id.map(|x| x.to_string()).unwrap_or_default(),
                e.version.map(|x| x.to_string()).unwrap_or_default(),
                e.client.clone().unwrap_or_default(),
                if e.detail.is_null() {
                    String::new()
                } else {
                    e.detail.to_string()
                },
            ]
        });
    mamori_compliance::spreadsheet::csv(&head, rows)
}

async fn export_csv(
    State(svc): Svc,
    headers: HeaderMap,
    SignedIn(p): SignedIn,
    Query(q): Query<SearchQuery>,
) -> Response {
    let lang = lang_of(&headers);
    let entries = match q.filter(10_000) {
        Ok(f) => svc.audit_events(&p, f).await,
        Err(e) => Err(e),
    };
    let entries = match entries {
        Ok(x) => x,
        Err(e) => return error_page(&svc, &headers, Some(&p), &e),
    };
    let body = csv_of(&entries, q.off_hours == "on", lang);
    let name = format!("mamori-audit-{}.csv", jst_date(svc.now()));
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    res
}

#[derive(Deserialize, Default)]
pub struct CountsQuery {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    patient: String,
}

pub struct CountRow {
    pub patient_id: String,
    pub patient_name: String,
    pub total: i64,
    pub by_actor: Vec<(String, String, i64)>,
}

#[derive(Template)]
#[template(path = "audit_counts.html")]
struct CountsPage {
    layout: Layout,
    tab: &'static str,
    from: String,
    to: String,
    patient: String,
    rows: Vec<CountRow>,
    error: Option<String>,
}

async fn counts_page(
    State(svc): Svc,
    headers: HeaderMap,
    SignedIn(p): SignedIn,
    Query(q): Query<CountsQuery>,
) -> Response {
    let now = svc.now();
    let from = if q.from.trim().is_empty() {
        jst_date(now - 30 * DAY_MS)
    } else {
        q.from.trim().to_owned()
    };
    let to = if q.to.trim().is_empty() {
        jst_date(now)
    } else {
        q.to.trim().to_owned()
    };
    let range = match (parse_time(&from), parse_time(&to)) {
        (Some(f), Some(t)) => Ok((f, t + DAY_MS)),
        _ => Err(ServiceError::invalid(
            "from",
            "日付は YYYY-MM-DD の形で入力してください",
        )),
    };
    let patient = Some(q.patient.trim().to_owned()).filter(|x| !x.is_empty());
    let result: Result<Vec<PatientAccessCount>, ServiceError> = match range {
        Ok((f, t)) => svc.patient_access_counts(&p, f, t, patient).await,
        Err(e) => Err(e),
    };
    let (rows, error, status) = match result {
        Ok(list) => (
            list.into_iter()
                .map(|c| CountRow {
                    patient_id: c.patient_id,
                    patient_name: c.patient_name.unwrap_or_default(),
                    total: c.total,
                    by_actor: c
                        .by_actor
                        .into_iter()
                        .map(|a| (a.actor_id.to_string(), a.display_name, a.count))
                        .collect(),
                })
                .collect(),
            None,
            StatusCode::OK,
        ),
        Err(e) if e.code == ErrorCode::Forbidden => {
            return error_page(&svc, &headers, Some(&p), &e);
        }
        Err(e) => (Vec::new(), Some(say(&headers, &e)), status_of(e.code)),
    };
    render(
        status,
        CountsPage {
            layout: layout(&svc, &headers, Some(&p), p.csrf.clone()),
            tab: "counts",
            from,
            to,
            patient: q.patient,
            rows,
            error,
        },
    )
}

#[derive(Template)]
#[template(path = "audit_ledger.html")]
struct LedgerPage {
    layout: Layout,
    tab: &'static str,
    checkpoint: Option<CheckpointView>,
    checkpoint_time: String,
    verification: Option<VerificationView>,
    verification_time: String,
    /// The last verification is older than a day (or there is none).
    stale: bool,
    clock: Option<mamori_domain::timesync::ClockStatus>,
    clock_checked: String,
    error: Option<String>,
}

async fn show_ledger(
    svc: &Arc<Service>,
    headers: &HeaderMap,
    p: &Principal,
    status: StatusCode,
    error: Option<String>,
) -> Response {
    let verification = match svc.last_verification(p).await {
        Ok(v) => v,
        Err(e) => return error_page(svc, headers, Some(p), &e),
    };
    let checkpoint = svc.latest_checkpoint().await.ok();
    let now = svc.now();
    render(
        status,
        LedgerPage {
            layout: layout(svc, headers, Some(p), p.csrf.clone()),
            tab: "ledger",
            checkpoint_time: checkpoint
                .as_ref()
                .map(|c| jst(c.created_at))
                .unwrap_or_default(),
            checkpoint,
            verification_time: verification.as_ref().map(|v| jst(v.at)).unwrap_or_default(),
            stale: verification.as_ref().is_none_or(|v| now - v.at > DAY_MS),
            clock_checked: svc
                .clock_status()
                .map(|c| jst(c.checked_at))
                .unwrap_or_default(),
            clock: svc.clock_status(),
            verification,
            error,
        },
    )
}

async fn ledger_page(State(svc): Svc, headers: HeaderMap, SignedIn(p): SignedIn) -> Response {
    show_ledger(&svc, &headers, &p, StatusCode::OK, None).await
}

async fn ledger_post(
    svc: Arc<Service>,
    headers: HeaderMap,
    p: Principal,
    verify: bool,
) -> Response {
    let result = if verify {
        svc.verify_and_record(Some(&p)).await.map(|_| ())
    } else {
        svc.checkpoint_by(&p).await.map(|_| ())
    };
    match result {
        Ok(()) => Redirect::to("/audit/ledger").into_response(),
        Err(e) if e.code == ErrorCode::Forbidden => error_page(&svc, &headers, Some(&p), &e),
        Err(e) => {
            show_ledger(
                &svc,
                &headers,
                &p,
                status_of(e.code),
                Some(say(&headers, &e)),
            )
            .await
        }
    }
}

async fn verify_now(State(svc): Svc, headers: HeaderMap, post: SignedForm) -> Response {
    ledger_post(svc, headers, post.p, true).await
}

async fn checkpoint_now(State(svc): Svc, headers: HeaderMap, post: SignedForm) -> Response {
    ledger_post(svc, headers, post.p, false).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every action the domain defines reads as words in the audit pages (scanned from the
    /// source, so a new action without a label fails here).
    #[test]
    fn every_action_code_has_a_label() {
        let src = include_str!("../../../domain/src/audit.rs");
        let mut n = 0;
        for line in src
            .lines()
            .filter(|l| l.contains("pub const") && l.contains(": &str = \""))
        {
            let code = line.split('"').nth(1).unwrap();
            assert_ne!(action_label(Lang::Ja, code), code, "{code} has no label");
            assert_ne!(action_label(Lang::En, code), code, "{code} has no label");
            n += 1;
        }
        assert!(n > 40, "{n}");
    }

    #[test]
    fn the_to_day_is_inclusive_and_order_is_checked() {
        let q = SearchQuery {
            from: "2026-11-01".into(),
            to: "2026-11-01".into(),
            ..Default::default()
        };
        let f = q.filter(10).unwrap();
        assert_eq!(f.to.unwrap() - f.from.unwrap(), DAY_MS);
        let bad = SearchQuery {
            from: "2026-11-02".into(),
            to: "2026-11-01".into(),
            ..Default::default()
        };
        assert_eq!(bad.filter(10).unwrap_err().field, Some("to"));
        let junk = SearchQuery {
            from: "yesterday".into(),
            ..Default::default()
        };
        assert_eq!(junk.filter(10).unwrap_err().field, Some("from"));
    }
}
