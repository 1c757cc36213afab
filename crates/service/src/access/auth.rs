//! Identification and authentication (JAHIS 09-001 §6.2(1)–(4), §7.1.1).

use crate::ErrorCode;
use std::sync::Arc;

use mamori_domain::audit::{ActorRef, AuditEvent, Outcome, actions};
use mamori_domain::password::{check_strength, is_locked, password_expired};
use serde::Serialize;

use crate::crypto::{burn_verify, ct_eq, hash_password, random_token, token_hash, verify_password};
use crate::error::{Result, ServiceError};
use crate::{Principal, Service, Target};

/// How a request's origin is written in the ledger: the address, and the client
/// certificate (serial and subject) when the TLS connection presented a verified one. The
/// web layer builds it with this function; the certificate gate below reads it.
pub fn client_label(ip: Option<String>, cert: Option<(&str, &str)>) -> Option<String> {
    match (ip, cert) {
        (ip, Some((serial, subject))) => Some(format!(
            "{} cert:{serial} {subject}",
            ip.unwrap_or_default()
        )),
        (ip, None) => ip,
    }
}

/// Whether the request came over a connection with a verified facility client certificate.
pub fn has_client_certificate(client: Option<&str>) -> bool {
    client.is_some_and(|c| c.contains(" cert:"))
}

fn client_certificate_required() -> ServiceError {
    ServiceError::new(
        ErrorCode::ClientCertificateRequired,
        "この職種は、施設の証明書（クライアント証明書）をインストールした端末からのみ利用できます。システム管理者に相談してください",
    )
}

#[derive(Debug, Clone, Serialize)]
pub struct LoginOk {
    pub token: String,
    pub csrf: String,
    pub account_id: i64,
    pub login: String,
    pub display_name: String,
    pub role: String,
    pub expires_in_idle_secs: u64,
    /// `totp`: send a code to `POST /auth/second-factor`; `enrol`: the role requires a second
    /// factor and none is set up yet. Until then the session opens nothing else.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub second_factor: Option<&'static str>,
}

/// The one answer to every failed sign-in before the password is verified. It names the lock
/// without saying whether it applies, so that it tells nobody which login names exist.
fn bad_credentials() -> ServiceError {
    ServiceError::new(
        ErrorCode::InvalidCredentials,
        "ログインIDまたはパスワードが正しくありません。誤りが続くとアカウントは一時的にロックされます（お急ぎの場合はシステム管理者にロック解除を依頼してください）",
    )
}

/// How a password change proves the account's second factor, where it has one.
pub enum SecondFactorProof<'a> {
    None,
    /// A code from the authenticator app, or a recovery code.
    Code(&'a str),
    /// The person's own session, signed in with both factors.
    Session(&'a Principal),
}

/// Longest login name written into the ledger as typed; longer ones are cut (with their length),
/// so that an unauthenticated request cannot fill the append-only ledger.
pub const LOGIN_IN_LEDGER: usize = 64;
/// Longest password checked. Longer ones are refused like a wrong password, before hashing.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// What a password check ends in, decided while the account's attempts are serialised.
enum Verdict {
    Ok(Box<mamori_store::Account>),
    /// The same answer, the same work and the same delay, whatever the reason.
    Refused,
    /// The right password of a disabled or service account (told only after the password).
    Disabled,
}

impl Service {
    /// Checks a login and password, applying delay and lockout, and records the attempt.
    /// Returns the account once the password is right (whatever else blocks the login).
    ///
    /// Every failure before the password is verified looks the same from outside — unknown
    /// name, locked account, wrong password, the guess that locks — in answer, hashing work
    /// and delay. Attempts on one account run one at a time and read the failure count inside
    /// that turn, so parallel guesses cannot slip past the lockout.
    async fn check_password(
        self: &Arc<Self>,
        login: &str,
        password: &str,
        client: Option<String>,
    ) -> Result<mamori_store::Account> {
        let key = crate::instance::normalise_login(login);
        let plausible = key.len() <= LOGIN_IN_LEDGER && password.len() <= MAX_PASSWORD_BYTES;
        let account = if plausible {
            let k = key.clone();
            self.store.read(move |r| r.account_by_login(&k)).await?
        } else {
            None
        };
        let _turn = match &account {
            Some(a) => Some(self.store.turn(&format!("sign-in {}", a.id)).await?),
            None => None,
        };
        let now = self.now();
        // Fresh, inside this account's turn: the failure count and lock others just wrote.
        let account = match account {
            Some(a) => self.store.read(move |r| r.account(a.id)).await?,
            None => None,
        };
        let recorded = mamori_domain::audit::clip(login, LOGIN_IN_LEDGER);
        let fail_event = |actor: Option<ActorRef>, reason: &str| {
            let mut ev = AuditEvent::new(now, actor, actions::LOGIN_FAILED, Outcome::Failed);
            ev.client = client.clone();
            ev.detail = serde_json::json!({ "login": recorded, "reason": reason });
            ev
        };
        let actor_of = |a: &mamori_store::Account| ActorRef {
            id: a.id,
            login: a.login.clone(),
            role: a.role.clone(),
        };
        let verdict = match account {
            None => {
                let pw: String = password.chars().take(MAX_PASSWORD_BYTES).collect();
                self.hash_gate.run(move || burn_verify(&pw)).await?;
                let ev = fail_event(None, "unknown_login");
                self.store
                    .write(move |tx| tx.append(&ev).map_err(ServiceError::from))
                    .await?;
                Verdict::Refused
            }
            Some(acc) if is_locked(acc.locked_until, now) => {
                // Not verified while locked: the lock is what stops guessing.
                let pw: String = password.chars().take(MAX_PASSWORD_BYTES).collect();
                self.hash_gate.run(move || burn_verify(&pw)).await?;
                let ev = fail_event(Some(actor_of(&acc)), "locked");
                self.store
                    .write(move |tx| tx.append(&ev).map_err(ServiceError::from))
                    .await?;
                Verdict::Refused
            }
            Some(acc) => {
                let (pw, phc) = (
                    password.to_owned(),
                    acc.password_hash.clone().unwrap_or_default(),
                );
                // A service account has no password hash: the same work as a wrong password.
                let ok = self
                    .hash_gate
                    .run(move || {
                        if phc.is_empty() {
                            burn_verify(&pw);
                            false
                        } else {
                            verify_password(&pw, &phc)
                        }
                    })
                    .await?;
                if !ok {
                    let ev = fail_event(Some(actor_of(&acc)), "wrong_password");
                    let (id, lockout) = (acc.id, self.config.lockout.clone());
                    self.store
                        .write(move |tx| -> Result<()> {
                            let mut ev = ev.clone();
                            if crate::access::guard::count_failure(tx, id, &lockout, now)?.is_some()
                            {
                                ev.detail["locked"] = serde_json::Value::Bool(true);
                            }
                            tx.append(&ev)?;
                            Ok(())
                        })
                        .await?;
                    Verdict::Refused
                } else if !acc.active || acc.is_service {
                    let ev = fail_event(
                        Some(actor_of(&acc)),
                        if acc.is_service {
                            "service_account"
                        } else {
                            "disabled"
                        },
                    );
                    self.store
                        .write(move |tx| tx.append(&ev).map_err(ServiceError::from))
                        .await?;
                    Verdict::Disabled
                } else {
                    Verdict::Ok(Box::new(acc))
                }
            }
        };
        drop(_turn);
        match verdict {
            Verdict::Ok(acc) => Ok(*acc),
            Verdict::Disabled => Err(ServiceError::new(
                ErrorCode::AccountDisabled,
                "このアカウントは使用できません。システム管理者に連絡してください",
            )),
            Verdict::Refused => {
                tokio::time::sleep(std::time::Duration::from_millis(
                    self.config.lockout.delay_ms(),
                ))
                .await;
                Err(bad_credentials())
            }
        }
    }

    /// Logs in with a password. An account whose password must change gets the distinct
    /// error `password_change_required` and no session.
    pub async fn login(
        self: &Arc<Self>,
        login: &str,
        password: &str,
        client: Option<String>,
    ) -> Result<LoginOk> {
        let acc = self.check_password(login, password, client.clone()).await?;
        let now = self.now();
        if acc.must_change_password
            || password_expired(&self.config.password, acc.password_changed_at, now)
        {
            let mut ev =
                crate::account_event(now, &acc, actions::LOGIN_FAILED, Outcome::Failed, client);
            ev.detail =
                serde_json::json!({ "login": acc.login, "reason": "password_change_required" });
            self.store
                .write(move |tx| tx.append(&ev).map_err(ServiceError::from))
                .await?;
            return Err(ServiceError::new(
                ErrorCode::PasswordChangeRequired,
                "パスワードの変更が必要です。新しいパスワードを設定してください",
            ));
        }
        self.open_session(&acc, client).await
    }

    async fn open_session(
        self: &Arc<Self>,
        acc: &mamori_store::Account,
        client: Option<String>,
    ) -> Result<LoginOk> {
        self.open_session_after(acc, client, false).await
    }

    /// Opens a session; `second_factor_done` when this request has already proved the
    /// account's second factor (a password change with a code).
    async fn open_session_after(
        self: &Arc<Self>,
        acc: &mamori_store::Account,
        client: Option<String>,
        second_factor_done: bool,
    ) -> Result<LoginOk> {
        let now = self.now();
        // A 保守要員 signs in only inside an approved work window, and not past its end.
        let window_end = self.maintenance_gate(acc, client.clone()).await?;
        // A role that requires client certificates signs in only over such a connection.
        let role = acc.role.clone();
        let needs_cert = self
            .store
            .read(move |r| r.role_requires_client_cert(&role))
            .await?;
        if needs_cert && !has_client_certificate(client.as_deref()) {
            let mut ev =
                crate::account_event(now, acc, actions::LOGIN_FAILED, Outcome::Denied, client);
            ev.detail =
                serde_json::json!({ "login": acc.login, "reason": "client_certificate_required" });
            self.store
                .write(move |tx| tx.append(&ev).map_err(ServiceError::from))
                .await?;
            return Err(client_certificate_required());
        }
        // A sealed emergency account works once; then only after new credentials.
        let acc_id = acc.id;
        let emergency_account = self
            .store
            .read(move |r| r.emergency_account(acc_id))
            .await?;
        if let Some(Some(_used)) = emergency_account {
            let mut ev = crate::account_event(
                now,
                acc,
                actions::LOGIN_FAILED,
                Outcome::Denied,
                client.clone(),
            );
            ev.detail =
                serde_json::json!({ "login": acc.login, "reason": "emergency_account_used" });
            self.store
                .write(move |tx| tx.append(&ev).map_err(ServiceError::from))
                .await?;
            return Err(ServiceError::new(
                ErrorCode::AccountDisabled,
                "この非常用アカウントは使用済みです。システム管理者がパスワードを再設定するまで使えません",
            ));
        }
        let emergency_use = emergency_account.is_some().then(|| {
            crate::account_event(
                now,
                acc,
                actions::EMERGENCY_ACCOUNT_USED,
                Outcome::Ok,
                client.clone(),
            )
        });
        let token = random_token();
        let csrf = random_token();
        let (th, c2, id) = (token_hash(&token), csrf.clone(), acc.id);
        let role_code = acc.role.clone();
        let second_factor = if second_factor_done {
            None
        } else {
            self.store
                .read(move |r| {
                    let totp = r.totp(id)?.is_some_and(|t| t.enabled_at.is_some());
                    Ok(if totp {
                        Some("totp")
                    } else if !r.passkeys(id)?.is_empty() {
                        Some("passkey")
                    } else if r.role_requires_two_factor(&role_code)? {
                        Some("enrol")
                    } else {
                        None
                    })
                })
                .await?
        };
        let mut ev = crate::account_event(
            now,
            acc,
            if second_factor.is_some() {
                actions::FIRST_FACTOR
            } else {
                actions::LOGIN
            },
            Outcome::Ok,
            None,
        );
        ev.client = client;
        if let Some(sf) = second_factor {
            ev.detail = serde_json::json!({ "second_factor": sf });
        }
        let absolute = (now + i64::from(self.config.session.absolute_hours) * 3_600_000)
            .min(window_end.unwrap_or(i64::MAX));
        let used = self
            .store
            .write(move |tx| -> Result<Option<mamori_store::EmergencyRow>> {
                // A right password alone neither clears the failure count nor counts as a
                // sign-in while the second factor is due.
                if second_factor.is_none() {
                    tx.set_login_success(id, now)?;
                }
                tx.insert_session(&th, id, false, None, &c2, now, Some(absolute), None)?;
                if second_factor.is_some() {
                    tx.set_session_second_factor_pending(&th, true)?;
                }
                tx.append(&ev)?;
                // The emergency account's use: queued for review, in the ledger.
                match emergency_use.clone() {
                    Some(mut use_ev) => {
                        let eid = tx.insert_emergency_account_use(id, now, absolute)?;
                        use_ev.detail = serde_json::json!({ "emergency": eid });
                        tx.append(&use_ev)?;
                        Ok(tx.read().emergency_access(eid)?)
                    }
                    None => Ok(None),
                }
            })
            .await?;
        if let Some(row) = used {
            self.announce((&acc.login, &acc.display_name, &acc.role), &row);
        }
        Ok(LoginOk {
            token,
            csrf,
            account_id: acc.id,
            login: acc.login.clone(),
            display_name: acc.display_name.clone(),
            role: acc.role.clone(),
            expires_in_idle_secs: u64::from(self.config.session.idle_minutes) * 60,
            second_factor,
        })
    }

    /// Changes one's own password (also the way through a forced change) and logs in, for an
    /// account without a second factor. See `change_password_with`.
    pub async fn change_password(
        self: &Arc<Self>,
        login: &str,
        old: &str,
        new: &str,
        client: Option<String>,
    ) -> Result<LoginOk> {
        self.change_password_with(login, old, new, client, SecondFactorProof::None)
            .await
    }

    /// Changes one's own password and logs in. An account with a second factor needs it here
    /// too — a code from the app, a recovery code, or the person's own completed sign-in —
    /// since the old password alone must not hand the account (and end its other sessions).
    pub async fn change_password_with(
        self: &Arc<Self>,
        login: &str,
        old: &str,
        new: &str,
        client: Option<String>,
        proof: SecondFactorProof<'_>,
    ) -> Result<LoginOk> {
        let acc = self.check_password(login, old, client.clone()).await?;
        // Outside a maintenance window nothing changes, not even the password.
        self.maintenance_gate(&acc, client.clone()).await?;
        let second_factor_done = self.password_change_factor(&acc, proof, &client).await?;
        let now = self.now();
        let actor = ActorRef {
            id: acc.id,
            login: acc.login.clone(),
            role: acc.role.clone(),
        };
        let refuse = |e: ServiceError, svc: &Arc<Self>| {
            let mut ev = AuditEvent::new(
                now,
                Some(actor.clone()),
                actions::PASSWORD_CHANGED,
                Outcome::Failed,
            );
            ev.client = client.clone();
            ev.detail = serde_json::json!({ "error": e.code });
            let store = svc.store.clone();
            async move {
                store
                    .write(move |tx| tx.append(&ev).map_err(ServiceError::from))
                    .await?;
                Err::<LoginOk, _>(e)
            }
        };
        if let Err(e) = check_strength(&self.config.password, &acc.login, new) {
            return refuse(ServiceError::from(e).with_field("new_password"), self).await;
        }
        if new == old {
            return refuse(
                ServiceError::invalid("new_password", "現在と同じパスワードは使えません"),
                self,
            )
            .await;
        }
        let history = {
            let (id, n) = (acc.id, self.config.password.history);
            self.store.read(move |r| r.password_history(id, n)).await?
        };
        let new_owned = new.to_owned();
        let reused = self
            .hash_gate
            .run(move || history.iter().any(|h| verify_password(&new_owned, h)))
            .await
            .map_err(ServiceError::internal)?;
        if reused {
            return refuse(
                ServiceError::invalid(
                    "new_password",
                    format!(
                        "最近{}回以内に使ったパスワードは使えません",
                        self.config.password.history
                    ),
                ),
                self,
            )
            .await;
        }
        let new_owned = new.to_owned();
        let hash = self
            .hash_gate
            .run(move || hash_password(&new_owned))
            .await?;
        let mut ev = AuditEvent::new(now, Some(actor), actions::PASSWORD_CHANGED, Outcome::Ok);
        ev.client = client.clone();
        let id = acc.id;
        self.store
            .write(move |tx| -> Result<()> {
                tx.set_password(id, &hash, false, now)?;
                tx.revoke_sessions_of(id, false, now)?;
                tx.append(&ev)?;
                Ok(())
            })
            .await?;
        let mut acc = acc;
        acc.must_change_password = false;
        self.open_session_after(&acc, client, second_factor_done)
            .await
    }

    /// For a password change: whether the account has a second factor, and if so, that this
    /// request proved it (a wrong code counts towards the lockout and is in the ledger).
    async fn password_change_factor(
        self: &Arc<Self>,
        acc: &mamori_store::Account,
        proof: SecondFactorProof<'_>,
        client: &Option<String>,
    ) -> Result<bool> {
        let id = acc.id;
        if !self.has_second_factor(id).await? {
            return Ok(false);
        }
        let now = self.now();
        let mut ev = crate::account_event(
            now,
            acc,
            actions::PASSWORD_CHANGED,
            Outcome::Failed,
            client.clone(),
        );
        let code = match proof {
            SecondFactorProof::Session(p)
                if p.account.id == id && !p.second_factor_pending && !p.locked =>
            {
                return Ok(true);
            }
            SecondFactorProof::Code(c) if !c.trim().is_empty() => c.trim().to_owned(),
            _ => {
                ev.outcome = Outcome::Denied;
                ev.detail = serde_json::json!({ "error": "second_factor_required" });
                self.store
                    .write(move |tx| tx.append(&ev).map_err(ServiceError::from))
                    .await?;
                return Err(ServiceError::new(
                    ErrorCode::SecondFactorRequired,
                    "2要素認証を設定しているアカウントです。パスワードの変更には、認証アプリの確認コードまたは回復コードも入力してください",
                )
                .with_field("second_factor_code"));
            }
        };
        let lockout = self.config.lockout.clone();
        let accepted = self
            .store
            .write(move |tx| -> Result<bool> {
                if crate::access::second_factor::accept_code(tx, id, &code, now)?.is_some() {
                    return Ok(true);
                }
                let lock = crate::access::guard::count_failure(tx, id, &lockout, now)?;
                let mut ev = ev.clone();
                ev.detail =
                    serde_json::json!({ "error": "wrong_second_factor", "locked": lock.is_some() });
                tx.append(&ev)?;
                Ok(false)
            })
            .await?;
        if accepted {
            Ok(true)
        } else {
            Err(ServiceError::invalid(
                "second_factor_code",
                "確認コードが正しくありません",
            ))
        }
    }

    /// Resolves a bearer token or session cookie to the caller, enforcing idle and absolute
    /// timeouts. `client` is the request's origin for the ledger.
    pub async fn authenticate(
        self: &Arc<Self>,
        token: &str,
        client: Option<String>,
    ) -> Result<Principal> {
        let p = self.authenticate_pending(token, client).await?;
        if p.second_factor_pending {
            return Err(ServiceError::new(
                ErrorCode::SecondFactorRequired,
                "2要素認証の確認コードを入力してください",
            ));
        }
        if p.locked {
            return Err(crate::access::second_factor::locked_session());
        }
        Ok(p)
    }

    /// Like `authenticate`, but also accepts a session still waiting for its second factor
    /// (for the pages and endpoints that complete or enrol it, and nothing else). An OAuth
    /// access token (SMART scopes) is refused: it is for `/fhir/r4` only.
    pub async fn authenticate_pending(
        self: &Arc<Self>,
        token: &str,
        client: Option<String>,
    ) -> Result<Principal> {
        let p = self.authenticate_fhir_pending(token, client).await?;
        if p.is_oauth() {
            return Err(ServiceError::new(
                ErrorCode::Forbidden,
                "この OAuth アクセストークンは FHIR（/fhir/r4）でだけ使えます",
            ));
        }
        Ok(p)
    }

    /// `authenticate_pending` for the FHIR interface, where OAuth access tokens are good too
    /// (narrowed there to their scopes).
    pub async fn authenticate_fhir_pending(
        self: &Arc<Self>,
        token: &str,
        client: Option<String>,
    ) -> Result<Principal> {
        let now = self.now();
        let th = token_hash(token);
        let Some(state) = self.sign_ins.resolve(&self.store, &th, now).await? else {
            return Err(ServiceError::unauthenticated());
        };
        let (s, account, role) = (&state.session, state.account.clone(), state.role.clone());
        let (emergency, needs_cert) = (state.emergency_at(now), state.needs_client_cert);
        // A session (or token) carried to a connection without a certificate is refused.
        if needs_cert && !has_client_certificate(client.as_deref()) {
            return Err(client_certificate_required());
        }
        let idle_ms = i64::from(self.config.session.idle_minutes) * 60_000;
        let expired = s.revoked_at.is_some()
            || s.expires_at.is_some_and(|t| t <= now)
            || (!s.is_api_token && now - s.last_seen_at > idle_ms);
        if expired || !account.active || (account.must_change_password && !s.is_api_token) {
            if s.revoked_at.is_none() {
                let th3 = th.clone();
                self.store
                    .write(move |tx| tx.revoke_session(&th3, now).map_err(ServiceError::from))
                    .await?;
            }
            return Err(ServiceError::new(
                ErrorCode::SessionExpired,
                "一定時間操作がなかったため、ログアウトしました。もう一度ログインしてください",
            ));
        }
        // A browser session left alone for `lock_minutes` locks before it ends.
        let lock_ms = self.config.session.lock_ms();
        let mut locked = s.locked_at.is_some();
        if !locked && !s.is_api_token && lock_ms.is_some_and(|l| now - s.last_seen_at > l) {
            locked = true;
            let th3 = th.clone();
            self.store
                .write(move |tx| {
                    tx.set_session_locked(&th3, Some(now), now)
                        .map_err(ServiceError::from)
                })
                .await?;
        }
        // Activity is written at most every 30 s, so reads do not each cost a commit.
        let mut seen = s.last_seen_at;
        if !locked && now - s.last_seen_at > 30_000 {
            seen = now;
            let th3 = th.clone();
            self.store
                .write(move |tx| tx.touch_session(&th3, now).map_err(ServiceError::from))
                .await?;
        }
        Ok(Principal {
            account,
            role,
            token_hash: th,
            csrf: s.csrf.clone(),
            is_api_token: s.is_api_token,
            client,
            session_seen_at: seen,
            second_factor_pending: s.second_factor_pending,
            locked,
            emergency,
            token_scopes: s
                .scopes
                .as_deref()
                .unwrap_or("")
                .split(',')
                .filter(|x| !x.is_empty())
                .map(str::to_owned)
                .collect(),
        })
    }

    pub fn check_csrf(&self, p: &Principal, presented: Option<&str>) -> Result<()> {
        match presented {
            Some(t) if ct_eq(t, &p.csrf) => Ok(()),
            _ => Err(ServiceError::new(
                ErrorCode::Csrf,
                "フォームの有効期限が切れました。画面を再読み込みしてからもう一度操作してください",
            )),
        }
    }

    /// Locks one's own browser session (leaving the desk); the password unlocks it.
    pub async fn lock_session(self: &Arc<Self>, p: &Principal) -> Result<()> {
        let (th, now) = (p.token_hash.clone(), self.now());
        self.write_audited(
            Some(p),
            actions::SESSION_LOCKED,
            Target::default(),
            move |_, tx, _| Ok(tx.set_session_locked(&th, Some(now), now)?),
        )
        .await
    }

    /// Unlocks a locked session with the account's password (a wrong one counts towards the
    /// lockout like a failed sign-in).
    pub async fn unlock_session(self: &Arc<Self>, p: &Principal, password: &str) -> Result<()> {
        if !p.locked {
            return Ok(());
        }
        self.check_password(&p.account.login, password, p.client.clone())
            .await?;
        let (th, now) = (p.token_hash.clone(), self.now());
        self.write_audited(
            Some(p),
            actions::SESSION_UNLOCKED,
            Target::default(),
            move |_, tx, _| Ok(tx.set_session_locked(&th, None, now)?),
        )
        .await
    }

    /// Marks a browser session active now (the page's idle timer saw the person working).
    pub async fn keep_alive(self: &Arc<Self>, p: &Principal) -> Result<()> {
        let th = p.token_hash.clone();
        let now = self.now();
        self.store
            .write(move |tx| tx.touch_session(&th, now).map_err(ServiceError::from))
            .await
    }

    pub async fn logout(self: &Arc<Self>, p: &Principal) -> Result<()> {
        self.close_signing_windows(None, Some(&p.token_hash));
        let th = p.token_hash.clone();
        let now = self.now();
        self.write_audited(
            Some(p),
            actions::LOGOUT,
            Target::default(),
            move |_, tx, _| {
                tx.revoke_session(&th, now)?;
                Ok(())
            },
        )
        .await
    }
}

impl ServiceError {
    pub fn with_field(mut self, field: &'static str) -> Self {
        self.field = Some(field);
        self
    }
}
