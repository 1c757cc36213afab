//! The server-rendered UI over HTTP: forms, CSRF, redirects, and what each page shows.
//! (Browser tests in headless Chromium come with the rest of the UI.)

mod common;

use common::*;
use serde_json::json;

struct Browser {
    agent: ureq::Agent,
    root: String,
    cookies: Vec<(String, String)>,
}

struct Page {
    status: u16,
    location: Option<String>,
    body: String,
    csp: Option<String>,
}

impl Browser {
    fn new(s: &TestServer) -> Self {
        let root = s.base.trim_end_matches("/api/v1").to_owned();
        Self {
            agent: ureq::AgentBuilder::new().redirects(0).build(),
            root,
            cookies: Vec::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn take(&mut self, r: ureq::Response) -> Page {
        for c in r.all("set-cookie") {
            let kv = c.split(';').next().unwrap();
            let (k, v) = kv.split_once('=').unwrap();
            self.cookies.retain(|(n, _)| n != k);
            if !v.is_empty() {
                self.cookies.push((k.to_owned(), v.to_owned()));
            }
        }
        let status = r.status();
        let location = r.header("location").map(str::to_owned);
        let csp = r.header("content-security-policy").map(str::to_owned);
        Page {
            status,
            location,
            csp,
            body: r.into_string().unwrap_or_default(),
        }
    }

    fn get(&mut self, path: &str) -> Page {
        let r = match self
            .agent
            .get(&format!("{}{path}", self.root))
            .set("Cookie", &self.cookie_header())
            .call()
        {
            Ok(r) | Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{e}"),
        };
        self.take(r)
    }

    fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let r = match self
            .agent
            .post(&format!("{}{path}", self.root))
            .set("Cookie", &self.cookie_header())
            .send_form(form)
        {
            Ok(r) | Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{e}"),
        };
        self.take(r)
    }
}

fn csrf(body: &str) -> String {
    let at = body
        .find("name=\"csrf\" value=\"")
        .expect("form has a CSRF field")
        + 19;
    body[at..at + body[at..].find('"').unwrap()].to_owned()
}

fn login(b: &mut Browser, login: &str, pw: &str) -> Page {
    let form = b.get("/login");
    let token = csrf(&form.body);
    b.post(
        "/login",
        &[("csrf", &token), ("login", login), ("password", pw)],
    )
}

fn world() -> (TestServer, i64) {
    let s = start(|_| {});
    let admin = s.admin_token();
    let (dr, dr_tok) = s.user(&admin, "dr.ui", "doctor");
    let (_, clerk_tok) = s.user(&admin, "clerk.ui", "clerk");
    s.user(&admin, "ns.ui", "nurse");
    let r = s.call(
        "POST",
        "/patients",
        Some(&clerk_tok),
        Some(json!({ "id": "P1", "name_kanji": "画面 太郎", "name_kana": "ガメン タロウ", "birth_date": "1970-01-01", "sex": "male" })),
    );
    assert_eq!(r.status, 201);
    let id = s
        .call(
            "POST",
            "/records",
            Some(&dr_tok),
            Some(record_body("P1", "medical_record", "初診記録", None)),
        )
        .body["record_id"]
        .as_i64()
        .unwrap();
    s.call(
        "POST",
        &format!("/records/{id}/finalize"),
        Some(&dr_tok),
        None,
    );
    let r = s.call(
        "POST",
        &format!("/records/{id}/amend"),
        Some(&dr_tok),
        Some(json!({ "title": "初診記録", "body": "訂正後の本文", "reason": "所見の追記" })),
    );
    assert_eq!(r.status, 201);
    let mut b = record_body("P1", "medical_record", "代行入力の下書き", Some(dr));
    b["submit"] = json!(true);
    s.call("POST", "/records", Some(&clerk_tok), Some(b));
    (s, id)
}

#[test]
fn signing_in_searching_and_reading_a_chart() {
    let (s, id) = world();
    let mut b = Browser::new(&s);
    let home = b.get("/");
    assert_eq!(
        (home.status, home.location.as_deref()),
        (303, Some("/login"))
    );
    let page = b.get("/login");
    assert!(
        page.body
            .contains("<label for=\"login\">ログインID</label>")
    );
    assert!(
        !page.body.contains("<script"),
        "no inline or external script"
    );
    assert!(page.csp.unwrap().contains("script-src 'self'"));

    let bad = login(&mut b, "dr.ui", "wrong password");
    assert_eq!(bad.status, 401);
    assert!(
        bad.body
            .contains("ログインIDまたはパスワードが正しくありません")
    );
    assert!(
        bad.body.contains("value=\"dr.ui\""),
        "what was typed is kept"
    );

    let ok = login(&mut b, "dr.ui", PW);
    assert_eq!((ok.status, ok.location.as_deref()), (303, Some("/")));
    let home = b.get("/");
    assert!(home.body.contains("dr.uiさん（医師）"));
    assert!(
        home.body.contains("代行入力の下書き"),
        "pending approval listed for the doctor"
    );

    let found = b.get("/patients?q=%E3%81%8C%E3%82%81%E3%82%93"); // がめん
    assert!(
        found
            .body
            .contains("<a href=\"/patients/P1\">画面 太郎</a>"),
        "{}",
        found.body
    );
    let none = b.get("/patients?q=ZZZ9");
    assert!(none.body.contains("該当する患者はいません。"));

    let chart = b.get("/patients/P1");
    assert!(chart.body.contains("画面 太郎") && chart.body.contains("修正あり"));
    let rec = b.get(&format!("/records/{id}"));
    assert!(rec.body.contains("版 2 — 確定（修正）") && rec.body.contains("版 1 — 確定"));
    assert!(rec.body.contains("所見の追記") && rec.body.contains("訂正後の本文"));

    // Every page view is in the ledger like an API read.
    let g = s.svc.store().reader().unwrap();
    let events = g
        .get()
        .audit_events(&mamori_store::AuditFilter {
            patient: Some("P1".into()),
            limit: 100,
            ..Default::default()
        })
        .unwrap();
    assert!(events.iter().any(|e| e.action == "record.history"));
    assert!(events.iter().any(|e| e.action == "record.list"));
    drop(g);

    // Logging out needs the form's CSRF token.
    let bad_logout = b.post("/logout", &[("csrf", "forged")]);
    assert_eq!(bad_logout.status, 403);
    let token = csrf(&b.get("/").body);
    let out = b.post("/logout", &[("csrf", &token)]);
    assert_eq!(out.location.as_deref(), Some("/login"));
    assert_eq!(b.get("/").status, 303);
}

#[test]
fn first_login_forces_a_password_change() {
    let s = start(|_| {});
    let mut b = Browser::new(&s);
    let r = login(&mut b, "admin", "initial passphrase 1");
    assert_eq!(
        (r.status, r.location.as_deref()),
        (303, Some("/password?login=admin"))
    );
    let form = b.get("/password?login=admin");
    assert!(form.body.contains("value=\"admin\""));
    let token = csrf(&form.body);
    let mismatch = b.post(
        "/password",
        &[
            ("csrf", &token),
            ("login", "admin"),
            ("old_password", "initial passphrase 1"),
            ("new_password", PW),
            ("confirm", "other"),
        ],
    );
    assert_eq!(mismatch.status, 422);
    assert!(mismatch.body.contains("確認用のパスワードが一致しません"));
    let token = csrf(&mismatch.body);
    let weak = b.post(
        "/password",
        &[
            ("csrf", &token),
            ("login", "admin"),
            ("old_password", "initial passphrase 1"),
            ("new_password", "short"),
            ("confirm", "short"),
        ],
    );
    assert!(weak.body.contains("8文字以上"), "{}", weak.body);
    let token = csrf(&weak.body);
    let ok = b.post(
        "/password",
        &[
            ("csrf", &token),
            ("login", "admin"),
            ("old_password", "initial passphrase 1"),
            ("new_password", PW),
            ("confirm", PW),
        ],
    );
    assert_eq!((ok.status, ok.location.as_deref()), (303, Some("/")));
    assert!(b.get("/").body.contains("管理者"));
}

#[test]
fn stale_forms_refusals_locks_and_language() {
    let (s, id) = world();
    let mut b = Browser::new(&s);
    // A login form posted without its cookie (another tab, an attacker's page) is refused.
    let r = b.post(
        "/login",
        &[("csrf", "x"), ("login", "dr.ui"), ("password", PW)],
    );
    assert_eq!(r.status, 403);
    assert!(r.body.contains("フォームの有効期限が切れました"));

    // A nurse cannot see the clerk's unapproved proxy entry.
    login(&mut b, "ns.ui", PW);
    let pending_id = id + 1;
    let r = b.get(&format!("/records/{pending_id}"));
    assert_eq!(r.status, 404);
    assert!(r.body.contains("記録が見つかりません"));

    // English on request.
    let r = b.get("/lang?to=en");
    assert_eq!(r.status, 303);
    let home = b.get("/");
    assert!(home.body.contains("Find a patient") && home.body.contains("lang=\"en\""));

    // A locked account says so on the login page.
    let mut other = Browser::new(&s);
    for _ in 0..5 {
        login(&mut other, "dr.ui", "wrong password");
    }
    let locked = login(&mut other, "dr.ui", PW);
    assert_eq!(locked.status, 423);
    assert!(locked.body.contains("ロックされています"));
}
