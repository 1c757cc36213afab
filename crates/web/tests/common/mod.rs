#![allow(dead_code)]
//! An in-process mamori server on 127.0.0.1 and a small blocking HTTP client.

use std::sync::Arc;

use mamori_service::instance::{InitParams, init_with_database, open_with};
use mamori_service::{Config, Principal, Service};
use mamori_store::StoreOptions;
use serde_json::{Value, json};

pub const PW: &str = "correct horse battery 7";

pub struct TestServer {
    pub rt: tokio::runtime::Runtime,
    pub svc: Arc<Service>,
    pub base: String,
    pub dir: tempfile::TempDir,
}

pub fn start(tweak: impl FnOnce(&mut Config)) -> TestServer {
    // On SQLite, or (scripts/test-on-postgres.sh) on a new PostgreSQL database.
    start_on(mamori_testkit::postgres::suite_database().as_deref(), tweak)
}

/// A server whose state is in the PostgreSQL database at `database` (SQLite when `None`).
pub fn start_on(database: Option<&str>, tweak: impl FnOnce(&mut Config)) -> TestServer {
    // Signing keys live in SoftHSM2 tokens (under target/softhsm2).
    mamori_testkit::softhsm();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    init_with_database(
        &data,
        &InitParams {
            facility: "テスト診療所",
            admin_login: "admin",
            admin_password: "initial passphrase 1",
        },
        database,
        None,
    )
    .unwrap();
    let mut cfg = Config::load(&data).unwrap();
    cfg.lockout.failure_delay_ms = 0;
    cfg.server.secure_cookies = false;
    tweak(&mut cfg);
    let svc = open_with(
        &data,
        Arc::new(mamori_domain::SystemClock),
        StoreOptions::default(),
        Some(cfg),
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let base = format!("http://{}/api/v1", listener.local_addr().unwrap());
    let s2 = svc.clone();
    rt.spawn(async move { mamori_web::serve(s2, listener, std::future::pending()).await });
    TestServer { rt, svc, base, dir }
}

pub struct Resp {
    pub status: u16,
    pub body: Value,
    pub headers: Vec<(String, String)>,
}

impl Resp {
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn to_resp(r: ureq::Response) -> Resp {
    let status = r.status();
    let headers = r
        .headers_names()
        .into_iter()
        .map(|h| (h.clone(), r.header(&h).unwrap_or("").to_owned()))
        .collect();
    let text = r.into_string().unwrap_or_default();
    Resp {
        status,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
        headers,
    }
}

impl TestServer {
    pub fn raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
        ctype: &str,
    ) -> Resp {
        // No pooled connections: a port freed by one test's server is soon reused by
        // another's, and a pooled socket to the old one fails with "broken pipe".
        let agent = ureq::AgentBuilder::new().max_idle_connections(0).build();
        let mut req = agent.request(method, &format!("{}{}", self.base, path));
        if let Some(t) = token {
            req = req.set("Authorization", &format!("Bearer {t}"));
        }
        let res = match body {
            Some(b) => req.set("Content-Type", ctype).send_string(b),
            None => req.call(),
        };
        match res {
            Ok(r) => to_resp(r),
            Err(ureq::Error::Status(_, r)) => to_resp(r),
            Err(e) => panic!("{method} {path}: {e}"),
        }
    }

    pub fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> Resp {
        let b = body.map(|v| v.to_string());
        self.raw(method, path, token, b.as_deref(), "application/json")
    }

    pub fn login(&self, login: &str, pw: &str) -> String {
        let r = self.call(
            "POST",
            "/auth/login",
            None,
            Some(json!({ "login": login, "password": pw })),
        );
        assert_eq!(r.status, 200, "login {login}: {:?}", r.body);
        r.body["token"].as_str().unwrap().to_owned()
    }

    pub fn admin_token(&self) -> String {
        let r = self.call(
            "POST",
            "/auth/password",
            None,
            Some(json!({ "login": "admin", "old_password": "initial passphrase 1", "new_password": PW })),
        );
        if r.status == 200 {
            return r.body["token"].as_str().unwrap().to_owned();
        }
        self.login("admin", PW)
    }

    pub fn principal(&self, token: &str) -> Principal {
        self.rt
            .block_on(self.svc.authenticate(token, None))
            .unwrap()
    }

    /// Creates a person with `role` through the API and returns (account id, token).
    pub fn user(&self, admin: &str, login: &str, role: &str) -> (i64, String) {
        let r = self.call(
            "POST",
            "/users",
            Some(admin),
            Some(json!({ "login": login, "display_name": format!("{login}さん"), "role": role, "password": "temporary pass 1234" })),
        );
        assert_eq!(r.status, 201, "{:?}", r.body);
        let id = r.body["id"].as_i64().unwrap();
        if role == "maintenance" {
            // Engineers sign in only inside an approved work window.
            self.open_maintenance_window(admin, id, 12 * 3_600_000);
        }
        let r = self.call(
            "POST",
            "/auth/password",
            None,
            Some(json!({ "login": login, "old_password": "temporary pass 1234", "new_password": PW })),
        );
        assert_eq!(r.status, 200, "{:?}", r.body);
        (id, r.body["token"].as_str().unwrap().to_owned())
    }

    /// Requests and approves a window for maintenance account `id` from now for `ms`; returns
    /// the window's id.
    pub fn open_maintenance_window(&self, admin: &str, id: i64, ms: i64) -> i64 {
        let now = self.svc.now();
        let r = self.call(
            "POST",
            "/maintenance",
            Some(admin),
            Some(json!({ "account_id": id, "starts_at": now - 1000, "ends_at": now + ms, "purpose": "テスト作業", "personal_info": false })),
        );
        assert_eq!(r.status, 201, "{:?}", r.body);
        let wid = r.body["id"].as_i64().unwrap();
        let r = self.call(
            "POST",
            &format!("/maintenance/{wid}/approve"),
            Some(admin),
            None,
        );
        assert_eq!(r.status, 204, "{:?}", r.body);
        wid
    }

    pub fn service_account(&self, admin: &str, login: &str, role: &str) -> i64 {
        let r = self.call(
            "POST",
            "/users",
            Some(admin),
            Some(json!({ "login": login, "display_name": login, "role": role, "service": true })),
        );
        assert_eq!(r.status, 201, "{:?}", r.body);
        r.body["id"].as_i64().unwrap()
    }

    pub fn ledger_size(&self) -> u64 {
        self.svc
            .store()
            .reader()
            .unwrap()
            .get()
            .ledger_size()
            .unwrap()
    }

    /// The last `n` ledger entries' events, oldest first.
    pub fn recent_events(&self, n: u64) -> Vec<Value> {
        let g = self.svc.store().reader().unwrap();
        let r = g.get();
        let size = r.ledger_size().unwrap();
        (size.saturating_sub(n)..size)
            .filter_map(|i| r.ledger_row(i).unwrap())
            .map(|row| serde_json::from_slice(&row.payload).unwrap_or(Value::Null))
            .collect()
    }

    /// Every ledger entry's event, oldest first.
    pub fn ledger_events(&self) -> Vec<Value> {
        let g = self.svc.store().reader().unwrap();
        let mut out = Vec::new();
        g.get()
            .for_each_ledger_row(|r| {
                out.push(serde_json::from_slice(&r.payload).unwrap_or(Value::Null));
                Ok(())
            })
            .unwrap();
        out
    }

    pub fn version_count(&self) -> usize {
        let g = self.svc.store().reader().unwrap();
        let mut n = 0;
        g.get()
            .for_each_version(|_| {
                n += 1;
                Ok(())
            })
            .unwrap();
        n
    }
}

pub fn record_body(patient: &str, kind: &str, title: &str, author: Option<i64>) -> Value {
    json!({ "patient_id": patient, "kind": kind, "title": title, "body": "本文", "author_id": author })
}

/// The default 職種 roles, in the order the matrix tests walk them.
/// The default roles that may read records (and so look patients up).
#[allow(dead_code)]
pub const READERS: &[&str] = &[
    "doctor",
    "dentist",
    "pharmacist",
    "nurse",
    "radiographer",
    "lab_technician",
    "clerk",
];
/// The default roles that write medical records (and register patients).
#[allow(dead_code)]
pub const MR_WRITERS: &[&str] = &["doctor", "dentist", "clerk"];

pub const ROLES: [&str; 11] = [
    "doctor",
    "dentist",
    "pharmacist",
    "nurse",
    "radiographer",
    "lab_technician",
    "clerk",
    "sysadmin",
    "auditor",
    "maintenance",
    "accountant",
];
