//! What mamori can see of its own state, as proposed answers to checklist items. Each
//! observation says what was seen and when; none is a constant.

use std::collections::{HashMap, HashSet};

use mamori_compliance::Observation;
use mamori_compliance::assets::{self, Asset};
use mamori_compliance::registers::{self, Entry, Register};
use mamori_domain::permission::Action;
use mamori_store::Reader;

use crate::Service;
use crate::error::Result;
use crate::ledger::audit::jst;

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

impl Service {
    /// Every observation mamori can make now, keyed by the catalogue's `observe` names.
    pub(crate) fn observe_in(&self, r: &Reader<'_>) -> Result<HashMap<&'static str, Observation>> {
        let now = self.now();
        let today = crate::ledger::audit::jst_date(now);
        let mut o: HashMap<&'static str, Observation> = HashMap::new();
        let profile = profile_in(r)?;

        o.insert(
            "security_officer",
            if profile.security_officer.trim().is_empty() {
                Observation::new(
                    false,
                    "安全管理責任者が設定されていません（自己点検 › 体制）",
                    "No security officer is named",
                    now,
                )
            } else {
                Observation::new(
                    true,
                    format!(
                        "安全管理責任者: {}（mamori の設定）",
                        profile.security_officer
                    ),
                    format!("Security officer: {}", profile.security_officer),
                    now,
                )
            },
        );
        for (key, date, what, what_en) in [
            (
                "operating_rules",
                &profile.rules_adopted_on,
                "運用管理規程",
                "Operating rules",
            ),
            ("bcp", &profile.bcp_adopted_on, "BCP（事業継続計画）", "BCP"),
        ] {
            o.insert(
                key,
                if date.is_empty() {
                    Observation::new(
                        false,
                        format!(
                            "{what}の制定日が記録されていません（草案は mamori が作成できます）"
                        ),
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
                },
            );
        }

        // The asset ledger.
        let rows = r.assets()?;
        let list: Vec<Asset> = rows.iter().map(|a| a.asset.clone()).collect();
        let with_doc: HashSet<String> = rows
            .iter()
            .filter(|a| a.mds_sha256.is_some())
            .map(|a| a.asset.name.clone())
            .collect();
        o.insert("asset_ledger", assets::observe_ledger(&list, now));
        let windows = r.maintenance_windows(None)?;
        if let Some(mut x) = assets::observe_remote_maintenance(&list, now) {
            x.evidence_ja
                .push_str(&format!("。mamori の保守作業申請 {} 件", windows.len()));
            o.insert("remote_maintenance", x);
        }
        if let Some(x) = assets::observe_mds(&list, &with_doc, now) {
            o.insert("mds_sds", x);
        }
        for (key, kinds) in [
            ("patches_server", &["server"][..]),
            ("patches_pc", &["pc"][..]),
            ("patches_network", &["network"][..]),
            ("patches_all", &["server", "pc", "network"][..]),
        ] {
            if let Some(x) = assets::observe_patches(&list, kinds, &today, PATCH_DAYS, now) {
                o.insert(key, x);
            }
        }
        if let Some(x) = assets::observe_connection_restriction(&list, now) {
            o.insert("connection_restriction", x);
        }

        // Accounts and roles.
        let accounts = r.accounts()?;
        let roles = r.roles()?;
        let templates = mamori_domain::permission::default_roles();
        let broad: Vec<String> = roles
            .iter()
            .filter(|role| {
                templates
                    .iter()
                    .find(|t| t.code == role.code)
                    .is_some_and(|t| !role.extra_grants(t).is_empty())
            })
            .map(|role| role.name_ja.clone())
            .collect();
        let humans: Vec<&mamori_store::Account> = accounts
            .iter()
            .filter(|a| a.active && !a.is_service)
            .collect();
        let admins: Vec<String> = humans
            .iter()
            .filter(|a| {
                roles.iter().find(|r| r.code == a.role).is_some_and(|r| {
                    r.require(Action::AdminAccounts, None).is_ok()
                        || r.require(Action::AdminSettings, None).is_ok()
                })
            })
            .map(|a| format!("{}（{}）", a.display_name, a.login))
            .collect();
        let in_use: HashSet<&str> = humans.iter().map(|a| a.role.as_str()).collect();
        // Roles the facility defined itself have no template to be measured against.
        let own: Vec<String> = roles
            .iter()
            .filter(|role| !templates.iter().any(|t| t.code == role.code))
            .map(|role| role.name_ja.clone())
            .collect();
        let observation = if broad.is_empty() {
            Observation::new(
                true,
                format!(
                    "職種 {} 種類の権限を設定（利用中 {} 種類）。管理者権限: {}",
                    roles.len(),
                    in_use.len(),
                    names(&admins)
                ),
                format!(
                    "{} roles defined; administrators: {}",
                    roles.len(),
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
        o.insert(
            "role_access",
            if own.is_empty() {
                observation
            } else {
                observation.partly(format!(
                    "施設が定義した職種（{}）の権限が職務に見合うか（mamori のひな形がないため比べられません）",
                    own.join("、")
                ))
            },
        );
        let cutoff = now - UNUSED_DAYS * DAY;
        let unused: Vec<String> = humans
            .iter()
            .filter(|a| a.last_login_at.unwrap_or(a.created_at) < cutoff)
            .map(|a| a.login.clone())
            .collect();
        o.insert(
            "unused_accounts",
            if unused.is_empty() {
                Observation::new(true, format!("有効なアカウント {} 件のうち {UNUSED_DAYS} 日以上使われていないものはありません", humans.len()), format!("No active account unused for {UNUSED_DAYS} days"), now)
            } else {
                Observation::new(false, format!("{UNUSED_DAYS} 日以上使われていない有効なアカウント: {}", unused.join("、")), format!("Unused for {UNUSED_DAYS} days: {}", unused.join(", ")), now)
            },
        );
        let pw = &self.config.password;
        let required: HashSet<String> = r.two_factor_roles()?.into_iter().collect();
        let clinical_without: Vec<String> = roles
            .iter()
            .filter(|role| in_use.contains(role.code.as_str()) && !required.contains(&role.code))
            .map(|role| role.name_ja.clone())
            .collect();
        let two_factor_everywhere = clinical_without.is_empty();
        let expiry_ok = pw.max_age_days.is_some() || two_factor_everywhere || pw.min_length >= 13;
        o.insert(
            "password_policy",
            Observation::new(
                pw.min_length >= 8 && pw.require_mix && expiry_ok,
                format!(
                    "mamori のパスワード: {} 文字以上、英字・数字・記号の混在{}、直近 {} 個の再利用禁止、有効期限 {}{}",
                    pw.min_length,
                    if pw.require_mix { "を必須" } else { "を求めていない（password.require_mix）" },
                    pw.history,
                    pw.max_age_days.map_or("なし".into(), |d| format!("{d} 日")),
                    if pw.max_age_days.is_none() && !expiry_ok {
                        "（二要素認証が全職種必須でも13文字以上でもないため定期変更が必要）"
                    } else {
                        ""
                    }
                ),
                format!("mamori passwords: at least {} characters", pw.min_length),
                now,
            ),
        );
        o.insert(
            "two_factor",
            if two_factor_everywhere {
                Observation::new(
                    true,
                    format!("利用中の全職種（{} 種類）で二要素認証が必須", in_use.len()),
                    "Two factors required for every role in use",
                    now,
                )
            } else {
                Observation::new(
                    false,
                    format!(
                        "二要素認証が必須でない職種: {}",
                        clinical_without.join("、")
                    ),
                    format!(
                        "Two factors not required for: {}",
                        clinical_without.join(", ")
                    ),
                    now,
                )
            },
        );
        let s = &self.config.session;
        o.insert(
            "idle_lock",
            Observation::new(
                s.lock_minutes > 0 && s.lock_minutes <= 15,
                format!(
                    "操作がないと {} 分で画面ロック、{} 分でログアウト",
                    s.lock_minutes, s.idle_minutes
                ),
                format!("Screen locks after {} minutes idle", s.lock_minutes),
                now,
            ),
        );

        // The ledger and its reviews.
        let verification = self.last_verification_in(r)?;
        let (logs, finalisation) = match &verification {
            Some(v) if v.ok && now - v.at <= VERIFY_HOURS * 3_600_000 => (
                Observation::new(
                    true,
                    format!(
                        "全操作を改ざん検知台帳に記録。{} に全件検証し異常なし（台帳 {} 件・版 {} 件）",
                        jst(v.at),
                        v.ledger_entries,
                        v.versions
                    ),
                    format!("Ledger verified at {} with no problem", jst(v.at)),
                    now,
                ),
                Observation::new(
                    true,
                    format!(
                        "確定した記録は版として残り上書きされない。{} の検証で版 {} 件の履歴が台帳と一致",
                        jst(v.at),
                        v.versions
                    ),
                    format!("Version history verified at {}", jst(v.at)),
                    now,
                ),
            ),
            Some(v) if !v.ok => {
                let e = format!(
                    "{} の台帳検証で {} 件の問題が見つかりました",
                    jst(v.at),
                    v.problems_total
                );
                (
                    Observation::new(
                        false,
                        e.clone(),
                        "The last ledger verification found problems",
                        now,
                    ),
                    Observation::new(false, e, "The last verification found problems", now),
                )
            }
            Some(v) => {
                let e = format!(
                    "最後の台帳検証が {}（{VERIFY_HOURS} 時間以上前）です",
                    jst(v.at)
                );
                (
                    Observation::new(
                        false,
                        e.clone(),
                        "The ledger was not verified recently",
                        now,
                    ),
                    Observation::new(false, e, "Not verified recently", now),
                )
            }
            None => {
                let e = "台帳の検証がまだ行われていません（監査 › 台帳の検証）".to_owned();
                (
                    Observation::new(false, e.clone(), "The ledger has never been verified", now),
                    Observation::new(false, e, "Never verified", now),
                )
            }
        };
        o.insert("access_logs", logs);
        o.insert("finalisation", finalisation);
        let reviews = r.audit_events(&mamori_store::AuditFilter {
            action_prefix: Some(mamori_domain::audit::actions::AUDIT_QUERY.to_owned()),
            from: Some(now - REVIEW_DAYS * DAY),
            limit: 1,
            ..Default::default()
        })?;
        o.insert(
            "log_review",
            match reviews.first() {
                Some(e) => Observation::new(
                    true,
                    format!("直近の監査ログの確認: {}", jst(e.ts)),
                    format!("Audit trail last reviewed {}", jst(e.ts)),
                    now,
                ),
                None => Observation::new(
                    false,
                    format!("{REVIEW_DAYS} 日以内に監査ログを確認した記録がありません"),
                    format!("No audit review in {REVIEW_DAYS} days"),
                    now,
                ),
            },
        );

        // Time, backups, maintenance, emergencies, signatures, retention.
        if let Some(c) = self.clock_status() {
            o.insert(
                "clock_sync",
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
                },
            );
        }
        let b = self.backup_status_in(r)?;
        let blocking: Vec<String> = b
            .warnings
            .iter()
            .filter(|w| {
                !matches!(
                    w,
                    crate::backup::BackupWarning::NoOfflineCopy
                        | crate::backup::BackupWarning::OfflineOverdue { .. }
                )
            })
            .map(|w| w.message_ja())
            .collect();
        let last_ok = b.targets.iter().filter_map(|t| t.last_ok_at).max();
        let offline = b
            .last_offline
            .as_ref()
            .map_or("オフライン保管の記録なし".to_owned(), |x| {
                format!("オフライン保管 {}", jst(x.at))
            });
        o.insert(
            "backup_restore",
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
                    now,
                )
            } else {
                Observation::new(false, names(&blocking), "Backups or restore drills are missing or failing", now)
            },
        );
        // 「ネットワークから切り離した保管を含めて」: the same, and an offline copy that is not
        // overdue.
        let offline_warnings: Vec<String> = b
            .warnings
            .iter()
            .filter(|w| {
                matches!(
                    w,
                    crate::backup::BackupWarning::NoOfflineCopy
                        | crate::backup::BackupWarning::OfflineOverdue { .. }
                )
            })
            .map(|w| w.message_ja())
            .collect();
        let restore_ok = o
            .get("backup_restore")
            .is_some_and(|x| x.answer == mamori_compliance::Answer::Yes);
        o.insert(
            "backup_offline",
            if restore_ok && offline_warnings.is_empty() {
                Observation::new(
                    true,
                    format!(
                        "{}（{} 日ごとの切り離し保管の記録あり）",
                        o["backup_restore"].evidence_ja, self.config.backup.offline_days
                    ),
                    "Backups current, restore drill passed, offline copy recorded and not overdue",
                    now,
                )
            } else {
                let mut why = offline_warnings;
                if !restore_ok {
                    why.insert(0, o["backup_restore"].evidence_ja.clone());
                }
                Observation::new(
                    false,
                    names(&why),
                    "No recent offline copy, or backups or drills failing",
                    now,
                )
            },
        );
        let overdue: Vec<i64> = windows
            .iter()
            .filter(|w| {
                w.status == "approved" && w.acknowledged_at.is_none() && now - w.ends_at > 7 * DAY
            })
            .map(|w| w.id)
            .collect();
        o.insert(
            "maintenance_control",
            if overdue.is_empty() {
                Observation::new(true, format!("保守要員は承認された作業時間内だけログイン可能。作業申請 {} 件、報告の未確認（終了後7日超）なし", windows.len()), "Maintenance only inside approved windows; all reports acknowledged", now)
            } else {
                Observation::new(false, format!("終了後7日を過ぎて作業報告が確認されていない保守作業: {} 件", overdue.len()), format!("{} work reports not acknowledged", overdue.len()), now)
            },
        );
        let emergencies = r.emergency_accesses(None, None, true)?;
        let late: Vec<&mamori_store::EmergencyRow> = emergencies
            .iter()
            .filter(|e| now - e.started_at > 7 * DAY)
            .collect();
        o.insert(
            "emergency_access",
            if late.is_empty() {
                Observation::new(true, format!("非常時アクセスの手順あり（{} 分・理由必須・通知・事後確認）。7日を超えて未確認の使用なし（未確認 {} 件）", self.config.emergency.minutes, emergencies.len()), "Break-glass in place; none left unreviewed for more than 7 days", now)
            } else {
                Observation::new(false, format!("7日を超えて確認されていない非常時アクセス: {} 件", late.len()), format!("{} emergency uses unreviewed for more than 7 days", late.len()), now)
            },
        );
        let ev = self.evidence_status_in(r)?;
        o.insert(
            "signatures",
            if !ev.signing {
                Observation::new(
                    false,
                    "確定時の電子署名が無効です（[evidence] sign）",
                    "Signing at finalisation is off",
                    now,
                )
            } else if ev.warnings.is_empty() {
                Observation::new(
                    true,
                    format!(
                        "確定した版に電子署名とタイムスタンプ（{}）。長期保存用の証拠記録 {} 件",
                        ev.tsa, ev.families
                    ),
                    "Signed and time-stamped; evidence records current",
                    now,
                )
            } else {
                Observation::new(
                    false,
                    ev.warnings.join("。"),
                    "Signature or time-stamp warnings",
                    now,
                )
            },
        );
        // Each built-in kind keeps at least its statutory minimum (the template's); a kind
        // the facility added keeps at least the shortest statutory period, 2 years (医療法
        // 施行規則20条の諸記録).
        let kinds = r.kinds()?;
        let templates = mamori_domain::kinds::default_kinds();
        let short: Vec<String> = kinds
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
        o.insert(
            "retention",
            if short.is_empty() {
                Observation::new(
                    true,
                    format!(
                        "記録の種別 {} 種類すべて法定の保存期間以上（診療録 5 年ほか。短縮は不可）",
                        kinds.len()
                    ),
                    "Every record kind kept at least its statutory period",
                    now,
                )
            } else {
                Observation::new(
                    false,
                    format!("法定の保存期間より短い種別: {}", short.join("、")),
                    "Some kinds are kept less than the statutory period",
                    now,
                )
            },
        );
        let contacts = r.contacts()?;
        let missing: Vec<&str> = [
            ("internal", "組織内"),
            ("vendor", "事業者"),
            ("mhlw", "厚生労働省"),
            ("police", "警察"),
        ]
        .into_iter()
        .filter(|(c, _)| {
            !contacts
                .iter()
                .any(|x| x.category == *c && (!x.phone.is_empty() || !x.email.is_empty()))
        })
        .map(|(_, ja)| ja)
        .collect();
        o.insert(
            "contact_chart",
            if missing.is_empty() {
                Observation::new(
                    true,
                    format!(
                        "連絡体制図に {} 件（組織内・事業者・厚生労働省・警察すべて連絡先あり）",
                        contacts.len()
                    ),
                    "Contact chart covers staff, vendors, MHLW and police",
                    now,
                )
            } else {
                Observation::new(
                    false,
                    format!("連絡体制図に連絡先のない区分: {}", missing.join("、")),
                    format!("Contact chart lacks: {}", missing.join(", ")),
                    now,
                )
            },
        );

        // The facility's registers.
        let entries = |reg: Register| -> Result<Vec<Entry>> {
            Ok(r.register_entries(reg)?
                .into_iter()
                .map(|x| x.entry)
                .collect())
        };
        let active: Vec<String> = humans.iter().map(|a| a.login.clone()).collect();
        o.insert(
            "training",
            registers::observe_training(&entries(Register::Training)?, &active, &today, now),
        );
        let s3: Vec<String> = self
            .config
            .backup
            .target_list()
            .into_iter()
            .filter(|t| t.starts_with("s3://"))
            .collect();
        if let Some(x) = registers::observe_outsourcing(&entries(Register::Outsourcing)?, &s3, now)
        {
            o.insert("outsourcing", x);
        }
        o.insert(
            "take_out",
            registers::observe_take_out(&entries(Register::TakeOut)?, &today, now),
        );
        o.insert(
            "disposal",
            registers::observe_disposal(&entries(Register::Disposal)?, now),
        );
        Ok(o)
    }
}
