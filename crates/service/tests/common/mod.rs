#![allow(dead_code)]
pub mod openssl_tsa;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use mamori_domain::Clock;
use mamori_service::access::accounts::NewAccount;
use mamori_service::instance::{InitParams, open_with};
use mamori_service::{Config, Principal, Service};
use mamori_store::StoreOptions;

pub struct TestClock(pub AtomicI64);

impl Clock for TestClock {
    fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

impl TestClock {
    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

pub const ADMIN_PW: &str = "初期パスワード 123";
pub const PW: &str = "correct horse battery 7";

pub fn fast_config(dir: &Path) -> Config {
    let mut c = Config::load(dir).unwrap();
    c.lockout.failure_delay_ms = 0;
    c
}

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub svc: Arc<Service>,
    pub clock: Arc<TestClock>,
}

/// The tests' "now": a Tuesday, 10:00 JST, at least two days after the real time. `init`
/// writes its first ledger entries with the real clock and the ledger's time never goes
/// backwards, so a fixed date would turn into the past (and every time range empty).
pub fn t0() -> i64 {
    static T0: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *T0.get_or_init(next_tuesday_morning)
}

fn next_tuesday_morning() -> i64 {
    const DAY: i64 = 86_400_000;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64;
    // Day numbers count from Thursday 1970-01-01; (d + 4) % 7 == 2 is a Tuesday.
    let mut d = (now + 9 * 3_600_000) / DAY + 2;
    while (d + 4) % 7 != 2 {
        d += 1;
    }
    d * DAY + 3_600_000
}

/// `init` of the tests' clinic at `data` (its administrator's password is [`ADMIN_PW`]).
pub async fn init_at(data: &Path) {
    let d2 = data.to_owned();
    // On SQLite, or (scripts/test-on-postgres.sh) on a new PostgreSQL database.
    let database = mamori_testkit::postgres::suite_database();
    tokio::task::spawn_blocking(move || {
        mamori_service::instance::init_with_database(
            &d2,
            &InitParams {
                facility: "テスト診療所",
                admin_login: "admin",
                admin_password: ADMIN_PW,
            },
            database.as_deref(),
            None,
        )
        .unwrap()
    })
    .await
    .unwrap();
}

pub async fn fixture() -> Fixture {
    fixture_with(|_| {}).await
}

/// A fixture whose configuration `tweak` adjusts first.
pub async fn fixture_with(tweak: impl FnOnce(&mut Config)) -> Fixture {
    fixture_outside(tweak, None).await
}

/// A fixture talking to `outside` (fake transports) instead of the network.
pub async fn fixture_outside(
    tweak: impl FnOnce(&mut Config),
    outside: Option<mamori_service::outside::Outside>,
) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    init_at(&data).await;
    let clock = Arc::new(TestClock(AtomicI64::new(t0())));
    let mut config = fast_config(&data);
    tweak(&mut config);
    let mut svc = open_with(&data, clock.clone(), StoreOptions::default(), Some(config)).unwrap();
    if let Some(o) = outside {
        svc = svc.with_outside(o).expect("not shared yet");
    }
    Fixture { dir, svc, clock }
}

impl Fixture {
    /// The ledger's newest events whose action starts with `prefix`, as recorded (JSON).
    #[allow(dead_code)]
    pub fn events(&self, prefix: &str) -> Vec<serde_json::Value> {
        let guard = self.svc.store().reader().unwrap();
        guard
            .get()
            .audit_events(&mamori_store::AuditFilter {
                action_prefix: Some(prefix.to_owned()),
                limit: 100,
                ..Default::default()
            })
            .unwrap()
            .into_iter()
            .map(|row| serde_json::from_slice(&row.payload).unwrap())
            .collect()
    }

    /// Waits until no backup or drill runs.
    #[allow(dead_code)]
    pub async fn backups_idle(&self, admin: &Principal) {
        for _ in 0..600 {
            if !self.svc.backup_status(admin).await.unwrap().running {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the backup did not finish");
    }

    pub fn data(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }

    pub async fn admin(&self) -> Principal {
        let ok = self
            .svc
            .change_password("admin", ADMIN_PW, "管理者の新しいパスワード 2026", None)
            .await
            .unwrap();
        self.svc.authenticate(&ok.token, None).await.unwrap()
    }

    /// Sets the instance's clock to the real time: for outside programs (OpenSSL as a TSA or
    /// as the reader of OCSP answers) that check times against their own clock.
    pub fn run_on_real_time(&self) {
        self.clock.0.store(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock after 1970")
                .as_millis() as i64,
            Ordering::SeqCst,
        );
    }

    /// The administrator signed in again, after [`Fixture::admin`] changed the password.
    pub async fn admin_again(&self) -> Principal {
        let ok = self
            .svc
            .login("admin", "管理者の新しいパスワード 2026", None)
            .await
            .unwrap();
        self.svc.authenticate(&ok.token, None).await.unwrap()
    }

    /// Creates an account with `role` and returns it logged in.
    pub async fn user(&self, admin: &Principal, login: &str, role: &str) -> Principal {
        let (_, token) = self.user_token(admin, login, role).await;
        self.svc.authenticate(&token, None).await.unwrap()
    }

    /// `user`, who also holds a signing key (in SoftHSM2) under [`SIGNING_PIN`] and has opened
    /// the signing window with it: their finalisations are signed as they happen.
    pub async fn signer(&self, admin: &Principal, login: &str, role: &str) -> Principal {
        let p = self.user(admin, login, role).await;
        open_signing_window(&self.svc, &p).await;
        p
    }

    /// Creates an account with `role`, signs it in, and returns its id and session token.
    pub async fn user_token(&self, admin: &Principal, login: &str, role: &str) -> (i64, String) {
        let initial = "temporary pass 1234".to_string();
        let a = self
            .svc
            .create_account(
                admin,
                NewAccount {
                    login: login.into(),
                    display_name: format!("{login} さん"),
                    role: role.into(),
                    password: Some(initial.clone()),
                    service: false,
                },
            )
            .await
            .unwrap();
        let ok = self
            .svc
            .change_password(login, &initial, PW, None)
            .await
            .unwrap();
        (a.id, ok.token)
    }
}

/// The tests' signing PIN.
pub const SIGNING_PIN: &str = "署名用 PIN 2468";

/// Sets `p`'s signing PIN (a new key in its own token) and opens their signing window.
pub async fn open_signing_window(svc: &Arc<Service>, p: &Principal) {
    mamori_testkit::softhsm();
    let change = mamori_service::evidence::PinChange::new_key(SIGNING_PIN, PW);
    svc.set_signing_pin(p, &change)
        .await
        .expect("signing PIN set");
    svc.open_signing_window(p, SIGNING_PIN)
        .await
        .expect("signing window opened");
}

/// Unpacks an export bundle into `dir/x`.
#[allow(dead_code)]
pub fn unzip(bundle: &[u8], dir: &std::path::Path) {
    let zip = dir.join("bundle.zip");
    std::fs::write(&zip, bundle).unwrap();
    let out = std::process::Command::new("python3")
        .args(["-m", "zipfile", "-e"])
        .arg(&zip)
        .arg(dir.join("x"))
        .output()
        .expect("python3 unpacks the bundle");
    assert!(out.status.success(), "{out:?}");
}

/// Runs the bundle's own `verify.sh` (OpenSSL alone).
#[allow(dead_code)]
pub fn verify_sh(dir: &std::path::Path) -> (bool, String) {
    let out = std::process::Command::new("sh")
        .arg(dir.join("x/verify.sh"))
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// The tests' patient P0001 (山田 太郎), created by `clerk`.
#[allow(dead_code)]
pub async fn create_yamada(svc: &Arc<Service>, clerk: &Principal) {
    svc.create_patient(
        clerk,
        mamori_service::records::patients::NewPatient {
            id: "P0001".into(),
            name_kanji: "山田 太郎".into(),
            name_kana: "やまだ たろう".into(),
            birth_date: "1980-04-01".into(),
            sex: "male".into(),
        },
    )
    .await
    .unwrap();
}

/// Runs an outside tool (pyHanko, qpdf, pdfsig …): whether it succeeded, and what it printed.
#[allow(dead_code)]
pub fn tool(cmd: &str, args: &[&std::ffi::OsStr]) -> (bool, String) {
    let out = std::process::Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd} is needed for this test: {e}"));
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}
