//! The FHIR R4 interface (`/fhir/r4`) over HTTP: the CapabilityStatement, JP_Patient read,
//! search and conditional create, and every refusal as an OperationOutcome — each answer
//! validated by PyPI's fhir.resources (R4 models), the interface driven by fhirpy (a real FHIR
//! client), every operation for every default role, and the ledger.
//!
//! The Python tools live in a virtual environment (`.ci/run` makes it): `MAMORI_FHIR_PYTHON`,
//! or `/opt/fhir-r4/bin/python` with `fhir.resources==6.2.1` (its R4 models; later releases
//! carry R4B and R5), `pydantic<2` and `fhirpy`.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::*;
use serde_json::{Value, json};

const SYSTEM: &str = "urn:oid:1.2.392.100495.20.3.51.11311234567";

fn python() -> String {
    std::env::var("MAMORI_FHIR_PYTHON").unwrap_or_else(|_| "/opt/fhir-r4/bin/python".into())
}

fn script(name: &str) -> String {
    format!("{}/tests/fhir/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Runs fhir.resources over every resource answered; panics naming the invalid ones.
fn all_valid_r4(resources: &[Value]) {
    let mut child = Command::new(python())
        .arg(script("validate.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "{} is needed (python3 -m venv /opt/fhir-r4 && /opt/fhir-r4/bin/pip install 'fhir.resources==6.2.1' 'pydantic<2' fhirpy): {e}",
                python()
            )
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(resources).unwrap().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "fhir.resources: {text}");
    assert!(
        text.contains(&format!(
            "{} valid R4 resources, 0 invalid",
            resources.len()
        )),
        "{text}"
    );
}

struct Answer {
    status: u16,
    ctype: String,
    headers: Vec<(String, String)>,
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// A refusal: an OperationOutcome with `issue` and mamori's `code`, in Japanese.
    fn refused(&self, status: u16, issue: &str, code: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(
            self.body["resourceType"], "OperationOutcome",
            "{}",
            self.body
        );
        assert_eq!(self.body["issue"][0]["code"], issue, "{}", self.body);
        assert_eq!(
            self.body["issue"][0]["details"]["coding"][0]["code"], code,
            "{}",
            self.body
        );
        let words = self.body["issue"][0]["diagnostics"].as_str().unwrap();
        assert!(
            words
                .chars()
                .any(|c| ('\u{3040}'..='\u{30ff}').contains(&c)),
            "Japanese diagnostics: {words}"
        );
    }
}

fn fhir(
    s: &TestServer,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> Answer {
    let root = s.base.trim_end_matches("/api/v1");
    let agent = ureq::AgentBuilder::new().max_idle_connections(0).build();
    let mut req = agent
        .request(method, &format!("{root}/fhir/r4{path}"))
        .set("Accept", "application/fhir+json");
    if let Some(t) = token {
        req = req.set("Authorization", &format!("Bearer {t}"));
    }
    for (k, v) in headers {
        req = req.set(k, v);
    }
    let res = match body {
        Some(b) => {
            let ctype = headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
                .map_or("application/fhir+json", |(_, v)| v);
            req.set("Content-Type", ctype).send_string(b)
        }
        None => req.call(),
    };
    match res {
        Ok(r) => answer_of(r),
        Err(ureq::Error::Status(_, r)) => answer_of(r),
        Err(e) => panic!("{method} {path}: {e}"),
    }
}

fn answer_of(r: ureq::Response) -> Answer {
    let headers = r
        .headers_names()
        .into_iter()
        .map(|h| (h.clone(), r.header(&h).unwrap_or("").to_owned()))
        .collect();
    let status = r.status();
    let ctype = r.content_type().to_owned();
    let text = r.into_string().unwrap_or_default();
    Answer {
        status,
        ctype,
        headers,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
    }
}

/// A body declared over the limit (Content-Length) with only its start sent: the server answers
/// before reading it, so the answer cannot race the client's sending (as a 65 KB body sent
/// whole can: the server closes while the client writes, and the client sees a broken pipe).
fn declared_too_large(s: &TestServer, path: &str, token: &str) -> Answer {
    use std::io::Read;
    let addr = s
        .base
        .trim_start_matches("http://")
        .trim_end_matches("/api/v1");
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    write!(
        c,
        "POST /fhir/r4{path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nContent-Type: application/fhir+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{{\"resourceType\":\"Patient\"",
        65 * 1024
    )
    .unwrap();
    c.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut raw = Vec::new();
    let _ = c.read_to_end(&mut raw);
    let raw = String::from_utf8_lossy(&raw);
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer: {raw}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned()))
        .collect();
    let ctype = headers
        .iter()
        .find(|(k, _)| k == "content-type")
        .map(|(_, v)| v.split(';').next().unwrap_or("").to_owned())
        .unwrap_or_default();
    Answer {
        status,
        ctype,
        headers,
        body: serde_json::from_str(body).unwrap_or(Value::String(body.to_owned())),
    }
}

fn jp_patient(id: &str, kanji: (&str, &str), kana: (&str, &str)) -> Value {
    let rep = mamori_fhir::patient::NAME_REPRESENTATION;
    json!({
        "resourceType": "Patient",
        "meta": { "profile": [mamori_fhir::patient::PROFILE] },
        "identifier": [{ "system": SYSTEM, "value": id }],
        "name": [
            { "extension": [{ "url": rep, "valueCode": "IDE" }], "use": "official", "family": kanji.0, "given": [kanji.1] },
            { "extension": [{ "url": rep, "valueCode": "SYL" }], "use": "official", "family": kana.0, "given": [kana.1] }
        ],
        "gender": "male",
        "birthDate": "1975-03-03"
    })
}

#[test]
fn an_ehr_registers_reads_and_finds_patients_as_jp_core_and_every_answer_is_valid_r4() {
    let s = start(|c| {
        c.facility.institution_code = "1311234567".into();
        c.evidence.dev_tsa = true;
    });
    let admin = s.admin_token();
    let (_, clerk) = s.user(&admin, "clerk.fhir", "clerk");
    let (_, nurse) = s.user(&admin, "nurse.fhir", "nurse");
    let mut answered: Vec<Value> = Vec::new();

    // What the server can do, without signing in.
    let cap = fhir(&s, "GET", "/metadata", None, None, &[]);
    assert_eq!(cap.status, 200);
    assert!(
        cap.ctype.starts_with("application/fhir+json"),
        "{}",
        cap.ctype
    );
    assert_eq!(cap.body["fhirVersion"], "4.0.1");
    let patient = &cap.body["rest"][0]["resource"][0];
    assert_eq!(patient["type"], "Patient");
    assert_eq!(patient["conditionalCreate"], true);
    answered.push(cap.body.clone());

    // Created by the clerk; the same request again (an EHR's retry) changes nothing.
    let body = jp_patient("F0001", ("鈴木", "一郎"), ("スズキ", "イチロウ")).to_string();
    let cond = [(
        "If-None-Exist",
        "identifier=urn:oid:1.2.392.100495.20.3.51.11311234567|F0001",
    )];
    let made = fhir(&s, "POST", "/Patient", Some(&clerk), Some(&body), &cond);
    assert_eq!(made.status, 201, "{}", made.body);
    assert!(
        made.header("location")
            .unwrap()
            .ends_with("/fhir/r4/Patient/F0001/_history/1")
    );
    assert_eq!(made.header("etag"), Some("W/\"1\""));
    answered.push(made.body.clone());
    let again = fhir(&s, "POST", "/Patient", Some(&clerk), Some(&body), &cond);
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body["id"], "F0001");
    assert_eq!(
        s.svc
            .store()
            .reader()
            .unwrap()
            .get()
            .search_patients("F0001", "", 10)
            .unwrap()
            .len(),
        1,
        "one patient, not two"
    );
    // Without the condition, a second registration of the ID is a duplicate.
    let dup = fhir(&s, "POST", "/Patient", Some(&clerk), Some(&body), &[]);
    dup.refused(409, "duplicate", "conflict");
    answered.push(dup.body.clone());

    // Read and search by the nurse (who may look patients up, not register them).
    let read = fhir(&s, "GET", "/Patient/F0001", Some(&nurse), None, &[]);
    assert_eq!(read.status, 200);
    assert_eq!(read.body["name"][0]["text"], "鈴木 一郎");
    assert_eq!(read.body["name"][1]["text"], "スズキ イチロウ");
    assert_eq!(read.body["identifier"][0]["system"], SYSTEM);
    answered.push(read.body.clone());
    for q in [
        "?name=%E3%82%B9%E3%82%BA%E3%82%AD", // スズキ
        "?identifier=urn:oid:1.2.392.100495.20.3.51.11311234567%7CF0001",
        "?_id=F0001&gender=male&birthdate=1975-03-03",
    ] {
        let found = fhir(&s, "GET", &format!("/Patient{q}"), Some(&nurse), None, &[]);
        assert_eq!(found.status, 200, "{q}: {}", found.body);
        assert_eq!(found.body["type"], "searchset");
        assert_eq!(found.body["total"], 1, "{q}: {}", found.body);
        assert_eq!(found.body["entry"][0]["resource"]["id"], "F0001");
        answered.push(found.body.clone());
    }
    let none = fhir(
        &s,
        "GET",
        "/Patient?_id=F0001&gender=female",
        Some(&nurse),
        None,
        &[],
    );
    assert_eq!(none.body["total"], 0);
    let other = fhir(
        &s,
        "GET",
        "/Patient?identifier=urn:other%7CF0001",
        Some(&nurse),
        None,
        &[],
    );
    assert_eq!(
        other.body["total"], 0,
        "another facility's ID matches nobody here"
    );
    answered.push(other.body.clone());

    // Paging: three patients, two per page, followed by `next`.
    for (id, given) in [("F0002", "ニロウ"), ("F0003", "サブロウ")] {
        let b = jp_patient(id, ("鈴木", "次郎"), ("スズキ", given)).to_string();
        assert_eq!(
            fhir(&s, "POST", "/Patient", Some(&clerk), Some(&b), &[]).status,
            201
        );
    }
    let first = fhir(
        &s,
        "GET",
        "/Patient?name=%E3%82%B9%E3%82%BA%E3%82%AD&_count=2",
        Some(&nurse),
        None,
        &[],
    );
    assert_eq!(first.body["entry"].as_array().unwrap().len(), 2);
    let next = first.body["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["relation"] == "next")
        .expect("a next page")["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let rest = next.split("/fhir/r4").nth(1).unwrap();
    let second = fhir(&s, "GET", rest, Some(&nurse), None, &[]);
    assert_eq!(
        second.body["entry"].as_array().unwrap().len(),
        1,
        "{}",
        second.body
    );
    assert!(
        second.body["link"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["relation"] != "next")
    );
    answered.extend([first.body.clone(), second.body.clone()]);

    // Refusals: each an OperationOutcome with its status; nothing stored.
    let cases: Vec<(Answer, u16, &str, &str)> = vec![
        (
            fhir(&s, "GET", "/Patient/F0001", None, None, &[]),
            401,
            "login",
            "unauthenticated",
        ),
        (
            fhir(
                &s,
                "POST",
                "/Patient",
                Some(&nurse),
                Some(&jp_patient("F0009", ("看護", "師"), ("カンゴ", "シ")).to_string()),
                &[],
            ),
            403,
            "forbidden",
            "forbidden",
        ),
        (
            fhir(&s, "GET", "/Patient/NOBODY", Some(&nurse), None, &[]),
            404,
            "not-found",
            "not_found",
        ),
        (
            fhir(
                &s,
                "POST",
                "/Patient",
                Some(&clerk),
                Some(r#"{"resourceType": "Patient", "#),
                &[],
            ),
            400,
            "structure",
            "malformed",
        ),
        (
            fhir(
                &s,
                "POST",
                "/Patient",
                Some(&clerk),
                Some(&json!({"resourceType": "Observation", "status": "final"}).to_string()),
                &[],
            ),
            422,
            "invalid",
            "invalid_input",
        ),
        (
            fhir(
                &s,
                "POST",
                "/Patient",
                Some(&clerk),
                Some(&{
                    let mut p = jp_patient("F0010", ("電話", "あり"), ("デンワ", "アリ"));
                    p["telecom"] = json!([{ "system": "phone", "value": "03-0000-0000" }]);
                    p.to_string()
                }),
                &[],
            ),
            422,
            "not-supported",
            "not_supported",
        ),
        (
            fhir(
                &s,
                "POST",
                "/Patient",
                Some(&clerk),
                Some(&{
                    let mut p = jp_patient("F0011", ("カナ", "なし"), ("", ""));
                    p["name"].as_array_mut().unwrap().pop();
                    p.to_string()
                }),
                &[],
            ),
            422,
            "required",
            "invalid_input",
        ),
        (
            declared_too_large(&s, "/Patient", &clerk),
            413,
            "too-costly",
            "too_large",
        ),
        (
            fhir(
                &s,
                "POST",
                "/Patient",
                Some(&clerk),
                Some("<Patient/>"),
                &[("Content-Type", "application/fhir+xml")],
            ),
            415,
            "not-supported",
            "unsupported_type",
        ),
        (
            fhir(&s, "GET", "/Patient?address=Tokyo", Some(&nurse), None, &[]),
            400,
            "not-supported",
            "not_supported",
        ),
        (
            fhir(&s, "GET", "/Patient", Some(&nurse), None, &[]),
            400,
            "not-supported",
            "not_supported",
        ),
        (
            fhir(&s, "GET", "/Observation", Some(&nurse), None, &[]),
            404,
            "not-supported",
            "not_found",
        ),
    ];
    for (a, status, issue, code) in &cases {
        a.refused(*status, issue, code);
        answered.push(a.body.clone());
    }
    for gone in ["F0009", "F0010", "F0011"] {
        assert_eq!(
            fhir(
                &s,
                "GET",
                &format!("/Patient/{gone}"),
                Some(&nurse),
                None,
                &[]
            )
            .status,
            404
        );
    }

    // The ledger: registrations, reads and searches, the nurse's refused registration.
    let r = s.svc.store().reader().unwrap();
    let events = r
        .get()
        .audit_events(&mamori_store::AuditFilter {
            action_prefix: Some("patient.".into()),
            limit: 200,
            ..Default::default()
        })
        .unwrap();
    let actions: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            let v: Value = serde_json::from_slice(&e.payload).unwrap();
            (
                v["action"].as_str().unwrap_or("").to_owned(),
                v["outcome"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    for want in ["patient.created", "patient.read", "patient.search"] {
        assert!(
            actions.iter().any(|(a, _)| a == want),
            "{want} in {actions:?}"
        );
    }
    assert!(
        actions
            .iter()
            .any(|(a, o)| a == "patient.created" && o == "denied"),
        "{actions:?}"
    );

    // A doctor's record of the patient, amended once: a DocumentReference with two versions.
    let (_, dr) = s.user(&admin, "dr.fhir", "doctor");
    // Her signing window is open: what she finalises is signed and time-stamped.
    let pin = json!({ "pin": "fhir 医師 PIN 2468", "password": PW });
    assert_eq!(
        s.call("POST", "/auth/signing-pin", Some(&dr), Some(pin))
            .status,
        200
    );
    let window = json!({ "pin": "fhir 医師 PIN 2468" });
    assert_eq!(
        s.call("POST", "/auth/signing-window", Some(&dr), Some(window))
            .status,
        200
    );
    let made = s.call(
        "POST",
        "/records",
        Some(&dr),
        Some(json!({
            "patient_id": "F0001", "kind": "medical_record", "title": "初診", "body": "頭痛。",
            "attachments": [{ "name": "所見.pdf", "content_base64": "JVBERi0xLjQKJSBmaGlyCg==" }]
        })),
    );
    assert_eq!(made.status, 201, "{}", made.body);
    let rid = made.body["record_id"].as_i64().unwrap();
    assert_eq!(
        s.call("POST", &format!("/records/{rid}/finalize"), Some(&dr), None)
            .status,
        200
    );
    let att = s
        .call("GET", &format!("/records/{rid}"), Some(&dr), None)
        .body["versions"][0]["content"]["attachments"][0]["sha256"]
        .as_str()
        .unwrap()
        .to_owned();
    let amended = s.call(
        "POST",
        &format!("/records/{rid}/amend"),
        Some(&dr),
        Some(json!({ "title": "初診", "body": "頭痛。翌日軽快。", "reason": "経過の追記", "keep_attachments": [att] })),
    );
    assert_eq!(amended.status, 201, "{}", amended.body);
    let doc = fhir(
        &s,
        "GET",
        &format!("/DocumentReference/{rid}"),
        Some(&nurse),
        None,
        &[],
    );
    assert_eq!(doc.status, 200, "{}", doc.body);
    assert_eq!(doc.body["meta"]["versionId"], "2");
    assert_eq!(doc.body["docStatus"], "amended");
    assert_eq!(doc.body["subject"]["reference"], "Patient/F0001");
    assert_eq!(doc.header("etag"), Some("W/\"2\""));
    assert!(
        doc.body["content"][1]["attachment"]["url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/api/v1/records/{rid}/attachments/{att}"))
    );
    let v1 = fhir(
        &s,
        "GET",
        &format!("/DocumentReference/{rid}/_history/1"),
        Some(&nurse),
        None,
        &[],
    );
    assert_eq!(v1.body["docStatus"], "final");
    let hist = fhir(
        &s,
        "GET",
        &format!("/DocumentReference/{rid}/_history"),
        Some(&nurse),
        None,
        &[],
    );
    assert_eq!(hist.body["type"], "history");
    assert_eq!(hist.body["total"], 2);
    assert_eq!(hist.body["entry"][0]["resource"]["meta"]["versionId"], "2");
    let found = fhir(
        &s,
        "GET",
        "/DocumentReference?patient=Patient/F0001&status=current",
        Some(&nurse),
        None,
        &[],
    );
    assert_eq!(found.body["total"], 1, "{}", found.body);
    let none = fhir(
        &s,
        "GET",
        "/DocumentReference?patient=F0001&type=referral",
        Some(&nurse),
        None,
        &[],
    );
    assert_eq!(none.body["total"], 0);
    answered.extend([
        doc.body.clone(),
        v1.body.clone(),
        hist.body.clone(),
        found.body.clone(),
        none.body.clone(),
    ]);
    for (a, status, issue, code) in [
        (
            fhir(
                &s,
                "GET",
                "/DocumentReference/999999",
                Some(&nurse),
                None,
                &[],
            ),
            404,
            "not-found",
            "not_found",
        ),
        (
            fhir(&s, "GET", "/DocumentReference/abc", Some(&nurse), None, &[]),
            404,
            "not-found",
            "not_found",
        ),
        (
            fhir(
                &s,
                "GET",
                &format!("/DocumentReference/{rid}/_history/9"),
                Some(&nurse),
                None,
                &[],
            ),
            404,
            "not-found",
            "not_found",
        ),
        (
            fhir(&s, "GET", "/DocumentReference", Some(&nurse), None, &[]),
            400,
            "not-supported",
            "not_supported",
        ),
        (
            fhir(
                &s,
                "GET",
                "/DocumentReference?patient=F0001",
                Some(&admin),
                None,
                &[],
            ),
            403,
            "forbidden",
            "forbidden",
        ),
    ] {
        a.refused(status, issue, code);
        answered.push(a.body.clone());
    }

    // Records in: the doctor's EHR sends a finalised referral with a PDF; a retry of the same
    // document (If-None-Exist) finds it; the clerk's entry for the doctor waits for approval.
    let b64 = base64::engine::general_purpose::STANDARD;
    let letter = json!({
        "resourceType": "DocumentReference",
        "masterIdentifier": { "system": "urn:ehr:document", "value": "EHR-0001" },
        "status": "current",
        "docStatus": "final",
        "type": { "coding": [{ "system": "urn:mamori:record-kind", "code": "referral" }] },
        "subject": { "reference": "Patient/F0001" },
        "date": "2026-12-01T10:00:00+09:00",
        "description": "紹介状（EHR から）",
        "content": [
            { "attachment": { "contentType": "text/plain; charset=utf-8", "data": b64.encode("ご高診をお願いします。") } },
            { "attachment": { "contentType": "application/pdf", "title": "検査結果.pdf", "data": b64.encode(b"%PDF-1.4\n% ehr\n") } }
        ]
    })
    .to_string();
    let cond = [("If-None-Exist", "identifier=urn:ehr:document|EHR-0001")];
    let sent = fhir(
        &s,
        "POST",
        "/DocumentReference",
        Some(&dr),
        Some(&letter),
        &cond,
    );
    assert_eq!(sent.status, 201, "{}", sent.body);
    assert_eq!(sent.body["docStatus"], "final");
    assert_eq!(sent.body["identifier"][0]["value"], "EHR-0001");
    assert_eq!(sent.body["content"].as_array().unwrap().len(), 2);
    let sent_id = sent.body["id"].as_str().unwrap().to_owned();
    let retry = fhir(
        &s,
        "POST",
        "/DocumentReference",
        Some(&dr),
        Some(&letter),
        &cond,
    );
    assert_eq!(retry.status, 200, "{}", retry.body);
    assert_eq!(
        retry.body["id"],
        sent_id.as_str(),
        "the same record, not a second one"
    );
    let referrals = fhir(
        &s,
        "GET",
        "/DocumentReference?patient=F0001&type=referral",
        Some(&dr),
        None,
        &[],
    );
    assert_eq!(referrals.body["total"], 1, "{}", referrals.body);
    let signed = fhir(
        &s,
        "GET",
        &format!("/Provenance/{sent_id}-1"),
        Some(&dr),
        None,
        &[],
    );
    assert!(
        signed.body["signature"][0]["data"].is_string(),
        "signed in her window: {}",
        signed.body
    );
    let mut proxy: Value = serde_json::from_str(&letter).unwrap();
    proxy["masterIdentifier"]["value"] = json!("EHR-0002");
    proxy["type"]["coding"][0]["code"] = json!("medical_record");
    proxy["author"] =
        json!([{ "identifier": { "system": "urn:mamori:login", "value": "dr.fhir" } }]);
    let entered = fhir(
        &s,
        "POST",
        "/DocumentReference",
        Some(&clerk),
        Some(&proxy.to_string()),
        &[],
    );
    assert_eq!(entered.status, 201, "{}", entered.body);
    assert_eq!(
        entered.body["docStatus"], "preliminary",
        "waits for the author's approval"
    );
    assert_eq!(entered.body["author"][0]["display"], "dr.fhirさん");
    answered.extend([
        sent.body.clone(),
        retry.body.clone(),
        entered.body.clone(),
        signed.body.clone(),
    ]);
    let wrong_patient = {
        let mut x: Value = serde_json::from_str(&letter).unwrap();
        x["subject"]["reference"] = json!("Patient/NOBODY");
        x["masterIdentifier"]["value"] = json!("EHR-0003");
        x.to_string()
    };
    let by_url = {
        let mut x: Value = serde_json::from_str(&letter).unwrap();
        x["content"] =
            json!([{ "attachment": { "contentType": "application/pdf", "url": "Binary/1" } }]);
        x.to_string()
    };
    for (a, status, issue, code) in [
        (
            fhir(
                &s,
                "POST",
                "/DocumentReference",
                Some(&dr),
                Some(&wrong_patient),
                &[],
            ),
            422,
            "invalid",
            "invalid_input",
        ),
        (
            fhir(
                &s,
                "POST",
                "/DocumentReference",
                Some(&dr),
                Some(&by_url),
                &[],
            ),
            422,
            "not-supported",
            "not_supported",
        ),
        (
            fhir(
                &s,
                "POST",
                "/DocumentReference",
                Some(&dr),
                Some(&body),
                &[],
            ),
            422,
            "invalid",
            "invalid_input",
        ),
        (
            fhir(
                &s,
                "POST",
                "/DocumentReference",
                Some(&nurse),
                Some(&letter),
                &[],
            ),
            403,
            "forbidden",
            "forbidden",
        ),
    ] {
        a.refused(status, issue, code);
        answered.push(a.body.clone());
    }
    let after = fhir(
        &s,
        "GET",
        "/DocumentReference?patient=F0001",
        Some(&dr),
        None,
        &[],
    );
    assert_eq!(
        after.body["total"], 3,
        "the refused documents stored nothing: {}",
        after.body
    );

    // Provenance of each version: author, reason, and the author's signature itself, the
    // same .p7s mamori keeps (which verifies over the version's signed statement).
    let prov = fhir(
        &s,
        "GET",
        &format!("/Provenance?target=DocumentReference/{rid}"),
        Some(&nurse),
        None,
        &[],
    );
    assert_eq!(prov.status, 200, "{}", prov.body);
    assert_eq!(prov.body["total"], 2);
    let second = fhir(
        &s,
        "GET",
        &format!("/Provenance/{rid}-2"),
        Some(&nurse),
        None,
        &[],
    );
    assert_eq!(
        second.body["target"][0]["reference"],
        format!("DocumentReference/{rid}/_history/2")
    );
    assert_eq!(second.body["activity"]["coding"][0]["code"], "UPDATE");
    assert_eq!(second.body["reason"][0]["text"], "経過の追記");
    assert_eq!(second.body["agent"][0]["who"]["display"], "dr.fhirさん");
    use base64::Engine;
    let p7s = base64::engine::general_purpose::STANDARD
        .decode(second.body["signature"][0]["data"].as_str().unwrap())
        .unwrap();
    let kept = s
        .svc
        .store()
        .reader()
        .unwrap()
        .get()
        .signature(rid, 2)
        .unwrap()
        .unwrap();
    assert_eq!(p7s, kept.p7s);
    let anchors =
        mamori_service::evidence::read::Anchors::load(s.svc.data_dir(), &s.svc.config().evidence)
            .unwrap();
    let info = mamori_evidence::cades::verify_detached(
        &p7s,
        &kept.statement,
        &anchors.signers,
        &anchors.tsa,
    )
    .unwrap();
    assert!(info.timestamp.is_some(), "time-stamped");
    answered.extend([prov.body.clone(), second.body.clone()]);
    for (a, status, issue, code) in [
        (
            fhir(&s, "GET", "/Provenance", Some(&nurse), None, &[]),
            400,
            "not-supported",
            "not_supported",
        ),
        (
            fhir(
                &s,
                "GET",
                &format!("/Provenance/{rid}-9"),
                Some(&nurse),
                None,
                &[],
            ),
            404,
            "not-found",
            "not_found",
        ),
        (
            fhir(
                &s,
                "GET",
                &format!("/Provenance?target=DocumentReference/{rid}"),
                Some(&admin),
                None,
                &[],
            ),
            403,
            "forbidden",
            "forbidden",
        ),
    ] {
        a.refused(status, issue, code);
        answered.push(a.body.clone());
    }

    // The audit trail as AuditEvents, for the auditor: by patient, newest first, paged by
    // ledger position; each links the entry's inclusion proof, which the JSON API serves.
    let (_, auditor) = s.user(&admin, "audit.fhir", "auditor");
    let trail = fhir(
        &s,
        "GET",
        "/AuditEvent?patient=Patient/F0001&_count=3",
        Some(&auditor),
        None,
        &[],
    );
    assert_eq!(trail.status, 200, "{}", trail.body);
    let events = trail.body["entry"].as_array().unwrap();
    assert_eq!(events.len(), 3);
    let ids: Vec<i64> = events
        .iter()
        .map(|e| e["resource"]["id"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    let next = trail.body["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["relation"] == "next")
        .expect("a next page")["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let older = fhir(
        &s,
        "GET",
        next.split("/fhir/r4").nth(1).unwrap(),
        Some(&auditor),
        None,
        &[],
    );
    let first_older: i64 = older.body["entry"][0]["resource"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        first_older < *ids.last().unwrap(),
        "the next page continues below the last"
    );
    let created = fhir(
        &s,
        "GET",
        "/AuditEvent?type=patient.created&patient=F0001",
        Some(&auditor),
        None,
        &[],
    );
    let made_by_clerk = created.body["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["resource"])
        .find(|r| r["outcome"] == "0")
        .expect("the registration")
        .clone();
    assert_eq!(made_by_clerk["type"]["code"], "patient.created");
    assert_eq!(made_by_clerk["action"], "C");
    assert_eq!(made_by_clerk["agent"][0]["who"]["display"], "clerk.fhir");
    let proof = made_by_clerk["entity"][0]["detail"][0]["valueString"]
        .as_str()
        .unwrap();
    let proof_path = proof.split("/api/v1").nth(1).unwrap();
    assert_eq!(
        s.call("GET", proof_path, Some(&auditor), None).status,
        200,
        "{proof}"
    );
    let id = made_by_clerk["id"].as_str().unwrap();
    let read = fhir(
        &s,
        "GET",
        &format!("/AuditEvent/{id}"),
        Some(&auditor),
        None,
        &[],
    );
    assert_eq!(read.body["id"], id);
    let since = fhir(
        &s,
        "GET",
        "/AuditEvent?_since=2000-01-01&date=ge2000-01-01&_count=1",
        Some(&auditor),
        None,
        &[],
    );
    assert_eq!(since.body["entry"].as_array().unwrap().len(), 1);
    answered.extend([
        trail.body.clone(),
        older.body.clone(),
        created.body.clone(),
        read.body.clone(),
        since.body.clone(),
    ]);
    for (a, status, issue, code) in [
        (
            fhir(
                &s,
                "GET",
                "/AuditEvent?patient=F0001",
                Some(&nurse),
                None,
                &[],
            ),
            403,
            "forbidden",
            "forbidden",
        ),
        (
            fhir(
                &s,
                "GET",
                "/AuditEvent?date=yesterday",
                Some(&auditor),
                None,
                &[],
            ),
            400,
            "structure",
            "malformed",
        ),
        (
            fhir(&s, "GET", "/AuditEvent/99999999", Some(&auditor), None, &[]),
            404,
            "not-found",
            "not_found",
        ),
    ] {
        a.refused(status, issue, code);
        answered.push(a.body.clone());
    }

    all_valid_r4(&answered);

    // fhirpy, a real FHIR client, through the interface.
    let root = s.base.trim_end_matches("/api/v1");
    let out = Command::new(python())
        .arg(script("client.py"))
        .args([&format!("{root}/fhir/r4"), &clerk, SYSTEM])
        .output()
        .expect("python for fhirpy");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "fhirpy: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(seen["created_id"], "FP001", "{seen}");
    assert_eq!(seen["read_name"], "高橋 翼");
    assert_eq!(seen["read_kana"], "タカハシ ツバサ");
    assert_eq!(seen["found"], json!(["FP001"]));
}

#[test]
fn every_fhir_operation_for_every_default_role() {
    let s = start(|c| c.facility.institution_code = "1311234567".into());
    let admin = s.admin_token();
    let (readers, registrars) = (READERS, MR_WRITERS);
    let (_, clerk) = s.user(&admin, "clerk.seed", "clerk");
    let seed = jp_patient("M0001", ("権限", "確認"), ("ケンゲン", "カクニン")).to_string();
    assert_eq!(
        fhir(&s, "POST", "/Patient", Some(&clerk), Some(&seed), &[]).status,
        201
    );
    let (_, dr) = s.user(&admin, "dr.seed", "doctor");
    let r = s.call(
        "POST",
        "/records",
        Some(&dr),
        Some(json!({ "patient_id": "M0001", "kind": "medical_record", "title": "権限", "body": "本文" })),
    );
    let chart = r.body["record_id"].as_i64().unwrap();
    assert_eq!(
        s.call(
            "POST",
            &format!("/records/{chart}/finalize"),
            Some(&dr),
            None
        )
        .status,
        200
    );
    // A referral its author prepared for sending: a signed JP-CLINS document.
    let pin = json!({ "pin": "seed 医師 PIN 8642", "password": PW });
    assert_eq!(
        s.call("POST", "/auth/signing-pin", Some(&dr), Some(pin))
            .status,
        200
    );
    let window = json!({ "pin": "seed 医師 PIN 8642" });
    assert_eq!(
        s.call("POST", "/auth/signing-window", Some(&dr), Some(window))
            .status,
        200
    );
    let referral = s.call(
        "POST",
        "/records",
        Some(&dr),
        Some(json!({ "patient_id": "M0001", "kind": "referral", "title": "紹介", "body": "本文" })),
    );
    let referral = referral.body["record_id"].as_i64().unwrap();
    assert_eq!(
        s.call(
            "POST",
            &format!("/records/{referral}/finalize"),
            Some(&dr),
            None
        )
        .status,
        200
    );
    let send = json!({ "resourceType": "Parameters", "parameter": [
        { "name": "referralToOrganization", "valueString": "東京第一病院" }
    ] })
    .to_string();
    let prepare = format!("/DocumentReference/{referral}/$jp-clins-document");
    let document = fhir(&s, "POST", &prepare, Some(&dr), Some(&send), &[]);
    assert_eq!(document.status, 201, "{}", document.body);
    let document = format!("/Bundle/{}", document.body["id"].as_str().unwrap());
    let mut covered = std::collections::BTreeSet::new();
    for (i, role) in ROLES.iter().enumerate() {
        let (_, t) = s.user(&admin, &format!("f{i}.{role}"), role);
        let t = Some(t.as_str());
        let body =
            jp_patient(&format!("M1{i:03}"), ("役割", "別"), ("ヤクワリ", "ベツ")).to_string();
        let doc = format!("/DocumentReference/{chart}");
        let auditors = ["auditor"];
        let draft = json!({
            "resourceType": "DocumentReference",
            "status": "current",
            "type": { "coding": [{ "system": "urn:mamori:record-kind", "code": "medical_record" }] },
            "subject": { "reference": "Patient/M0001" },
            "description": "役割別の下書き",
            "content": [{ "attachment": { "contentType": "text/plain", "data": "5pys5paH" } }]
        })
        .to_string();
        let transaction = json!({
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "resource": {
                        "resourceType": "DocumentReference",
                        "status": "current",
                        "type": { "coding": [{ "system": "urn:mamori:record-kind", "code": "medical_record" }] },
                        "subject": { "reference": "Patient/M0001" },
                        "description": "役割別の添付つき下書き",
                        "content": [
                            { "attachment": { "contentType": "text/plain", "data": "5pys5paH" } },
                            { "attachment": { "title": "所見.pdf", "url": "urn:uuid:9d7a1c4e-0b1f-4c55-9a11-2f0e6b1d3c01" } }
                        ]
                    },
                    "request": { "method": "POST", "url": "DocumentReference" }
                },
                {
                    "fullUrl": "urn:uuid:9d7a1c4e-0b1f-4c55-9a11-2f0e6b1d3c01",
                    "resource": { "resourceType": "Binary", "contentType": "application/pdf", "data": "JVBERi0xLjQKJSBtYXRyaXgK" },
                    "request": { "method": "POST", "url": "Binary" }
                }
            ]
        })
        .to_string();
        // A file alone, without its document: nobody may store one.
        let binary = json!({ "resourceType": "Binary", "contentType": "application/pdf", "data": "JVBERi0=" }).to_string();
        fhir(&s, "POST", "/Binary", t, Some(&binary), &[]).refused(
            400,
            "not-supported",
            "not_supported",
        );
        covered.insert("fhirCreateBinary");
        let calls = [
            (
                "fhirCreateDocument",
                fhir(&s, "POST", "/DocumentReference", t, Some(&draft), &[]),
                registrars.contains(role),
            ),
            (
                "fhirTransaction",
                fhir(&s, "POST", "", t, Some(&transaction), &[]),
                registrars.contains(role),
            ),
            (
                "fhirReadProvenance",
                fhir(&s, "GET", &format!("/Provenance/{chart}-1"), t, None, &[]),
                readers.contains(role),
            ),
            (
                "fhirSearchProvenance",
                fhir(
                    &s,
                    "GET",
                    &format!("/Provenance?target=DocumentReference/{chart}"),
                    t,
                    None,
                    &[],
                ),
                readers.contains(role),
            ),
            (
                "fhirReadAuditEvent",
                fhir(&s, "GET", "/AuditEvent/1", t, None, &[]),
                auditors.contains(role),
            ),
            (
                "fhirSearchAuditEvent",
                fhir(&s, "GET", "/AuditEvent?patient=M0001", t, None, &[]),
                auditors.contains(role),
            ),
            (
                "fhirReadDocument",
                fhir(&s, "GET", &doc, t, None, &[]),
                readers.contains(role),
            ),
            (
                "fhirReadDocumentVersion",
                fhir(&s, "GET", &format!("{doc}/_history/1"), t, None, &[]),
                readers.contains(role),
            ),
            (
                "fhirDocumentHistory",
                fhir(&s, "GET", &format!("{doc}/_history"), t, None, &[]),
                readers.contains(role),
            ),
            (
                "fhirSearchDocument",
                fhir(&s, "GET", "/DocumentReference?patient=M0001", t, None, &[]),
                readers.contains(role),
            ),
            (
                "fhirCapabilities",
                fhir(&s, "GET", "/metadata", t, None, &[]),
                true,
            ),
            (
                // Only the letter's author signs it: every other person is refused.
                "fhirSignReferralDocument",
                fhir(&s, "POST", &prepare, t, Some(&send), &[]),
                false,
            ),
            (
                // The same rights as the signed PDF of the JSON API.
                "fhirReadReferralDocument",
                fhir(&s, "GET", &document, t, None, &[]),
                s.call(
                    "GET",
                    &format!("/records/{referral}/versions/1/pdf"),
                    t,
                    None,
                )
                .status
                    == 200,
            ),
            (
                "fhirSmartConfiguration",
                fhir(&s, "GET", "/.well-known/smart-configuration", t, None, &[]),
                true,
            ),
            (
                "fhirReadPatient",
                fhir(&s, "GET", "/Patient/M0001", t, None, &[]),
                readers.contains(role),
            ),
            (
                "fhirSearchPatient",
                fhir(&s, "GET", "/Patient?_id=M0001", t, None, &[]),
                readers.contains(role),
            ),
            (
                "fhirCreatePatient",
                fhir(&s, "POST", "/Patient", t, Some(&body), &[]),
                registrars.contains(role),
            ),
        ];
        // The token endpoint takes a signed client assertion, never a person's token: every
        // role's bearer token alone is refused as OAuth's unsupported_grant_type, and no token given.
        let t_only = fhir(
            &s,
            "POST",
            "/auth/token",
            t,
            Some(""),
            &[("Content-Type", "application/x-www-form-urlencoded")],
        );
        assert_eq!(
            (t_only.status, t_only.body["error"].as_str()),
            (400, Some("unsupported_grant_type")),
            "{role}"
        );
        covered.insert("fhirOAuthToken");
        // A correction that names a version long gone: those who may amend learn it is stale
        // (412), everyone else is refused first (403); nothing is written either way.
        let stale = fhir(
            &s,
            "PUT",
            &format!("/DocumentReference/{chart}"),
            t,
            Some(&json!({
                "resourceType": "DocumentReference",
                "status": "current",
                "type": { "coding": [{ "system": "urn:mamori:record-kind", "code": "medical_record" }] },
                "subject": { "reference": "Patient/M0001" },
                "description": "権限",
                "content": [{ "attachment": { "contentType": "text/plain", "data": "5pys5paH" } }]
            }).to_string()),
            &[
                ("If-Match", "W/\"0\""),
                (
                    "X-Provenance",
                    &ascii_json(&json!({ "resourceType": "Provenance", "reason": [{ "text": "誤記" }] })),
                ),
            ],
        );
        assert_eq!(
            stale.status,
            // A clerk corrects only for a named author (代行入力), so is refused here.
            if ["doctor", "dentist"].contains(role) {
                412
            } else {
                403
            },
            "{role}: {}",
            stale.body
        );
        covered.insert("fhirUpdateDocument");
        for (op, a, allowed) in calls {
            covered.insert(op);
            if allowed {
                assert!(
                    (200..300).contains(&a.status),
                    "{role} {op}: {} {}",
                    a.status,
                    a.body
                );
            } else {
                a.refused(403, "forbidden", "forbidden");
            }
        }
    }
    let every: std::collections::BTreeSet<&str> = mamori_web::fhir::OPERATIONS
        .iter()
        .map(|(_, _, op)| *op)
        .collect();
    assert_eq!(covered, every, "every FHIR operation is in the matrix");
}

#[test]
fn the_jp_core_example_patient_is_refused_by_name_and_accepted_as_far_as_mamori_keeps_it() {
    let s = start(|c| c.facility.institution_code = "1311234567".into());
    let admin = s.admin_token();
    let (_, clerk) = s.user(&admin, "clerk.jpcore", "clerk");
    let text = std::fs::read_to_string(format!(
        "{}/tests/fixtures/jp-core/Patient-jp-patient-example-1.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let example: Value = serde_json::from_str(&text).unwrap();
    all_valid_r4(std::slice::from_ref(&example));

    // Whole: its religion, birthplace and race extensions, telephone and address are more than
    // mamori keeps of a patient, so it is refused by name and nothing is stored.
    let whole = fhir(&s, "POST", "/Patient", Some(&clerk), Some(&text), &[]);
    whole.refused(422, "not-supported", "not_supported");
    assert_eq!(
        whole.body["issue"][0]["expression"],
        json!(["Patient.address", "Patient.extension", "Patient.telecom"])
    );
    let gone = fhir(&s, "GET", "/Patient/00000010", Some(&clerk), None, &[]);
    assert_eq!(gone.status, 404);

    // Without them: accepted under the example's own identifier system.
    let mut kept = example.clone();
    for k in ["extension", "telecom", "address", "text"] {
        kept.as_object_mut().unwrap().remove(k);
    }
    let made = fhir(
        &s,
        "POST",
        "/Patient",
        Some(&clerk),
        Some(&kept.to_string()),
        &[],
    );
    assert_eq!(made.status, 201, "{}", made.body);
    assert_eq!(made.body["id"], "00000010");
    assert_eq!(made.body["identifier"], example["identifier"]);
    assert_eq!(made.body["name"][0]["text"], "山田 太郎");
    assert_eq!(made.body["name"][1]["text"], "ヤマダ タロウ");
    assert_eq!(made.body["birthDate"], "1970-01-01");
    all_valid_r4(&[whole.body, made.body]);
}

/// JSON with every non-ASCII character escaped (`\\uXXXX`), as an HTTP header must carry it.
fn ascii_json(v: &Value) -> String {
    let mut out = String::new();
    for c in v.to_string().chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        }
    }
    out
}

/// `POST /fhir/r4/auth/token` with form fields.
fn token_request(s: &TestServer, fields: &[(&str, &str)]) -> Answer {
    let root = s.base.trim_end_matches("/api/v1");
    let res = ureq::AgentBuilder::new()
        .max_idle_connections(0)
        .build()
        .post(&format!("{root}/fhir/r4/auth/token"))
        .send_form(fields);
    match res {
        Ok(r) => answer_of(r),
        Err(ureq::Error::Status(_, r)) => answer_of(r),
        Err(e) => panic!("token: {e}"),
    }
}

#[test]
fn an_ehr_trades_a_signed_jwt_for_a_token_narrowed_to_its_scopes_and_to_fhir() {
    use mamori_fhir::smart::{ASSERTION_TYPE, ClientKey};
    let s = start(|c| c.facility.institution_code = "1311234567".into());
    let admin = s.admin_token();
    let ehr = s.service_account(&admin, "ehr.oauth", "clerk");
    let (key, _) = ClientKey::generate();
    let register = |scopes: Value, jwk: &Value| {
        s.call(
            "POST",
            &format!("/users/{ehr}/oauth-clients"),
            Some(&admin),
            Some(json!({ "name": "電子カルテ", "jwk": jwk, "scopes": scopes })),
        )
    };
    let reader = register(json!(["system/Patient.rs"]), &key.public_jwk());
    assert_eq!(reader.status, 201, "{}", reader.body);
    assert_eq!(reader.body["algorithm"], "ES384");
    let reader_id = reader.body["client_id"].as_str().unwrap().to_owned();

    // Registration refuses a private key, unknown scopes, and people's accounts.
    let mut private = key.public_jwk();
    private["d"] = json!("AAAA");
    let r = register(json!(["system/Patient.rs"]), &private);
    assert_eq!((r.status, r.code()), (422, "invalid_input"), "{}", r.body);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("秘密鍵")
    );
    let r = register(json!(["patient/*.read"]), &key.public_jwk());
    assert_eq!(r.status, 422, "{}", r.body);
    let (person, _) = s.user(&admin, "nurse.person", "nurse");
    let r = s.call(
        "POST",
        &format!("/users/{person}/oauth-clients"),
        Some(&admin),
        Some(json!({ "name": "x", "jwk": key.public_jwk(), "scopes": ["system/Patient.rs"] })),
    );
    assert_eq!(r.status, 409, "{}", r.body);

    // Discovery: the CapabilityStatement and the SMART configuration name the token endpoint.
    let root = s.base.trim_end_matches("/api/v1");
    let token_url = format!("{root}/fhir/r4/auth/token");
    let conf = fhir(
        &s,
        "GET",
        "/.well-known/smart-configuration",
        None,
        None,
        &[],
    );
    assert_eq!(conf.body["token_endpoint"], token_url.as_str());
    assert!(
        conf.body["token_endpoint_auth_signing_alg_values_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("ES384"))
    );
    let cap = fhir(&s, "GET", "/metadata", None, None, &[]);
    assert_eq!(
        cap.body["rest"][0]["security"]["extension"][0]["extension"][0]["valueUri"],
        token_url.as_str()
    );
    all_valid_r4(std::slice::from_ref(&cap.body));

    let now = || s.svc.now() / 1000;
    let assertion = |id: &str, jti: &str| key.assertion(id, &token_url, jti, now(), 240);
    let ask = |jwt: &str, scope: &str| {
        token_request(
            &s,
            &[
                ("grant_type", "client_credentials"),
                ("client_assertion_type", ASSERTION_TYPE),
                ("client_assertion", jwt),
                ("scope", scope),
            ],
        )
    };

    // The token: only the scopes both asked for and registered; five minutes; never cached.
    let first = assertion(&reader_id, "jti-1");
    let t = ask(&first, "system/Patient.rs system/AuditEvent.read");
    assert_eq!(t.status, 200, "{}", t.body);
    assert_eq!(t.body["scope"], "system/Patient.rs");
    assert_eq!(t.body["token_type"], "bearer");
    assert_eq!(t.body["expires_in"], 300);
    assert_eq!(t.header("cache-control"), Some("no-store"));
    let access = t.body["access_token"].as_str().unwrap().to_owned();

    // It reads and searches patients …
    let seed = jp_patient("E0001", ("電子", "花子"), ("デンシ", "ハナコ")).to_string();
    let (_, clerk) = s.user(&admin, "clerk.oauth", "clerk");
    assert_eq!(
        fhir(&s, "POST", "/Patient", Some(&clerk), Some(&seed), &[]).status,
        201
    );
    let read = fhir(&s, "GET", "/Patient/E0001", Some(&access), None, &[]);
    assert_eq!(read.status, 200, "{}", read.body);
    assert_eq!(
        fhir(&s, "GET", "/Patient?name=デンシ", Some(&access), None, &[]).status,
        200
    );
    // … but a write or another resource type is refused by name, and nothing is stored.
    let other = jp_patient("E0002", ("範囲", "外"), ("ハンイ", "ガイ")).to_string();
    let refused = fhir(&s, "POST", "/Patient", Some(&access), Some(&other), &[]);
    refused.refused(403, "forbidden", "forbidden");
    assert!(
        refused.body["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("system/Patient.c")
    );
    assert_eq!(
        fhir(&s, "GET", "/Patient/E0002", Some(&clerk), None, &[]).status,
        404
    );
    fhir(
        &s,
        "GET",
        "/DocumentReference?patient=E0001",
        Some(&access),
        None,
        &[],
    )
    .refused(403, "forbidden", "forbidden");
    // An OAuth token is for FHIR only: the JSON API and the pages refuse it.
    let api = s.call("GET", "/auth/me", Some(&access), None);
    assert_eq!(api.status, 403, "{}", api.body);
    let api = s.call("GET", "/patients/E0001", Some(&access), None);
    assert_eq!(api.status, 403, "{}", api.body);

    // Refusals, each with OAuth's error code.
    let replay = ask(&first, "system/Patient.rs");
    assert_eq!(
        (replay.status, replay.body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    let (stranger, _) = ClientKey::generate();
    let forged = stranger.assertion(&reader_id, &token_url, "jti-2", now(), 240);
    assert_eq!(
        ask(&forged, "system/Patient.rs").body["error"],
        "invalid_client"
    );
    let elsewhere = key.assertion(
        &reader_id,
        "https://elsewhere.example/token",
        "jti-3",
        now(),
        240,
    );
    assert_eq!(
        ask(&elsewhere, "system/Patient.rs").body["error"],
        "invalid_client"
    );
    let long = key.assertion(&reader_id, &token_url, "jti-4", now(), 3_600);
    assert_eq!(
        ask(&long, "system/Patient.rs").body["error"],
        "invalid_client"
    );
    let unknown = key.assertion("mamori-nobody", &token_url, "jti-5", now(), 240);
    assert_eq!(ask(&unknown, "system/Patient.rs").status, 401);
    let unregistered = ask(
        &assertion(&reader_id, "jti-6"),
        "system/DocumentReference.write",
    );
    assert_eq!(
        (unregistered.status, unregistered.body["error"].as_str()),
        (400, Some("invalid_scope"))
    );
    let grant = token_request(
        &s,
        &[
            ("grant_type", "password"),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", &assertion(&reader_id, "jti-7")),
        ],
    );
    assert_eq!(grant.body["error"], "unsupported_grant_type");
    assert_eq!(ask("not.a.jwt", "system/Patient.rs").status, 400);

    // A writer's client: an EHR stores a patient and a draft document through FHIR.
    let writer = register(
        json!(["system/Patient.cruds", "system/DocumentReference.write"]),
        &key.public_jwk(),
    );
    let writer_id = writer.body["client_id"].as_str().unwrap().to_owned();
    let t = ask(
        &assertion(&writer_id, "w-1"),
        "system/Patient.c system/DocumentReference.write",
    );
    assert_eq!(t.status, 200, "{}", t.body);
    let wtoken = t.body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        fhir(&s, "POST", "/Patient", Some(&wtoken), Some(&other), &[]).status,
        201
    );
    let draft = json!({
        "resourceType": "DocumentReference",
        "status": "current",
        "type": { "coding": [{ "system": "urn:mamori:record-kind", "code": "medical_record" }] },
        "subject": { "reference": "Patient/E0002" },
        "description": "EHR からの下書き",
        "content": [{ "attachment": { "contentType": "text/plain", "data": "5pys5paH" } }]
    })
    .to_string();
    let made = fhir(
        &s,
        "POST",
        "/DocumentReference",
        Some(&wtoken),
        Some(&draft),
        &[],
    );
    assert_eq!(made.status, 201, "{}", made.body);
    // A transaction (a document with its file as a Binary) is a DocumentReference write.
    let tx = json!({
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {
                    "resourceType": "DocumentReference",
                    "status": "current",
                    "type": { "coding": [{ "system": "urn:mamori:record-kind", "code": "medical_record" }] },
                    "subject": { "reference": "Patient/E0002" },
                    "description": "EHR からの添付つき下書き",
                    "content": [
                        { "attachment": { "contentType": "text/plain", "data": "5pys5paH" } },
                        { "attachment": { "title": "a.pdf", "url": "urn:uuid:5b0c8e2a-1d3f-4e6a-9b7c-0d1e2f3a4b5c" } }
                    ]
                },
                "request": { "method": "POST", "url": "DocumentReference" }
            },
            {
                "fullUrl": "urn:uuid:5b0c8e2a-1d3f-4e6a-9b7c-0d1e2f3a4b5c",
                "resource": { "resourceType": "Binary", "contentType": "application/pdf", "data": "JVBERi0xLjQKJSBvYXV0aAo=" },
                "request": { "method": "POST", "url": "Binary" }
            }
        ]
    })
    .to_string();
    let sent = fhir(&s, "POST", "", Some(&wtoken), Some(&tx), &[]);
    assert_eq!(sent.status, 200, "{}", sent.body);
    fhir(&s, "POST", "", Some(&access), Some(&tx), &[]).refused(403, "forbidden", "forbidden");
    // Its role still rules: a clerk's token cannot read the document back without the scope.
    fhir(
        &s,
        "GET",
        made.header("location")
            .unwrap()
            .split("/fhir/r4")
            .nth(1)
            .unwrap(),
        Some(&wtoken),
        None,
        &[],
    )
    .refused(403, "forbidden", "forbidden");

    // Revoking the client ends its tokens at once, and no new one is given.
    let r = s.call(
        "POST",
        "/oauth-clients/revoke",
        Some(&admin),
        Some(json!({ "client_id": reader_id })),
    );
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(
        fhir(&s, "GET", "/Patient/E0001", Some(&access), None, &[]).status,
        401
    );
    assert_eq!(
        ask(&assertion(&reader_id, "jti-8"), "system/Patient.rs").status,
        401
    );

    // The ledger: each token given and each refusal, with the client and the reason.
    let events = s.ledger_events();
    let given: Vec<&Value> = events
        .iter()
        .filter(|e| e["action"] == "oauth.token_issued")
        .collect();
    assert_eq!(given.len(), 2);
    assert_eq!(given[0]["detail"]["client_id"], reader_id.as_str());
    assert_eq!(given[0]["detail"]["scopes"], json!(["system/Patient.rs"]));
    assert_eq!(given[0]["actor"]["login"], "ehr.oauth");
    let refusals: Vec<&str> = events
        .iter()
        .filter(|e| e["action"] == "oauth.token_refused")
        .map(|e| e["detail"]["error"].as_str().unwrap())
        .collect();
    assert_eq!(
        refusals,
        [
            "invalid_client",
            "invalid_client",
            "invalid_client",
            "invalid_client",
            "invalid_client",
            "invalid_scope",
            "unsupported_grant_type",
            "invalid_request",
            "invalid_client"
        ]
    );
    assert!(events.iter().any(|e| e["action"] == "oauth.client_revoked"));
}

#[test]
fn a_finalised_referral_becomes_a_signed_jp_clins_document_for_its_destination() {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let s = start(|c| {
        c.facility.institution_code = "1311234567".into();
        c.evidence.dev_tsa = true;
    });
    let admin = s.admin_token();
    let (_, clerk) = s.user(&admin, "clerk.clins", "clerk");
    let seed = jp_patient("C0001", ("紹介", "花子"), ("ショウカイ", "ハナコ")).to_string();
    assert_eq!(
        fhir(&s, "POST", "/Patient", Some(&clerk), Some(&seed), &[]).status,
        201
    );
    let (_, dr) = s.user(&admin, "dr.clins", "doctor");
    let (_, other_dr) = s.user(&admin, "dr.other", "doctor");
    let pin = json!({ "pin": "clins 医師 PIN 1357", "password": PW });
    assert_eq!(
        s.call("POST", "/auth/signing-pin", Some(&dr), Some(pin))
            .status,
        200
    );
    let open = || {
        let r = s.call(
            "POST",
            "/auth/signing-window",
            Some(&dr),
            Some(json!({ "pin": "clins 医師 PIN 1357" })),
        );
        assert_eq!(r.status, 200, "{}", r.body);
    };
    open();
    let letter = s.call(
        "POST",
        "/records",
        Some(&dr),
        Some(
            json!({ "patient_id": "C0001", "kind": "referral", "title": "腹痛精査のお願い",
            "body": "2026年11月から食後の上腹部痛。\n内視鏡での精査をお願いします。" }),
        ),
    );
    let rid = letter.body["record_id"].as_i64().unwrap();
    assert_eq!(
        s.call("POST", &format!("/records/{rid}/finalize"), Some(&dr), None)
            .status,
        200
    );
    let path = format!("/DocumentReference/{rid}/$jp-clins-document");
    let params = |org: Option<&str>| {
        let mut p = vec![
            json!({ "name": "referralToDepartment", "valueString": "消化器内科" }),
            json!({ "name": "referralToPractitioner", "valueString": "野口 英世" }),
            json!({ "name": "problem", "valueString": "上腹部痛" }),
        ];
        if let Some(o) = org {
            p.push(json!({ "name": "referralToOrganization", "valueString": o }));
        }
        json!({ "resourceType": "Parameters", "parameter": p }).to_string()
    };

    // Refusals first: nothing is kept by any of them.
    fhir(&s, "POST", &path, Some(&dr), Some(&params(None)), &[]).refused(
        422,
        "required",
        "invalid_input",
    );
    let unknown = json!({ "resourceType": "Parameters", "parameter": [{ "name": "priority", "valueString": "高" }] }).to_string();
    fhir(&s, "POST", &path, Some(&dr), Some(&unknown), &[]).refused(
        422,
        "not-supported",
        "not_supported",
    );
    fhir(
        &s,
        "POST",
        &path,
        Some(&other_dr),
        Some(&params(Some("東京第一病院"))),
        &[],
    )
    .refused(403, "forbidden", "forbidden");
    fhir(
        &s,
        "POST",
        &path,
        Some(&clerk),
        Some(&params(Some("東京第一病院"))),
        &[],
    )
    .refused(403, "forbidden", "forbidden");
    let chart = s.call(
        "POST",
        "/records",
        Some(&dr),
        Some(json!({ "patient_id": "C0001", "kind": "medical_record", "title": "経過", "body": "本文" })),
    );
    let chart = chart.body["record_id"].as_i64().unwrap();
    s.call(
        "POST",
        &format!("/records/{chart}/finalize"),
        Some(&dr),
        None,
    );
    fhir(
        &s,
        "POST",
        &format!("/DocumentReference/{chart}/$jp-clins-document"),
        Some(&dr),
        Some(&params(Some("東京第一病院"))),
        &[],
    )
    .refused(422, "invalid", "invalid_input");
    assert_eq!(
        s.call("POST", "/auth/signing-window/close", Some(&dr), None)
            .status,
        200
    );
    fhir(
        &s,
        "POST",
        &path,
        Some(&dr),
        Some(&params(Some("東京第一病院"))),
        &[],
    )
    .refused(409, "conflict", "signing_window_closed");
    let none = fhir(&s, "GET", "/Bundle/1311234567-1-1-1", Some(&dr), None, &[]);
    assert_eq!(none.status, 404);
    assert!(
        !s.ledger_events()
            .iter()
            .any(|e| e["action"] == "record.fhir_document_signed")
    );

    // The author, in her window: the signed document Bundle.
    open();
    let made = fhir(
        &s,
        "POST",
        &path,
        Some(&dr),
        Some(&params(Some("東京第一病院"))),
        &[],
    );
    assert_eq!(made.status, 201, "{}", made.body);
    let bundle = made.body.clone();
    let id = bundle["id"].as_str().unwrap().to_owned();
    assert_eq!(id, format!("1311234567-{rid}-1-1"));
    assert!(
        made.header("location")
            .unwrap()
            .ends_with(&format!("/fhir/r4/Bundle/{id}"))
    );
    all_valid_r4(std::slice::from_ref(&bundle));
    let comp = &bundle["entry"][0]["resource"];
    assert_eq!(comp["title"], "診療情報提供書");
    assert_eq!(comp["subject"]["reference"], bundle["entry"][1]["fullUrl"]);
    assert_eq!(
        bundle["entry"][1]["resource"]["identifier"][0]["value"],
        "C0001"
    );
    let to = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["resource"]["name"] == "東京第一病院");
    assert!(to.is_some(), "the destination is in the Bundle");

    // Shaped like the guide's own published example (kept as a fixture, itself valid R4).
    let example: Value = serde_json::from_str(
        &std::fs::read_to_string(format!(
            "{}/tests/fixtures/jp-clins/Bundle-BundleReferralExample01.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    )
    .unwrap();
    all_valid_r4(std::slice::from_ref(&example));
    let ex_comp = &example["entry"][0]["resource"];
    assert_eq!(bundle["type"], example["type"]);
    assert_eq!(bundle["meta"]["profile"], example["meta"]["profile"]);
    assert_eq!(comp["meta"]["profile"], ex_comp["meta"]["profile"]);
    assert_eq!(
        comp["type"]["coding"][0]["code"],
        ex_comp["type"]["coding"][0]["code"]
    );
    assert_eq!(
        comp["type"]["coding"][0]["system"],
        ex_comp["type"]["coding"][0]["system"]
    );
    assert_eq!(
        bundle["identifier"]["system"],
        example["identifier"]["system"]
    );
    let codes = |c: &Value| -> Vec<String> {
        let mut out = Vec::new();
        for sct in c["section"].as_array().unwrap() {
            out.push(format!(
                "{}|{}",
                sct["code"]["coding"][0]["system"].as_str().unwrap(),
                sct["code"]["coding"][0]["code"].as_str().unwrap()
            ));
            for sub in sct["section"].as_array().into_iter().flatten() {
                out.push(format!(
                    "{}|{}",
                    sub["code"]["coding"][0]["system"].as_str().unwrap(),
                    sub["code"]["coding"][0]["code"].as_str().unwrap()
                ));
            }
        }
        out
    };
    let (ours, theirs) = (codes(comp), codes(ex_comp));
    for required in ["920", "910", "300", "950", "340", "360"] {
        let wanted =
            format!("http://jpfhir.jp/fhir/eReferral/CodeSystem/document-section|{required}");
        assert!(theirs.contains(&wanted), "the example has {required}");
        assert!(ours.contains(&wanted), "ours has {required}: {ours:?}");
    }

    // The author's signed PDF of the same version travels inside, byte for byte.
    let binary = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["resource"]["resourceType"] == "Binary")
        .unwrap();
    let pdf = b64
        .decode(binary["resource"]["data"].as_str().unwrap())
        .unwrap();
    let kept = s
        .svc
        .store()
        .reader()
        .unwrap()
        .get()
        .signed_pdf(rid, 1, mamori_store::SIGNED_PDF_LETTER)
        .unwrap()
        .unwrap();
    assert_eq!(hex::encode(mamori_evidence::sha256(&pdf)), kept.pdf_sha256);

    // The signature, checked without mamori: Python re-serialises the Bundle canonically and
    // OpenSSL verifies the CMS over those bytes against the facility CA.
    let dir = tempfile::tempdir().unwrap();
    let (content, sig) = (dir.path().join("content.json"), dir.path().join("sig.der"));
    let mut py = Command::new(python())
        .arg(script("canonical.py"))
        .arg(&content)
        .arg(&sig)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    py.stdin
        .take()
        .unwrap()
        .write_all(bundle.to_string().as_bytes())
        .unwrap();
    assert!(py.wait().unwrap().success());
    assert_eq!(
        std::fs::read(&content).unwrap(),
        mamori_fhir::clins::signed_bytes(&bundle),
        "Python's canonical bytes are mamori's"
    );
    let root = s.base.trim_end_matches("/api/v1");
    let mut ca = Vec::new();
    std::io::Read::read_to_end(
        &mut ureq::get(&format!("{root}/ca.crt"))
            .call()
            .unwrap()
            .into_reader(),
        &mut ca,
    )
    .unwrap();
    std::fs::write(dir.path().join("ca.der"), &ca).unwrap();
    let openssl = |args: &[&str]| {
        let o = Command::new("openssl")
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    assert!(openssl(&["x509", "-inform", "DER", "-in", "ca.der", "-out", "ca.pem"]).0);
    let verify = |content: &str| {
        openssl(&[
            "cms",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-in",
            "sig.der",
            "-content",
            content,
            "-CAfile",
            "ca.pem",
            "-purpose",
            "any",
            "-out",
            "/dev/null",
        ])
    };
    let (ok, err) = verify("content.json");
    assert!(ok, "openssl cms -verify: {err}");
    // One changed character of the letter fails it.
    let mut changed = bundle.clone();
    let div = changed["entry"][0]["resource"]["section"][2]["section"][3]["text"]["div"]
        .as_str()
        .unwrap()
        .replace("上腹部痛", "下腹部痛");
    changed["entry"][0]["resource"]["section"][2]["section"][3]["text"]["div"] = json!(div);
    std::fs::write(
        dir.path().join("changed.json"),
        mamori_fhir::clins::signed_bytes(&changed),
    )
    .unwrap();
    assert!(
        !verify("changed.json").0,
        "a changed Bundle fails the signature"
    );
    let anchors =
        mamori_service::evidence::read::Anchors::load(s.svc.data_dir(), &s.svc.config().evidence)
            .unwrap();
    let info = mamori_evidence::cades::verify_detached(
        &mamori_fhir::clins::signature_of(&bundle).unwrap(),
        &mamori_fhir::clins::signed_bytes(&bundle),
        &anchors.signers,
        &anchors.tsa,
    )
    .unwrap();
    assert!(info.timestamp.is_some(), "time-stamped");

    // Fetched again: the same Bundle, for those who may export the record; a second sending
    // is a second document.
    let again = fhir(
        &s,
        "GET",
        &format!("/Bundle/{id}"),
        Some(&other_dr),
        None,
        &[],
    );
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body, bundle);
    let (_, nurse) = s.user(&admin, "nurse.clins", "nurse");
    let as_json = s
        .call(
            "GET",
            &format!("/records/{rid}/versions/1/pdf"),
            Some(&nurse),
            None,
        )
        .status;
    let as_fhir = fhir(&s, "GET", &format!("/Bundle/{id}"), Some(&nurse), None, &[]).status;
    assert_eq!(
        as_fhir == 200,
        as_json == 200,
        "the same rights as the signed PDF"
    );
    let second = fhir(
        &s,
        "POST",
        &path,
        Some(&dr),
        Some(&params(Some("港総合病院"))),
        &[],
    );
    assert_eq!(second.body["id"], format!("1311234567-{rid}-1-2"));
    let signed: Vec<Value> = s
        .ledger_events()
        .into_iter()
        .filter(|e| e["action"] == "record.fhir_document_signed")
        .collect();
    assert_eq!(signed.len(), 2);
    assert_eq!(signed[0]["detail"]["destination"], "東京第一病院");
    assert_eq!(signed[0]["detail"]["document_id"], id.as_str());
    assert_eq!(signed[0]["actor"]["login"], "dr.clins");
}

#[test]
fn a_correction_through_fhir_names_the_version_it_read_and_a_reason() {
    let s = start(|c| c.facility.institution_code = "1311234567".into());
    let admin = s.admin_token();
    let (_, clerk) = s.user(&admin, "clerk.put", "clerk");
    let seed = jp_patient("U0001", ("更新", "太郎"), ("コウシン", "タロウ")).to_string();
    assert_eq!(
        fhir(&s, "POST", "/Patient", Some(&clerk), Some(&seed), &[]).status,
        201
    );
    let (_, dr) = s.user(&admin, "dr.put", "doctor");
    let (_, nurse) = s.user(&admin, "nurse.put", "nurse");
    let made = s.call(
        "POST",
        "/records",
        Some(&dr),
        Some(json!({ "patient_id": "U0001", "kind": "medical_record", "title": "初診", "body": "頭痛。" })),
    );
    let rid = made.body["record_id"].as_i64().unwrap();
    assert_eq!(
        s.call("POST", &format!("/records/{rid}/finalize"), Some(&dr), None)
            .status,
        200
    );
    let path = format!("/DocumentReference/{rid}");
    let read = fhir(&s, "GET", &path, Some(&dr), None, &[]);
    assert_eq!(read.header("etag"), Some("W/\"1\""));
    let corrected = |patient: &str| {
        json!({
            "resourceType": "DocumentReference",
            "status": "current",
            "docStatus": "final",
            "type": { "coding": [{ "system": "urn:mamori:record-kind", "code": "medical_record" }] },
            "subject": { "reference": format!("Patient/{patient}") },
            "description": "初診",
            "content": [{ "attachment": { "contentType": "text/plain", "data": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "頭痛と発熱。".as_bytes()) } }]
        })
        .to_string()
    };
    let why = &ascii_json(
        &json!({ "resourceType": "Provenance", "reason": [{ "text": "発熱の記載漏れ" }] }),
    );
    let versions = || {
        s.call("GET", &format!("/records/{rid}/versions"), Some(&dr), None)
            .body["versions"]
            .as_array()
            .unwrap()
            .len()
    };

    // Refusals: no If-Match, no reason, another patient, a nurse — nothing written.
    fhir(
        &s,
        "PUT",
        &path,
        Some(&dr),
        Some(&corrected("U0001")),
        &[("X-Provenance", why)],
    )
    .refused(428, "required", "invalid_input");
    fhir(
        &s,
        "PUT",
        &path,
        Some(&dr),
        Some(&corrected("U0001")),
        &[("If-Match", "W/\"1\"")],
    )
    .refused(422, "required", "invalid_input");
    fhir(
        &s,
        "PUT",
        &path,
        Some(&dr),
        Some(&corrected("U0001")),
        &[("If-Match", "W/\"1\""), ("X-Provenance", "{")],
    )
    .refused(400, "structure", "malformed");
    fhir(
        &s,
        "PUT",
        &path,
        Some(&dr),
        Some(&corrected("P9999")),
        &[("If-Match", "W/\"1\""), ("X-Provenance", why)],
    )
    .refused(422, "invalid", "invalid_input");
    fhir(
        &s,
        "PUT",
        &path,
        Some(&nurse),
        Some(&corrected("U0001")),
        &[("If-Match", "W/\"1\""), ("X-Provenance", why)],
    )
    .refused(403, "forbidden", "forbidden");
    assert_eq!(versions(), 1);

    // The correction: a new version with the reason, its ETag the next version.
    let done = fhir(
        &s,
        "PUT",
        &path,
        Some(&dr),
        Some(&corrected("U0001")),
        &[("If-Match", "W/\"1\""), ("X-Provenance", why)],
    );
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(done.header("etag"), Some("W/\"2\""));
    assert_eq!(done.body["meta"]["versionId"], "2");
    assert_eq!(done.body["docStatus"], "amended");
    let prov = fhir(
        &s,
        "GET",
        &format!("/Provenance/{rid}-2"),
        Some(&dr),
        None,
        &[],
    );
    assert_eq!(prov.body["reason"][0]["text"], "発熱の記載漏れ");
    all_valid_r4(&[done.body.clone(), prov.body.clone()]);

    // The same change from someone who read version 1: refused as stale, nothing written.
    let stale = fhir(
        &s,
        "PUT",
        &path,
        Some(&dr),
        Some(&corrected("U0001")),
        &[("If-Match", "W/\"1\""), ("X-Provenance", why)],
    );
    stale.refused(412, "conflict", "conflict");
    assert!(
        stale.body["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("第 2 版")
    );
    assert_eq!(versions(), 2);
    let amended: Vec<Value> = s
        .ledger_events()
        .into_iter()
        .filter(|e| e["action"] == "record.amended")
        .collect();
    assert_eq!(
        amended.len(),
        3,
        "one amendment and two refusals: {amended:?}"
    );
    assert_eq!(amended.iter().filter(|e| e["outcome"] == "ok").count(), 1);
}

#[test]
fn a_document_and_its_files_arrive_as_one_transaction_with_binaries() {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let s = start(|c| c.facility.institution_code = "1311234567".into());
    let admin = s.admin_token();
    let (_, clerk) = s.user(&admin, "clerk.tx", "clerk");
    let seed = jp_patient("T0001", ("添付", "一郎"), ("テンプ", "イチロウ")).to_string();
    assert_eq!(
        fhir(&s, "POST", "/Patient", Some(&clerk), Some(&seed), &[]).status,
        201
    );
    let pdf = b"%PDF-1.4\n% transaction\n".to_vec();
    let png = mamori_testkit::pdf::one_page("x");
    let binary_url = "urn:uuid:6f1d2c3b-4a59-4e8f-9c0d-1e2f3a4b5c6d";
    let second_url = "urn:uuid:7a2e3d4c-5b6a-4f90-8d1e-2f3a4b5c6d7e";
    let bundle = |identifier: &str, refs: (&str, &str)| {
        json!({
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "fullUrl": "urn:uuid:0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d",
                    "resource": {
                        "resourceType": "DocumentReference",
                        "masterIdentifier": { "system": "urn:ehr:document", "value": identifier },
                        "status": "current",
                        "type": { "coding": [{ "system": "urn:mamori:record-kind", "code": "medical_record" }] },
                        "subject": { "reference": "Patient/T0001" },
                        "description": "検査結果の取り込み",
                        "content": [
                            { "attachment": { "contentType": "text/plain", "data": b64.encode("結果は添付のとおり。") } },
                            { "attachment": { "title": "検査結果.pdf", "url": refs.0 } },
                            { "attachment": { "title": "報告書.pdf", "url": refs.1 } }
                        ]
                    },
                    "request": { "method": "POST", "url": "DocumentReference", "ifNoneExist": format!("identifier=urn:ehr:document|{identifier}") }
                },
                {
                    "fullUrl": binary_url,
                    "resource": { "resourceType": "Binary", "contentType": "application/pdf", "data": b64.encode(&pdf) },
                    "request": { "method": "POST", "url": "Binary" }
                },
                {
                    "fullUrl": second_url,
                    "resource": { "resourceType": "Binary", "contentType": "application/pdf", "data": b64.encode(&png) },
                    "request": { "method": "POST", "url": "Binary" }
                }
            ]
        })
        .to_string()
    };
    let records = || {
        s.call("GET", "/patients/T0001/records", Some(&clerk), None)
            .body
            .as_array()
            .map_or(0, Vec::len)
    };

    // A reference to a Binary that is not in the Bundle: refused, nothing stored.
    let dangling = fhir(
        &s,
        "POST",
        "",
        Some(&clerk),
        Some(&bundle(
            "TX-0",
            (binary_url, "urn:uuid:00000000-0000-4000-8000-000000000000"),
        )),
        &[],
    );
    dangling.refused(422, "invalid", "invalid_input");
    assert_eq!(records(), 0);

    let made = fhir(
        &s,
        "POST",
        "",
        Some(&clerk),
        Some(&bundle("TX-1", (binary_url, second_url))),
        &[],
    );
    assert_eq!(made.status, 200, "{}", made.body);
    assert_eq!(made.body["type"], "transaction-response");
    assert_eq!(made.body["entry"][0]["response"]["status"], "201 Created");
    let location = made.body["entry"][0]["response"]["location"]
        .as_str()
        .unwrap()
        .to_owned();
    let rid: i64 = location.split('/').nth(1).unwrap().parse().unwrap();
    assert!(
        made.body["entry"][1]["response"]["location"]
            .as_str()
            .unwrap()
            .ends_with(&mamori_domain::content::sha256_hex(&pdf))
    );
    all_valid_r4(std::slice::from_ref(&made.body));

    // The files are the record's attachments, byte for byte.
    let doc = fhir(
        &s,
        "GET",
        &format!("/DocumentReference/{rid}"),
        Some(&clerk),
        None,
        &[],
    );
    let titles: Vec<&str> = doc.body["content"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["attachment"]["title"].as_str())
        .collect();
    assert!(
        titles.contains(&"検査結果.pdf") && titles.contains(&"報告書.pdf"),
        "{titles:?}"
    );
    let mut got = Vec::new();
    std::io::Read::read_to_end(
        &mut ureq::get(
            made.body["entry"][1]["response"]["location"]
                .as_str()
                .unwrap(),
        )
        .set("Authorization", &format!("Bearer {clerk}"))
        .call()
        .unwrap()
        .into_reader(),
        &mut got,
    )
    .unwrap();
    assert_eq!(got, pdf);

    // The EHR's retry: the same record, nothing written twice.
    let again = fhir(
        &s,
        "POST",
        "",
        Some(&clerk),
        Some(&bundle("TX-1", (binary_url, second_url))),
        &[],
    );
    assert_eq!(again.body["entry"][0]["response"]["status"], "200 OK");
    assert_eq!(
        again.body["entry"][0]["response"]["location"],
        location.as_str()
    );
    assert_eq!(records(), 1);
}
