//! Account administration (JAHIS 09-001 §6.2(1)(2)): accounts are disabled, never deleted;
//! a password reset records how the person's identity was checked.

use crate::ErrorCode;
use std::sync::Arc;

use mamori_domain::audit::actions;
use mamori_domain::password::{check_strength, is_locked};
use mamori_domain::permission::Action;
use mamori_store::Account;
use serde::{Deserialize, Serialize};

use crate::crypto::{hash_password, random_token, token_hash};
use crate::error::{Result, ServiceError};
use crate::instance::validate_login;
use crate::{Principal, Service, Target};

#[derive(Debug, Clone, Deserialize)]
pub struct NewAccount {
    pub login: String,
    pub display_name: String,
    pub role: String,
    /// Initial password; the person must change it at first login. Not used for service accounts.
    #[serde(default)]
    pub password: Option<String>,
    /// A service account (an EHR integration) logs in only with API tokens.
    #[serde(default)]
    pub service: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct AccountView {
    pub id: i64,
    pub login: String,
    pub display_name: String,
    pub role: String,
    pub service: bool,
    pub active: bool,
    pub locked: bool,
    pub must_change_password: bool,
    pub last_login_at: Option<i64>,
    pub created_at: i64,
}

impl AccountView {
    pub fn of(a: &Account, now: i64) -> Self {
        Self {
            id: a.id,
            login: a.login.clone(),
            display_name: a.display_name.clone(),
            role: a.role.clone(),
            service: a.is_service,
            active: a.active,
            locked: is_locked(a.locked_until, now),
            must_change_password: a.must_change_password,
            last_login_at: a.last_login_at,
            created_at: a.created_at,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct BroadRole {
    pub code: String,
    pub name_ja: String,
    /// Grants beyond the built-in template of the same code.
    pub extra_grants: Vec<String>,
    /// Active accounts holding the role.
    pub accounts: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Hygiene {
    pub unused_days: u32,
    pub unused: Vec<AccountView>,
    pub expired_passwords: Vec<AccountView>,
    pub broad_roles: Vec<BroadRole>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StaffEntry {
    pub id: i64,
    pub login: String,
    pub display_name: String,
    pub role: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct IssuedToken {
    pub token_id: String,
    pub token: String,
    pub expires_at: Option<i64>,
}

/// How an administrator checked someone's identity before acting for them (reset, lost
/// factor): required, and kept in the ledger (JAHIS 09-001 §6.2(2)).
pub(crate) fn identity_check_note(text: &str) -> Result<String> {
    let check = text.trim();
    if check.is_empty() || check.chars().count() > 500 {
        return Err(ServiceError::invalid(
            "identity_check",
            "本人確認の方法を500文字以内で記録してください",
        ));
    }
    Ok(check.to_owned())
}

fn require_admin(p: &Principal) -> Result<()> {
    p.require(Action::AdminAccounts, None)
}

/// An API token expires after this many days unless issued for fewer (or more, up to the
/// maximum): a forgotten integration's token does not work for ever.
pub const TOKEN_DEFAULT_DAYS: u32 = 90;
pub const TOKEN_MAX_DAYS: u32 = 397;
/// The scope that lets a token print and export (evidence bundles, print views).
pub const SCOPE_EXPORT: &str = "export";
pub const TOKEN_SCOPES: &[&str] = &[SCOPE_EXPORT];

fn account_in(r: &mamori_store::Reader<'_>, id: i64) -> Result<Account> {
    r.account(id)?
        .ok_or_else(|| ServiceError::not_found("アカウント"))
}

impl Service {
    pub async fn create_account(
        self: &Arc<Self>,
        p: &Principal,
        mut new: NewAccount,
    ) -> Result<AccountView> {
        // One spelling per name: `Dr.Tanaka` is `dr.tanaka`, and taken if that is.
        new.login = crate::instance::normalise_login(&new.login);
        let hash = match (&new.password, new.service) {
            (_, true) => None,
            (Some(pw), false) => {
                check_strength(&self.config.password, &new.login, pw)
                    .map_err(|e| ServiceError::from(e).with_field("password"))?;
                let pw = pw.clone();
                Some(self.hash_gate.run(move || hash_password(&pw)).await?)
            }
            (None, false) => {
                return Err(ServiceError::invalid(
                    "password",
                    "初期パスワードを入力してください",
                ));
            }
        };
        let now = self.now();
        let mut t = Target::default();
        t.detail("login", new.login.clone());
        t.detail("role", new.role.clone());
        let pc = p.clone();
        self.write_audited(Some(p), actions::ACCOUNT_CREATED, t, move |_, tx, t| {
            require_admin(&pc)?;
            validate_login(&new.login)?;
            let name = new.display_name.trim();
            if name.is_empty() || name.chars().count() > 100 {
                return Err(ServiceError::invalid("display_name", "氏名を100文字以内で入力してください"));
            }
            let r = tx.read();
            if r.role(&new.role)?.is_none() {
                return Err(ServiceError::invalid("role", "職種（ロール）が存在しません"));
            }
            if r.account_by_login(&new.login)?.is_some() {
                return Err(ServiceError::new(
                    ErrorCode::LoginTaken,
                    "このログインIDは既に使われています（無効化された利用者のIDも再利用できません）",
                ));
            }
            let id = tx.insert_account(
                &new.login,
                name,
                &new.role,
                new.service,
                hash.as_deref(),
                !new.service,
                now,
                Some(pc.account.id),
            )?;
            t.detail("account", id);
            let a = tx.read().account(id)?.ok_or_else(|| ServiceError::internal("account vanished"))?;
            Ok(AccountView::of(&a, now))
        })
        .await
    }

    pub async fn list_accounts(self: &Arc<Self>, p: &Principal) -> Result<Vec<AccountView>> {
        let pc = p.clone();
        let now = self.now();
        self.read_audited(p, actions::ACCOUNT_LIST, move |_, r, _| {
            require_admin(&pc)?;
            Ok(r.accounts()?
                .iter()
                .map(|a| AccountView::of(a, now))
                .collect())
        })
        .await
    }

    /// Who is who, for choosing a staff member in audit searches: auditors need it without
    /// the right to administer accounts.
    pub async fn staff_directory(self: &Arc<Self>, p: &Principal) -> Result<Vec<StaffEntry>> {
        let pc = p.clone();
        self.read_audited(p, actions::ACCOUNT_LIST, move |_, r, t| {
            t.detail("query", "staff_directory");
            pc.require(Action::ReadAudit, None)
                .or_else(|_| require_admin(&pc))?;
            Ok(r.accounts()?
                .into_iter()
                .map(|a| StaffEntry {
                    id: a.id,
                    login: a.login,
                    display_name: a.display_name,
                    role: a.role,
                })
                .collect())
        })
        .await
    }

    /// What an administrator should look at (JAHIS 09-001 §6.2(1); checklist: 不要なアカウン
    /// トの削除): active accounts unused for `days` days, passwords past the policy's age, and
    /// roles granted more than their built-in template.
    pub async fn account_hygiene(self: &Arc<Self>, p: &Principal, days: u32) -> Result<Hygiene> {
        let pc = p.clone();
        let now = self.now();
        let cutoff = now - i64::from(days) * 86_400_000;
        let policy = self.config.password.clone();
        self.read_audited(p, actions::ACCOUNT_LIST, move |_, r, t| {
            t.detail("query", "hygiene");
            t.detail("unused_days", days);
            require_admin(&pc)?;
            let accounts = r.accounts()?;
            let view = |a: &Account| AccountView::of(a, now);
            let templates = mamori_domain::permission::default_roles();
            let broad_roles = r
                .roles()?
                .into_iter()
                .filter_map(|role| {
                    let t = templates.iter().find(|t| t.code == role.code)?;
                    let extra = role.extra_grants(t);
                    (!extra.is_empty()).then(|| BroadRole {
                        code: role.code.clone(),
                        name_ja: role.name_ja.clone(),
                        extra_grants: extra.iter().map(ToString::to_string).collect(),
                        accounts: accounts
                            .iter()
                            .filter(|a| a.active && a.role == role.code)
                            .count(),
                    })
                })
                .collect();
            Ok(Hygiene {
                unused_days: days,
                unused: accounts
                    .iter()
                    .filter(|a| {
                        a.active
                            && !a.is_service
                            && a.last_login_at.unwrap_or(a.created_at) < cutoff
                    })
                    .map(view)
                    .collect(),
                expired_passwords: accounts
                    .iter()
                    .filter(|a| {
                        a.active
                            && !a.is_service
                            && mamori_domain::password::password_expired(
                                &policy,
                                a.password_changed_at,
                                now,
                            )
                    })
                    .map(view)
                    .collect(),
                broad_roles,
            })
        })
        .await
    }

    /// Active accounts with no login for `days` days (never-used accounts count from creation).
    pub async fn unused_accounts(
        self: &Arc<Self>,
        p: &Principal,
        days: u32,
    ) -> Result<Vec<AccountView>> {
        let pc = p.clone();
        let now = self.now();
        let cutoff = now - i64::from(days) * 86_400_000;
        self.read_audited(p, actions::ACCOUNT_LIST, move |_, r, t| {
            require_admin(&pc)?;
            t.detail("unused_days", days);
            Ok(r.accounts()?
                .iter()
                .filter(|a| {
                    a.active && !a.is_service && a.last_login_at.unwrap_or(a.created_at) < cutoff
                })
                .map(|a| AccountView::of(a, now))
                .collect())
        })
        .await
    }

    async fn admin_change(
        self: &Arc<Self>,
        p: &Principal,
        id: i64,
        action: &'static str,
        change: impl Fn(&mut mamori_store::WriteTx<'_>, &Account) -> Result<()> + Send + 'static,
    ) -> Result<AccountView> {
        let pc = p.clone();
        let now = self.now();
        let mut t = Target::default();
        t.detail("account", id);
        self.write_audited(Some(p), action, t, move |_, tx, _| {
            require_admin(&pc)?;
            let a = account_in(&tx.read(), id)?;
            change(tx, &a)?;
            let a = account_in(&tx.read(), id)?;
            Ok(AccountView::of(&a, now))
        })
        .await
    }

    pub async fn set_account_active(
        self: &Arc<Self>,
        p: &Principal,
        id: i64,
        active: bool,
    ) -> Result<AccountView> {
        let me = p.account.id;
        let now = self.now();
        let action = if active {
            actions::ACCOUNT_ENABLED
        } else {
            actions::ACCOUNT_DISABLED
        };
        self.admin_change(p, id, action, move |tx, _| {
            if id == me && !active {
                return Err(ServiceError::new(
                    ErrorCode::InvalidState,
                    "自分自身のアカウントは無効化できません",
                ));
            }
            tx.set_account_active(id, active)?;
            if !active {
                tx.revoke_sessions_of(id, true, now)?;
                // A disabled person's signing key signs no more; re-enabled, they make a new one.
                tx.retire_signing_certs_of(id, now)?;
            }
            Ok(())
        })
        .await
        .inspect(|_| {
            if !active {
                self.close_signing_windows(Some(id), None);
            }
        })
    }

    pub async fn unlock_account(self: &Arc<Self>, p: &Principal, id: i64) -> Result<AccountView> {
        self.admin_change(p, id, actions::ACCOUNT_UNLOCKED, move |tx, _| {
            Ok(tx.unlock_account(id)?)
        })
        .await
    }

    pub async fn set_account_role(
        self: &Arc<Self>,
        p: &Principal,
        id: i64,
        role: String,
    ) -> Result<AccountView> {
        let me = p.account.id;
        self.admin_change(p, id, actions::ACCOUNT_ROLE_CHANGED, move |tx, _| {
            if id == me {
                return Err(ServiceError::new(
                    ErrorCode::InvalidState,
                    "自分自身の職種は変更できません",
                ));
            }
            if tx.read().role(&role)?.is_none() {
                return Err(ServiceError::invalid(
                    "role",
                    "職種（ロール）が存在しません",
                ));
            }
            tx.set_account_role(id, &role)?;
            Ok(())
        })
        .await
    }

    /// Sets a temporary password the person must change at next login, recording how their
    /// identity was checked (JAHIS 09-001 §6.2(2): 本人確認の方法を台帳に記載).
    pub async fn reset_password(
        self: &Arc<Self>,
        p: &Principal,
        id: i64,
        temporary: String,
        identity_check: String,
    ) -> Result<AccountView> {
        let check = identity_check_note(&identity_check)?;
        let policy = self.config.password.clone();
        let hash = self
            .hash_gate
            .run({
                let t = temporary.clone();
                move || hash_password(&t)
            })
            .await?;
        let by = p.account.id;
        let now = self.now();
        self.admin_change(p, id, actions::ACCOUNT_PASSWORD_RESET, move |tx, a| {
            if a.is_service {
                return Err(ServiceError::new(
                    ErrorCode::InvalidState,
                    "サービスアカウントにはパスワードがありません",
                ));
            }
            check_strength(&policy, &a.login, &temporary)
                .map_err(|e| ServiceError::from(e).with_field("password"))?;
            tx.set_password(id, &hash, true, now)?;
            tx.record_password_reset(id, by, &check, now)?;
            // New credentials re-arm a used emergency account.
            tx.rearm_emergency_account(id)?;
            tx.revoke_sessions_of(id, false, now)?;
            Ok(())
        })
        .await
    }

    /// Issues an API token for a service account (shown once; only its hash is kept).
    pub async fn issue_token(
        self: &Arc<Self>,
        p: &Principal,
        id: i64,
        name: String,
        days: Option<u32>,
        scopes: Vec<String>,
    ) -> Result<IssuedToken> {
        let token = random_token();
        let th = token_hash(&token);
        let now = self.now();
        let days = days.unwrap_or(TOKEN_DEFAULT_DAYS);
        let expires_at = Some(now + i64::from(days) * 86_400_000);
        let mut scopes: Vec<String> = scopes
            .iter()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        scopes.sort();
        scopes.dedup();
        let pc = p.clone();
        let mut t = Target::default();
        t.detail("account", id);
        t.detail("token_id", th.clone());
        t.detail("days", days);
        t.detail("scopes", scopes.clone());
        let th2 = th.clone();
        self.write_audited(Some(p), actions::TOKEN_CREATED, t, move |_, tx, _| {
            require_admin(&pc)?;
            if days == 0 || days > TOKEN_MAX_DAYS {
                return Err(ServiceError::invalid(
                    "days",
                    format!("有効期間は1〜{TOKEN_MAX_DAYS}日で指定してください"),
                ));
            }
            if let Some(bad) = scopes.iter().find(|s| !TOKEN_SCOPES.contains(&s.as_str())) {
                return Err(ServiceError::invalid(
                    "scopes",
                    format!("スコープ「{bad}」はありません（使えるのは export だけです）"),
                ));
            }
            let a = account_in(&tx.read(), id)?;
            if !a.is_service || !a.active {
                return Err(ServiceError::new(
                    ErrorCode::InvalidState,
                    "APIトークンは有効なサービスアカウントにだけ発行できます",
                ));
            }
            let name = name.trim();
            if name.is_empty() || name.chars().count() > 100 {
                return Err(ServiceError::invalid(
                    "name",
                    "トークンの名前を100文字以内で入力してください",
                ));
            }
            let scopes = (!scopes.is_empty()).then(|| scopes.join(","));
            tx.insert_session(
                &th2,
                id,
                true,
                Some(name),
                &random_token(),
                now,
                expires_at,
                scopes.as_deref(),
            )?;
            Ok(())
        })
        .await?;
        Ok(IssuedToken {
            token_id: th,
            token,
            expires_at,
        })
    }

    pub async fn revoke_token(self: &Arc<Self>, p: &Principal, token_id: String) -> Result<()> {
        let pc = p.clone();
        let now = self.now();
        let mut t = Target::default();
        t.detail("token_id", token_id.clone());
        self.write_audited(Some(p), actions::TOKEN_REVOKED, t, move |_, tx, _| {
            require_admin(&pc)?;
            let s = tx.read().session(&token_id)?.filter(|s| s.is_api_token);
            if s.is_none() || !tx.revoke_session(&token_id, now)? {
                return Err(ServiceError::not_found("有効なAPIトークン"));
            }
            Ok(())
        })
        .await
    }
}
