//! Creating and opening an instance: data directory, configuration, ledger key, defaults.

use crate::ErrorCode;
use std::path::Path;
use std::sync::Arc;

use ed25519_dalek::SigningKey;
use mamori_domain::audit::{AuditEvent, Outcome, actions};
use mamori_domain::kinds::default_kinds;
use mamori_domain::password::check_strength;
use mamori_domain::permission::default_roles;
use mamori_domain::{Clock, SystemClock};
use mamori_ledger::CheckpointSigner;
use mamori_store::{Store, StoreOptions};
use rand_core::OsRng;

use crate::Service;
use crate::config::{CONFIG_FILE, Config};
use crate::crypto::{hash_password, random_hex};
use crate::error::{Result, ServiceError};

pub const KEY_DIR: &str = "keys";
pub const LEDGER_KEY: &str = "ledger.key";

pub struct InitParams<'a> {
    pub facility: &'a str,
    pub admin_login: &'a str,
    pub admin_password: &'a str,
}

fn io(e: std::io::Error) -> ServiceError {
    ServiceError::internal(e)
}

/// The store of the instance in `dir`: SQLite there, or PostgreSQL when the configuration
/// names a database.
pub fn open_store(dir: &Path, config: &Config, mut opts: StoreOptions) -> Result<Store> {
    opts.blobs = blob_backend(config)?;
    match database(config)? {
        None => Ok(Store::open(dir, opts)?),
        Some(db) => Ok(Store::open_postgres(dir, &db, opts)?),
    }
}

/// The PostgreSQL database the configuration names, if any.
pub fn database(config: &Config) -> Result<Option<mamori_store::postgres::Database>> {
    let url = config.database.url.trim();
    if url.is_empty() {
        return Ok(None);
    }
    mamori_store::postgres::parse_url(url)
        .map(Some)
        .map_err(|e| ServiceError::invalid("database", e.to_string()))
}

/// Where the configuration keeps content files when not in `blobs/` of the data directory:
/// small ones in the database, the others in the bucket it names.
pub fn blob_backend(config: &Config) -> Result<Option<Arc<dyn mamori_store::BlobBackend>>> {
    let Some(bucket) = bucket(config)? else {
        return Ok(None);
    };
    let db = database(config)?.expect("a bucket is only configured beside a database");
    // Record texts in the database, attachments in the bucket: a bucket that cannot be
    // reached stops uploads, not the writing and reading of text records.
    Ok(Some(Arc::new(mamori_store::postgres::Tiered {
        small: Arc::new(mamori_store::postgres::PgBlobs::new(db)),
        large: bucket,
    })))
}

/// The bucket the configuration names for content files. Only beside a PostgreSQL database:
/// a bucket is for several nodes, and one node on SQLite keeps its files beside its database,
/// in the same backups.
fn bucket(config: &Config) -> Result<Option<Arc<dyn mamori_store::BlobBackend>>> {
    let url = config.database.blobs.trim();
    if url.is_empty() {
        return Ok(None);
    }
    if config.database.url.trim().is_empty() {
        return Err(ServiceError::invalid(
            "blobs",
            "内容ファイルを S3 に置けるのは、状態を PostgreSQL に置くインスタンスだけです（[database] url も設定してください）",
        ));
    }
    if !url.starts_with("s3://") {
        return Err(ServiceError::invalid(
            "blobs",
            "内容ファイルの置き場所は s3://バケット/接頭辞?endpoint=…&region=… の形で書いてください",
        ));
    }
    let creds = mamori_backup::s3::Credentials::from_env()
        .map_err(|e| ServiceError::invalid("blobs", e.to_string()))?;
    let bucket = crate::outside::s3_blobs::S3Blobs::open(url, creds)
        .map_err(|e| ServiceError::invalid("blobs", e.to_string()))?;
    Ok(Some(Arc::new(bucket)))
}

/// A bucket for a new instance's files must be reachable and hold none: files of another
/// instance there would be taken for this one's, and its orphan sweep would remove them.
fn check_empty_bucket(b: &dyn mamori_store::BlobBackend, url: &str) -> Result<()> {
    let found = b.files().map_err(|e| {
        ServiceError::new(
            ErrorCode::StorageUnreachable,
            format!("内容ファイルの置き場所（S3）に接続できません: {e}"),
        )
    })?;
    if !found.is_empty() {
        return Err(ServiceError::new(
            ErrorCode::Conflict,
            format!(
                "内容ファイルの置き場所 {} には既に {} 個のファイルがあります。空の置き場所（別の接頭辞）を指定してください",
                url.split('?').next().unwrap_or(url),
                found.len()
            ),
        ));
    }
    Ok(())
}

/// The content files of the instance in `dir`, wherever its configuration keeps them.
pub fn blob_store(dir: &Path) -> Result<mamori_store::BlobStore> {
    let backend = if dir.join(CONFIG_FILE).exists() {
        blob_backend(&Config::load(dir)?)?
    } else {
        None
    };
    Ok(match backend {
        Some(b) => mamori_store::BlobStore::with_backend(b),
        None => mamori_store::BlobStore::open(dir.join("blobs"))?,
    })
}

/// One read-only snapshot of the instance in `dir`, whichever database holds it.
pub fn read_only(dir: &Path) -> Result<mamori_store::ReadOnly> {
    if !dir.join("mamori.db").exists()
        && dir.join(CONFIG_FILE).exists()
        && let Some(db) = database(&Config::load(dir)?)?
    {
        return Ok(mamori_store::ReadOnly::open_postgres(&db)?);
    }
    Ok(mamori_store::ReadOnly::open(dir)?)
}

pub fn is_instance(dir: &Path) -> bool {
    dir.join("mamori.db").exists() || dir.join(CONFIG_FILE).exists()
}

/// The one spelling of a login name: NFKC (a full-width ｄｒ．ｔａｎａｋａ typed with a Japanese
/// IME is dr.tanaka) and lower case, so that `Dr.Tanaka` and `dr.tanaka` are one name and no
/// second account can take a look-alike of the first.
pub fn normalise_login(login: &str) -> String {
    // NFKC, lower case, NFKC again (lower-casing can undo a composition), then the spaces
    // either step uncovered: the same result however often it is applied.
    let nfkc = icu_normalizer::ComposingNormalizerBorrowed::new_nfkc();
    let lower = nfkc.normalize(login).to_lowercase();
    nfkc.normalize(&lower).trim().to_owned()
}

pub fn validate_login(login: &str) -> Result<()> {
    let ok = (3..=32).contains(&login.len())
        && login
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && login.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(ServiceError::invalid(
            "login",
            "ログインIDは英数字と . _ - で3〜32文字、英数字で始めてください",
        ))
    }
}

/// Changes where `serve` listens (`server.listen` in mamori.toml), e.g. right after `init` on
/// a server the clinic's PCs reach (`0.0.0.0:8443`). Environment overrides are not written.
pub fn set_listen(dir: &Path, listen: &str) -> Result<()> {
    listen.parse::<std::net::SocketAddr>().map_err(|_| {
        ServiceError::invalid(
            "listen",
            format!("「{listen}」は待ち受けアドレスではありません（例: 0.0.0.0:8443）"),
        )
    })?;
    Config::edit(dir, |c| c.server.listen = listen.to_owned())
}

/// Right after `init`: passkeys are bound to the first host name staff type (not to
/// `localhost`, which only this machine reaches).
pub fn set_passkey_host(dir: &Path, hosts: &[String]) -> Result<()> {
    let Some(name) = hosts.iter().find(|h| {
        let h = h.trim();
        h != "localhost" && h.parse::<std::net::IpAddr>().is_err()
    }) else {
        return Ok(());
    };
    Config::edit(dir, |c| {
        if c.server.passkey_rp_id == "localhost" {
            c.server.passkey_rp_id = name.trim().to_ascii_lowercase();
        }
    })
}

/// Creates a new instance in `dir` with one administrator who must change the initial
/// password at first login.
pub fn init(dir: &Path, params: &InitParams<'_>) -> Result<()> {
    init_with_database(dir, params, None, None)
}

/// The same, with the state in the PostgreSQL database at `database` (which must not hold
/// an instance already); `dir` keeps the configuration, keys and content files.
pub fn init_with_database(
    dir: &Path,
    params: &InitParams<'_>,
    database: Option<&str>,
    blobs: Option<&str>,
) -> Result<()> {
    if is_instance(dir) {
        return Err(ServiceError::new(
            ErrorCode::Exists,
            format!("{} には既にインスタンスがあります", dir.display()),
        ));
    }
    let facility = params.facility.trim();
    if facility.is_empty() || facility.chars().count() > 100 {
        return Err(ServiceError::invalid(
            "facility",
            "施設名を100文字以内で入力してください",
        ));
    }
    let admin_login = normalise_login(params.admin_login);
    validate_login(&admin_login)?;
    let mut config = Config::new(facility);
    check_strength(&config.password, &admin_login, params.admin_password)?;
    if let Some(url) = database {
        config.database.url = url.trim().to_owned();
    }
    if let Some(url) = blobs {
        config.database.blobs = url.trim().to_owned();
    }
    // Refused before anything is written: a URL that would leave the machine in the clear,
    // an unreachable server, a database that already holds an instance, a bucket that
    // cannot be reached or already holds files.
    if let Some(b) = bucket(&config)? {
        check_empty_bucket(&*b, &config.database.blobs)?;
    }
    if let Some(db) = self::database(&config)? {
        let probe = mamori_store::ReadOnly::open_postgres(&db)?;
        let existing = probe.get().meta("origin").unwrap_or(None);
        if let Some(origin) = existing {
            return Err(ServiceError::new(
                ErrorCode::Conflict,
                format!("このデータベースには既にインスタンス（{origin}）があります"),
            ));
        }
    }

    std::fs::create_dir_all(dir.join(KEY_DIR)).map_err(io)?;
    mamori_store::restrict_dir(dir).map_err(io)?;
    mamori_store::restrict_dir(&dir.join(KEY_DIR)).map_err(io)?;
    let key = SigningKey::generate(&mut OsRng);
    let key_path = dir.join(KEY_DIR).join(LEDGER_KEY);
    write_private(&key_path, hex::encode(key.to_bytes()).as_bytes())?;
    let cfg_path = dir.join(CONFIG_FILE);
    write_private(&cfg_path, config.to_toml().as_bytes())?;

    let origin = format!("mamori.local/{}", random_hex(6));
    let signer = CheckpointSigner::new(origin.clone(), key);
    let store = open_store(dir, &config, StoreOptions::default())?;
    let now = SystemClock.now();
    let admin_hash = hash_password(params.admin_password);
    let (login, vkey, fac) = (
        admin_login.clone(),
        signer.verifier_key(),
        facility.to_owned(),
    );
    let result = store.write_blocking(move |tx| -> Result<()> {
        tx.set_meta("origin", &origin)?;
        tx.set_meta("verifier_key", &vkey)?;
        tx.set_meta("facility", &fac)?;
        for r in default_roles() {
            tx.save_role(&r, now)?;
        }
        for k in default_kinds() {
            tx.save_kind(&k, now)?;
        }
        let mut ev = AuditEvent::new(now, None, actions::SYSTEM_INIT, Outcome::Ok);
        ev.detail = serde_json::json!({ "facility": fac, "verifier_key": vkey });
        tx.append(&ev)?;
        let id = tx.insert_account(
            &login,
            "管理者",
            "sysadmin",
            false,
            Some(&admin_hash),
            true,
            now,
            None,
        )?;
        let mut ev = AuditEvent::new(now, None, actions::ACCOUNT_CREATED, Outcome::Ok);
        ev.detail = serde_json::json!({ "account": id, "login": login, "role": "sysadmin" });
        tx.append(&ev)?;
        Ok(())
    });
    store.close();
    drop(store);
    result?;
    let svc = open(dir)?;
    svc.checkpoint_blocking()?;
    svc.store.close();
    Ok(())
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    Ok(())
}

pub fn load_signing_key(dir: &Path) -> Result<SigningKey> {
    let path = dir.join(KEY_DIR).join(LEDGER_KEY);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        ServiceError::new(
            ErrorCode::Key,
            format!("台帳の署名鍵 {} を読めません: {e}", path.display()),
        )
    })?;
    let bytes: [u8; 32] = hex::decode(text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| {
            ServiceError::new(
                ErrorCode::Key,
                format!("台帳の署名鍵 {} が壊れています", path.display()),
            )
        })?;
    Ok(SigningKey::from_bytes(&bytes))
}

/// Opens an existing instance with the system clock.
pub fn open(dir: &Path) -> Result<Arc<Service>> {
    open_with(dir, Arc::new(SystemClock), StoreOptions::default(), None)
}

pub fn open_with(
    dir: &Path,
    clock: Arc<dyn Clock>,
    opts: StoreOptions,
    config_override: Option<Config>,
) -> Result<Arc<Service>> {
    let no_instance = || {
        ServiceError::new(
            ErrorCode::NoInstance,
            format!(
                "{} にインスタンスがありません。先に `mamori init` を実行してください",
                dir.display()
            ),
        )
    };
    if !dir.join("mamori.db").exists() && !dir.join(CONFIG_FILE).exists() {
        return Err(no_instance());
    }
    let config = match config_override {
        Some(c) => c,
        None => Config::load(dir)?,
    };
    if !dir.join("mamori.db").exists() && database(&config)?.is_none() {
        return Err(no_instance());
    }
    let key = load_signing_key(dir)?;
    let store = open_store(dir, &config, opts)?;
    let origin = store.reader()?.get().meta("origin")?.ok_or_else(|| {
        ServiceError::new(
            ErrorCode::Corrupt,
            "インスタンスの識別子 (origin) がありません",
        )
    })?;
    let signer = CheckpointSigner::new(origin, key);
    let svc = Service {
        store,
        config,
        clock,
        signer,
        data_dir: dir.to_owned(),
        unencrypted_network: std::sync::atomic::AtomicBool::new(false),
        clock_status: std::sync::Mutex::new(None),
        evidence_cache: Default::default(),
        hash_gate: crate::access::guard::Gate::for_machine(),
        cpu_gate: crate::access::guard::Gate::for_machine(),
        outside: Default::default(),
        content_cache: Default::default(),
        sign_ins: Default::default(),
    };
    let expected = svc.store.reader()?.get().meta("verifier_key")?;
    if expected.as_deref() != Some(svc.signer.verifier_key().as_str()) {
        return Err(ServiceError::new(
            ErrorCode::KeyMismatch,
            "台帳の署名鍵がこのインスタンスのものではありません。鍵ファイルを確認してください",
        ));
    }
    record_upgrade(&svc)?;
    state_baseline(&svc)?;
    Service::migrate_plain_signing_keys(&svc)?;
    Ok(Arc::new(svc))
}

/// The first entry after a schema upgrade says what changed and where the copy from before
/// is: an inspector sees the upgrade in the ledger, an operator finds the way back.
fn record_upgrade(svc: &Service) -> Result<()> {
    let detail = match (svc.store.upgrade().cloned(), svc.store.upgraded_from()) {
        (Some(u), _) => serde_json::json!({
            "schema_from": u.from,
            "schema_to": u.to,
            "release": env!("CARGO_PKG_VERSION"),
            "pre_upgrade_copy": u.copy.strip_prefix(&svc.data_dir).unwrap_or(&u.copy).display().to_string(),
            "copy_bytes": u.copy_bytes,
            "copy_ledger_entries": u.ledger_entries,
        }),
        // PostgreSQL: the database server's own backups (pg_dump) are the way back.
        (None, Some(from)) => serde_json::json!({
            "schema_from": from,
            "schema_to": mamori_store::SCHEMA_VERSION,
            "release": env!("CARGO_PKG_VERSION"),
            "database": "postgresql",
        }),
        (None, None) => return Ok(()),
    };
    let (from, to) = (
        detail["schema_from"].as_u64().unwrap_or(0),
        detail["schema_to"].as_u64().unwrap_or(0),
    );
    let copy = detail["pre_upgrade_copy"].as_str().unwrap_or("").to_owned();
    let event = mamori_domain::audit::AuditEvent::new(
        svc.now(),
        None,
        mamori_domain::audit::actions::INSTANCE_UPGRADED,
        mamori_domain::audit::Outcome::Ok,
    )
    .detail(detail);
    let store = svc.store.clone();
    let now = svc.now();
    std::thread::scope(|sc| {
        sc.spawn(move || {
            store.write_blocking(
                move |tx| -> std::result::Result<(), mamori_store::StoreError> {
                    // Built-in roles a later release adds (経理担当 with the 電帳法 pillar) arrive
                    // with the upgrade, in the same transaction as its entry.
                    let mut added = Vec::new();
                    for r in default_roles() {
                        if tx.read().role(&r.code)?.is_none() {
                            tx.save_role(&r, now)?;
                            added.push(r.code.clone());
                        }
                    }
                    let mut event = event.clone();
                    if !added.is_empty() {
                        event.detail["roles_added"] = serde_json::json!(added);
                    }
                    tx.append(&event)?;
                    Ok(())
                },
            )
        })
        .join()
    })
    .map_err(|_| ServiceError::internal("recording the upgrade panicked"))??;
    tracing::warn!(
        from,
        to,
        copy,
        "database upgraded from an earlier release; the copy from before is kept"
    );
    Ok(())
}

/// Once per instance (new, or upgraded from a release that did not state its rows): every
/// covered row's current values go into the ledger, from which `verify` then compares them.
/// One recorded step; later edits behind mamori's back are found from here on.
fn state_baseline(svc: &Service) -> Result<()> {
    let now = svc.now();
    // On a thread of its own: `open` may be called from inside an async runtime.
    let store = svc.store.clone();
    let write = move || {
        store.write_blocking(move |tx| -> Result<Option<u64>> {
            if tx.state_baselined()? {
                return Ok(None);
            }
            let template = mamori_domain::audit::AuditEvent::new(
                now,
                None,
                mamori_domain::audit::actions::STATE_BASELINE,
                mamori_domain::audit::Outcome::Ok,
            );
            Ok(Some(tx.append_state_baseline(&template, 500)?))
        })
    };
    let done = std::thread::scope(|sc| sc.spawn(write).join())
        .map_err(|_| ServiceError::internal("state baseline panicked"))??;
    if let Some(rows) = done {
        tracing::info!(
            rows,
            "every stored row stated in the ledger (verification baseline)"
        );
    }
    Ok(())
}

impl Service {
    /// The facility name recorded at init (the config may rename it for display).
    pub fn facility(&self) -> &str {
        &self.config.facility.name
    }
}

/// Where the SQLite files of an instance moved to PostgreSQL are kept (the way back).
pub const BEFORE_POSTGRES_DIR: &str = "before-postgres";

/// Moves the SQLite instance in `dir` to the empty PostgreSQL database at `url`, in one
/// recorded step: the state is copied in one transaction there and its ledger root checked
/// against SQLite's, the SQLite files are kept in `before-postgres/`, the configuration names
/// the database, and the first entry on PostgreSQL says what moved (size and root before).
pub fn migrate_to_postgres(
    dir: &Path,
    url: &str,
    blobs: Option<&str>,
) -> Result<mamori_store::Migrated> {
    if !dir.join("mamori.db").exists() {
        return Err(ServiceError::new(
            ErrorCode::NoInstance,
            format!(
                "{} に SQLite のインスタンスがありません（既に PostgreSQL に移したものは移せません）",
                dir.display()
            ),
        ));
    }
    let mut config = Config::load(dir)?;
    config.database.url = url.trim().to_owned();
    if let Some(b) = blobs {
        config.database.blobs = b.trim().to_owned();
    }
    let db = database(&config)?.expect("a URL was given");
    // The files first, all into the bucket: one that refuses them stops the move before the
    // database is touched. (Later small files go to the database; reads look in both.)
    let bucket = bucket(&config)?;
    let mut files_moved = 0u64;
    if let Some(b) = &bucket {
        check_empty_bucket(&**b, &config.database.blobs)?;
        let here = mamori_store::BlobStore::open(dir.join("blobs"))?;
        let there = mamori_store::BlobStore::with_backend(b.clone());
        for (sha, _) in here.files()? {
            let bytes = here.get(&sha)?;
            if there.put(&bytes)? != sha {
                return Err(ServiceError::internal(format!(
                    "{sha} の内容が名前と合いません"
                )));
            }
            files_moved += 1;
        }
    }
    let moved = mamori_store::migrate_to_postgres(dir, &db)?;
    let kept = dir.join(BEFORE_POSTGRES_DIR);
    std::fs::create_dir_all(&kept).map_err(io)?;
    for name in [
        "mamori.db",
        "mamori.db-wal",
        "mamori.db-shm",
        "mamori.db-pages",
    ] {
        let from = dir.join(name);
        if from.exists() {
            std::fs::rename(&from, kept.join(name)).map_err(io)?;
        }
    }
    if bucket.is_some() && dir.join("blobs").exists() {
        std::fs::rename(dir.join("blobs"), kept.join("blobs")).map_err(io)?;
    }
    Config::edit(dir, |c| {
        c.database.url = config.database.url.clone();
        c.database.blobs = config.database.blobs.clone();
    })?;
    let svc = open(dir)?;
    let event = AuditEvent::new(svc.now(), None, actions::STORE_MIGRATED, Outcome::Ok).detail(
        serde_json::json!({
            "to": "postgresql",
            "ledger_size": moved.ledger_size,
            "ledger_root": moved.ledger_root,
            "rows": moved.copied.rows,
            "sqlite_kept": format!("{BEFORE_POSTGRES_DIR}/mamori.db"),
            "files_to_bucket": bucket.as_ref().map(|_| files_moved),
        }),
    );
    svc.store.write_blocking(move |tx| tx.append(&event))?;
    svc.store.close();
    Ok(moved)
}

#[cfg(test)]
mod login_properties {
    use super::{normalise_login, validate_login};
    use proptest::prelude::*;

    proptest! {
        /// Normalising is idempotent and never panics; whatever it makes of typed input is
        /// either refused by the login rule or plain lower-case ASCII (no look-alikes).
        #[test]
        fn one_spelling_per_name(typed in "\\PC{0,40}") {
            let once = normalise_login(&typed);
            prop_assert_eq!(normalise_login(&once), once.clone());
            if validate_login(&once).is_ok() {
                prop_assert!(once.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)));
            }
        }

        /// A name typed in full width (a Japanese IME) or in capitals is the same name.
        #[test]
        fn width_and_case_do_not_make_a_second_name(name in "[a-z][a-z0-9._-]{2,20}") {
            let wide: String = name
                .chars()
                .map(|c| char::from_u32(c as u32 + 0xFEE0).unwrap())
                .collect();
            prop_assert_eq!(normalise_login(&wide), name.clone());
            prop_assert_eq!(normalise_login(&name.to_uppercase()), name);
        }
    }
}

#[cfg(test)]
mod blob_config {
    use super::*;

    fn refusal(url: &str, blobs: &str) -> String {
        let mut c = Config::new("試験");
        c.database.url = url.into();
        c.database.blobs = blobs.into();
        match blob_backend(&c) {
            Err(e) => e.message,
            Ok(_) => panic!("{blobs} was accepted"),
        }
    }

    /// The bucket is operator input: what cannot be used is refused in Japanese, saying what
    /// to write, before anything connects anywhere.
    #[test]
    fn a_bucket_that_cannot_be_used_is_refused_with_what_to_write() {
        assert!(blob_backend(&Config::new("試験")).unwrap().is_none());
        let alone = refusal("", "s3://files/clinic?endpoint=http://127.0.0.1:9&region=x");
        assert!(alone.contains("[database] url"), "{alone}");
        let pg = "postgres://mamori@127.0.0.1/mamori";
        for bad in [
            "/srv/files",
            "file:///srv/files",
            "https://s3.example.jp/files",
        ] {
            let m = refusal(pg, bad);
            assert!(m.contains("s3://バケット/接頭辞"), "{bad}: {m}");
        }
    }
}
