//! Signing keys in a PKCS#11 token, each usable only under its holder's PIN.
//!
//! Every signing key gets **a token of its own** (SoftHSM2 makes one per `C_InitToken`; an HSM
//! has partitions or slots), whose user PIN only its holder knows: mamori passes the PIN through
//! to `C_Login` and never stores it. The security officer's PIN is random and thrown away at
//! creation, so nobody — not the administrator, not mamori — can reset the holder's PIN and use
//! the key. Keys are generated in the token (or imported into it) as sensitive and
//! non-extractable; the token stores them encrypted under a key derived from the PIN (SoftHSM2)
//! or in hardware.
//!
//! A [`KeySession`] is the open, logged-in session of one key: the holder's signing window. It
//! signs through the token ([`mamori_evidence::cms::RawSigner`]) and logs out when dropped.

#![forbid(unsafe_code)]

mod import;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as P11Error, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use der::asn1::ObjectIdentifier as Oid;
use mamori_evidence::cms::RawSigner;

pub use import::ImportError;

/// DER of the named curve P-256 (`CKA_EC_PARAMS`).
const P256_PARAMS: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// The SubjectPublicKeyInfo of a P-256 key up to its 65-byte uncompressed point.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];
const ECDSA_WITH_SHA256: Oid = Oid::new_unwrap("1.2.840.10045.4.3.2");
const SHA256_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.11");

/// What went wrong, in words a signer can act on.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct TokenError {
    pub kind: ErrorKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The PKCS#11 module could not be loaded or initialised.
    Module,
    /// No token with the key's label.
    NoToken,
    WrongPin,
    /// The token refuses further attempts.
    PinLocked,
    /// The PIN's length is outside the token's range.
    PinLength,
    /// The key's window is open already (close it first).
    AlreadyOpen,
    /// The key could not be imported (format, curve).
    Import,
    /// Anything else the token said.
    Token,
}

pub type Result<T> = std::result::Result<T, TokenError>;

fn err(kind: ErrorKind, message: impl Into<String>) -> TokenError {
    TokenError {
        kind,
        message: message.into(),
    }
}

fn p11(what: &str) -> impl Fn(P11Error) -> TokenError + '_ {
    move |e| match e {
        P11Error::Pkcs11(RvError::PinIncorrect, _) => {
            err(ErrorKind::WrongPin, "署名用 PIN が違います")
        }
        P11Error::Pkcs11(RvError::PinLocked, _) => err(
            ErrorKind::PinLocked,
            "署名用 PIN が誤入力の繰り返しでロックされています",
        ),
        P11Error::Pkcs11(RvError::PinLenRange, _) => err(
            ErrorKind::PinLength,
            "署名用 PIN の長さがトークンの範囲外です",
        ),
        other => err(
            ErrorKind::Token,
            format!("PKCS#11 トークンの操作（{what}）に失敗しました: {other}"),
        ),
    }
}

/// A loaded PKCS#11 module. PKCS#11 allows one `C_Initialize` per process, so each module path
/// is loaded once and shared.
pub struct Module {
    ctx: Pkcs11,
    path: PathBuf,
    /// Token creation takes the one uninitialised slot; two at once would race for it.
    creating: Mutex<()>,
}

impl std::fmt::Debug for Module {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Module").field("path", &self.path).finish()
    }
}

static MODULES: OnceLock<Mutex<HashMap<PathBuf, Arc<Module>>>> = OnceLock::new();

/// Where Debian's SoftHSM2 puts its module, first match wins.
pub const SOFTHSM_PATHS: [&str; 2] = [
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
];

/// The SoftHSM2 module of this machine, if it is installed.
pub fn softhsm_module() -> Option<PathBuf> {
    SOFTHSM_PATHS.iter().map(PathBuf::from).find(|p| p.exists())
}

/// Whether `path` is SoftHSM2 (which takes its token directory from `SOFTHSM2_CONF`).
pub fn is_softhsm(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|n| n.to_string_lossy().contains("softhsm"))
}

/// The SoftHSM2 configuration mamori writes for a token directory of its own.
pub fn softhsm_config(token_dir: &Path) -> String {
    format!(
        "# Written by mamori: the tokens of this instance's signing keys.\n\
         directories.tokendir = {}\n\
         objectstore.backend = file\n\
         log.level = ERROR\n\
         slots.removable = false\n",
        token_dir.display()
    )
}

impl Module {
    /// Loads and initialises the module at `path` (once per process).
    pub fn load(path: &Path) -> Result<Arc<Module>> {
        let map = MODULES.get_or_init(Default::default);
        let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = map.get(path) {
            return Ok(m.clone());
        }
        let ctx = Pkcs11::new(path).map_err(|e| {
            err(
                ErrorKind::Module,
                format!(
                    "PKCS#11 モジュール {} を読み込めません: {e}（SoftHSM2 なら apt-get install softhsm2）",
                    path.display()
                ),
            )
        })?;
        match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            Ok(()) | Err(P11Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
            Err(e) => {
                return Err(err(
                    ErrorKind::Module,
                    format!(
                        "PKCS#11 モジュール {} を初期化できません: {e}",
                        path.display()
                    ),
                ));
            }
        }
        let m = Arc::new(Module {
            ctx,
            path: path.to_owned(),
            creating: Mutex::new(()),
        });
        map.insert(path.to_owned(), m.clone());
        Ok(m)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The slot whose token carries `label`.
    fn slot_of(&self, label: &str) -> Result<Slot> {
        for slot in self
            .ctx
            .get_slots_with_initialized_token()
            .map_err(p11("トークンの一覧"))?
        {
            let info = self
                .ctx
                .get_token_info(slot)
                .map_err(p11("トークンの情報"))?;
            if info.label().trim_end() == label {
                return Ok(slot);
            }
        }
        Err(err(
            ErrorKind::NoToken,
            format!("署名鍵のトークン {label} が見つかりません"),
        ))
    }

    /// Whether a token with `label` exists.
    pub fn has_token(&self, label: &str) -> bool {
        self.slot_of(label).is_ok()
    }

    /// Makes a token `label` whose user PIN is `pin`, with the SO PIN random and forgotten.
    /// Returns the logged-in session.
    fn new_token(&self, label: &str, pin: &AuthPin) -> Result<Session> {
        if label.len() > 32 {
            return Err(err(
                ErrorKind::Token,
                "トークンのラベルは 32 バイトまでです",
            ));
        }
        let _one = self.creating.lock().unwrap_or_else(|p| p.into_inner());
        if self.has_token(label) {
            return Err(err(
                ErrorKind::Token,
                format!("トークン {label} は既にあります"),
            ));
        }
        let free = self
            .ctx
            .get_slots_with_token()
            .map_err(p11("スロットの一覧"))?
            .into_iter()
            .find(|s| {
                self.ctx
                    .get_token_info(*s)
                    .is_ok_and(|i| !i.token_initialized())
            })
            .ok_or_else(|| err(ErrorKind::Token, "空きのスロットがありません"))?;
        let so_pin = AuthPin::new(random_hex::<32>()?.into());
        self.ctx
            .init_token(free, &so_pin, label)
            .map_err(p11("トークンの作成"))?;
        let session = self.ctx.open_rw_session(free).map_err(p11("セッション"))?;
        session
            .login(UserType::So, Some(&so_pin))
            .map_err(p11("SO ログイン"))?;
        session.init_pin(pin).map_err(p11("PIN の設定"))?;
        session.logout().map_err(p11("ログアウト"))?;
        session
            .login(UserType::User, Some(pin))
            .map_err(p11("ログイン"))?;
        Ok(session)
    }

    /// Creates the token `label` with a fresh ECDSA P-256 key generated inside it (sensitive,
    /// non-extractable). Returns the public key (DER SubjectPublicKeyInfo) to certify.
    pub fn create_key(&self, label: &str, pin: &str) -> Result<Vec<u8>> {
        let pin = AuthPin::new(pin.into());
        let session = self.new_token(label, &pin)?;
        let id = label.as_bytes().to_vec();
        let public = [
            Attribute::Token(true),
            Attribute::Verify(true),
            Attribute::EcParams(P256_PARAMS.to_vec()),
            Attribute::Label(id.clone()),
            Attribute::Id(id.clone()),
        ];
        let private = [
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::Label(id.clone()),
            Attribute::Id(id),
        ];
        let (pub_h, _) = session
            .generate_key_pair(&Mechanism::EccKeyPairGen, &public, &private)
            .map_err(p11("鍵の生成"))?;
        let point = match session
            .get_attributes(pub_h, &[AttributeType::EcPoint])
            .map_err(p11("公開鍵"))?
            .pop()
        {
            Some(Attribute::EcPoint(p)) => p,
            _ => return Err(err(ErrorKind::Token, "公開鍵を読めません")),
        };
        let _ = session.logout();
        spki_from_ec_point(&point)
    }

    /// Creates the token `label` holding an imported private key (PKCS#8: ECDSA P-256/P-384
    /// or RSA), sensitive and non-extractable from then on.
    pub fn import_key(&self, label: &str, pin: &str, pkcs8: &[u8]) -> Result<()> {
        let template = import::private_key_template(pkcs8, label.as_bytes())
            .map_err(|e| err(ErrorKind::Import, e.to_string()))?;
        let pin = AuthPin::new(pin.into());
        let session = self.new_token(label, &pin)?;
        session
            .create_object(&template)
            .map_err(p11("鍵の取り込み"))?;
        let _ = session.logout();
        Ok(())
    }

    /// Opens the holder's signing window: a session logged in with their PIN.
    pub fn open(&self, label: &str, pin: &str) -> Result<KeySession> {
        let slot = self.slot_of(label)?;
        let info = self
            .ctx
            .get_token_info(slot)
            .map_err(p11("トークンの情報"))?;
        if info.user_pin_locked() {
            return Err(err(
                ErrorKind::PinLocked,
                "署名用 PIN が誤入力の繰り返しでロックされています",
            ));
        }
        let session = self.ctx.open_ro_session(slot).map_err(p11("セッション"))?;
        // Logged in already means another window of this key is open: its PIN was checked
        // then, not now, so this one is refused rather than let through unchecked.
        match session.login(UserType::User, Some(&AuthPin::new(pin.into()))) {
            Ok(()) => {}
            Err(P11Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {
                return Err(err(
                    ErrorKind::AlreadyOpen,
                    "この署名鍵の署名ウィンドウは既に開いています",
                ));
            }
            Err(e) => return Err(p11("ログイン")(e)),
        }
        let key = session
            .find_objects(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::Id(label.as_bytes().to_vec()),
            ])
            .map_err(p11("鍵の検索"))?
            .pop()
            .ok_or_else(|| err(ErrorKind::NoToken, "トークンに署名鍵がありません"))?;
        let key_type = match session
            .get_attributes(key, &[AttributeType::KeyType])
            .map_err(p11("鍵の種類"))?
            .pop()
        {
            Some(Attribute::KeyType(t)) => t,
            _ => return Err(err(ErrorKind::Token, "鍵の種類を読めません")),
        };
        let rsa = key_type == KeyType::RSA;
        Ok(KeySession {
            session: Mutex::new(session),
            key,
            rsa,
        })
    }

    /// Changes the PIN of `label` (the holder knows the old one).
    pub fn change_pin(&self, label: &str, old: &str, new: &str) -> Result<()> {
        let slot = self.slot_of(label)?;
        let session = self.ctx.open_rw_session(slot).map_err(p11("セッション"))?;
        let old = AuthPin::new(old.into());
        session
            .login(UserType::User, Some(&old))
            .map_err(p11("ログイン"))?;
        session
            .set_pin(&old, &AuthPin::new(new.into()))
            .map_err(p11("PIN の変更"))?;
        let _ = session.logout();
        Ok(())
    }

    /// Whether a private key's value can be read out of the token (it never should be).
    pub fn key_is_extractable(&self, label: &str, pin: &str) -> Result<bool> {
        let ks = self.open(label, pin)?;
        let s = ks.session.lock().unwrap_or_else(|p| p.into_inner());
        let attrs = s
            .get_attributes(
                ks.key,
                &[AttributeType::Extractable, AttributeType::Sensitive],
            )
            .map_err(p11("鍵の属性"))?;
        let mut extractable = true;
        for a in attrs {
            match a {
                Attribute::Extractable(e) => extractable &= e,
                Attribute::Sensitive(s) => extractable &= !s,
                _ => {}
            }
        }
        Ok(extractable)
    }
}

/// An open signing window: one key's logged-in session.
pub struct KeySession {
    session: Mutex<Session>,
    key: ObjectHandle,
    rsa: bool,
}

impl std::fmt::Debug for KeySession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySession")
            .field("rsa", &self.rsa)
            .finish()
    }
}

impl Drop for KeySession {
    fn drop(&mut self) {
        if let Ok(s) = self.session.get_mut() {
            let _ = s.logout();
        }
    }
}

impl RawSigner for KeySession {
    fn algorithm(&self) -> Oid {
        if self.rsa {
            SHA256_WITH_RSA
        } else {
            ECDSA_WITH_SHA256
        }
    }

    fn sign(&self, message: &[u8]) -> mamori_evidence::Result<Vec<u8>> {
        let failed = |e: TokenError| mamori_evidence::EvidenceError::new("sign_failed", e.message);
        let s = self.session.lock().unwrap_or_else(|p| p.into_inner());
        if self.rsa {
            return s
                .sign(&Mechanism::Sha256RsaPkcs, self.key, message)
                .map_err(|e| failed(p11("署名")(e)));
        }
        let digest = mamori_evidence::sha256(message);
        let raw = s
            .sign(&Mechanism::Ecdsa, self.key, &digest)
            .map_err(|e| failed(p11("署名")(e)))?;
        ecdsa_der(&raw).map_err(failed)
    }
}

/// The SubjectPublicKeyInfo of a P-256 point as `CKA_EC_POINT` gives it (DER OCTET STRING, or
/// the bare point as some tokens do).
fn spki_from_ec_point(value: &[u8]) -> Result<Vec<u8>> {
    let point = match value {
        [0x04, 0x41, rest @ ..] if rest.len() == 65 => rest,
        p if p.len() == 65 && p[0] == 0x04 => p,
        _ => {
            return Err(err(
                ErrorKind::Token,
                "公開鍵が P-256 の非圧縮点ではありません",
            ));
        }
    };
    let mut spki = P256_SPKI_PREFIX.to_vec();
    spki.extend_from_slice(point);
    Ok(spki)
}

/// `ECDSA-Sig-Value` (RFC 3279) from the PKCS#11 form `r || s`.
fn ecdsa_der(raw: &[u8]) -> Result<Vec<u8>> {
    use der::Encode;
    use der::asn1::UintRef;
    if raw.is_empty() || !raw.len().is_multiple_of(2) {
        return Err(err(ErrorKind::Token, "トークンの署名値の長さが不正です"));
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    #[derive(der::Sequence)]
    struct Sig<'a> {
        r: UintRef<'a>,
        s: UintRef<'a>,
    }
    let bad = |e: der::Error| err(ErrorKind::Token, format!("署名値: {e}"));
    Sig {
        r: UintRef::new(r).map_err(bad)?,
        s: UintRef::new(s).map_err(bad)?,
    }
    .to_der()
    .map_err(bad)
}

fn random_hex<const N: usize>() -> Result<String> {
    use ring::rand::SecureRandom;
    let mut b = [0u8; N];
    ring::rand::SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| err(ErrorKind::Token, "乱数を得られません"))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_form_of_an_ecdsa_signature_becomes_der() {
        let mut raw = vec![0u8; 64];
        raw[0] = 0x80; // r needs a leading zero in DER
        raw[63] = 1;
        let der = ecdsa_der(&raw).unwrap();
        assert_eq!(&der[..4], &[0x30, 0x26, 0x02, 0x21]);
        assert_eq!(der[4], 0);
        assert!(ecdsa_der(&[1, 2, 3]).is_err());
    }

    #[test]
    fn an_ec_point_in_either_form_becomes_the_same_spki() {
        let mut point = vec![0x04];
        point.extend([7u8; 64]);
        let mut wrapped = vec![0x04, 0x41];
        wrapped.extend(&point);
        assert_eq!(
            spki_from_ec_point(&point).unwrap(),
            spki_from_ec_point(&wrapped).unwrap()
        );
        assert!(spki_from_ec_point(&[0x04, 1, 2]).is_err());
    }
}
