//! Bad input gets a clear error with a stable code and a Japanese message, and changes nothing.

mod common;

use base64::Engine;
use common::*;
use serde_json::json;

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

struct World {
    s: TestServer,
    dr: i64,
    dr_tok: String,
    dr2_tok: String,
    clerk_tok: String,
}

fn world() -> World {
    let s = start(|c| c.records.max_attachment_bytes = 64 * 1024);
    let admin = s.admin_token();
    let (dr, dr_tok) = s.user(&admin, "dr.a", "doctor");
    let (_, dr2_tok) = s.user(&admin, "dr.b", "doctor");
    let (_, clerk_tok) = s.user(&admin, "clerk.a", "clerk");
    let r = s.call(
        "POST",
        "/patients",
        Some(&clerk_tok),
        Some(json!({ "id": "P1", "name_kanji": "試験 太郎", "name_kana": "しけん たろう", "birth_date": "1970-01-01", "sex": "male" })),
    );
    assert_eq!(r.status, 201);
    World {
        s,
        dr,
        dr_tok,
        dr2_tok,
        clerk_tok,
    }
}

/// Asserts a request is refused with `status`/`code` and leaves versions and records alone.
fn refused(
    w: &World,
    method: &str,
    path: &str,
    tok: &str,
    body: Option<&str>,
    status: u16,
    code: &str,
) -> Resp {
    let versions = w.s.version_count();
    let r = w.s.raw(method, path, Some(tok), body, "application/json");
    assert_eq!(
        (r.status, r.code()),
        (status, code),
        "{method} {path}: {}",
        r.body
    );
    let msg = r.body["error"]["message"].as_str().unwrap_or("");
    assert!(
        msg.chars().any(|c| c as u32 > 0x3000),
        "message should be Japanese: {msg}"
    );
    assert_eq!(
        w.s.version_count(),
        versions,
        "{method} {path} changed stored versions"
    );
    r
}

#[test]
fn malformed_and_mistyped_requests() {
    let w = world();
    let t = w.dr_tok.clone();
    let before = w.s.ledger_size();
    refused(
        &w,
        "POST",
        "/records",
        &t,
        Some("{not json"),
        400,
        "malformed",
    );
    refused(
        &w,
        "POST",
        "/records",
        &t,
        Some(r#"{"title": 5}"#),
        422,
        "invalid_input",
    );
    refused(
        &w,
        "POST",
        "/records",
        &t,
        Some(r#"{"patient_id":"P1"}"#),
        422,
        "invalid_input",
    );
    let r =
        w.s.raw("POST", "/records", Some(&t), Some("{}"), "text/plain");
    assert_eq!((r.status, r.code()), (400, "malformed"));
    // Rejected before reaching any use case: nothing reached the ledger either.
    assert_eq!(w.s.ledger_size(), before);
    let r = w.s.call("GET", "/no/such/route", Some(&t), None);
    assert_eq!((r.status, r.code()), (404, "not_found"));
    let r = w.s.call("GET", "/records/abc", Some(&t), None);
    assert_eq!(r.status, 400);
    let r =
        w.s.call("GET", "/audit/events?from=yesterday", Some(&t), None);
    assert_eq!(r.status, 422);
}

/// The registers' API: broken bodies, unknown fields, bad values and bad files are refused
/// in Japanese with the field named, and nothing is kept.
#[test]
fn register_entries_refuse_bad_input_and_keep_nothing() {
    let w = world();
    let admin = w.s.admin_token();
    let path = "/compliance/registers/take_out";
    for (body, status, code, field) in [
        ("{not json", 400, "malformed", None),
        (r#"{"fields": "x"}"#, 422, "invalid_input", None),
        (r#"{"fields": {}, "extra": 1}"#, 422, "invalid_input", None),
        (
            r#"{"fields": {"secret": "x"}}"#,
            422,
            "invalid_input",
            Some("fields"),
        ),
        (
            r#"{"fields": {"taken_on": "2026-02-30"}}"#,
            422,
            "invalid_input",
            Some("taken_on"),
        ),
        (
            r#"{"fields": {"taken_on": "2026-02-03", "what": "USB", "medium": "floppy"}}"#,
            422,
            "invalid_input",
            Some("medium"),
        ),
        (
            r#"{"fields": {}, "people": ["dr.a"]}"#,
            422,
            "invalid_input",
            Some("people"),
        ),
        (
            r#"{"fields": {"taken_on": "2026-02-03", "what": "紹介状", "medium": "usb", "encrypted": "yes", "purpose": "紹介", "taken_by": "伊藤", "approved_by": "院長"}, "file": {"name": "a.exe", "content_base64": "TVqQAAMAAAAEAAAA"}}"#,
            422,
            "invalid_input",
            Some("file"),
        ),
        (
            r#"{"fields": {"taken_on": "2026-02-03"}, "file": {"name": "a.pdf", "content_base64": "%%%"}}"#,
            422,
            "invalid_input",
            Some("file"),
        ),
    ] {
        let r = refused(&w, "POST", path, &admin, Some(body), status, code);
        if let Some(f) = field {
            assert_eq!(r.body["error"]["field"], f, "{body}: {}", r.body);
        }
    }
    let r = w.s.call(
        "POST",
        "/compliance/registers/no_such",
        Some(&admin),
        Some(json!({ "fields": {} })),
    );
    assert_eq!((r.status, r.code()), (404, "not_found"));
    let list = w.s.call("GET", path, Some(&admin), None);
    assert_eq!(list.body, json!([]), "nothing was kept");
}

#[test]
fn record_input_errors_name_the_field() {
    let w = world();
    let t = w.dr_tok.clone();
    let body = |v: serde_json::Value| v.to_string();
    let r = refused(
        &w,
        "POST",
        "/records",
        &t,
        Some(&body(
            json!({ "patient_id": "P1", "kind": "medical_record", "title": "  " }),
        )),
        422,
        "invalid_input",
    );
    assert_eq!(r.body["error"]["field"], "title");
    let r = refused(
        &w,
        "POST",
        "/records",
        &t,
        Some(&body(
            json!({ "patient_id": "NOPE", "kind": "medical_record", "title": "x" }),
        )),
        404,
        "not_found",
    );
    assert_eq!(r.body["error"]["field"], "patient_id");
    refused(
        &w,
        "POST",
        "/records",
        &t,
        Some(&body(
            json!({ "patient_id": "P1", "kind": "no_such_kind", "title": "x" }),
        )),
        422,
        "invalid_input",
    );
    // Attachments: too large, not an allowed type, empty, bad base64.
    let big = vec![b'%'; 100 * 1024];
    let mut big_pdf = b"%PDF-1.4\n".to_vec();
    big_pdf.extend_from_slice(&big);
    let with = |name: &str, bytes: &[u8]| {
        body(
            json!({ "patient_id": "P1", "kind": "medical_record", "title": "x", "attachments": [{ "name": name, "content_base64": b64(bytes) }] }),
        )
    };
    let r = refused(
        &w,
        "POST",
        "/records",
        &t,
        Some(&with("big.pdf", &big_pdf)),
        413,
        "too_large",
    );
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("big.pdf")
    );
    refused(
        &w,
        "POST",
        "/records",
        &t,
        Some(&with("virus.exe", b"MZ\x90\x00rest")),
        415,
        "unsupported_type",
    );
    refused(
        &w,
        "POST",
        "/records",
        &t,
        Some(&with("empty.pdf", b"")),
        422,
        "invalid_input",
    );
    refused(
        &w,
        "POST",
        "/records",
        &t,
        Some(&body(
            json!({ "patient_id": "P1", "kind": "medical_record", "title": "x", "attachments": [{ "name": "a.pdf", "content_base64": "***" }] }),
        )),
        422,
        "invalid_input",
    );
    // A body far over the limit is cut off by the server before it is read whole: the client
    // sees 413, or — when the server closes while the client is still sending, a race no
    // server can avoid — a broken connection. Either way nothing is stored.
    let huge = "x".repeat(1_300_000);
    let versions = w.s.version_count();
    let sent = ureq::AgentBuilder::new()
        .max_idle_connections(0)
        .build()
        .post(&format!("{}/records", w.s.base))
        .set("Authorization", &format!("Bearer {t}"))
        .set("Content-Type", "application/json")
        .send_string(&with("huge.pdf", huge.as_bytes()));
    match sent {
        Err(ureq::Error::Status(413, r)) => {
            let v: serde_json::Value = r.into_json().unwrap();
            assert_eq!(v["error"]["code"], "too_large");
        }
        Err(ureq::Error::Transport(e)) => {
            assert!(
                e.to_string().contains("Broken pipe") || e.to_string().contains("reset"),
                "{e}"
            );
        }
        other => panic!("expected 413, got {other:?}"),
    }
    assert_eq!(w.s.version_count(), versions);
}

#[test]
fn state_errors_change_nothing() {
    let w = world();
    let t = w.dr_tok.clone();
    let id =
        w.s.call(
            "POST",
            "/records",
            Some(&t),
            Some(record_body("P1", "medical_record", "初診", None)),
        )
        .body["record_id"]
            .as_i64()
            .unwrap();
    assert_eq!(
        w.s.call("POST", &format!("/records/{id}/finalize"), Some(&t), None)
            .status,
        200
    );
    refused(
        &w,
        "POST",
        &format!("/records/{id}/finalize"),
        &t,
        None,
        409,
        "invalid_state",
    );
    refused(
        &w,
        "PUT",
        &format!("/records/{id}/draft"),
        &t,
        Some(r#"{"title":"書き換え"}"#),
        409,
        "invalid_state",
    );
    refused(
        &w,
        "POST",
        &format!("/records/{id}/amend"),
        &t,
        Some(r#"{"title":"修正","body":"x"}"#),
        422,
        "invalid_input",
    );
    refused(
        &w,
        "POST",
        "/records/99999/finalize",
        &t,
        None,
        404,
        "not_found",
    );

    // A proxy entry for dr.a cannot be approved by dr.b.
    let mut b = record_body("P1", "medical_record", "代行", Some(w.dr));
    b["submit"] = json!(true);
    let pid =
        w.s.call("POST", "/records", Some(&w.clerk_tok), Some(b))
            .body["record_id"]
            .as_i64()
            .unwrap();
    refused(
        &w,
        "POST",
        &format!("/records/{pid}/approve"),
        &w.dr2_tok,
        None,
        403,
        "forbidden",
    );
    refused(
        &w,
        "POST",
        &format!("/records/{pid}/reject"),
        &t,
        Some(r#"{"reason":""}"#),
        422,
        "invalid_input",
    );
    assert_eq!(
        w.s.call("POST", &format!("/records/{pid}/approve"), Some(&t), None)
            .status,
        200
    );

    // A stale form: someone changed the draft since it was loaded.
    let d =
        w.s.call(
            "POST",
            "/records",
            Some(&t),
            Some(record_body("P1", "medical_record", "下書き", None)),
        )
        .body;
    let did = d["record_id"].as_i64().unwrap();
    let base = d["content_sha256"].as_str().unwrap().to_owned();
    let ok = w.s.call(
        "PUT",
        &format!("/records/{did}/draft"),
        Some(&t),
        Some(json!({ "title": "一回目", "base_sha256": base })),
    );
    assert_eq!(ok.status, 200);
    let r = refused(
        &w,
        "PUT",
        &format!("/records/{did}/draft"),
        &t,
        Some(&json!({ "title": "古い画面から", "base_sha256": base }).to_string()),
        409,
        "conflict",
    );
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("入力内容は保持")
    );
    let now = w.s.call("GET", &format!("/records/{did}"), Some(&t), None);
    assert_eq!(now.body["versions"][0]["content"]["title"], "一回目");
}

#[test]
fn credentials_lockout_csrf_and_cookies() {
    let w = world();
    let r = w.s.call(
        "POST",
        "/auth/login",
        None,
        Some(json!({ "login": "dr.a", "password": "wrong password" })),
    );
    assert_eq!((r.status, r.code()), (401, "invalid_credentials"));
    let r2 = w.s.call(
        "POST",
        "/auth/login",
        None,
        Some(json!({ "login": "nobody", "password": "wrong password" })),
    );
    assert_eq!(
        r2.body["error"]["message"], r.body["error"]["message"],
        "unknown logins are indistinguishable"
    );
    for _ in 0..4 {
        w.s.call(
            "POST",
            "/auth/login",
            None,
            Some(json!({ "login": "dr.a", "password": "wrong password" })),
        );
    }
    let r = w.s.call(
        "POST",
        "/auth/login",
        None,
        Some(json!({ "login": "dr.a", "password": PW })),
    );
    // Locked, the right password answers like a wrong one; the message names the lock and
    // the administrator for the person who really is locked out.
    assert_eq!((r.status, r.code()), (401, "invalid_credentials"));
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("管理者")
    );

    // Browser sessions: the cookie is HttpOnly and SameSite=Strict; writes need the CSRF token.
    let r = w.s.call(
        "POST",
        "/auth/login",
        None,
        Some(json!({ "login": "dr.b", "password": PW })),
    );
    let cookie = r.header("set-cookie").unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let csrf = r.body["csrf"].as_str().unwrap().to_owned();
    let session = cookie.split(';').next().unwrap().to_owned();
    let url = format!("{}/records", w.s.base);
    let body = record_body("P1", "medical_record", "Cookie から", None).to_string();
    let no_csrf = ureq::post(&url)
        .set("Cookie", &session)
        .set("Content-Type", "application/json")
        .send_string(&body);
    match no_csrf {
        Err(ureq::Error::Status(403, resp)) => {
            assert!(resp.into_string().unwrap().contains("csrf"))
        }
        other => panic!("expected 403 csrf, got {other:?}"),
    }
    let with = ureq::post(&url)
        .set("Cookie", &session)
        .set("X-CSRF-Token", &csrf)
        .set("Content-Type", "application/json")
        .send_string(&body)
        .unwrap();
    assert_eq!(with.status(), 201);
    assert_eq!(with.header("x-frame-options"), Some("DENY"));
    assert!(
        with.header("content-security-policy")
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
}

#[test]
fn secure_cookie_flag_by_default() {
    let s = start(|c| c.server.secure_cookies = true);
    let _ = s.admin_token();
    let r = s.call(
        "POST",
        "/auth/login",
        None,
        Some(json!({ "login": "admin", "password": PW })),
    );
    assert!(r.header("set-cookie").unwrap().contains("; Secure"));
}
