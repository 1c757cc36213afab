//! Second factor (JAHIS 09-001 §6.2(3); guideline 6.0: 二要素認証): TOTP enrolment with
//! recovery codes, the second step of signing in, and the facility's per-role requirement.

use crate::ErrorCode;
use std::sync::Arc;

use mamori_domain::audit::{ActorRef, AuditEvent, Outcome, actions};
use mamori_domain::permission::Action;
use mamori_domain::totp;
use serde::Serialize;

use crate::crypto::{random_bytes, recovery_code, token_hash, verify_password};
use crate::error::{Result, ServiceError};
use crate::{Principal, Service, Target};

pub const RECOVERY_CODES: usize = 10;

#[derive(Debug, Clone, Serialize)]
pub struct SecondFactorStatus {
    pub totp_enabled: bool,
    /// Passkeys registered (each is a second factor on its own).
    pub passkeys: usize,
    pub required_by_role: bool,
    pub recovery_codes_left: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct TotpEnrolment {
    /// Base32, for typing into an app by hand.
    pub secret: String,
    /// `otpauth://` URI, for the QR code.
    pub uri: String,
}

/// A session that has passed the password of an account with a second factor: only that
/// factor completes it.
pub(crate) fn second_factor_due() -> ServiceError {
    ServiceError::new(
        ErrorCode::SecondFactorRequired,
        "2要素認証の確認を先に完了してください。登録済みの認証方法（認証アプリ・パスキー・回復コード）で確認してから設定を変更できます",
    )
}

pub(crate) fn locked_session() -> ServiceError {
    ServiceError::new(
        ErrorCode::SessionLocked,
        "画面がロックされています。パスワードを入力すると、続きから再開できます",
    )
}

fn wrong_code() -> ServiceError {
    ServiceError::invalid("code", "確認コードが正しくありません")
}

fn normalise_recovery(code: &str) -> String {
    code.trim().to_ascii_lowercase()
}

/// Accepts a code from the authenticator app (each time step once) or an unused recovery code
/// (used up), in the caller's transaction; which one it was, or `None`.
pub(crate) fn accept_code(
    tx: &mut mamori_store::WriteTx<'_>,
    id: i64,
    code: &str,
    now: i64,
) -> Result<Option<&'static str>> {
    if let Some(row) = tx.read().totp(id)?.filter(|r| r.enabled_at.is_some()) {
        let secret = totp::decode_secret(&row.secret)
            .ok_or_else(|| ServiceError::internal("stored TOTP secret is not base32"))?;
        if let Some(step) = totp::accept(&secret, code, now, row.last_step) {
            tx.set_totp_step(id, step)?;
            return Ok(Some("totp"));
        }
    }
    if code.trim().len() > totp::DIGITS
        && tx.use_recovery_code(id, &token_hash(&normalise_recovery(code)), now)?
    {
        return Ok(Some("recovery_code"));
    }
    Ok(None)
}

enum Checked {
    Ok,
    Wrong { locked_until: Option<i64> },
}

impl Service {
    pub async fn second_factor_status(
        self: &Arc<Self>,
        p: &Principal,
    ) -> Result<SecondFactorStatus> {
        let (id, role) = (p.account.id, p.role.code.clone());
        Ok(self
            .store
            .read(move |r| {
                Ok(SecondFactorStatus {
                    totp_enabled: r.totp(id)?.is_some_and(|t| t.enabled_at.is_some()),
                    passkeys: r.passkeys(id)?.len(),
                    required_by_role: r.role_requires_two_factor(&role)?,
                    recovery_codes_left: r.recovery_codes_left(id)?,
                })
            })
            .await?)
    }

    /// Whether the account has a second factor in force (TOTP or a passkey).
    pub(crate) async fn has_second_factor(self: &Arc<Self>, id: i64) -> Result<bool> {
        Ok(self
            .store
            .read(move |r| {
                Ok(r.totp(id)?.is_some_and(|t| t.enabled_at.is_some())
                    || !r.passkeys(id)?.is_empty())
            })
            .await?)
    }

    /// Whether this session may enrol a second factor. A full sign-in may. A session that
    /// has passed only the password may enrol only the *first* factor of someone whose role
    /// requires one: where a factor exists, the password alone must not be able to add (and
    /// so replace) it. A locked screen enrols nothing. A refusal is recorded in the ledger.
    pub(crate) async fn enrolment_gate(
        self: &Arc<Self>,
        p: &Principal,
        method: &'static str,
    ) -> Result<()> {
        let refusal = if p.locked {
            Some(locked_session())
        } else if p.second_factor_pending {
            self.has_second_factor(p.account.id)
                .await?
                .then(second_factor_due)
        } else {
            None
        };
        let Some(e) = refusal else { return Ok(()) };
        let mut t = Target::default();
        t.detail("method", method);
        let ev = self.refusal_event(Some(p), actions::SECOND_FACTOR_ENROLLED, &t, &e);
        self.store
            .write(move |tx| tx.append(&ev).map_err(ServiceError::from))
            .await?;
        Err(e)
    }

    /// Starts a TOTP enrolment: a fresh secret, not in force until `confirm_totp`.
    pub async fn begin_totp(self: &Arc<Self>, p: &Principal) -> Result<TotpEnrolment> {
        let id = p.account.id;
        self.enrolment_gate(p, "totp").await?;
        if self.second_factor_status(p).await?.totp_enabled {
            return Err(ServiceError::new(
                ErrorCode::InvalidState,
                "2要素認証は既に設定されています。設定し直すには、先に解除してください",
            ));
        }
        let secret = totp::encode_secret(&random_bytes::<{ totp::SECRET_BYTES }>());
        let s2 = secret.clone();
        self.store
            .write(move |tx| tx.begin_totp(id, &s2).map_err(ServiceError::from))
            .await?;
        Ok(TotpEnrolment {
            uri: totp::otpauth_uri(self.facility(), &p.account.login, &secret),
            secret,
        })
    }

    /// Confirms an enrolment with a first code from the app; for someone's first second factor,
    /// returns the recovery codes (shown once, kept only as hashes). A session waiting for
    /// enrolment becomes a full sign-in.
    pub async fn confirm_totp(self: &Arc<Self>, p: &Principal, code: &str) -> Result<Vec<String>> {
        self.enrolment_gate(p, "totp").await?;
        let id = p.account.id;
        let now = self.now();
        let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| recovery_code()).collect();
        let hashes: Vec<String> = codes.iter().map(|c| token_hash(c)).collect();
        let code = code.to_owned();
        let pending = p.second_factor_pending.then(|| p.token_hash.clone());
        let mut t = Target::default();
        t.detail("method", "totp");
        let first = self
            .write_audited(
                Some(p),
                actions::SECOND_FACTOR_ENROLLED,
                t,
                move |_, tx, _| {
                    let first = tx.read().passkeys(id)?.is_empty();
                    // Checked again in the transaction: a passkey registered meanwhile is a factor.
                    if pending.is_some() && !first {
                        return Err(second_factor_due());
                    }
                    let row = tx
                        .read()
                        .totp(id)?
                        .filter(|r| r.enabled_at.is_none())
                        .ok_or_else(|| {
                            ServiceError::new(
                                ErrorCode::InvalidState,
                                "登録を始めてからコードを入力してください",
                            )
                        })?;
                    let secret = totp::decode_secret(&row.secret).ok_or_else(|| {
                        ServiceError::internal("stored TOTP secret is not base32")
                    })?;
                    let step = totp::accept(&secret, &code, now, 0).ok_or_else(wrong_code)?;
                    tx.enable_totp(id, step, now)?;
                    if first {
                        tx.replace_recovery_codes(id, &hashes)?;
                    }
                    if let Some(th) = &pending {
                        tx.set_session_second_factor_pending(th, false)?;
                        tx.set_login_success(id, now)?;
                    }
                    Ok(first)
                },
            )
            .await?;
        Ok(if first { codes } else { Vec::new() })
    }

    /// The second step of signing in: a code from the app, or one recovery code.
    pub async fn complete_second_factor(self: &Arc<Self>, p: &Principal, code: &str) -> Result<()> {
        if !p.second_factor_pending {
            return Err(ServiceError::new(
                ErrorCode::InvalidState,
                "このセッションは2要素認証を待っていません",
            ));
        }
        let (id, th, now) = (p.account.id, p.token_hash.clone(), self.now());
        let lockout = self.config.lockout.clone();
        let actor = ActorRef {
            id,
            login: p.account.login.clone(),
            role: p.role.code.clone(),
        };
        let client = p.client.clone();
        let code = code.to_owned();
        let checked = self
            .store
            .write(move |tx| -> Result<Checked> {
                let acc = tx
                    .read()
                    .account(id)?
                    .ok_or_else(ServiceError::unauthenticated)?;
                let method = accept_code(tx, id, &code, now)?;
                let event = |action, outcome| {
                    let mut ev = AuditEvent::new(now, Some(actor.clone()), action, outcome);
                    ev.client = client.clone();
                    ev
                };
                match method {
                    Some(m) => {
                        tx.set_session_second_factor_pending(&th, false)?;
                        tx.set_login_success(id, now)?;
                        let mut ev = event(actions::LOGIN, Outcome::Ok);
                        ev.detail = serde_json::json!({ "second_factor": m });
                        tx.append(&ev)?;
                        Ok(Checked::Ok)
                    }
                    None => {
                        let lock = crate::access::guard::count_failure(tx, id, &lockout, now)?;
                        let mut ev = event(actions::LOGIN_FAILED, Outcome::Failed);
                        ev.detail = serde_json::json!({
                            "login": acc.login, "reason": "wrong_second_factor", "locked": lock.is_some()
                        });
                        tx.append(&ev)?;
                        if lock.is_some() {
                            tx.revoke_session(&th, now)?;
                        }
                        Ok(Checked::Wrong { locked_until: lock })
                    }
                }
            })
            .await?;
        match checked {
            Checked::Ok => Ok(()),
            Checked::Wrong {
                locked_until: Some(_),
            } => Err(ServiceError::new(
                ErrorCode::AccountLocked,
                "確認コードの誤りが続いたため、アカウントがロックされました。システム管理者に連絡してください",
            )),
            Checked::Wrong { locked_until: None } => Err(wrong_code()),
        }
    }

    /// Removes one's own second factor (password required); refused where the role needs one.
    pub async fn remove_own_totp(self: &Arc<Self>, p: &Principal, password: &str) -> Result<()> {
        let status = self.second_factor_status(p).await?;
        if status.required_by_role && status.passkeys == 0 {
            return Err(ServiceError::new(
                ErrorCode::InvalidState,
                "この職種では2要素認証が必須のため、解除できません",
            ));
        }
        let (pw, phc) = (
            password.to_owned(),
            p.account.password_hash.clone().unwrap_or_default(),
        );
        let ok = self
            .hash_gate
            .run(move || verify_password(&pw, &phc))
            .await?;
        if !ok {
            return Err(ServiceError::invalid(
                "password",
                "パスワードが正しくありません",
            ));
        }
        let id = p.account.id;
        self.write_audited(
            Some(p),
            actions::SECOND_FACTOR_REMOVED,
            Target::default(),
            move |_, tx, _| Ok(tx.remove_second_factor(id)?),
        )
        .await
    }

    /// An administrator clears someone's second factor (lost phone) after checking who they
    /// are; they enrol again at their next sign-in if their role requires it.
    pub async fn reset_second_factor(
        self: &Arc<Self>,
        p: &Principal,
        id: i64,
        identity_check: String,
    ) -> Result<()> {
        let check = crate::access::accounts::identity_check_note(&identity_check)?;
        let pc = p.clone();
        let now = self.now();
        let mut t = Target::default();
        t.detail("account", id);
        t.detail("identity_check", check);
        self.write_audited(
            Some(p),
            actions::ACCOUNT_SECOND_FACTOR_RESET,
            t,
            move |_, tx, _| {
                pc.require(Action::AdminAccounts, None)?;
                tx.read()
                    .account(id)?
                    .ok_or_else(|| ServiceError::not_found("アカウント"))?;
                tx.remove_second_factor(id)?;
                tx.delete_passkeys(id, None)?;
                tx.revoke_sessions_of(id, false, now)?;
                Ok(())
            },
        )
        .await
    }

    /// The facility policy: whether members of `role` must use a second factor.
    pub async fn set_role_two_factor(
        self: &Arc<Self>,
        p: &Principal,
        role: String,
        required: bool,
    ) -> Result<()> {
        self.set_role_policy(p, role, required, actions::ROLE_TWO_FACTOR, |tx, r, on| {
            tx.set_role_two_factor(r, on)
        })
        .await
    }

    /// One per-role switch, set by an administrator, for a role that exists (ledgered).
    async fn set_role_policy(
        self: &Arc<Self>,
        p: &Principal,
        role: String,
        required: bool,
        action: &'static str,
        set: impl Fn(
            &mut mamori_store::WriteTx<'_>,
            &str,
            bool,
        ) -> std::result::Result<(), mamori_store::StoreError>
        + Send
        + 'static,
    ) -> Result<()> {
        let pc = p.clone();
        let mut t = Target::default();
        t.detail("role", role.clone());
        t.detail("required", required);
        self.write_audited(Some(p), action, t, move |_, tx, _| {
            pc.require(Action::AdminSettings, None)?;
            if tx.read().role(&role)?.is_none() {
                return Err(ServiceError::not_found("職種"));
            }
            Ok(set(tx, &role, required)?)
        })
        .await
    }

    /// The facility policy: whether members of `role` connect only with a client certificate
    /// of the facility CA (a device's or their own), on top of `serve --client-cert optional`.
    pub async fn set_role_client_cert(
        self: &Arc<Self>,
        p: &Principal,
        role: String,
        required: bool,
    ) -> Result<()> {
        self.set_role_policy(p, role, required, actions::ROLE_CLIENT_CERT, |tx, r, on| {
            tx.set_role_client_cert(r, on)
        })
        .await
    }

    pub async fn client_cert_roles(self: &Arc<Self>) -> Result<Vec<String>> {
        Ok(self.store.read(|r| r.client_cert_roles()).await?)
    }

    pub async fn two_factor_roles(self: &Arc<Self>) -> Result<Vec<String>> {
        Ok(self.store.read(|r| r.two_factor_roles()).await?)
    }
}
