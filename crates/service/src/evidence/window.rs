//! The signer's sole control (guideline 6.0 企画管理編 14; the remote-signing conditions):
//! every staff signing key lives in a PKCS#11 token of its own whose PIN only its holder
//! knows, and signs only inside the holder's **signing window** — opened by the holder with that
//! PIN, for `evidence.signing_window_hours`, closed at sign-out. A version finalised outside a
//! window waits for its author; nothing in the background, and no administrator, signs.
//!
//! The PIN is stretched with argon2id (salt: the key's serial) before it reaches the token, so
//! a copy of the token files costs one argon2id per guess; the token's security-officer PIN is
//! random and forgotten at creation, so nobody can reset the holder's PIN and use the key.

use super::*;
use crate::crypto::stretch_pin;
use mamori_store::AwaitingSignature;
use mamori_token::{ErrorKind as TokenKind, KeySession, Module, TokenError};

/// Wrong PINs in a row before the window stays shut for `PIN_PAUSE`.
const PIN_TRIES: u32 = 5;
const PIN_PAUSE: Millis = 15 * 60_000;
/// Versions signed per window opening or `sign-pending` call at most (the rest on the next).
const SIGN_BATCH: i64 = 500;
/// Where mamori keeps SoftHSM2's tokens inside the data directory.
pub const TOKEN_DIR: &str = "tokens";
pub const SOFTHSM_CONF: &str = "softhsm2.conf";
/// The `source` of a key generated in its token by the facility CA's request / imported into
/// its token. Since the plain files were erased (`migrate_plain_signing_keys`), every signing
/// certificate not retired has its key in a token.
pub const SOURCE_TOKEN: &str = "facility";
pub const SOURCE_TOKEN_IMPORTED: &str = "imported";

/// An open signing window: the holder's logged-in token session.
pub(super) struct Window {
    key: Arc<KeySession>,
    row: SigningCertRow,
    cert: Cert,
    pub expires_at: Millis,
    /// The sign-in that opened it (closed with it).
    session: String,
}

/// What a holder sees of their own signing key and window.
#[derive(Debug, Clone, Serialize)]
pub struct SigningStatus {
    /// A key in a token under the holder's PIN exists.
    pub has_key: bool,
    pub serial: Option<String>,
    pub subject: Option<String>,
    /// The qualifications (hcRole) the certificate states, in words.
    pub qualification: Option<String>,
    pub not_after: Option<Millis>,
    /// Until when the window is open (absent: closed).
    pub window_until: Option<Millis>,
    /// Finalised versions of theirs without a signature.
    pub awaiting: usize,
    /// The holder signs with an HPKI card or cloud service (the external-signing API).
    pub external: bool,
    /// Why no token can be used, when none can.
    pub token_problem: Option<String>,
    pub pin_min: usize,
}

/// Setting or changing a signing PIN. No `Debug`: it carries secrets.
#[derive(Clone, Default, serde::Deserialize)]
pub struct PinChange {
    /// The new signing PIN.
    pub pin: String,
    /// The current PIN, to change it (the key stays).
    #[serde(default)]
    pub current_pin: Option<String>,
    /// Make a new key (the PIN is forgotten); the old key is retired.
    #[serde(default)]
    pub new_key: bool,
    /// The account's password: making a key asks for it, so a session left open is not
    /// enough to put a key of someone else's choosing in the holder's name.
    #[serde(default)]
    pub password: Option<String>,
}

impl PinChange {
    /// A first key (or a new one) under `pin`, with the account's password.
    pub fn new_key(pin: &str, password: &str) -> Self {
        Self {
            pin: pin.to_owned(),
            password: Some(password.to_owned()),
            ..Default::default()
        }
    }
}

/// What opening a window or `sign-pending` did.
#[derive(Debug, Clone, Serialize)]
pub struct SignReport {
    pub window_until: Millis,
    pub signed: usize,
    pub timestamped: usize,
    /// Still waiting (more than one batch, or failures), with the reasons of failures.
    pub remaining: usize,
    pub failures: Vec<String>,
}

/// The token label of a key: derived from its certificate serial, within PKCS#11's 32 bytes.
pub fn token_label(serial: &str) -> String {
    format!(
        "mamori-{}",
        &hex::encode(mamori_evidence::sha256(serial.as_bytes()))[..24]
    )
}

pub(super) fn token_pin(serial: &str, pin: &str) -> String {
    let salt = mamori_evidence::sha256(format!("mamori signing PIN {serial}").as_bytes());
    stretch_pin(pin, &salt[..16])
}

pub(super) fn token_error(e: TokenError) -> ServiceError {
    let code = match e.kind {
        TokenKind::WrongPin => ErrorCode::SigningPinWrong,
        TokenKind::PinLocked => ErrorCode::SigningPinLocked,
        TokenKind::PinLength => ErrorCode::InvalidInput,
        TokenKind::Import => return ServiceError::invalid("p12", e.message),
        TokenKind::NoToken => ErrorCode::SigningKeyMissing,
        TokenKind::AlreadyOpen => ErrorCode::InvalidState,
        TokenKind::Module | TokenKind::Token => ErrorCode::TokenUnavailable,
    };
    let e2 = ServiceError::new(code, e.message);
    if code == ErrorCode::InvalidInput {
        e2.with_field("pin")
    } else {
        e2
    }
}

/// SoftHSM2's configuration for the tokens of the instance at `data_dir`.
pub fn softhsm_conf_path(data_dir: &std::path::Path) -> std::path::PathBuf {
    data_dir.join(KEY_DIR).join(SOFTHSM_CONF)
}

/// Writes the instance's SoftHSM2 configuration and token directory if they are missing.
fn ensure_softhsm_dir(data_dir: &std::path::Path) -> Result<()> {
    let keys = data_dir.join(KEY_DIR);
    let tokens = keys.join(TOKEN_DIR);
    std::fs::create_dir_all(&tokens).map_err(ev_err)?;
    mamori_store::restrict_dir(&tokens).map_err(ev_err)?;
    let conf = softhsm_conf_path(data_dir);
    // Rewritten when it names another place (a restored or moved data directory).
    let want = mamori_token::softhsm_config(&std::path::absolute(&tokens).map_err(ev_err)?);
    if std::fs::read_to_string(&conf).ok().as_deref() != Some(want.as_str()) {
        std::fs::write(&conf, want).map_err(ev_err)?;
    }
    Ok(())
}

/// The national qualification the facility states for a built-in 職種 in its own signing
/// certificates (hcRole, marked as the facility's): the names HPKI uses.
fn facility_role(role_code: &str) -> Option<&'static str> {
    match role_code {
        "doctor" => Some("Medical Doctor"),
        "dentist" => Some("Dentist"),
        "pharmacist" => Some("Pharmacist"),
        _ => None,
    }
}

/// Signing keys are for those who finalise records as their responsible author.
fn require_signer(p: &Principal) -> Result<()> {
    if p.role
        .allows(mamori_domain::permission::Action::Finalise, None)
    {
        Ok(())
    } else {
        Err(ServiceError::forbidden(
            "署名鍵を持てるのは記録を確定する職種だけです",
        ))
    }
}

impl Service {
    /// Refused unless `p` may hold a signing key; a refusal is recorded under `action`.
    async fn signer_only(self: &Arc<Self>, p: &Principal, action: &'static str) -> Result<()> {
        match require_signer(p) {
            Ok(()) => Ok(()),
            Err(e) => self.refuse(p, action, Target::default(), e).await,
        }
    }

    /// The PKCS#11 module of the signing keys.
    pub(crate) fn token_module(&self) -> Result<Arc<Module>> {
        let path = match self.config.evidence.pkcs11_module.trim() {
            "" => mamori_token::softhsm_module()
                .ok_or_else(|| {
                ServiceError::new(
                    ErrorCode::TokenUnavailable,
                    "署名鍵を入れる PKCS#11 トークンがありません。SoftHSM2 を入れる（apt-get install softhsm2）か evidence.pkcs11_module に HSM のモジュールを設定してください",
                )
                })
                .and_then(|m| {
                    // `mamori` points SoftHSM2 at the instance's own token directory.
                    ensure_softhsm_dir(&self.data_dir)?;
                    Ok(m)
                })?,
            p => std::path::PathBuf::from(p),
        };
        Module::load(&path).map_err(token_error)
    }

    pub(super) fn check_pin_form(&self, pin: &str) -> Result<()> {
        let min = self.config.evidence.signing_pin_min.max(4);
        let n = pin.chars().count();
        if n < min || n > 64 {
            return Err(ServiceError::invalid(
                "pin",
                format!("署名用 PIN は {min} 文字以上 64 文字以下にしてください"),
            ));
        }
        let mut chars = pin.chars();
        let first = chars.next();
        if chars.all(|c| Some(c) == first) {
            return Err(ServiceError::invalid(
                "pin",
                "同じ文字だけの署名用 PIN は使えません",
            ));
        }
        Ok(())
    }

    /// The holder's current key, if it is in a token.
    async fn token_key_of(self: &Arc<Self>, account_id: i64) -> Result<Option<SigningCertRow>> {
        Ok(self.store.read(move |r| r.signing_cert(account_id)).await?)
    }

    /// The open window of someone about to sign by their own act (an uploaded PDF, a
    /// referral document): refused when it is closed, or its certificate has expired.
    pub(super) fn open_window(
        &self,
        p: &Principal,
    ) -> crate::error::Result<(SigningCertRow, Cert, Arc<KeySession>)> {
        let Some((row, cert, key)) = self.window_of(p) else {
            return Err(crate::error::ServiceError::new(
                crate::error::ErrorCode::SigningWindowClosed,
                "署名ウィンドウが開いていません。署名用 PIN で開いてから署名してください",
            ));
        };
        if self.now() >= row.not_after {
            return Err(crate::error::ServiceError::new(
                crate::error::ErrorCode::SigningKeyMissing,
                "署名用証明書の有効期限が切れています。電子署名のページで新しい署名鍵を作ってください",
            ));
        }
        Ok((row, cert, key))
    }

    /// The caller's open window, if it has not expired and this sign-in opened it (another
    /// sign-in of the same person, or one after a password reset, must enter the PIN again).
    pub(super) fn window_of(
        &self,
        p: &Principal,
    ) -> Option<(SigningCertRow, Cert, Arc<KeySession>)> {
        let now = self.now();
        let account_id = p.account.id;
        let mut w = self.evidence_cache.windows.lock().ok()?;
        match w.get(&account_id) {
            Some(win) if win.expires_at > now && win.session == p.token_hash => {
                Some((win.row.clone(), win.cert.clone(), win.key.clone()))
            }
            Some(win) if win.expires_at > now => None,
            Some(_) => {
                w.remove(&account_id);
                None
            }
            None => None,
        }
    }

    fn window_until(&self, p: &Principal) -> Option<Millis> {
        let now = self.now();
        let w = self.evidence_cache.windows.lock().ok()?;
        w.get(&p.account.id)
            .filter(|w| w.session == p.token_hash)
            .map(|w| w.expires_at)
            .filter(|&t| t > now)
    }

    /// Closes every window a sign-in opened (at sign-out) or an account holds (disabled).
    pub(crate) fn close_signing_windows(&self, account_id: Option<i64>, session: Option<&str>) {
        if let Ok(mut w) = self.evidence_cache.windows.lock() {
            w.retain(|id, win| Some(*id) != account_id && session.is_none_or(|s| s != win.session));
        }
    }

    /// The caller's own signing key, window and what awaits their signature.
    pub async fn signing_status(self: &Arc<Self>, p: &Principal) -> Result<SigningStatus> {
        self.signer_only(p, actions::SIGNING_REFUSED).await?;
        let id = p.account.id;
        let (row, awaiting) = self
            .store
            .read(move |r| Ok((r.signing_cert(id)?, r.awaiting_signature(id, 10_000)?.len())))
            .await?;
        let cert = row.as_ref().and_then(|r| Cert::from_der(&r.cert).ok());
        Ok(SigningStatus {
            has_key: row.is_some(),
            serial: row.as_ref().map(|r| r.serial.clone()),
            subject: cert.as_ref().map(|c| c.subject()),
            qualification: cert
                .as_ref()
                .map(|c| {
                    mamori_evidence::hcrole::roles(c)
                        .iter()
                        .map(mamori_evidence::hcrole::HcRole::label_ja)
                        .collect::<Vec<_>>()
                        .join("、")
                })
                .filter(|q| !q.is_empty()),
            not_after: row.as_ref().map(|r| r.not_after),
            window_until: self.window_until(p),
            awaiting,
            external: self.signs_externally(&p.account.login),
            token_problem: self.token_module().err().map(|e| e.message),
            pin_min: self.config.evidence.signing_pin_min.max(4),
        })
    }

    /// The caller's finalised versions that have no signature yet, oldest first.
    pub async fn awaiting_signature(
        self: &Arc<Self>,
        p: &Principal,
    ) -> Result<Vec<AwaitingSignature>> {
        self.signer_only(p, actions::SIGNING_REFUSED).await?;
        let id = p.account.id;
        self.store
            .read(move |r| r.awaiting_signature(id, 1000))
            .await
            .map_err(Into::into)
    }

    /// Sets the caller's signing PIN. Without a key in a token (or with `new_key`, when the PIN
    /// is forgotten) a new key is generated in a new token under the PIN and certified by the
    /// facility CA, retiring the previous one; otherwise the PIN changes, `current` proving the
    /// old one. Recorded in the ledger, never with the PIN.
    pub async fn set_signing_pin(
        self: &Arc<Self>,
        p: &Principal,
        change: &PinChange,
    ) -> Result<SigningStatus> {
        let (pin, current, new_key) = (
            change.pin.as_str(),
            change.current_pin.as_deref().filter(|c| !c.is_empty()),
            change.new_key,
        );
        let mut t = Target::default();
        t.detail("new_key", new_key);
        let checked = self.signing_pin_checks(p, pin);
        if let Err(e) = checked {
            return self.refuse(p, actions::SIGNING_PIN_SET, t, e).await;
        }
        let existing = self.token_key_of(p.account.id).await?;
        match (existing, current, new_key) {
            (Some(row), Some(old), false) => {
                let module = match self.token_module() {
                    Ok(m) => m,
                    Err(e) => return self.refuse(p, actions::SIGNING_PIN_SET, t, e).await,
                };
                if let Err(e) = self.pin_attempt_allowed(p.account.id) {
                    return self.refuse(p, actions::SIGNING_PIN_SET, t, e).await;
                }
                let (serial, old, new) = (row.serial.clone(), old.to_owned(), pin.to_owned());
                let changed = tokio::task::spawn_blocking(move || {
                    module.change_pin(
                        &token_label(&serial),
                        &token_pin(&serial, &old),
                        &token_pin(&serial, &new),
                    )
                })
                .await
                .map_err(ServiceError::internal)?;
                t.detail("serial", row.serial.clone());
                t.detail("changed", "pin");
                if let Err(e) = changed {
                    let e = token_error(e);
                    self.note_pin_result(p.account.id, e.code != ErrorCode::SigningPinWrong);
                    return self.refuse(p, actions::SIGNING_PIN_SET, t, e).await;
                }
                self.note_pin_result(p.account.id, true);
                self.close_signing_windows(Some(p.account.id), None);
                self.write_audited(Some(p), actions::SIGNING_PIN_SET, t, |_, _, _| Ok(()))
                    .await?;
            }
            (Some(_), None, false) => {
                let e = ServiceError::invalid(
                    "current_pin",
                    "今の署名用 PIN を入力してください（忘れた場合は「新しい署名鍵を作る」を選びます）",
                );
                return self.refuse(p, actions::SIGNING_PIN_SET, t, e).await;
            }
            _ => {
                if let Err(e) = self
                    .step_up_password(p, change.password.as_deref().unwrap_or(""))
                    .await
                {
                    return self.refuse(p, actions::SIGNING_PIN_SET, t, e).await;
                }
                self.close_signing_windows(Some(p.account.id), None);
                if let Err(e) = self.new_token_key(p, pin).await {
                    return self.refuse(p, actions::SIGNING_PIN_SET, t, e).await;
                }
            }
        }
        self.signing_status(p).await
    }

    /// The account's password, checked before a key is made in the holder's name (wrong ones
    /// count with wrong PINs towards the pause).
    async fn step_up_password(self: &Arc<Self>, p: &Principal, password: &str) -> Result<()> {
        self.pin_attempt_allowed(p.account.id)?;
        let (pw, phc) = (
            password.to_owned(),
            p.account.password_hash.clone().unwrap_or_default(),
        );
        let ok = self
            .hash_gate
            .run(move || crate::crypto::verify_password(&pw, &phc))
            .await?;
        self.note_pin_result(p.account.id, ok);
        if ok {
            Ok(())
        } else {
            Err(ServiceError::invalid(
                "password",
                "署名鍵を作るには、ログインのパスワードを入力してください（正しくありません）",
            ))
        }
    }

    fn signing_pin_checks(&self, p: &Principal, pin: &str) -> Result<()> {
        require_signer(p)?;
        if p.account.is_service {
            return Err(ServiceError::forbidden(
                "サービスアカウントは署名鍵を持てません",
            ));
        }
        self.check_pin_form(pin)
    }

    /// Records a refusal (in the ledger) and returns it.
    pub(super) async fn refuse<T>(
        self: &Arc<Self>,
        p: &Principal,
        action: &'static str,
        t: Target,
        e: ServiceError,
    ) -> Result<T> {
        let e2 = e.clone();
        self.write_audited(Some(p), action, t, move |_, _, _| -> Result<()> {
            Err(e2.clone())
        })
        .await?;
        Err(e)
    }

    /// A new key generated in a new token under `pin`, certified by the facility CA.
    async fn new_token_key(self: &Arc<Self>, p: &Principal, pin: &str) -> Result<SigningCertRow> {
        let module = self.token_module()?;
        self.ensure_ca().await?;
        let (account, subject) = self.signer_subject(p.account.id).await?;
        let role_code = account.role.clone();
        let serial_bytes = crate::access::ca::leaf_serial();
        let serial = hex::encode(serial_bytes);
        let now = self.now();
        let days = self.config.evidence.signer_days.max(1) as Millis;
        let (dir, pin, s2) = (self.data_dir.clone(), pin.to_owned(), serial.clone());
        let cert_der = tokio::task::spawn_blocking(move || -> Result<Vec<u8>> {
            let spki = module
                .create_key(&token_label(&s2), &token_pin(&s2, &pin))
                .map_err(token_error)?;
            crate::access::ca::issue_for_key(
                &dir,
                &subject,
                LeafPurpose::Signing,
                now - 60_000,
                now + days * DAY,
                &spki,
                &serial_bytes,
                facility_role(&role_code),
            )
        })
        .await
        .map_err(ServiceError::internal)??;
        let row = SigningCertRow {
            serial: serial.clone(),
            account_id: account.id,
            cert: cert_der,
            source: SOURCE_TOKEN.into(),
            not_before: now - 60_000,
            not_after: now + days * DAY,
            created_at: now,
            retired_at: None,
        };
        let mut t = Target::default();
        t.detail("token", token_label(&serial));
        t.detail("new_key", true);
        self.record_signing_cert(actions::SIGNING_PIN_SET, &row, &account.login, t)
            .await?;
        Ok(row)
    }

    fn pin_attempt_allowed(&self, account_id: i64) -> Result<()> {
        let now = self.now();
        let f = self
            .evidence_cache
            .pin_failures
            .lock()
            .map_err(ServiceError::internal)?;
        match f.get(&account_id) {
            Some(&(n, last)) if n >= PIN_TRIES && now - last < PIN_PAUSE => Err(ServiceError::new(
                ErrorCode::SigningPinLocked,
                format!(
                    "署名用 PIN の誤入力が {n} 回続きました。{} 分後にもう一度お試しください",
                    (PIN_PAUSE - (now - last)) / 60_000 + 1
                ),
            )),
            _ => Ok(()),
        }
    }

    fn note_pin_result(&self, account_id: i64, ok: bool) {
        let now = self.now();
        if let Ok(mut f) = self.evidence_cache.pin_failures.lock() {
            if ok {
                f.remove(&account_id);
            } else {
                let e = f.entry(account_id).or_insert((0, now));
                // A pause that has passed starts the count afresh.
                if e.0 >= PIN_TRIES && now - e.1 >= PIN_PAUSE {
                    e.0 = 0;
                }
                e.0 += 1;
                e.1 = now;
            }
        }
    }

    /// Opens the caller's signing window with their PIN and signs what awaits them.
    pub async fn open_signing_window(
        self: &Arc<Self>,
        p: &Principal,
        pin: &str,
    ) -> Result<SignReport> {
        let action = actions::SIGNING_WINDOW_OPENED;
        self.signer_only(p, action).await?;
        let mut t = Target::default();
        if let Err(e) = self.pin_attempt_allowed(p.account.id) {
            return self.refuse(p, action, t, e).await;
        }
        let Some(row) = self.token_key_of(p.account.id).await? else {
            let e = ServiceError::new(
                ErrorCode::SigningKeyMissing,
                "署名鍵がまだありません。先に署名用 PIN を設定してください",
            );
            return self.refuse(p, action, t, e).await;
        };
        t.detail("serial", row.serial.clone());
        let now = self.now();
        if now >= row.not_after {
            let e = ServiceError::new(
                ErrorCode::InvalidState,
                "署名用証明書の有効期限が切れています。新しい署名鍵を作ってください",
            );
            return self.refuse(p, action, t, e).await;
        }
        let module = match self.token_module() {
            Ok(m) => m,
            Err(e) => return self.refuse(p, action, t, e).await,
        };
        // One window per key: the one open is closed (logged out) before the PIN is checked.
        self.close_signing_windows(Some(p.account.id), None);
        let (serial, pin2) = (row.serial.clone(), pin.to_owned());
        let opened = tokio::task::spawn_blocking(move || {
            module.open(&token_label(&serial), &token_pin(&serial, &pin2))
        })
        .await
        .map_err(ServiceError::internal)?;
        let key = match opened {
            Ok(k) => k,
            Err(e) => {
                let e = token_error(e);
                self.note_pin_result(p.account.id, e.code != ErrorCode::SigningPinWrong);
                return self.refuse(p, action, t, e).await;
            }
        };
        self.note_pin_result(p.account.id, true);
        let cert = Cert::from_der(&row.cert).map_err(from_evidence)?;
        let hours = self.config.evidence.signing_window_hours.clamp(1, 24) as Millis;
        let expires_at = now + hours * 3_600_000;
        t.detail("until", expires_at);
        self.write_audited(Some(p), action, t, |_, _, _| Ok(()))
            .await?;
        self.evidence_cache
            .windows
            .lock()
            .map_err(ServiceError::internal)?
            .insert(
                p.account.id,
                Window {
                    key: Arc::new(key),
                    row,
                    cert,
                    expires_at,
                    session: p.token_hash.clone(),
                },
            );
        self.sign_awaiting(p, expires_at).await
    }

    /// Closes the caller's signing window.
    pub async fn close_signing_window(self: &Arc<Self>, p: &Principal) -> Result<()> {
        self.signer_only(p, actions::SIGNING_WINDOW_CLOSED).await?;
        let was_open = self.window_until(p).is_some();
        self.close_signing_windows(Some(p.account.id), None);
        if was_open {
            self.write_audited(
                Some(p),
                actions::SIGNING_WINDOW_CLOSED,
                Target::default(),
                |_, _, _| Ok(()),
            )
            .await?;
        }
        Ok(())
    }

    /// Signs what awaits the caller, inside their open window (refused and recorded without).
    pub async fn sign_pending(self: &Arc<Self>, p: &Principal) -> Result<SignReport> {
        self.signer_only(p, actions::SIGNING_REFUSED).await?;
        let Some(until) = self.window_until(p) else {
            let e = ServiceError::new(
                ErrorCode::SigningWindowClosed,
                "署名ウィンドウが開いていません。署名用 PIN を入力して開いてください",
            );
            return self
                .refuse(p, actions::SIGNING_REFUSED, Target::default(), e)
                .await;
        };
        self.sign_awaiting(p, until).await
    }

    async fn sign_awaiting(self: &Arc<Self>, p: &Principal, until: Millis) -> Result<SignReport> {
        let id = p.account.id;
        let awaiting = self
            .store
            .read(move |r| r.awaiting_signature(id, SIGN_BATCH))
            .await?;
        let mut rep = SignReport {
            window_until: until,
            signed: 0,
            timestamped: 0,
            remaining: 0,
            failures: Vec::new(),
        };
        for a in &awaiting {
            match self.sign_version(Some(p), a.record_id, a.version_no).await {
                Ok(o) if o.signed => {
                    rep.signed += 1;
                    rep.timestamped += usize::from(o.timestamped);
                }
                Ok(o) => rep.failures.extend(
                    o.message
                        .map(|m| format!("{}-{}: {m}", a.record_id, a.version_no)),
                ),
                Err(e) => rep
                    .failures
                    .push(format!("{}-{}: {}", a.record_id, a.version_no, e.message)),
            }
        }
        rep.remaining = self
            .store
            .read(move |r| r.awaiting_signature(id, 100_000))
            .await?
            .len();
        Ok(rep)
    }

    /// At start: signing keys that lay in plain files (releases before the token) are erased —
    /// overwritten, synced, removed — and their certificates retired, in one ledger entry. A key
    /// that lay on a disk cannot be shown to have stayed under its holder's sole control, so
    /// it is not carried into a token; its past signatures keep verifying, and the holder makes
    /// a new key by setting a signing PIN.
    pub(crate) fn migrate_plain_signing_keys(svc: &Service) -> Result<usize> {
        let dir = svc.data_dir.join(KEY_DIR).join(SIGNERS_DIR);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Ok(0);
        };
        let mut serials = Vec::new();
        for e in entries.flatten() {
            let path = e.path();
            if path.extension().is_some_and(|x| x == "key") {
                erase_file(&path).map_err(ev_err)?;
                if let Some(s) = path.file_stem() {
                    serials.push(s.to_string_lossy().into_owned());
                }
            }
        }
        if serials.is_empty() {
            return Ok(0);
        }
        serials.sort();
        let now = svc.now();
        let store = svc.store.clone();
        let s2 = serials.clone();
        let event = svc.event(
            None,
            actions::SIGNING_KEYS_MIGRATED,
            mamori_domain::audit::Outcome::Ok,
            &{
                let mut t = Target::default();
                t.detail("erased", serials.clone());
                t.detail(
                    "why",
                    "平文ファイルの署名鍵は本人の単独管理を示せないため、消去して証明書を失効扱い（retired）にしました",
                );
                t
            },
        );
        std::thread::scope(|sc| {
            sc.spawn(move || {
                store.write_blocking(move |tx| -> Result<()> {
                    for s in &s2 {
                        tx.retire_signing_cert(s, now)?;
                    }
                    tx.append(&event)?;
                    Ok(())
                })
            })
            .join()
        })
        .map_err(|_| ServiceError::internal("erasing plain signing keys panicked"))??;
        let _ = std::fs::remove_dir(&dir);
        tracing::warn!(
            keys = serials.len(),
            "signing keys held in plain files were erased; their holders set a signing PIN for new keys"
        );
        Ok(serials.len())
    }
}

/// Overwrites a file with zeros, syncs it and removes it. On copy-on-write file systems or SSDs
/// the old blocks may survive; the key's certificate is retired regardless.
fn erase_file(path: &std::path::Path) -> std::io::Result<()> {
    use std::io::Write;
    let len = std::fs::metadata(path)?.len() as usize;
    let mut f = std::fs::OpenOptions::new().write(true).open(path)?;
    f.write_all(&vec![0u8; len])?;
    f.sync_all()?;
    drop(f);
    std::fs::remove_file(path)
}
