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

impl Browser {
    fn post_multipart(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        files: &[(&str, &[u8])],
    ) -> Page {
        let boundary = "----mamori-test-boundary";
        let mut body: Vec<u8> = Vec::new();
        for (k, v) in fields {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
                )
                .as_bytes(),
            );
        }
        for (name, bytes) in files {
            body.extend_from_slice(
                format!("--{boundary}\r\nContent-Disposition: form-data; name=\"attachment\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes(),
            );
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        let r = match self
            .agent
            .post(&format!("{}{path}", self.root))
            .set("Cookie", &self.cookie_header())
            .set(
                "Content-Type",
                &format!("multipart/form-data; boundary={boundary}"),
            )
            .send_bytes(&body)
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
    assert_eq!(locked.status, 401);
    assert!(locked.body.contains("ロックされます"));
}

fn record_id(p: &Page) -> i64 {
    p.location
        .as_deref()
        .and_then(|l| l.strip_prefix("/records/"))
        .and_then(|x| x.parse().ok())
        .unwrap_or_else(|| panic!("{} {:?}", p.status, p.location))
}

#[test]
fn writing_finalising_proxy_approval_amending_and_printing() {
    let (s, _) = world();
    let dr_id = s
        .svc
        .store()
        .reader()
        .unwrap()
        .get()
        .account_by_login("dr.ui")
        .unwrap()
        .unwrap()
        .id
        .to_string();
    let mut dr = Browser::new(&s);
    login(&mut dr, "dr.ui", PW);
    let form = dr.get("/patients/P1/records/new");
    assert!(form.body.contains("<label for=\"title\">表題</label>"));
    let t = csrf(&form.body);

    // A doctor writes and finalises at once, with a PDF attached.
    let r = dr.post_multipart(
        "/patients/P1/records",
        &[
            ("csrf", &t),
            ("kind", "medical_record"),
            ("title", "画面から確定"),
            ("body", "本文"),
            ("action", "finalise"),
        ],
        &[("検査.pdf", b"%PDF-1.4\nui test\n")],
    );
    // A broken form body (cut off mid-field) is "could not read", not "too large", and
    // nothing is written.
    let cut = format!(
        "------b\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{t}\r\n------b\r\nContent-Disposition: form-data; name=\"title\""
    );
    let broken = match dr
        .agent
        .post(&format!("{}/patients/P1/records", dr.root))
        .set("Cookie", &dr.cookie_header())
        .set("Content-Type", "multipart/form-data; boundary=----b")
        .send_bytes(cut.as_bytes())
    {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{e}"),
    };
    let broken = dr.take(broken);
    assert_eq!(broken.status, 400, "{}", broken.body);
    assert!(
        broken.body.contains("読み取れませんでした"),
        "{}",
        broken.body
    );
    let id = record_id(&r);
    let page = dr.get(&format!("/records/{id}"));
    assert!(
        page.body.contains("画面から確定")
            && page.body.contains("確定")
            && page.body.contains("検査.pdf")
    );
    assert!(page.body.contains("修正する（新しい版）") && !page.body.contains("下書きを編集"));

    // Refusals come back with the message and what was typed.
    let r = dr.post_multipart(
        "/patients/P1/records",
        &[
            ("csrf", &t),
            ("kind", "medical_record"),
            ("title", " "),
            ("body", "消えない本文"),
            ("action", "draft"),
        ],
        &[],
    );
    assert_eq!(r.status, 422);
    assert!(
        r.body.contains("表題を入力してください")
            && r.body.contains("消えない本文")
            && r.body.contains("aria-invalid=\"true\"")
    );
    let r = dr.post_multipart(
        "/patients/P1/records",
        &[
            ("csrf", &t),
            ("kind", "medical_record"),
            ("title", "実行ファイル"),
            ("body", "残る"),
            ("action", "draft"),
        ],
        &[("virus.exe", b"MZ\x90\x00")],
    );
    assert_eq!(r.status, 415);
    assert!(
        r.body.contains("形式は使えません")
            && r.body.contains("もう一度選んでください")
            && r.body.contains("残る")
    );
    let r = dr.post_multipart(
        "/patients/P1/records",
        &[
            ("csrf", "stale"),
            ("kind", "medical_record"),
            ("title", "古いフォーム"),
            ("action", "draft"),
        ],
        &[],
    );
    assert_eq!(r.status, 403);
    assert!(r.body.contains("古いフォーム"));

    // Amending needs a reason, and adds a version.
    let amend = dr.get(&format!("/records/{id}/amend"));
    assert!(amend.body.contains("value=\"画面から確定\""));
    let r = dr.post_multipart(
        &format!("/records/{id}/amend"),
        &[
            ("csrf", &t),
            ("title", "画面から確定"),
            ("body", "訂正"),
            ("reason", ""),
            ("action", "amend"),
        ],
        &[],
    );
    assert_eq!(r.status, 422);
    assert!(r.body.contains("理由を入力してください"));
    let r = dr.post_multipart(
        &format!("/records/{id}/amend"),
        &[
            ("csrf", &t),
            ("title", "画面から確定"),
            ("body", "訂正"),
            ("reason", "誤字"),
            ("action", "amend"),
        ],
        &[],
    );
    assert_eq!(r.status, 303);
    assert!(
        dr.get(&format!("/records/{id}"))
            .body
            .contains("版 2 — 確定（修正）")
    );

    // A clerk enters on the doctor's behalf; finalising is refused as a whole (one
    // transaction): nothing is saved, and the form comes back with what was typed.
    let mut clerk = Browser::new(&s);
    login(&mut clerk, "clerk.ui", PW);
    let ct = csrf(&clerk.get("/patients/P1/records/new").body);
    let r = clerk.post_multipart(
        "/patients/P1/records",
        &[
            ("csrf", &ct),
            ("kind", "medical_record"),
            ("author_id", &dr_id),
            ("title", "代行の紹介"),
            ("body", "x"),
            ("action", "finalise"),
        ],
        &[],
    );
    assert_eq!(r.status, 403);
    assert!(r.body.contains("代行の紹介"), "the input is kept");
    assert!(
        !clerk.get("/patients/P1").body.contains("代行の紹介"),
        "no draft was saved"
    );
    let pending = clerk.post_multipart(
        "/patients/P1/records",
        &[
            ("csrf", &ct),
            ("kind", "medical_record"),
            ("author_id", &dr_id),
            ("title", "代行の処方"),
            ("body", "y"),
            ("action", "submit"),
        ],
        &[],
    );
    let pid = record_id(&pending);
    assert!(
        clerk
            .get(&format!("/records/{pid}"))
            .body
            .contains("承認待ち")
    );
    assert!(
        clerk.get("/patients/P1").body.contains("代行の処方"),
        "the chart lists the clerk's entries (so the check above means something)"
    );

    // The doctor sees it, refuses an empty rejection, then approves.
    assert!(dr.get("/").body.contains("代行の処方"));
    let page = dr.get(&format!("/records/{pid}"));
    assert!(page.body.contains("承認して確定する") && page.body.contains("差し戻す"));
    let r = dr.post(
        &format!("/records/{pid}/act"),
        &[("csrf", &t), ("action", "reject"), ("reason", "")],
    );
    assert_eq!(r.status, 422);
    assert!(r.body.contains("理由を入力してください"));
    let r = dr.post(
        &format!("/records/{pid}/act"),
        &[("csrf", &t), ("action", "approve")],
    );
    assert_eq!(r.status, 303);
    let page = dr.get(&format!("/records/{pid}"));
    assert!(page.body.contains("status finalised"));
    assert!(
        page.body.contains("代行入力"),
        "the proxy entry stays marked"
    );

    // Print view: facility, patient, finalisation time and ledger position; recorded as an export.
    let print = dr.get(&format!("/records/{id}/print"));
    assert!(
        print.body.contains("テスト診療所")
            && print.body.contains("画面 太郎")
            && print.body.contains("台帳の位置 #")
    );
    let nurse_print = {
        let mut n = Browser::new(&s);
        login(&mut n, "ns.ui", PW);
        n.get(&format!("/records/{id}/print"))
    };
    assert_eq!(nurse_print.status, 403);
}

/// A form post: path, fields (without the CSRF token), roles that may send it.
type FormPost<'a> = (String, Vec<(&'a str, &'a str)>, &'a [&'a str]);

/// Every administration and audit page, and every form they post to, for every default role:
/// allowed where the default role configuration allows it, otherwise the refusal page (403).
/// Without a session each one sends the browser to the login page.
#[test]
fn admin_and_audit_pages_for_every_role() {
    let (s, _) = world();
    let admin = s.admin_token();
    let (target, _) = s.user(&admin, "target.ui", "nurse");
    let admins = ["sysadmin"];
    let auditors = ["auditor"];
    let ledger_viewers = ["auditor", "sysadmin"];
    let accountants = ["accountant"];
    let gets: Vec<(String, &[&str])> = vec![
        ("/admin/accounts".into(), &admins),
        ("/admin/accounts?unused=30".into(), &admins),
        (format!("/admin/accounts/{target}"), &admins),
        ("/admin/roles".into(), &admins),
        ("/admin/roles/nurse".into(), &admins),
        ("/admin/roles/new".into(), &admins),
        ("/admin/kinds".into(), &admins),
        ("/admin/hygiene?days=30".into(), &admins),
        ("/admin/maintenance".into(), &admins),
        ("/admin/certificates".into(), &admins),
        ("/admin/backup".into(), &ledger_viewers),
        ("/audit".into(), &auditors),
        (
            "/audit?patient=P1&from=2020-01-01&to=2099-12-31".into(),
            &auditors,
        ),
        ("/audit/export.csv".into(), &auditors),
        ("/audit/counts".into(), &auditors),
        ("/audit/ledger".into(), &ledger_viewers),
        ("/audit/emergency".into(), &auditors),
        ("/audit/emergency?all=1".into(), &auditors),
        ("/compliance".into(), &ledger_viewers),
        ("/compliance/assets".into(), &ledger_viewers),
        ("/compliance/assets/export.csv".into(), &ledger_viewers),
        ("/compliance/risks".into(), &ledger_viewers),
        ("/compliance/contacts".into(), &ledger_viewers),
        ("/compliance/profile".into(), &ledger_viewers),
        ("/compliance/documents/rules".into(), &ledger_viewers),
        (
            "/compliance/documents/bcp?format=pdf".into(),
            &ledger_viewers,
        ),
        ("/compliance/documents/contacts".into(), &ledger_viewers),
        ("/transactions".into(), &accountants),
        (
            "/transactions?from=2026-01-01&to=2026-12-31&counterparty=abc&min=1".into(),
            &accountants,
        ),
        ("/transactions/new".into(), &accountants),
        ("/transactions/verify".into(), &accountants),
        ("/transactions/export".into(), &accountants),
        ("/transactions/settings".into(), &accountants),
    ];
    let break_glass: &[&str] = &[
        "doctor",
        "dentist",
        "pharmacist",
        "nurse",
        "radiographer",
        "lab_technician",
    ];
    let mut anon = Browser::new(&s);
    for (path, _) in &gets {
        let r = anon.get(path);
        assert_eq!(r.status, 303, "{path} without a session");
        assert_eq!(r.location.as_deref(), Some("/login"), "{path}");
    }
    for (n, role) in ROLES.iter().enumerate() {
        let login_id = format!("who{n}.ui");
        s.user(&admin, &login_id, role);
        let mut b = Browser::new(&s);
        assert_eq!(login(&mut b, &login_id, PW).status, 303);
        // Any signed-in page carries the token (an accounting clerk's "/" is a redirect).
        let token = csrf(&b.get("/account/second-factor").body);
        for (path, allowed) in &gets {
            let r = b.get(path);
            let want = if allowed.contains(role) { 200 } else { 403 };
            assert_eq!(r.status, want, "{role} GET {path}");
            if want == 403 {
                assert!(r.body.contains("権限がありません"), "{role} GET {path}");
            }
        }
        let new_login = format!("made{n}.ui");
        let posts: Vec<FormPost> = vec![
            (
                "/admin/accounts".into(),
                vec![
                    ("login", new_login.as_str()),
                    ("display_name", "作成テスト"),
                    ("role", "nurse"),
                    ("password", "a long enough initial pass 1"),
                ],
                &admins,
            ),
            (
                format!("/admin/accounts/{target}"),
                vec![("op", "unlock")],
                &admins,
            ),
            (
                "/admin/roles".into(),
                vec![
                    ("code", "nurse"),
                    ("name_ja", "看護師"),
                    ("name_en", "Nurse"),
                    ("grant", "read:*"),
                    ("grant", "write:nursing"),
                    ("grant", "finalise:nursing"),
                    ("grant", "print_export:nursing"),
                ],
                &admins,
            ),
            (
                "/admin/kinds".into(),
                vec![
                    ("code", "nursing"),
                    ("name_ja", "看護記録"),
                    ("name_en", "Nursing record"),
                    ("retention_years", "3"),
                ],
                &admins,
            ),
            (
                "/admin/certificates/server".into(),
                vec![("hosts", "karte.clinic.test\n192.168.1.10")],
                &admins,
            ),
            ("/audit/ledger/checkpoint".into(), vec![], &ledger_viewers),
            (
                "/patients/P1/emergency".into(),
                vec![("reason", "救急搬送のため既往歴を確認")],
                break_glass,
            ),
            ("/audit/ledger/verify".into(), vec![], &ledger_viewers),
            (
                "/compliance".into(),
                vec![
                    ("catalogue", "mhlw-guideline-6.0"),
                    ("assessed_on", "2026-04-01"),
                ],
                &ledger_viewers,
            ),
            (
                "/compliance/assets".into(),
                vec![
                    ("kind", "pc"),
                    ("name", new_login.as_str()),
                    ("remote_maintenance", "no"),
                    ("mds_sds", "na"),
                ],
                &ledger_viewers,
            ),
            (
                "/compliance/risks".into(),
                vec![
                    ("asset", "予約"),
                    ("threat", "停電"),
                    ("likelihood", "2"),
                    ("impact", "3"),
                    ("residual", "1"),
                ],
                &ledger_viewers,
            ),
            (
                "/compliance/contacts".into(),
                vec![("category", "police"), ("name", "所轄署"), ("phone", "110")],
                &ledger_viewers,
            ),
            (
                "/compliance/profile".into(),
                vec![("security_officer", "事務長")],
                &ledger_viewers,
            ),
            (
                "/transactions/settings".into(),
                vec![
                    ("legal_form", "medical_corporation"),
                    ("fiscal_year_end_month", "3"),
                    ("processing_months", "1"),
                    ("loss_years", ""),
                ],
                &accountants,
            ),
        ];
        for (path, fields, allowed) in &posts {
            let mut form = fields.clone();
            form.push(("csrf", token.as_str()));
            let r = b.post(path, &form);
            let want = if allowed.contains(role) { 303 } else { 403 };
            assert_eq!(r.status, want, "{role} POST {path}: {}", r.body);
            // Without the CSRF token, nobody gets through.
            let r = b.post(path, fields);
            assert_eq!(r.status, 403, "{role} POST {path} without CSRF");
        }
    }
}

#[test]
fn audit_csv_is_excel_safe_and_refused_queries_are_in_the_trail() {
    let (s, _) = world();
    let admin = s.admin_token();
    s.user(&admin, "aud.ui", "auditor");
    let mut nurse = Browser::new(&s);
    login(&mut nurse, "ns.ui", PW);
    assert_eq!(nurse.get("/audit").status, 403);

    let mut b = Browser::new(&s);
    login(&mut b, "aud.ui", PW);
    let csv = b.get("/audit/export.csv?action=account.");
    assert_eq!(csv.status, 200);
    assert!(csv.body.starts_with("\u{feff}ledger_index,time_jst"));
    // The search itself, and the nurse's refused attempt, are in the trail.
    let page = b.get("/audit?action=account.list");
    assert!(page.body.contains("ns.ui"), "refusal recorded");
    assert!(page.body.contains("拒否"));
    let bad = b.get("/audit?from=2026-13-45");
    assert_eq!(bad.status, 422);
    assert!(bad.body.contains("YYYY-MM-DD"));
}

/// The hidden fields of the first form on a page (values without HTML escapes).
fn hidden_fields(body: &str) -> Vec<(String, String)> {
    body.split("<input type=\"hidden\" name=\"")
        .skip(1)
        .map(|rest| {
            let name = &rest[..rest.find('"').unwrap()];
            let v = &rest[rest.find("value=\"").unwrap() + 7..];
            (name.to_owned(), v[..v.find('"').unwrap()].to_owned())
        })
        .collect()
}

#[test]
fn a_draft_typed_when_the_session_ended_comes_back_only_to_its_writer() {
    let (s, _) = world();
    let mut b = Browser::new(&s);
    login(&mut b, "dr.ui", PW);
    let form = b.get("/patients/P1/records/new");
    let token = csrf(&form.body);
    let fields = [
        ("csrf", token.as_str()),
        ("kind", "medical_record"),
        ("title", "書きかけ"),
        ("body", "所見 S O A P"),
        ("action", "timeout"),
    ];
    // The page's idle timer sends the form: the session ends, the login page carries the draft.
    let r = b.post_multipart("/patients/P1/records", &fields, &[]);
    assert_eq!(r.status, 401);
    assert!(r.body.contains("入力中の内容を復元します"));
    let carried = hidden_fields(&r.body);
    assert!(carried.contains(&("r_title".into(), "書きかけ".into())));
    assert!(carried.contains(&("r_owner".into(), "dr.ui".into())));
    assert_eq!(b.get("/").status, 303, "the session has ended");

    // Another person signing in at the same screen gets the home page, not the draft.
    let mut other = Browser::new(&s);
    other.cookies.extend(
        b.cookies
            .iter()
            .filter(|(k, _)| k == "mamori_login_csrf")
            .cloned(),
    );
    let mut form: Vec<(&str, &str)> = carried
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    form.extend([("login", "ns.ui"), ("password", PW)]);
    let r = other.post("/login", &form);
    assert_eq!(r.status, 303);
    assert_eq!(r.location.as_deref(), Some("/"));

    // The writer gets the form back as typed, not yet saved.
    let mut form: Vec<(&str, &str)> = carried
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    form.extend([("login", "dr.ui"), ("password", PW)]);
    let r = b.post("/login", &form);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("入力中の内容を復元しました"));
    assert!(r.body.contains("value=\"書きかけ\"") && r.body.contains("所見 S O A P"));
    let chart = b.get("/patients/P1");
    assert!(
        !chart.body.contains("書きかけ"),
        "nothing was saved on its own"
    );

    // Without any session (cookie gone), a sent form also comes back through the login page.
    let mut fresh = Browser::new(&s);
    let r = fresh.post_multipart(
        "/patients/P1/records",
        &[("csrf", "stale"), ("title", "失効後"), ("action", "draft")],
        &[],
    );
    assert_eq!(r.status, 401);
    assert!(hidden_fields(&r.body).contains(&("r_title".into(), "失効後".into())));
}

#[test]
fn the_backup_page_warns_runs_drills_and_records_offline_copies() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.txt");
    std::fs::write(&key, mamori_service::backup::KeyFile::generate().to_text()).unwrap();
    let nas = dir.path().join("nas");
    let s = start(|c| {
        c.backup.targets = nas.display().to_string();
        c.backup.key_file = key.display().to_string();
    });
    let admin = s.admin_token();
    s.user(&admin, "admin.ui", "sysadmin");
    s.user(&admin, "audit.ui", "auditor");
    s.user(&admin, "dr.ui", "doctor");
    let mut b = Browser::new(&s);
    assert_eq!(login(&mut b, "admin.ui", PW).status, 303);
    let page = b.get("/admin/backup");
    assert_eq!(page.status, 200);
    for warning in [
        "まだバックアップが成功していません",
        "切り離した媒体への保管がまだ記録されていません",
        "復元訓練がまだ行われていません",
    ] {
        assert!(page.body.contains(warning), "{warning}: {}", page.body);
    }
    let token = csrf(&page.body);
    // Nothing to take offline before a backup exists: a clear error, nothing recorded.
    let r = b.post(
        "/admin/backup/offline",
        &[
            ("csrf", &token),
            ("target", &nas.display().to_string()),
            ("medium", "USB-1"),
        ],
    );
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("先にバックアップを取ってください"));

    let r = b.post("/admin/backup/run", &[("csrf", &token)]);
    assert_eq!(r.location.as_deref(), Some("/admin/backup?started=backup"));
    assert!(
        b.get("/admin/backup?started=backup")
            .body
            .contains("バックアップを開始しました")
    );
    let done = |b: &mut Browser, what: &str| {
        for _ in 0..300 {
            let p = b.get("/admin/backup");
            if p.body.contains(what) && !p.body.contains("実行中です") {
                return p;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("{what} never showed");
    };
    let page = done(&mut b, "<code class=\"hash\">2");
    assert!(
        !page.body.contains("まだバックアップが成功していません"),
        "{}",
        page.body
    );

    let r = b.post("/admin/backup/drill", &[("csrf", &token)]);
    assert_eq!(r.location.as_deref(), Some("/admin/backup?started=drill"));
    let page = done(&mut b, "id=\"last-drill\"");
    assert!(
        page.body.contains("成功") && page.body.contains("復旧時間"),
        "{}",
        page.body
    );

    let r = b.post(
        "/admin/backup/offline",
        &[
            ("csrf", &token),
            ("target", &nas.display().to_string()),
            ("medium", "USB-1 月曜"),
            ("note", "金庫"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let page = b.get("/admin/backup");
    assert!(page.body.contains("USB-1 月曜"), "{}", page.body);
    assert!(page.body.contains("すべて期限内です"), "{}", page.body);
    b.get("/lang?to=en");
    let en = b.get("/admin/backup");
    assert!(
        en.body.contains("Backups") && en.body.contains("up to date"),
        "{}",
        en.body
    );

    // The security officer sees it and cannot act; a doctor cannot see it.
    let mut a = Browser::new(&s);
    assert_eq!(login(&mut a, "audit.ui", PW).status, 303);
    let page = a.get("/admin/backup");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("USB-1 月曜") && !page.body.contains("/admin/backup/run"));
    let t = csrf(&page.body);
    assert_eq!(a.post("/admin/backup/run", &[("csrf", &t)]).status, 403);
    assert_eq!(a.post("/admin/backup/drill", &[("csrf", &t)]).status, 403);
    let mut d = Browser::new(&s);
    assert_eq!(login(&mut d, "dr.ui", PW).status, 303);
    assert_eq!(d.get("/admin/backup").status, 403);
}

#[test]
fn signatures_show_on_the_record_verify_on_their_page_and_download_as_a_bundle() {
    let s = start(|c| c.evidence.dev_tsa = true);
    let admin = s.admin_token();
    let (_, dr_tok) = s.user(&admin, "dr.sig", "doctor");
    let (_, clerk_tok) = s.user(&admin, "clerk.sig", "clerk");
    s.user(&admin, "admin.sig", "sysadmin");
    s.user(&admin, "audit.sig", "auditor");
    s.call(
        "POST",
        "/patients",
        Some(&clerk_tok),
        Some(json!({ "id": "P9", "name_kanji": "署名 花子", "name_kana": "ショメイ ハナコ", "birth_date": "1980-01-01", "sex": "female" })),
    );
    // The doctor's key in its own token under their PIN, the signing window open (API).
    let pin = json!({ "pin": "署名 PIN 8642" });
    let r = s.call(
        "POST",
        "/auth/signing-pin",
        Some(&dr_tok),
        Some(json!({ "pin": "署名 PIN 8642", "password": PW })),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["has_key"], true, "{}", r.body);
    let r = s.call(
        "POST",
        "/auth/signing-window",
        Some(&dr_tok),
        Some(json!({ "pin": "違う PIN 0000" })),
    );
    assert_eq!(
        (r.status, r.code()),
        (403, "signing_pin_wrong"),
        "{}",
        r.body
    );
    let r = s.call("POST", "/auth/signing-window", Some(&dr_tok), Some(pin));
    assert_eq!(r.status, 200, "{}", r.body);
    let id = s
        .call(
            "POST",
            "/records",
            Some(&dr_tok),
            Some(record_body("P9", "medical_record", "退院時要約", None)),
        )
        .body["record_id"]
        .as_i64()
        .unwrap();
    assert_eq!(
        s.call(
            "POST",
            &format!("/records/{id}/finalize"),
            Some(&dr_tok),
            None
        )
        .status,
        200
    );

    let mut b = Browser::new(&s);
    assert_eq!(login(&mut b, "dr.sig", PW).status, 303);
    let page = b.get(&format!("/records/{id}"));
    assert!(page.body.contains("電子署名"), "{}", page.body);
    assert!(page.body.contains("CAdES-B-LT"), "{}", page.body);
    assert!(page.body.contains("開発用TSA・法的効力なし"));
    assert!(page.body.contains(&format!("/records/{id}/evidence")));
    let ev = b.get(&format!("/records/{id}/evidence"));
    assert_eq!(ev.status, 200);
    assert!(ev.body.contains("id=\"evidence-ok\""), "{}", ev.body);
    assert!(ev.body.contains("次の封印で追加されます"));
    assert!(ev.body.contains(&format!("/api/v1/records/{id}/bundle")));
    // The download is a ZIP (PK…), served as an attachment.
    let r = ureq::get(&format!("{}/api/v1/records/{id}/bundle", b.root))
        .set("Cookie", &b.cookie_header())
        .call()
        .unwrap();
    assert_eq!(r.header("content-type"), Some("application/zip"));
    assert!(
        r.header("content-disposition")
            .unwrap()
            .starts_with("attachment")
    );
    let mut zip = Vec::new();
    std::io::Read::read_to_end(&mut r.into_reader(), &mut zip).unwrap();
    assert_eq!(&zip[..2], b"PK", "not a zip");

    // The development TSA answers RFC 3161 over HTTP (a malformed query gets a rejection).
    let tsa = |ct: &str| match ureq::post(&format!("{}/tsa", b.root))
        .set("Content-Type", ct)
        .send_bytes(b"\x30\x00")
    {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(tsa("text/plain").status(), 415);
    let r = tsa("application/timestamp-query");
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.header("content-type"),
        Some("application/timestamp-reply")
    );

    // The administrator sees the development TSA warning and seals now.
    let mut a = Browser::new(&s);
    assert_eq!(login(&mut a, "admin.sig", PW).status, 303);
    let page = a.get("/admin/evidence");
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("開発用のタイムスタンプ局を使っています"),
        "{}",
        page.body
    );
    let r = a.post("/admin/evidence/seal", &[("csrf", &csrf(&page.body))]);
    assert_eq!(r.status, 303, "{}", r.body);
    let ev = b.get(&format!("/records/{id}/evidence"));
    assert!(ev.body.contains("存在を証明"), "{}", ev.body);

    // The security officer reads the status but has no button; a doctor may not see it.
    let mut o = Browser::new(&s);
    assert_eq!(login(&mut o, "audit.sig", PW).status, 303);
    let page = o.get("/admin/evidence");
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("/admin/evidence/seal"));
    assert_eq!(b.get("/admin/evidence").status, 403);
    let r = o.post("/admin/evidence/seal", &[("csrf", &csrf(&page.body))]);
    assert_eq!(r.status, 403);
}

/// Served over plain HTTP to the network (`serve --insecure-http`): every page says so, and
/// the session cookie drops Secure (a browser would not send it back over HTTP otherwise).
#[test]
fn plain_http_to_the_network_warns_on_every_page() {
    let s = start(|c| c.server.secure_cookies = true);
    let origin = s.base.trim_end_matches("/api/v1").to_owned();
    let get = || {
        let r = ureq::get(&format!("{origin}/login")).call().unwrap();
        let cookie = r.header("set-cookie").unwrap_or_default().to_owned();
        (cookie, r.into_string().unwrap())
    };
    let (cookie, body) = get();
    assert!(cookie.contains("; Secure"), "{cookie}");
    assert!(!body.contains("unencrypted-banner"));
    s.svc.set_unencrypted_network(true);
    let (cookie, body) = get();
    assert!(!cookie.contains("Secure"), "{cookie}");
    assert!(body.contains("unencrypted-banner"), "{body}");
    assert!(body.contains("暗号化されていない通信"), "{body}");
}
