//! The auditor's pages: search the audit trail, per-patient access counts, accesses outside
//! working hours, CSV export, and the ledger's checkpoint and verification status. Every
//! query here is itself a ledger entry (the service records it).

use mamori_service::ErrorCode;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use mamori_service::accounts::StaffEntry;
use mamori_service::audit::{AuditEntry, PatientAccessCount, jst, jst_date, parse_time};
use mamori_service::ledger::{CheckpointView, VerificationView};
use mamori_service::{Principal, Service, ServiceError};
use mamori_store::AuditFilter;
use serde::Deserialize;

use crate::error::status_of;
use crate::i18n::{Lang, t};
use crate::ui::{Layout, error_page, lang_of, layout, render, say};
use crate::ui_form::{SignedForm, SignedIn};

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

/// Action codes as people read them. Unknown codes (from a newer version) show as the code.
const ACTION_LABELS: &[(&str, &str, &str)] = &[
    ("system.init", "初期化", "Instance created"),
    ("auth.login", "ログイン", "Sign-in"),
    ("auth.login_failed", "ログイン失敗", "Failed sign-in"),
    ("auth.logout", "ログアウト", "Sign-out"),
    ("auth.locked", "画面ロック", "Screen locked"),
    (
        "emergency.account_used",
        "非常用アカウントの使用",
        "Emergency account used",
    ),
    (
        "account.emergency_set",
        "非常用アカウントの指定",
        "Emergency account set",
    ),
    ("ca.created", "認証局の作成", "CA created"),
    (
        "tls.refused",
        "証明書による接続の拒否",
        "Connection refused (certificate)",
    ),
    ("cert.issued", "証明書の発行", "Certificate issued"),
    ("cert.revoked", "証明書の失効", "Certificate revoked"),
    ("cert.crl_issued", "失効リスト (CRL) の発行", "CRL issued"),
    ("cert.list", "証明書一覧の閲覧", "Certificates listed"),
    ("auth.unlocked", "画面ロックの解除", "Screen unlocked"),
    (
        "auth.password_changed",
        "パスワード変更",
        "Password changed",
    ),
    ("account.created", "アカウント作成", "Account created"),
    ("account.disabled", "アカウント無効化", "Account disabled"),
    (
        "account.enabled",
        "アカウント再有効化",
        "Account re-enabled",
    ),
    ("account.unlocked", "ロック解除", "Account unlocked"),
    (
        "account.password_reset",
        "パスワード再設定",
        "Password reset",
    ),
    ("account.role_changed", "職種変更", "Role changed"),
    ("account.list", "アカウント一覧", "Accounts listed"),
    ("token.created", "APIトークン発行", "API token issued"),
    ("token.revoked", "APIトークン失効", "API token revoked"),
    ("role.saved", "職種・権限の変更", "Role saved"),
    ("role.listed", "職種・権限の一覧", "Roles listed"),
    (
        "state.recorded",
        "データの変更の記録",
        "State change recorded",
    ),
    (
        "blob.orphans_removed",
        "参照されていないファイルの削除",
        "Unreferenced files removed",
    ),
    (
        "state.baseline",
        "検証の基準となる全データの記録",
        "Baseline of all stored data for verification",
    ),
    (
        "role.proposed",
        "職種・権限の変更の申請（別の管理者の承認待ち）",
        "Role change proposed (awaiting a second administrator)",
    ),
    (
        "role.proposal_approved",
        "職種・権限の変更の承認",
        "Role change approved",
    ),
    (
        "role.proposal_rejected",
        "職種・権限の変更の却下",
        "Role change rejected",
    ),
    ("record_kind.saved", "記録種別の変更", "Record kind saved"),
    ("patient.created", "患者登録", "Patient registered"),
    ("patient.search", "患者検索", "Patient search"),
    ("patient.read", "患者情報の閲覧", "Patient viewed"),
    ("record.list", "記録一覧の閲覧", "Records listed"),
    ("record.read", "記録の閲覧", "Record read"),
    ("record.history", "更新履歴の閲覧", "History read"),
    ("record.diff", "版の比較", "Versions compared"),
    ("record.print_export", "印刷・出力", "Printed/exported"),
    ("attachment.read", "添付ファイルの閲覧", "Attachment read"),
    (
        "attachment.stored",
        "添付ファイルの保存",
        "Attachment stored",
    ),
    ("record.draft_created", "下書き作成", "Draft created"),
    ("record.draft_updated", "下書き更新", "Draft updated"),
    ("record.submitted", "承認依頼", "Submitted for approval"),
    ("record.finalised", "確定", "Finalised"),
    ("record.approved", "代行入力の承認", "Proxy entry approved"),
    (
        "record.rejected",
        "代行入力の差し戻し",
        "Proxy entry returned",
    ),
    ("record.amended", "修正", "Amended"),
    ("record.entered_in_error", "誤記入", "Entered in error"),
    ("record.pending_list", "承認待ち一覧", "Pending list"),
    ("audit.query", "監査ログの検索", "Audit query"),
    ("ledger.proof", "包含証明の取得", "Inclusion proof"),
    ("ledger.verified", "台帳の検証", "Ledger verified"),
    (
        "ledger.checkpoint",
        "チェックポイント作成",
        "Checkpoint requested",
    ),
    (
        "auth.first_factor",
        "パスワード確認（2要素目待ち）",
        "Password accepted (second factor due)",
    ),
    (
        "auth.second_factor_enrolled",
        "2要素認証の登録",
        "Two-factor set up",
    ),
    (
        "auth.second_factor_removed",
        "2要素認証の解除",
        "Two-factor removed",
    ),
    (
        "account.second_factor_reset",
        "2要素認証のリセット",
        "Two-factor reset",
    ),
    (
        "role.two_factor",
        "2要素認証の必須設定",
        "Two-factor policy",
    ),
    (
        "maintenance.requested",
        "保守作業の申請",
        "Maintenance requested",
    ),
    (
        "maintenance.approved",
        "保守作業の承認",
        "Maintenance approved",
    ),
    (
        "maintenance.rejected",
        "保守作業の却下",
        "Maintenance rejected",
    ),
    ("maintenance.list", "保守作業の一覧", "Maintenance listed"),
    (
        "maintenance.report",
        "保守作業報告の閲覧",
        "Maintenance report read",
    ),
    (
        "maintenance.acknowledged",
        "保守作業報告の確認",
        "Maintenance report acknowledged",
    ),
    (
        "time.status",
        "時刻同期の状態の変化",
        "Clock status changed",
    ),
    ("backup.completed", "バックアップの完了", "Backup completed"),
    (
        "signing_cert.issued",
        "署名用証明書の発行",
        "Signing certificate issued",
    ),
    (
        "signing_cert.imported",
        "署名用証明書の取り込み (PKCS#12)",
        "Signing certificate imported",
    ),
    ("record.signed", "記録の電子署名", "Record signed"),
    (
        "record.signing_requested",
        "外部署名の準備（証明書の登録）",
        "External signature started",
    ),
    (
        "record.timestamped",
        "署名へのタイムスタンプ",
        "Signature time-stamped",
    ),
    (
        "record.timestamp_failed",
        "タイムスタンプの取得失敗",
        "Time-stamp failed",
    ),
    (
        "evidence.sealed",
        "証拠記録の作成",
        "Evidence record sealed",
    ),
    (
        "evidence.renewed",
        "証拠記録の更新",
        "Evidence record renewed",
    ),
    (
        "evidence.verified",
        "署名・証拠記録の検証",
        "Evidence verified",
    ),
    (
        "evidence.status",
        "電子署名の状況の閲覧",
        "Evidence status viewed",
    ),
    (
        "evidence.requested",
        "署名・封印・更新の手動実行",
        "Evidence sweep requested",
    ),
    ("backup.failed", "バックアップの失敗", "Backup failed"),
    ("backup.verified", "バックアップの検証", "Backup verified"),
    ("backup.drill", "復元訓練", "Restore drill"),
    (
        "backup.offline",
        "オフライン媒体への保管",
        "Offline copy recorded",
    ),
    (
        "backup.prune_planned",
        "古い世代の削除の計画",
        "Pruning planned",
    ),
    ("backup.pruned", "古い世代の削除", "Old generations pruned"),
    (
        "backup.restored",
        "バックアップからの復元",
        "Restored from backup",
    ),
    (
        "backup.status",
        "バックアップ状況の閲覧",
        "Backup status viewed",
    ),
    (
        "backup.requested",
        "バックアップ・復元訓練の開始",
        "Backup or drill requested",
    ),
    (
        "emergency.started",
        "非常時アクセスの開始",
        "Emergency access started",
    ),
    (
        "emergency.ended",
        "非常時アクセスの終了",
        "Emergency access ended",
    ),
    (
        "emergency.notified",
        "非常時アクセスの通知",
        "Emergency access announced",
    ),
    (
        "emergency.reviewed",
        "非常時アクセスの確認",
        "Emergency access reviewed",
    ),
    (
        "emergency.queue",
        "非常時アクセス一覧の閲覧",
        "Emergency queue read",
    ),
    (
        "role.client_cert",
        "職種のクライアント証明書必須の設定",
        "Client certificate policy of a role",
    ),
    (
        "compliance.viewed",
        "自己点検の閲覧",
        "Self-assessment viewed",
    ),
    (
        "compliance.created",
        "自己点検の開始",
        "Self-assessment started",
    ),
    (
        "compliance.answered",
        "点検項目への回答",
        "Checklist item answered",
    ),
    (
        "compliance.evidence_added",
        "点検の証跡の追加",
        "Evidence attached",
    ),
    (
        "compliance.closed",
        "自己点検の締め",
        "Self-assessment closed",
    ),
    (
        "compliance.report",
        "点検報告書の出力",
        "Assessment report produced",
    ),
    (
        "compliance.profile_saved",
        "安全管理体制の設定",
        "Security organisation saved",
    ),
    ("asset.saved", "機器台帳の更新", "Asset saved"),
    (
        "asset.imported",
        "機器台帳の取り込み",
        "Asset ledger imported",
    ),
    ("asset.deleted", "機器台帳からの削除", "Asset removed"),
    ("risk.saved", "リスク台帳の更新", "Risk saved"),
    ("risk.deleted", "リスク台帳からの削除", "Risk removed"),
    (
        "register.saved",
        "台帳（破棄・持ち出し・研修・外部保存）の記録",
        "Register entry saved",
    ),
    (
        "backup.erase_planned",
        "バックアップ先の消去（計画）",
        "Backup target erasure planned",
    ),
    (
        "backup.erased",
        "バックアップ先の消去",
        "Backup target erased",
    ),
    ("contacts.saved", "連絡体制図の更新", "Contact chart saved"),
];

/// What the action filter offers: a code prefix and its label key.
const ACTION_GROUPS: &[(&str, &str, &str)] = &[
    ("record.read", "記録の閲覧", "Record reads"),
    ("record.", "記録（閲覧・作成・変更）", "Records (all)"),
    ("patient.", "患者", "Patients"),
    ("attachment.", "添付ファイル", "Attachments"),
    ("auth.", "ログイン・ログアウト", "Sign-in and sign-out"),
    ("auth.login_failed", "ログイン失敗", "Failed sign-ins"),
    ("account.", "アカウント管理", "Account administration"),
    ("role.", "職種・権限", "Roles"),
    ("audit.", "監査ログの閲覧", "Audit queries"),
    ("emergency.", "非常時アクセス", "Emergency access"),
    ("maintenance.", "保守作業", "Maintenance work"),
    ("ledger.", "台帳", "Ledger"),
    ("compliance.", "自己点検", "Self-assessment"),
    ("asset.", "機器台帳", "Asset ledger"),
];

pub(crate) fn action_label(lang: Lang, code: &str) -> String {
    ACTION_LABELS
        .iter()
        .find(|(c, _, _)| *c == code)
        .map(|(_, ja, en)| if lang == Lang::En { *en } else { *ja })
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
        .map(|(code, ja, en)| (*code, if lang == Lang::En { *en } else { *ja }))
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

/// A spreadsheet cell: quoted when needed, and never read as a formula by Excel.
fn csv_cell(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

fn csv_of(entries: &[AuditEntry], off_only: bool, lang: Lang) -> String {
    // A BOM so that Excel, as most clinics open it, reads UTF-8 Japanese correctly.
    let mut out = String::from("\u{feff}");
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
    out.push_str(&head.join(","));
    out.push_str("\r\n");
    for e in entries.iter().filter(|e| !off_only || e.off_hours) {
        let cells = [
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
        ];
        let line: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    out
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

    #[test]
    fn csv_cells_are_quoted_and_never_formulas() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_cell("-1"), "'-1");
        assert_eq!(csv_cell("line\nbreak"), "\"line\nbreak\"");
    }

    /// Every action the domain defines reads as words in the audit pages (scanned from the
    /// source, so a new action without a label fails here).
    #[test]
    fn every_action_code_has_a_label() {
        let src = include_str!("../../domain/src/audit.rs");
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
