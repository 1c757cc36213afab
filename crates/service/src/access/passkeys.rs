//! Passkeys (WebAuthn) as a second factor beside TOTP: registration while signed in (or while
//! a role's requirement makes someone enrol), and the second step of signing in. The WebAuthn
//! checks are in `mamori-passkey`; this keeps challenges (one per session, five minutes) and
//! credentials, and records every registration, use, failure and removal in the ledger.

use crate::ErrorCode;
use std::sync::Arc;

use mamori_domain::audit::{AuditEvent, Outcome, actions};
use mamori_passkey::{RelyingParty, b64url, from_b64url};
use serde::{Deserialize, Serialize};

use crate::crypto::{random_bytes, recovery_code, token_hash};
use crate::error::{Result, ServiceError};
use crate::{Principal, Service, Target};

const CHALLENGE_MS: i64 = 5 * 60_000;

/// Where a session's challenge is kept: in the store's short-lived values, so that a
/// challenge issued by one node can be answered through another (one per session; a new one
/// replaces it).
fn challenge_key(session: &str) -> String {
    format!("passkey challenge {session}")
}

impl Service {
    async fn issue_challenge(&self, session: &str, purpose: &'static str) -> Result<Vec<u8>> {
        let c = random_bytes::<32>().to_vec();
        let mut kept = format!("{purpose}:").into_bytes();
        kept.extend_from_slice(&c);
        let now = self.now();
        self.store
            .put_ephemeral(&challenge_key(session), kept, now, now + CHALLENGE_MS)
            .await?;
        Ok(c)
    }

    /// The session's challenge for `purpose`, used up by asking (on every node).
    async fn take_challenge(&self, session: &str, purpose: &'static str) -> Result<Vec<u8>> {
        let kept = self
            .store
            .take_ephemeral(&challenge_key(session), self.now())
            .await?;
        let prefix = format!("{purpose}:");
        match kept {
            Some(k) if k.starts_with(prefix.as_bytes()) => Ok(k[prefix.len()..].to_vec()),
            _ => Err(ServiceError::invalid(
                "passkey",
                "確認の有効期限が切れました。もう一度ボタンを押してください",
            )),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PasskeyView {
    pub id: i64,
    pub name: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// What the browser sends back from `navigator.credentials.create` (base64url fields).
#[derive(Debug, Clone, Deserialize)]
pub struct Registration {
    #[serde(default)]
    pub name: String,
    pub client_data_json: String,
    pub attestation_object: String,
}

/// What the browser sends back from `navigator.credentials.get` (base64url fields).
#[derive(Debug, Clone, Deserialize)]
pub struct Assertion {
    pub credential_id: String,
    pub client_data_json: String,
    pub authenticator_data: String,
    pub signature: String,
}

fn field(name: &'static str, v: &str) -> Result<Vec<u8>> {
    from_b64url(v).ok_or_else(|| ServiceError::invalid(name, "base64url ではありません"))
}

impl Service {
    fn relying_party(&self) -> RelyingParty {
        let s = &self.config.server;
        RelyingParty {
            id: s.passkey_rp_id.trim().to_owned(),
            origins: s
                .passkey_origins
                .split(',')
                .map(|o| o.trim().trim_end_matches('/').to_owned())
                .filter(|o| !o.is_empty())
                .collect(),
        }
    }

    pub async fn passkeys(self: &Arc<Self>, p: &Principal) -> Result<Vec<PasskeyView>> {
        let id = p.account.id;
        Ok(self
            .store
            .read(move |r| r.passkeys(id))
            .await?
            .into_iter()
            .map(|k| PasskeyView {
                id: k.id,
                name: k.name,
                created_at: k.created_at,
                last_used_at: k.last_used_at,
            })
            .collect())
    }

    /// Options for `navigator.credentials.create` (the `publicKey` member, base64url binary).
    pub async fn begin_passkey_registration(
        self: &Arc<Self>,
        p: &Principal,
    ) -> Result<serde_json::Value> {
        self.enrolment_gate(p, "passkey").await?;
        let existing = self.passkeys_raw(p.account.id).await?;
        let rp = self.relying_party();
        let challenge = self.issue_challenge(&p.token_hash, "create").await?;
        Ok(serde_json::json!({
            "challenge": b64url(&challenge),
            "rp": { "id": rp.id, "name": format!("mamori {}", self.facility()) },
            "user": {
                "id": b64url(format!("mamori-account-{}", p.account.id).as_bytes()),
                "name": p.account.login,
                "displayName": p.account.display_name,
            },
            "pubKeyCredParams": [{ "type": "public-key", "alg": -7 }],
            "excludeCredentials": existing.iter().map(|k| serde_json::json!({ "type": "public-key", "id": b64url(&k.credential_id) })).collect::<Vec<_>>(),
            "authenticatorSelection": { "userVerification": "preferred", "residentKey": "preferred" },
            "attestation": "none",
            "timeout": CHALLENGE_MS,
        }))
    }

    async fn passkeys_raw(self: &Arc<Self>, account: i64) -> Result<Vec<mamori_store::PasskeyRow>> {
        Ok(self.store.read(move |r| r.passkeys(account)).await?)
    }

    /// Registers a passkey. A session waiting for enrolment becomes a full sign-in; someone
    /// with no second factor before gets recovery codes (shown once).
    pub async fn finish_passkey_registration(
        self: &Arc<Self>,
        p: &Principal,
        reg: Registration,
    ) -> Result<Vec<String>> {
        self.enrolment_gate(p, "passkey").await?;
        let now = self.now();
        let challenge = self.take_challenge(&p.token_hash, "create").await?;
        let cd = field("client_data_json", &reg.client_data_json)?;
        let att = field("attestation_object", &reg.attestation_object)?;
        let cred =
            mamori_passkey::verify_registration(&self.relying_party(), &challenge, &cd, &att)
                .map_err(|e| ServiceError::invalid("passkey", e.to_string()))?;
        let name = match reg.name.trim() {
            "" => "パスキー".to_owned(),
            n if n.chars().count() > 100 => {
                return Err(ServiceError::invalid(
                    "name",
                    "名前は100文字以内にしてください",
                ));
            }
            n => n.to_owned(),
        };
        let id = p.account.id;
        let pending = p.second_factor_pending.then(|| p.token_hash.clone());
        let codes: Vec<String> = (0..crate::access::second_factor::RECOVERY_CODES)
            .map(|_| recovery_code())
            .collect();
        let hashes: Vec<String> = codes.iter().map(|c| token_hash(c)).collect();
        let mut t = Target::default();
        t.detail("method", "passkey");
        t.detail("name", name.clone());
        let first = self
            .write_audited(
                Some(p),
                actions::SECOND_FACTOR_ENROLLED,
                t,
                move |_, tx, _| {
                    let r = tx.read();
                    let first = r.passkeys(id)?.is_empty()
                        && r.totp(id)?.is_none_or(|t| t.enabled_at.is_none());
                    // Checked again in the transaction: a factor enrolled meanwhile counts.
                    if pending.is_some() && !first {
                        return Err(crate::access::second_factor::second_factor_due());
                    }
                    tx.insert_passkey(id, &cred.id, &cred.public_key, cred.sign_count, &name, now)
                        .map_err(|_| {
                            ServiceError::new(
                                ErrorCode::Exists,
                                "このパスキーは既に登録されています",
                            )
                        })?;
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

    /// Options for `navigator.credentials.get` in the second step of signing in.
    pub async fn begin_passkey_assertion(
        self: &Arc<Self>,
        p: &Principal,
    ) -> Result<serde_json::Value> {
        if !p.second_factor_pending {
            return Err(ServiceError::new(
                ErrorCode::InvalidState,
                "このセッションは2要素認証を待っていません",
            ));
        }
        let keys = self.passkeys_raw(p.account.id).await?;
        if keys.is_empty() {
            return Err(ServiceError::new(
                ErrorCode::InvalidState,
                "パスキーが登録されていません。確認コードを使ってください",
            ));
        }
        let challenge = self.issue_challenge(&p.token_hash, "get").await?;
        Ok(serde_json::json!({
            "challenge": b64url(&challenge),
            "rpId": self.relying_party().id,
            "allowCredentials": keys.iter().map(|k| serde_json::json!({ "type": "public-key", "id": b64url(&k.credential_id) })).collect::<Vec<_>>(),
            "userVerification": "preferred",
            "timeout": CHALLENGE_MS,
        }))
    }

    /// The second step of signing in with a passkey. A failure counts like a wrong code.
    pub async fn complete_passkey(self: &Arc<Self>, p: &Principal, a: Assertion) -> Result<()> {
        if !p.second_factor_pending {
            return Err(ServiceError::new(
                ErrorCode::InvalidState,
                "このセッションは2要素認証を待っていません",
            ));
        }
        let now = self.now();
        let challenge = self.take_challenge(&p.token_hash, "get").await?;
        let cred_id = field("credential_id", &a.credential_id)?;
        let cd = field("client_data_json", &a.client_data_json)?;
        let ad = field("authenticator_data", &a.authenticator_data)?;
        let sig = field("signature", &a.signature)?;
        let keys = self.passkeys_raw(p.account.id).await?;
        let verdict = keys
            .iter()
            .find(|k| k.credential_id == cred_id)
            .ok_or_else(|| "このアカウントのパスキーではありません".to_owned())
            .and_then(|k| {
                mamori_passkey::verify_assertion(
                    &self.relying_party(),
                    &challenge,
                    &k.public_key,
                    k.sign_count,
                    &cd,
                    &ad,
                    &sig,
                )
                .map(|n| (k.id, n))
                .map_err(|e| e.to_string())
            });
        let (id, th) = (p.account.id, p.token_hash.clone());
        let actor = p.actor();
        let client = p.client.clone();
        let lockout = self.config.lockout.clone();
        let reason = verdict.as_ref().err().cloned();
        let locked = self
            .store
            .write(move |tx| -> Result<bool> {
                let event = |action, outcome| {
                    let mut ev = AuditEvent::new(now, Some(actor.clone()), action, outcome);
                    ev.client = client.clone();
                    ev
                };
                match &verdict {
                    &Ok((key, count)) => {
                        tx.use_passkey(key, count, now)?;
                        tx.set_session_second_factor_pending(&th, false)?;
                        tx.set_login_success(id, now)?;
                        let mut ev = event(actions::LOGIN, Outcome::Ok);
                        ev.detail = serde_json::json!({ "second_factor": "passkey", "passkey": key });
                        tx.append(&ev)?;
                        Ok(false)
                    }
                    Err(why) => {
                        let acc = tx
                            .read()
                            .account(id)?
                            .ok_or_else(ServiceError::unauthenticated)?;
                        let lock = crate::access::guard::count_failure(tx, id, &lockout, now)?;
                        let mut ev = event(actions::LOGIN_FAILED, Outcome::Failed);
                        ev.detail = serde_json::json!({
                            "login": acc.login, "reason": "wrong_passkey", "detail": why, "locked": lock.is_some()
                        });
                        tx.append(&ev)?;
                        if lock.is_some() {
                            tx.revoke_session(&th, now)?;
                        }
                        Ok(lock.is_some())
                    }
                }
            })
            .await?;
        match (reason, locked) {
            (None, _) => Ok(()),
            (Some(_), true) => Err(ServiceError::new(
                ErrorCode::AccountLocked,
                "確認の失敗が続いたため、アカウントがロックされました。システム管理者に連絡してください",
            )),
            (Some(why), false) => Err(ServiceError::invalid("passkey", why)),
        }
    }

    /// Removes one of one's own passkeys; refused for the last second factor of someone whose
    /// role requires one.
    pub async fn remove_passkey(self: &Arc<Self>, p: &Principal, key: i64) -> Result<()> {
        let (id, role) = (p.account.id, p.role.code.clone());
        let mut t = Target::default();
        t.detail("method", "passkey");
        t.detail("passkey", key);
        self.write_audited(
            Some(p),
            actions::SECOND_FACTOR_REMOVED,
            t,
            move |_, tx, _| {
                let r = tx.read();
                let keys = r.passkeys(id)?;
                if !keys.iter().any(|k| k.id == key) {
                    return Err(ServiceError::not_found("パスキー"));
                }
                let totp = r.totp(id)?.is_some_and(|t| t.enabled_at.is_some());
                if keys.len() == 1 && !totp && r.role_requires_two_factor(&role)? {
                    return Err(ServiceError::new(
                        ErrorCode::InvalidState,
                        "この職種では2要素認証が必須のため、最後のパスキーは削除できません",
                    ));
                }
                tx.delete_passkeys(id, Some(key))?;
                Ok(())
            },
        )
        .await
    }
}
