//! OAuth 2.0 client credentials with a signed JWT (SMART Backend Services) for integrations:
//! an administrator registers a service account's public key and the SMART system scopes it
//! may hold; the integration trades a signed assertion for a five-minute access token. The
//! token is a session of the service account like an API token, narrowed to its scopes and
//! valid on `/fhir/r4` only; the account's role still decides what it may do.

use std::sync::Arc;

use mamori_domain::audit::{ActorRef, AuditEvent, Outcome, actions};
use mamori_fhir::smart::{self, PublicKey};
use mamori_store::OAuthClientRow;
use serde::Serialize;

use crate::crypto::{random_token, token_hash};
use crate::error::{ErrorCode, Result, ServiceError};
use crate::{Principal, Service, Target};
use mamori_domain::permission::Action;

/// A registered client as the administrator sees it (the key's algorithm, never more).
#[derive(Debug, Clone, Serialize)]
pub struct OAuthClientView {
    pub client_id: String,
    pub account_id: i64,
    pub name: String,
    pub algorithm: String,
    pub scopes: Vec<String>,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

impl From<&OAuthClientRow> for OAuthClientView {
    fn from(c: &OAuthClientRow) -> Self {
        let algorithm = serde_json::from_str(&c.jwk)
            .ok()
            .and_then(|j| PublicKey::from_jwk(&j).ok())
            .map_or("?", |k| k.algorithm())
            .to_owned();
        Self {
            client_id: c.client_id.clone(),
            account_id: c.account_id,
            name: c.name.clone(),
            algorithm,
            scopes: c.scopes.clone(),
            created_at: c.created_at,
            revoked_at: c.revoked_at,
        }
    }
}

/// `POST …/auth/token` as the client sent it (form fields).
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct TokenRequest {
    #[serde(default)]
    pub grant_type: String,
    #[serde(default)]
    pub client_assertion_type: String,
    #[serde(default)]
    pub client_assertion: String,
    #[serde(default)]
    pub scope: String,
}

/// The token endpoint's answer (RFC 6749 §5.1).
#[derive(Debug, Clone, Serialize)]
pub struct TokenGrant {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub scope: String,
}

/// A refusal of the token endpoint (RFC 6749 §5.2): the OAuth error code and the reason.
#[derive(Debug, Clone)]
pub struct TokenRefusal {
    pub error: &'static str,
    pub description: String,
}

fn refusal(error: &'static str, description: impl Into<String>) -> TokenRefusal {
    TokenRefusal {
        error,
        description: description.into(),
    }
}

fn require_admin(p: &Principal) -> Result<()> {
    p.require(Action::AdminAccounts, None)
}

impl Service {
    /// Registers an OAuth client for a service account: its public JWK and the SMART system
    /// scopes it may be granted.
    pub async fn register_oauth_client(
        self: &Arc<Self>,
        p: &Principal,
        account_id: i64,
        name: String,
        jwk: serde_json::Value,
        scopes: Vec<String>,
    ) -> Result<OAuthClientView> {
        let client_id = format!("mamori-{}", &token_hash(&random_token())[..20]);
        let now = self.now();
        let mut scopes: Vec<String> = scopes.iter().map(|s| s.trim().to_owned()).collect();
        scopes.retain(|s| !s.is_empty());
        scopes.sort();
        scopes.dedup();
        let mut t = Target::default();
        t.detail("account", account_id);
        t.detail("client_id", client_id.clone());
        t.detail("scopes", scopes.clone());
        let pc = p.clone();
        self.write_audited(
            Some(p),
            actions::OAUTH_CLIENT_REGISTERED,
            t,
            move |_, tx, _| {
                require_admin(&pc)?;
                let key = PublicKey::from_jwk(&jwk)
                    .map_err(|m| ServiceError::invalid("jwk", m))?;
                if scopes.is_empty() {
                    return Err(ServiceError::invalid(
                        "scopes",
                        "許可するスコープ（例: system/DocumentReference.write）を1つ以上指定してください",
                    ));
                }
                if let Some(bad) = scopes.iter().find(|s| smart::Scope::parse(s).is_none()) {
                    return Err(ServiceError::invalid(
                        "scopes",
                        format!(
                            "スコープ「{}」は読めません（system/リソース型.read|write|cruds の形で指定してください）",
                            smart::clip(bad)
                        ),
                    ));
                }
                let name = name.trim();
                if name.is_empty() || name.chars().count() > 100 {
                    return Err(ServiceError::invalid(
                        "name",
                        "クライアントの名前を100文字以内で入力してください",
                    ));
                }
                let a = tx
                    .read()
                    .account(account_id)?
                    .ok_or_else(|| ServiceError::not_found("アカウント"))?;
                if !a.is_service || !a.active {
                    return Err(ServiceError::new(
                        ErrorCode::InvalidState,
                        "OAuth クライアントは有効なサービスアカウントにだけ登録できます",
                    ));
                }
                // Only the public parts are kept, in a fixed shape.
                let public = match &key {
                    PublicKey::Ec { .. } => serde_json::json!({
                        "kty": "EC", "crv": jwk["crv"], "x": jwk["x"], "y": jwk["y"]
                    }),
                    PublicKey::Rsa { .. } => serde_json::json!({
                        "kty": "RSA", "n": jwk["n"], "e": jwk["e"]
                    }),
                };
                let row = OAuthClientRow {
                    client_id: client_id.clone(),
                    account_id,
                    name: name.to_owned(),
                    jwk: public.to_string(),
                    scopes: scopes.clone(),
                    created_at: now,
                    created_by: pc.account.id,
                    revoked_at: None,
                };
                tx.insert_oauth_client(&row)?;
                Ok(OAuthClientView::from(&row))
            },
        )
        .await
    }

    /// Revokes a client and ends the access tokens it holds.
    pub async fn revoke_oauth_client(
        self: &Arc<Self>,
        p: &Principal,
        client_id: String,
    ) -> Result<()> {
        let now = self.now();
        let mut t = Target::default();
        t.detail("client_id", smart::clip(&client_id));
        let pc = p.clone();
        self.write_audited(
            Some(p),
            actions::OAUTH_CLIENT_REVOKED,
            t,
            move |_, tx, _| {
                require_admin(&pc)?;
                if !tx.revoke_oauth_client(&client_id, now)? {
                    return Err(ServiceError::not_found("有効な OAuth クライアント"));
                }
                tx.revoke_oauth_tokens(&client_id, now)?;
                Ok(())
            },
        )
        .await
    }

    /// Every registered client (administrators).
    pub async fn oauth_clients(self: &Arc<Self>, p: &Principal) -> Result<Vec<OAuthClientView>> {
        let pc = p.clone();
        self.read_audited(p, actions::ACCOUNT_LIST, move |_, r, t| {
            t.detail("query", "oauth_clients");
            require_admin(&pc)?;
            Ok(r.oauth_clients()?
                .iter()
                .map(OAuthClientView::from)
                .collect())
        })
        .await
    }

    /// The token endpoint: a signed client assertion for an access token of the granted
    /// scopes. `audience` is the endpoint's URL as the client reached it. Every answer, given
    /// or refused, is in the ledger.
    pub async fn oauth_token(
        self: &Arc<Self>,
        req: TokenRequest,
        audience: String,
        client: Option<String>,
    ) -> std::result::Result<TokenGrant, TokenRefusal> {
        let now = self.now();
        let claimed = smart::claimed_client(&req.client_assertion);
        let found = match &claimed {
            Some(id) => {
                let id = id.clone();
                self.store
                    .read(move |r| {
                        let c = r.oauth_client(&id)?;
                        let a = match &c {
                            Some(c) => r.account(c.account_id)?,
                            None => None,
                        };
                        Ok::<_, mamori_store::StoreError>(c.zip(a))
                    })
                    .await
                    .map_err(|e| refusal("server_error", e.to_string()))?
            }
            None => None,
        };
        let decided = decide(&req, found.as_ref(), &audience, now / 1000);
        let actor = found.as_ref().map(|(_, a)| ActorRef {
            id: a.id,
            login: a.login.clone(),
            role: a.role.clone(),
        });
        let mut ev = AuditEvent::new(now, actor, actions::OAUTH_TOKEN_ISSUED, Outcome::Ok);
        ev.client = client;
        let client_id = claimed.unwrap_or_default();
        let token = random_token();
        let th = token_hash(&token);
        let r = match decided {
            Err(r) => r,
            Ok((row, assertion, granted)) => {
                let expires_at = now + smart::TOKEN_LIFETIME_S * 1000;
                let mut ev = ev.clone();
                ev.detail = serde_json::json!({
                    "client_id": row.client_id, "jti": smart::clip(&assertion.jti),
                    "scopes": granted, "token_id": th, "expires_at": expires_at,
                });
                let (cid, jti, sessions_scopes) = (
                    row.client_id.clone(),
                    assertion.jti.clone(),
                    granted.join(","),
                );
                let account_id = row.account_id;
                let th2 = th.clone();
                let fresh = self
                    .store
                    .write(move |tx| {
                        if !tx.use_oauth_assertion(&cid, &jti, assertion.exp * 1000, now)? {
                            return Ok(false);
                        }
                        tx.insert_session(
                            &th2,
                            account_id,
                            true,
                            Some(&mamori_store::fhir::session_name(&cid)),
                            &random_token(),
                            now,
                            Some(expires_at),
                            Some(&sessions_scopes),
                        )?;
                        tx.append(&ev)?;
                        Ok::<_, ServiceError>(true)
                    })
                    .await
                    .map_err(|e| refusal("server_error", e.message))?;
                if fresh {
                    return Ok(TokenGrant {
                        access_token: token,
                        token_type: "bearer",
                        expires_in: smart::TOKEN_LIFETIME_S,
                        scope: granted.join(" "),
                    });
                }
                refusal(
                    "invalid_client",
                    "この client_assertion（jti）は使用済みです。毎回新しい JWT を作ってください",
                )
            }
        };
        ev.action = actions::OAUTH_TOKEN_REFUSED.to_owned();
        ev.outcome = Outcome::Failed;
        ev.detail = serde_json::json!({
            "client_id": smart::clip(&client_id), "error": r.error,
            "reason": mamori_domain::audit::clip(&r.description, 200),
        });
        let _ = self
            .store
            .write(move |tx| tx.append(&ev).map_err(ServiceError::from))
            .await;
        Err(r)
    }
}

/// The decision on a token request, before anything is written: the client, the verified
/// assertion and the granted scopes, or the refusal.
fn decide(
    req: &TokenRequest,
    found: Option<&(OAuthClientRow, mamori_store::Account)>,
    audience: &str,
    now_s: i64,
) -> std::result::Result<(OAuthClientRow, smart::Assertion, Vec<String>), TokenRefusal> {
    if req.grant_type != "client_credentials" {
        return Err(refusal(
            "unsupported_grant_type",
            "grant_type は client_credentials にしてください",
        ));
    }
    if req.client_assertion_type != smart::ASSERTION_TYPE {
        return Err(refusal(
            "invalid_request",
            format!(
                "client_assertion_type は {} にしてください",
                smart::ASSERTION_TYPE
            ),
        ));
    }
    if smart::claimed_client(&req.client_assertion).is_none() {
        return Err(refusal(
            "invalid_request",
            "client_assertion が JWT（iss を含む署名付きトークン）ではありません",
        ));
    }
    let Some((row, account)) = found else {
        return Err(refusal(
            "invalid_client",
            "client_assertion の iss が登録された OAuth クライアントではありません",
        ));
    };
    if row.revoked_at.is_some() || !account.active || !account.is_service {
        return Err(refusal(
            "invalid_client",
            "この OAuth クライアントは失効しているか、そのサービスアカウントが無効です",
        ));
    }
    let key = serde_json::from_str(&row.jwk)
        .ok()
        .and_then(|j| PublicKey::from_jwk(&j).ok())
        .ok_or_else(|| refusal("server_error", "登録された公開鍵が読めません"))?;
    let assertion =
        smart::verify_assertion(&req.client_assertion, &key, &row.client_id, audience, now_s)
            .map_err(|r| refusal(r.error, r.reason))?;
    let granted = smart::grant(&req.scope, &row.scopes).map_err(|m| refusal("invalid_scope", m))?;
    Ok((row.clone(), assertion, granted))
}
