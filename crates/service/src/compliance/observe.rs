//! What mamori can see of its own state, as proposed answers to checklist items. Each
//! observation says what was seen and when; none is a constant.
//!
//! The facts are read once (`Facts::read`), then each `Observable` has exactly one rule: a
//! small function from the facts to an observation (or none, when there is nothing to see).
//! `rule` matches every variant, so the compiler keeps the catalogue's names and the rules
//! in step.

use std::collections::{HashMap, HashSet};

use mamori_compliance::Observation;
use mamori_compliance::assets::{self, Asset};
use mamori_compliance::catalogue::Observable;
use mamori_compliance::registers::{self, Entry, Register};
use mamori_domain::permission::Action;
use mamori_store::Reader;

use crate::Service;
use crate::backup::{BackupStatus, BackupWarning};
use crate::config::Config;
use crate::error::Result;
use crate::evidence::EvidenceStatus;
use crate::ledger::VerificationView;
use crate::ledger::audit::jst;
use mamori_domain::timesync::ClockStatus;

mod books;

/// Accounts unused this long count as 不要なアカウント.
pub const UNUSED_DAYS: i64 = 90;
/// Patches older than this count as not applied.
pub const PATCH_DAYS: i64 = 90;
/// The ledger must have been verified this recently for 「アクセスログを管理している」.
pub const VERIFY_HOURS: i64 = 48;
/// Someone must have read the audit trail this recently for the log-review item.
pub const REVIEW_DAYS: i64 = 31;

const DAY: i64 = 86_400_000;

/// Facility facts kept in settings (who is responsible, which documents are adopted).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Profile {
    pub security_officer: String,
    pub director: String,
    /// Date the 運用管理規程 was adopted (YYYY-MM-DD), empty if not yet.
    pub rules_adopted_on: String,
    /// Date the BCP was adopted (YYYY-MM-DD), empty if not yet.
    pub bcp_adopted_on: String,
}

pub(crate) const PROFILE_KEY: &str = "compliance.profile";

pub(crate) fn profile_in(r: &Reader<'_>) -> Result<Profile> {
    Ok(r.meta(PROFILE_KEY)?
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default())
}

fn names(v: &[String]) -> String {
    if v.is_empty() {
        "なし".into()
    } else {
        v.join("、")
    }
}

/// What mamori observes now, by observable.
pub type Observed = HashMap<Observable, Observation>;

impl Service {
    /// Every observation mamori can make now.
    pub(crate) fn observe_in(&self, r: &Reader<'_>) -> Result<Observed> {
        let f = Facts::read(self, r)?;
        Ok(Observable::ALL
            .into_iter()
            .filter_map(|k| rule(k, &f).map(|o| (k, o)))
            .collect())
    }
}

/// Everything the rules look at, read in one transaction.
struct Facts<'a> {
    now: i64,
    today: String,
    config: &'a Config,
    profile: Profile,
    assets: Vec<Asset>,
    /// Names of assets with an MDS/SDS file attached.
    with_doc: HashSet<String>,
    windows: Vec<mamori_store::MaintenanceWindow>,
    accounts: Vec<mamori_store::Account>,
    roles: Vec<mamori_domain::permission::Role>,
    two_factor_roles: HashSet<String>,
    verification: Option<VerificationView>,
    last_review: Option<i64>,
    clock: Option<ClockStatus>,
    backup: BackupStatus,
    unreviewed_emergencies: Vec<mamori_store::EmergencyRow>,
    evidence: EvidenceStatus,
    kinds: Vec<mamori_domain::kinds::RecordKind>,
    contacts: Vec<mamori_store::ContactRow>,
    registers: HashMap<Register, Vec<Entry>>,
    transactions: Vec<mamori_store::TxFact>,
    /// The TSAs the configuration names accredited (総務大臣認定).
    accredited: mamori_evidence::tsp::AccreditedTsas,
    /// The facility's bookkeeping settings, if someone saved them.
    bookkeeping: Option<String>,
}

impl<'a> Facts<'a> {
    fn read(svc: &'a Service, r: &Reader<'_>) -> Result<Facts<'a>> {
        let now = svc.now();
        let rows = r.assets()?;
        let mut registers = HashMap::new();
        for reg in Register::ALL {
            let entries = r.register_entries(reg)?.into_iter().map(|x| x.entry);
            registers.insert(reg, entries.collect());
        }
        Ok(Facts {
            now,
            today: crate::ledger::audit::jst_date(now),
            config: &svc.config,
            profile: profile_in(r)?,
            with_doc: rows
                .iter()
                .filter(|a| a.mds_sha256.is_some())
                .map(|a| a.asset.name.clone())
                .collect(),
            assets: rows.into_iter().map(|a| a.asset).collect(),
            windows: r.maintenance_windows(None)?,
            accounts: r.accounts()?,
            roles: r.roles()?,
            two_factor_roles: r.two_factor_roles()?.into_iter().collect(),
            verification: svc.last_verification_in(r)?,
            last_review: r
                .audit_events(&mamori_store::AuditFilter {
                    action_prefix: Some(mamori_domain::audit::actions::AUDIT_QUERY.to_owned()),
                    from: Some(now - REVIEW_DAYS * DAY),
                    limit: 1,
                    ..Default::default()
                })?
                .first()
                .map(|e| e.ts),
            clock: svc.clock_status(),
            backup: svc.backup_status_in(r)?,
            unreviewed_emergencies: r.emergency_accesses(None, None, true)?,
            evidence: svc.evidence_status_in(r)?,
            kinds: r.kinds()?,
            contacts: r.contacts()?,
            registers,
            transactions: r.tx_facts()?,
            accredited: svc.evidence_anchors()?.accredited.clone(),
            bookkeeping: r.meta("bookkeeping_settings")?,
        })
    }

    /// Active accounts of people (not service accounts).
    fn humans(&self) -> impl Iterator<Item = &mamori_store::Account> {
        self.accounts.iter().filter(|a| a.active && !a.is_service)
    }

    /// The codes of the roles active people hold.
    fn roles_in_use(&self) -> HashSet<&str> {
        self.humans().map(|a| a.role.as_str()).collect()
    }

    /// Roles in use without a required second factor.
    fn roles_without_two_factor(&self) -> Vec<String> {
        let in_use = self.roles_in_use();
        self.roles
            .iter()
            .filter(|role| {
                in_use.contains(role.code.as_str()) && !self.two_factor_roles.contains(&role.code)
            })
            .map(|role| role.name_ja.clone())
            .collect()
    }

    fn register(&self, reg: Register) -> &[Entry] {
        self.registers.get(&reg).map_or(&[], Vec::as_slice)
    }
}

/// The one rule for each observable.
fn rule(k: Observable, f: &Facts<'_>) -> Option<Observation> {
    use Observable as O;
    let now = f.now;
    match k {
        O::SecurityOfficer => Some(security_officer(f)),
        O::OperatingRules => Some(adopted(
            &f.profile.rules_adopted_on,
            "運用管理規程",
            "Operating rules",
            now,
        )),
        O::Bcp => Some(adopted(
            &f.profile.bcp_adopted_on,
            "BCP（事業継続計画）",
            "BCP",
            now,
        )),
        O::AssetLedger => Some(assets::observe_ledger(&f.assets, now)),
        O::RemoteMaintenance => assets::observe_remote_maintenance(&f.assets, now).map(|mut x| {
            x.evidence_ja
                .push_str(&format!("。mamori の保守作業申請 {} 件", f.windows.len()));
            x
        }),
        O::MdsSds => assets::observe_mds(&f.assets, &f.with_doc, now),
        O::PatchesServer => patches(f, &["server"]),
        O::PatchesPc => patches(f, &["pc"]),
        O::PatchesNetwork => patches(f, &["network"]),
        O::PatchesAll => patches(f, &["server", "pc", "network"]),
        O::ConnectionRestriction => assets::observe_connection_restriction(&f.assets, now),
        O::RoleAccess => Some(role_access(f)),
        O::UnusedAccounts => Some(unused_accounts(f)),
        O::PasswordPolicy => Some(password_policy(f)),
        O::TwoFactor => Some(two_factor(f)),
        O::IdleLock => Some(idle_lock(f)),
        O::AccessLogs => Some(access_logs(f)),
        O::Finalisation => Some(finalisation(f)),
        O::LogReview => Some(log_review(f)),
        O::ClockSync => f.clock.as_ref().map(|c| clock_sync(c, now)),
        O::BackupRestore => Some(backup_restore(f)),
        O::BackupOffline => Some(backup_offline(f)),
        O::MaintenanceControl => Some(maintenance_control(f)),
        O::EmergencyAccess => Some(emergency_access(f)),
        O::Signatures => Some(signatures(&f.evidence, now)),
        O::Retention => Some(retention(f)),
        O::ContactChart => Some(contact_chart(f)),
        O::Training => {
            let active: Vec<String> = f.humans().map(|a| a.login.clone()).collect();
            Some(registers::observe_training(
                f.register(Register::Training),
                &active,
                &f.today,
                now,
            ))
        }
        O::Outsourcing => {
            let s3: Vec<String> = f
                .config
                .backup
                .target_list()
                .into_iter()
                .filter(|t| t.starts_with("s3://"))
                .collect();
            registers::observe_outsourcing(f.register(Register::Outsourcing), &s3, now)
        }
        O::TakeOut => Some(registers::observe_take_out(
            f.register(Register::TakeOut),
            &f.today,
            now,
        )),
        O::Disposal => Some(registers::observe_disposal(
            f.register(Register::Disposal),
            now,
        )),
        O::TxHistory => books::history(f),
        O::TxTimestamps => books::timestamps(f),
        O::TxSearch => books::search(f),
        O::TxRetention => Some(books::retention(f)),
        O::InvoiceChecks => books::invoice_checks(f),
    }
}

fn security_officer(f: &Facts<'_>) -> Observation {
    let officer = &f.profile.security_officer;
    if officer.trim().is_empty() {
        Observation::new(
            false,
            "安全管理責任者が設定されていません（自己点検 › 体制）",
            "No security officer is named",
            f.now,
        )
    } else {
        Observation::new(
            true,
            format!("安全管理責任者: {officer}（mamori の設定）"),
            format!("Security officer: {officer}"),
            f.now,
        )
    }
}

/// A facility document the officer records as adopted on a date.
fn adopted(date: &str, what: &str, what_en: &str, now: i64) -> Observation {
    if date.is_empty() {
        Observation::new(
            false,
            format!("{what}の制定日が記録されていません（草案は mamori が作成できます）"),
            format!("{what_en}: no adoption date recorded"),
            now,
        )
    } else {
        Observation::new(
            true,
            format!("{what}を {date} に制定"),
            format!("{what_en} adopted on {date}"),
            now,
        )
    }
}

fn patches(f: &Facts<'_>, kinds: &[&str]) -> Option<Observation> {
    assets::observe_patches(&f.assets, kinds, &f.today, PATCH_DAYS, f.now)
}

fn role_access(f: &Facts<'_>) -> Observation {
    let now = f.now;
    let templates = mamori_domain::permission::default_roles();
    let broad: Vec<String> = f
        .roles
        .iter()
        .filter(|role| {
            templates
                .iter()
                .find(|t| t.code == role.code)
                .is_some_and(|t| !role.extra_grants(t).is_empty())
        })
        .map(|role| role.name_ja.clone())
        .collect();
    let admins: Vec<String> = f
        .humans()
        .filter(|a| {
            f.roles.iter().find(|r| r.code == a.role).is_some_and(|r| {
                r.require(Action::AdminAccounts, None).is_ok()
                    || r.require(Action::AdminSettings, None).is_ok()
            })
        })
        .map(|a| format!("{}（{}）", a.display_name, a.login))
        .collect();
    // Roles the facility defined itself have no template to be measured against.
    let own: Vec<String> = f
        .roles
        .iter()
        .filter(|role| !templates.iter().any(|t| t.code == role.code))
        .map(|role| role.name_ja.clone())
        .collect();
    let observation = if broad.is_empty() {
        Observation::new(
            true,
            format!(
                "職種 {} 種類の権限を設定（利用中 {} 種類）。管理者権限: {}",
                f.roles.len(),
                f.roles_in_use().len(),
                names(&admins)
            ),
            format!(
                "{} roles defined; administrators: {}",
                f.roles.len(),
                admins.len()
            ),
            now,
        )
    } else {
        Observation::new(
            false,
            format!(
                "ひな形より広い権限の職種があります: {}。管理者権限: {}",
                broad.join("、"),
                names(&admins)
            ),
            format!("Roles wider than their template: {}", broad.join(", ")),
            now,
        )
    };
    if own.is_empty() {
        observation
    } else {
        observation.partly(format!(
            "施設が定義した職種（{}）の権限が職務に見合うか（mamori のひな形がないため比べられません）",
            own.join("、")
        ))
    }
}

fn unused_accounts(f: &Facts<'_>) -> Observation {
    let cutoff = f.now - UNUSED_DAYS * DAY;
    let unused: Vec<String> = f
        .humans()
        .filter(|a| a.last_login_at.unwrap_or(a.created_at) < cutoff)
        .map(|a| a.login.clone())
        .collect();
    if unused.is_empty() {
        Observation::new(
            true,
            format!(
                "有効なアカウント {} 件のうち {UNUSED_DAYS} 日以上使われていないものはありません",
                f.humans().count()
            ),
            format!("No active account unused for {UNUSED_DAYS} days"),
            f.now,
        )
    } else {
        Observation::new(
            false,
            format!(
                "{UNUSED_DAYS} 日以上使われていない有効なアカウント: {}",
                unused.join("、")
            ),
            format!("Unused for {UNUSED_DAYS} days: {}", unused.join(", ")),
            f.now,
        )
    }
}

fn password_policy(f: &Facts<'_>) -> Observation {
    let pw = &f.config.password;
    let two_factor_everywhere = f.roles_without_two_factor().is_empty();
    let expiry_ok = pw.max_age_days.is_some() || two_factor_everywhere || pw.min_length >= 13;
    Observation::new(
        pw.min_length >= 8 && pw.require_mix && expiry_ok,
        format!(
            "mamori のパスワード: {} 文字以上、英字・数字・記号の混在{}、直近 {} 個の再利用禁止、有効期限 {}{}",
            pw.min_length,
            if pw.require_mix {
                "を必須"
            } else {
                "を求めていない（password.require_mix）"
            },
            pw.history,
            pw.max_age_days.map_or("なし".into(), |d| format!("{d} 日")),
            if pw.max_age_days.is_none() && !expiry_ok {
                "（二要素認証が全職種必須でも13文字以上でもないため定期変更が必要）"
            } else {
                ""
            }
        ),
        format!("mamori passwords: at least {} characters", pw.min_length),
        f.now,
    )
}

fn two_factor(f: &Facts<'_>) -> Observation {
    let without = f.roles_without_two_factor();
    if without.is_empty() {
        Observation::new(
            true,
            format!(
                "利用中の全職種（{} 種類）で二要素認証が必須",
                f.roles_in_use().len()
            ),
            "Two factors required for every role in use",
            f.now,
        )
    } else {
        Observation::new(
            false,
            format!("二要素認証が必須でない職種: {}", without.join("、")),
            format!("Two factors not required for: {}", without.join(", ")),
            f.now,
        )
    }
}

fn idle_lock(f: &Facts<'_>) -> Observation {
    let s = &f.config.session;
    Observation::new(
        s.lock_minutes > 0 && s.lock_minutes <= 15,
        format!(
            "操作がないと {} 分で画面ロック、{} 分でログアウト",
            s.lock_minutes, s.idle_minutes
        ),
        format!("Screen locks after {} minutes idle", s.lock_minutes),
        f.now,
    )
}

/// Why the last verification does not vouch for the ledger now, if it does not.
fn verification_problem(f: &Facts<'_>) -> Option<String> {
    match &f.verification {
        Some(v) if v.ok && f.now - v.at <= VERIFY_HOURS * 3_600_000 => None,
        Some(v) if !v.ok => Some(format!(
            "{} の台帳検証で {} 件の問題が見つかりました",
            jst(v.at),
            v.problems_total
        )),
        Some(v) => Some(format!(
            "最後の台帳検証が {}（{VERIFY_HOURS} 時間以上前）です",
            jst(v.at)
        )),
        None => Some("台帳の検証がまだ行われていません（監査 › 台帳の検証）".to_owned()),
    }
}

/// The English note of a verification that does not vouch: (for access logs, for versions).
fn verification_problem_en(f: &Facts<'_>) -> (&'static str, &'static str) {
    match &f.verification {
        Some(v) if !v.ok => (
            "The last ledger verification found problems",
            "The last verification found problems",
        ),
        Some(_) => (
            "The ledger was not verified recently",
            "Not verified recently",
        ),
        None => ("The ledger has never been verified", "Never verified"),
    }
}

fn access_logs(f: &Facts<'_>) -> Observation {
    match (verification_problem(f), &f.verification) {
        (None, Some(v)) => Observation::new(
            true,
            format!(
                "全操作を改ざん検知台帳に記録。{} に全件検証し異常なし（台帳 {} 件・版 {} 件）",
                jst(v.at),
                v.ledger_entries,
                v.versions
            ),
            format!("Ledger verified at {} with no problem", jst(v.at)),
            f.now,
        ),
        (problem, _) => Observation::new(
            false,
            problem.unwrap_or_default(),
            verification_problem_en(f).0,
            f.now,
        ),
    }
}

fn finalisation(f: &Facts<'_>) -> Observation {
    match (verification_problem(f), &f.verification) {
        (None, Some(v)) => Observation::new(
            true,
            format!(
                "確定した記録は版として残り上書きされない。{} の検証で版 {} 件の履歴が台帳と一致",
                jst(v.at),
                v.versions
            ),
            format!("Version history verified at {}", jst(v.at)),
            f.now,
        ),
        (problem, _) => Observation::new(
            false,
            problem.unwrap_or_default(),
            verification_problem_en(f).1,
            f.now,
        ),
    }
}

fn log_review(f: &Facts<'_>) -> Observation {
    match f.last_review {
        Some(ts) => Observation::new(
            true,
            format!("直近の監査ログの確認: {}", jst(ts)),
            format!("Audit trail last reviewed {}", jst(ts)),
            f.now,
        ),
        None => Observation::new(
            false,
            format!("{REVIEW_DAYS} 日以内に監査ログを確認した記録がありません"),
            format!("No audit review in {REVIEW_DAYS} days"),
            f.now,
        ),
    }
}

fn clock_sync(c: &ClockStatus, now: i64) -> Observation {
    if c.synchronised {
        Observation::new(
            true,
            format!(
                "{} と同期（差 {} ms、{} に確認）",
                c.source,
                c.offset_ms.unwrap_or(0),
                jst(c.checked_at)
            ),
            format!("Synchronised with {}", c.source),
            now,
        )
    } else {
        Observation::new(
            false,
            format!(
                "時刻が同期していません: {}（{} に確認）",
                c.problem.clone().unwrap_or_default(),
                jst(c.checked_at)
            ),
            "Clock not synchronised",
            now,
        )
    }
}

fn is_offline_warning(w: &BackupWarning) -> bool {
    matches!(
        w,
        BackupWarning::NoOfflineCopy | BackupWarning::OfflineOverdue { .. }
    )
}

fn backup_restore(f: &Facts<'_>) -> Observation {
    let b = &f.backup;
    let blocking: Vec<String> = b
        .warnings
        .iter()
        .filter(|w| !is_offline_warning(w))
        .map(|w| w.message_ja())
        .collect();
    let last_ok = b.targets.iter().filter_map(|t| t.last_ok_at).max();
    let offline = b
        .last_offline
        .as_ref()
        .map_or("オフライン保管の記録なし".to_owned(), |x| {
            format!("オフライン保管 {}", jst(x.at))
        });
    if blocking.is_empty() && last_ok.is_some() && b.last_good_drill_at.is_some() {
        Observation::new(
            true,
            format!(
                "最後の成功したバックアップ {}（{} 世代保持）、最後に成功した復元訓練 {}、{}",
                last_ok.map(jst).unwrap_or_default(),
                b.keep,
                b.last_good_drill_at.map(jst).unwrap_or_default(),
                offline
            ),
            "Backups current and a restore drill passed",
            f.now,
        )
    } else {
        Observation::new(
            false,
            names(&blocking),
            "Backups or restore drills are missing or failing",
            f.now,
        )
    }
}

/// 「ネットワークから切り離した保管を含めて」: backups and drills as for `backup_restore`,
/// and an offline copy that is not overdue.
fn backup_offline(f: &Facts<'_>) -> Observation {
    let restore = backup_restore(f);
    let restore_ok = restore.answer == mamori_compliance::Answer::Yes;
    let offline_warnings: Vec<String> = f
        .backup
        .warnings
        .iter()
        .filter(|w| is_offline_warning(w))
        .map(|w| w.message_ja())
        .collect();
    if restore_ok && offline_warnings.is_empty() {
        Observation::new(
            true,
            format!(
                "{}（{} 日ごとの切り離し保管の記録あり）",
                restore.evidence_ja, f.config.backup.offline_days
            ),
            "Backups current, restore drill passed, offline copy recorded and not overdue",
            f.now,
        )
    } else {
        let mut why = offline_warnings;
        if !restore_ok {
            why.insert(0, restore.evidence_ja);
        }
        Observation::new(
            false,
            names(&why),
            "No recent offline copy, or backups or drills failing",
            f.now,
        )
    }
}

fn maintenance_control(f: &Facts<'_>) -> Observation {
    let overdue = f
        .windows
        .iter()
        .filter(|w| {
            w.status == "approved" && w.acknowledged_at.is_none() && f.now - w.ends_at > 7 * DAY
        })
        .count();
    if overdue == 0 {
        Observation::new(
            true,
            format!(
                "保守要員は承認された作業時間内だけログイン可能。作業申請 {} 件、報告の未確認（終了後7日超）なし",
                f.windows.len()
            ),
            "Maintenance only inside approved windows; all reports acknowledged",
            f.now,
        )
    } else {
        Observation::new(
            false,
            format!("終了後7日を過ぎて作業報告が確認されていない保守作業: {overdue} 件"),
            format!("{overdue} work reports not acknowledged"),
            f.now,
        )
    }
}

fn emergency_access(f: &Facts<'_>) -> Observation {
    let open = &f.unreviewed_emergencies;
    let late = open
        .iter()
        .filter(|e| f.now - e.started_at > 7 * DAY)
        .count();
    if late == 0 {
        Observation::new(
            true,
            format!(
                "非常時アクセスの手順あり（{} 分・理由必須・通知・事後確認）。7日を超えて未確認の使用なし（未確認 {} 件）",
                f.config.emergency.minutes,
                open.len()
            ),
            "Break-glass in place; none left unreviewed for more than 7 days",
            f.now,
        )
    } else {
        Observation::new(
            false,
            format!("7日を超えて確認されていない非常時アクセス: {late} 件"),
            format!("{late} emergency uses unreviewed for more than 7 days"),
            f.now,
        )
    }
}

fn signatures(ev: &EvidenceStatus, now: i64) -> Observation {
    if !ev.signing {
        Observation::new(
            false,
            "確定時の電子署名が無効です（[evidence] sign）",
            "Signing at finalisation is off",
            now,
        )
    } else if ev.warnings.is_empty() && ev.accredited_tsas == 0 {
        // The TSA is not the development one, but nothing says it is accredited.
        Observation::new(
            true,
            format!(
                "確定した版に電子署名とタイムスタンプ（{}）。長期保存用の証拠記録 {} 件",
                ev.tsa, ev.families
            ),
            "Signed and time-stamped; evidence records current",
            now,
        )
        .partly("タイムスタンプ局が総務大臣認定か（evidence.accredited_tsa_certs に認定TSAの証明書が設定されていない）")
    } else if ev.warnings.is_empty() {
        Observation::new(
            true,
            format!(
                "確定した版に電子署名とタイムスタンプ（{}）。最近のタイムスタンプ {} 件すべてが総務大臣認定として設定されたタイムスタンプ局のもの。長期保存用の証拠記録 {} 件",
                ev.tsa, ev.accreditation_checked, ev.families
            ),
            "Signed and time-stamped by a TSA named accredited; evidence records current",
            now,
        )
    } else {
        Observation::new(
            false,
            ev.warnings.join("。"),
            "Signature or time-stamp warnings",
            now,
        )
    }
}

/// Each built-in kind keeps at least its statutory minimum (the template's); a kind the
/// facility added keeps at least the shortest statutory period, 2 years (医療法施行規則20条の
/// 諸記録).
fn retention(f: &Facts<'_>) -> Observation {
    let templates = mamori_domain::kinds::default_kinds();
    let short: Vec<String> = f
        .kinds
        .iter()
        .filter(|k| {
            let min = templates
                .iter()
                .find(|t| t.code == k.code)
                .map_or(2, |t| t.retention_years);
            k.retention_years < min
        })
        .map(|k| format!("{}（{} 年）", k.name_ja, k.retention_years))
        .collect();
    if short.is_empty() {
        Observation::new(
            true,
            format!(
                "記録の種別 {} 種類すべて法定の保存期間以上（診療録 5 年ほか。短縮は不可）",
                f.kinds.len()
            ),
            "Every record kind kept at least its statutory period",
            f.now,
        )
    } else {
        Observation::new(
            false,
            format!("法定の保存期間より短い種別: {}", short.join("、")),
            "Some kinds are kept less than the statutory period",
            f.now,
        )
    }
}

fn contact_chart(f: &Facts<'_>) -> Observation {
    let missing: Vec<&str> = [
        ("internal", "組織内"),
        ("vendor", "事業者"),
        ("mhlw", "厚生労働省"),
        ("police", "警察"),
    ]
    .into_iter()
    .filter(|(c, _)| {
        !f.contacts
            .iter()
            .any(|x| x.category == *c && (!x.phone.is_empty() || !x.email.is_empty()))
    })
    .map(|(_, ja)| ja)
    .collect();
    if missing.is_empty() {
        Observation::new(
            true,
            format!(
                "連絡体制図に {} 件（組織内・事業者・厚生労働省・警察すべて連絡先あり）",
                f.contacts.len()
            ),
            "Contact chart covers staff, vendors, MHLW and police",
            f.now,
        )
    } else {
        Observation::new(
            false,
            format!("連絡体制図に連絡先のない区分: {}", missing.join("、")),
            format!("Contact chart lacks: {}", missing.join(", ")),
            f.now,
        )
    }
}
