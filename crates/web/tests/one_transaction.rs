//! Use cases that were several transactions in the adapters are one each (issue #17.9, #17.10):
//! create-and-finalise (the client never holds a draft it believes finalised, and a refused
//! state change leaves no draft behind), and a role saved with its sign-in policies and the
//! rule that a new role's code is not taken.

mod common;

use common::*;
use serde_json::json;

fn events_of(s: &TestServer, record: i64) -> Vec<String> {
    s.ledger_events()
        .into_iter()
        .filter(|e| e["record"] == record)
        .map(|e| e["action"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn a_record_is_created_and_finalised_or_submitted_in_one_transaction() {
    let s = start(|_| {});
    let admin = s.admin_token();
    let (dr_id, dr) = s.user(&admin, "dr.one", "doctor");
    let (_, clerk) = s.user(&admin, "clerk.one", "clerk");
    let r = s.call(
        "POST",
        "/patients",
        Some(&dr),
        Some(json!({ "id": "P1", "name_kanji": "試験 花子", "name_kana": "シケン ハナコ", "birth_date": "1980-02-02", "sex": "female" })),
    );
    assert_eq!(r.status, 201, "{}", r.body);

    let mut body = record_body("P1", "medical_record", "確定まで一度に", None);
    body["finalise"] = json!(true);
    let r = s.call("POST", "/records", Some(&dr), Some(body));
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["state"], "finalised");
    let id = r.body["record_id"].as_i64().unwrap();
    let at = r.body["ledger_index"].as_i64().unwrap();
    let events = s.ledger_events();
    assert_eq!(events[at as usize]["action"], "record.finalised");
    assert_eq!(
        events[at as usize - 1]["action"],
        "record.draft_created",
        "both entries, next to each other, in the commit that wrote the record"
    );
    assert_eq!(events[at as usize - 1]["record"], id);

    // A clerk may enter on a doctor's behalf but not finalise: the whole write is refused and
    // no draft is left behind.
    let versions = s.version_count();
    let mut body = record_body("P1", "medical_record", "代行で確定", Some(dr_id));
    body["finalise"] = json!(true);
    let r = s.call("POST", "/records", Some(&clerk), Some(body));
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(s.version_count(), versions, "no draft is left");

    // The proxy entry goes to its author for approval in the same step.
    let mut body = record_body("P1", "medical_record", "代行入力", Some(dr_id));
    body["submit"] = json!(true);
    let r = s.call("POST", "/records", Some(&clerk), Some(body));
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["state"], "pending_approval");
    let proxy = r.body["record_id"].as_i64().unwrap();
    assert_eq!(
        events_of(&s, proxy),
        vec!["record.draft_created", "record.submitted"]
    );

    // Both at once is a contradiction.
    let mut body = record_body("P1", "medical_record", "矛盾", None);
    body["finalise"] = json!(true);
    body["submit"] = json!(true);
    let r = s.call("POST", "/records", Some(&dr), Some(body));
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.body["error"]["field"], "finalise");
    assert_eq!(s.version_count(), versions + 1);

    // A draft saved and finalised in one step.
    let r = s.call(
        "POST",
        "/records",
        Some(&dr),
        Some(record_body("P1", "medical_record", "下書き", None)),
    );
    let draft = r.body["record_id"].as_i64().unwrap();
    let mut body = record_body("P1", "medical_record", "下書きを直して確定", None);
    body["finalise"] = json!(true);
    let r = s.call(
        "PUT",
        &format!("/records/{draft}/draft"),
        Some(&dr),
        Some(body),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["state"], "finalised");
    let rep = mamori_service::ledger::verify::verify(
        &s.dir.path().join("data"),
        &mamori_service::ledger::verify::VerifyOptions {
            external_checkpoint: None,
            trusted_key: None,
            skip_blobs: false,
        },
    )
    .unwrap();
    assert!(rep.ok, "{:?}", rep.problems);
}

#[test]
fn a_new_role_and_its_policies_are_one_step_and_a_taken_code_is_refused() {
    let s = start(|_| {});
    let admin = s.admin_token();
    let role = json!({ "code": "night_nurse", "name_ja": "夜勤看護師", "grants": ["read:*"],
        "create": true, "two_factor": true, "client_cert": true });
    let before = s.ledger_size();
    let r = s.call("POST", "/roles", Some(&admin), Some(role.clone()));
    assert!(r.status == 200 || r.status == 201, "{}", r.body);
    assert_eq!(
        s.ledger_size(),
        before + 1,
        "one entry for the role and its policies"
    );
    let ev = &s.recent_events(1)[0];
    assert_eq!(ev["action"], "role.saved");
    assert_eq!(ev["detail"]["two_factor"], true);
    assert_eq!(ev["detail"]["client_cert"], true);
    let tf = s.rt.block_on(s.svc.two_factor_roles()).unwrap();
    let cc = s.rt.block_on(s.svc.client_cert_roles()).unwrap();
    assert!(tf.contains(&"night_nurse".to_owned()) && cc.contains(&"night_nurse".to_owned()));

    // "New role" with a code that exists: refused by the service (the API had no such rule),
    // and the existing role is unchanged.
    let mut again = role.clone();
    again["name_ja"] = json!("別の職種");
    again["grants"] = json!(["read:*", "write:*"]);
    let r = s.call("POST", "/roles", Some(&admin), Some(again));
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(r.body["error"]["field"], "code");
    let roles = s.call("GET", "/roles", Some(&admin), None).body;
    let saved = roles
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["code"] == "night_nurse")
        .unwrap()
        .clone();
    assert_eq!(saved["name_ja"], "夜勤看護師");

    // Without `create` the same request changes the role, and a policy left out stays.
    let r = s.call(
        "POST",
        "/roles",
        Some(&admin),
        Some(
            json!({ "code": "night_nurse", "name_ja": "夜勤看護師（病棟）", "grants": ["read:*"] }),
        ),
    );
    assert!(r.status == 200 || r.status == 201, "{}", r.body);
    let tf = s.rt.block_on(s.svc.two_factor_roles()).unwrap();
    assert!(tf.contains(&"night_nurse".to_owned()));
}
