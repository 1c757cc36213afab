//! Every stored fact is provable (issue #16): on a demo clinic, with the guard triggers dropped,
//! each column of every table in SQLite's own catalogue is changed in turn, and `mamori verify`
//! must fail naming the table — except the columns `verify --json` declares as not covered.
//! A table or column added later without coverage fails here.

mod support;

use std::path::Path;

use rusqlite::types::Value;
use support::*;

fn copy_db(from: &Path, to: &Path) {
    for ext in ["", "-wal", "-shm"] {
        let src = from.join(format!("mamori.db{ext}"));
        let dst = to.join(format!("mamori.db{ext}"));
        let _ = std::fs::remove_file(&dst);
        if src.exists() {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

/// A value that differs from `v` and still fits the column's type.
fn changed(v: &Value) -> Value {
    match v {
        Value::Null => Value::Integer(1),
        Value::Integer(i) => Value::Integer(i.wrapping_add(1_000_003)),
        Value::Real(f) => Value::Real(f + 1.5),
        Value::Text(t) => Value::Text(format!("{t}x")),
        Value::Blob(b) => {
            let mut b = b.clone();
            match b.first_mut() {
                Some(x) => *x ^= 0x01,
                None => b.push(1),
            }
            Value::Blob(b)
        }
    }
}

fn call(
    agent: &ureq::Agent,
    base: &str,
    method: &str,
    path: &str,
    token: &str,
    body: Option<serde_json::Value>,
) -> serde_json::Value {
    let req = agent
        .request(method, &format!("{base}{path}"))
        .set("Authorization", &format!("Bearer {token}"));
    let res = match body {
        Some(b) => req.send_json(b),
        None => req.call(),
    };
    match res {
        Ok(r) => r.into_json().unwrap_or(serde_json::Value::Null),
        Err(e) => panic!("{method} {path}: {e}"),
    }
}

/// Fills the tables the demo leaves empty, the way people would: policies per role, the risk
/// register, an evidence link, a password reset, break-glass, an authenticator app, a role
/// proposal.
fn exercise_through_the_api(demo: &Path) {
    let port = free_port();
    let mut server = serve(demo, port);
    let base = format!("http://127.0.0.1:{port}/api/v1");
    let agent = fresh();
    let login = |who: &str| -> String {
        let r: serde_json::Value = agent
            .post(&format!("{base}/auth/login"))
            .send_json(serde_json::json!({ "login": who, "password": "mamori-demo-2026" }))
            .unwrap()
            .into_json()
            .unwrap();
        r["token"].as_str().unwrap().to_owned()
    };
    let admin = login("admin");
    let a = |m: &str, p: &str, b: Option<serde_json::Value>| call(&agent, &base, m, p, &admin, b);
    a(
        "POST",
        "/roles/radiographer/two-factor",
        Some(serde_json::json!({ "required": true })),
    );
    a(
        "POST",
        "/roles/radiographer/client-cert",
        Some(serde_json::json!({ "required": true })),
    );
    a("GET", "/compliance/risks", None);
    a(
        "POST",
        "/compliance/registers/training",
        Some(serde_json::json!({
            "fields": { "held_on": "2026-10-01", "title": "情報セキュリティ研修", "kind": "periodic", "topics": "標的型メール" },
            "people": ["admin", "dr.suzuki"],
            "file": { "name": "資料.pdf", "content_base64": "JVBERi0xLjQKJSVFT0YK" }
        })),
    );
    let catalogues = a("GET", "/compliance/catalogues", None);
    let catalogue = catalogues["catalogues"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let created = a(
        "POST",
        "/compliance/assessments",
        Some(serde_json::json!({ "catalogue": catalogue })),
    );
    let id = created["id"].as_i64().unwrap();
    let assessment = a("GET", &format!("/compliance/assessments/{id}"), None);
    let item = assessment["items"][0]["id"].as_str().unwrap().to_owned();
    a(
        "POST",
        &format!("/compliance/assessments/{id}/items/{item}/evidence"),
        Some(serde_json::json!({ "name": "規程", "url": "https://example.jp/rules" })),
    );
    let users = a("GET", "/users", None);
    let nurse = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["login"] == "ns.sato")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    a(
        "POST",
        &format!("/users/{nurse}/reset-password"),
        Some(
            serde_json::json!({ "temporary_password": "another temp 5678", "identity_check": "職員証を確認" }),
        ),
    );
    let roles = a("GET", "/roles", None);
    let sysadmin = roles
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["code"] == "sysadmin")
        .unwrap()
        .clone();
    a(
        "POST",
        "/roles",
        Some(
            serde_json::json!({ "code": "sysadmin", "name_ja": sysadmin["name_ja"], "grants": sysadmin["grants"] }),
        ),
    );
    let dr = login("dr.suzuki");
    call(
        &agent,
        &base,
        "POST",
        "/patients/P01001/emergency",
        &dr,
        Some(serde_json::json!({ "reason": "救急搬送、意識なし" })),
    );
    // An EHR's document through FHIR: the record and the sender's identifier for it.
    let fhir = format!("http://127.0.0.1:{port}/fhir/r4");
    call(
        &agent,
        &fhir,
        "POST",
        "/DocumentReference",
        &dr,
        Some(serde_json::json!({
            "resourceType": "DocumentReference",
            "masterIdentifier": { "system": "urn:ehr:document", "value": "EHR-1" },
            "status": "current",
            "type": { "coding": [{ "system": "urn:mamori:record-kind", "code": "medical_record" }] },
            "subject": { "reference": "Patient/P01001" },
            "description": "EHR からの記録",
            "content": [{ "attachment": { "contentType": "text/plain", "data": "5pys5paH" } }]
        })),
    );
    // A referral its author prepares for sending: the signed JP-CLINS document and its row.
    call(
        &agent,
        &base,
        "POST",
        "/auth/signing-window",
        &dr,
        Some(serde_json::json!({ "pin": "mamori-sign-2026" })),
    );
    let letter = call(
        &agent,
        &base,
        "POST",
        "/records",
        &dr,
        Some(serde_json::json!({ "patient_id": "P01001", "kind": "referral", "title": "精査のお願い", "body": "腹痛。" })),
    )["record_id"]
        .as_i64()
        .unwrap();
    call(
        &agent,
        &base,
        "POST",
        &format!("/records/{letter}/finalize"),
        &dr,
        None,
    );
    let document = call(
        &agent,
        &fhir,
        "POST",
        &format!("/DocumentReference/{letter}/$jp-clins-document"),
        &dr,
        Some(
            serde_json::json!({ "resourceType": "Parameters", "parameter": [
            { "name": "referralToOrganization", "valueString": "東京第一病院" }
        ] }),
        ),
    );
    assert_eq!(document["resourceType"], "Bundle", "{document}");
    // An EHR's OAuth client (SMART Backend Services) and one token for a signed assertion:
    // the client, its used assertion and the token's session.
    let ehr = a(
        "POST",
        "/users",
        Some(serde_json::json!({ "login": "ehr.trial", "display_name": "EHR", "role": "clerk", "service": true })),
    )["id"]
        .as_i64()
        .unwrap();
    let (key, _) = mamori_fhir::smart::ClientKey::generate();
    let client = a(
        "POST",
        &format!("/users/{ehr}/oauth-clients"),
        Some(serde_json::json!({ "name": "EHR", "jwk": key.public_jwk(), "scopes": ["system/Patient.rs"] })),
    )["client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let token_url = format!("{fhir}/auth/token");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let granted: serde_json::Value = agent
        .post(&token_url)
        .send_form(&[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", mamori_fhir::smart::ASSERTION_TYPE),
            (
                "client_assertion",
                &key.assertion(&client, &token_url, "trial-1", now, 120),
            ),
            ("scope", "system/Patient.rs"),
        ])
        .unwrap()
        .into_json()
        .unwrap();
    assert!(granted["access_token"].is_string(), "{granted}");
    let begun = call(&agent, &base, "POST", "/auth/totp/begin", &dr, None);
    let secret = mamori_domain::totp::decode_secret(begun["secret"].as_str().unwrap()).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let code = mamori_domain::totp::code_at_step(&secret, mamori_domain::totp::step_at(now));
    call(
        &agent,
        &base,
        "POST",
        "/auth/totp/confirm",
        &dr,
        Some(serde_json::json!({ "code": code })),
    );
    let _ = server.kill();
    let _ = server.wait();
}

/// Fills the tables no API call in `exercise_through_the_api` reaches, through the service
/// (the server stopped): a sealed emergency account, a passkey, and a signing request of an
/// author who signs outside mamori.
fn exercise_through_the_service(demo: &Path) {
    let toml = demo.join("mamori.toml");
    let cfg = std::fs::read_to_string(&toml).unwrap().replace(
        "external_signers = \"\"",
        "external_signers = \"dr.suzuki\"",
    );
    std::fs::write(&toml, cfg).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let svc = mamori_service::instance::open(demo).unwrap();
    rt.block_on(async {
        let sign_in = |login: &'static str| {
            let svc = svc.clone();
            async move {
                let ok = svc.login(login, "mamori-demo-2026", None).await.unwrap();
                svc.authenticate(&ok.token, None).await.unwrap()
            }
        };
        let admin = sign_in("admin").await;
        let dr = sign_in("dr.suzuki").await;
        let clerk = svc
            .list_accounts(&admin)
            .await
            .unwrap()
            .into_iter()
            .find(|a| a.role == "clerk")
            .unwrap();
        svc.set_emergency_account(&admin, clerk.id, true)
            .await
            .unwrap();

        let key = mamori_passkey::soft::Authenticator::new();
        let pharmacist = sign_in("ph.yamamoto").await;
        let o = svc.begin_passkey_registration(&pharmacist).await.unwrap();
        let ch = mamori_passkey::from_b64url(o["challenge"].as_str().unwrap()).unwrap();
        let (cd, att) = key.create("localhost", "http://localhost:8080", &ch);
        svc.finish_passkey_registration(
            &pharmacist,
            mamori_service::access::passkeys::Registration {
                name: "受付".into(),
                client_data_json: mamori_passkey::b64url(&cd),
                attestation_object: mamori_passkey::b64url(&att),
            },
        )
        .await
        .unwrap();

        let w = svc
            .create_record(
                &dr,
                mamori_service::records::RecordInput {
                    patient_id: "P01001".into(),
                    kind: "medical_record".into(),
                    title: "カードで署名する記録".into(),
                    body: "本文".into(),
                    ..Default::default()
                },
                vec![],
            )
            .await
            .unwrap();
        svc.finalise_record(&dr, w.record_id).await.unwrap();
        let der: Vec<u8> = rusqlite::Connection::open(demo.join("mamori.db"))
            .unwrap()
            .query_row(
                "SELECT cert FROM signing_certs WHERE account_id = ?1 AND retired_at IS NULL",
                [dr.account.id],
                |r| r.get(0),
            )
            .unwrap();
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        let pem = format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            lines.join("\n")
        );
        svc.begin_external_signature(&dr, w.record_id, 1, &pem)
            .await
            .unwrap();
    });
    svc.store().close();
}

/// The demo clinic with more of its tables filled: evidence records sealed, a device
/// certificate issued, and the workflows of the service and the API run.
fn filled_demo(dir: &Path) -> std::path::PathBuf {
    let demo = dir.join("demo");
    let o = mamori(&["demo", "--data", demo.to_str().unwrap(), "--no-serve"]);
    assert!(o.status.success(), "{}", text(&o));
    // More of the tables filled: evidence records sealed, a device certificate issued.
    let d = demo.to_str().unwrap();
    let o = mamori(&["evidence", "seal", "--data", d]);
    assert!(o.status.success(), "{}", text(&o));
    let pw = dir.join("p12.txt");
    std::fs::write(&pw, "p12 password 1\n").unwrap();
    let p12 = dir.join("pc.p12");
    let o = mamori(&[
        "ca",
        "issue",
        "--data",
        d,
        "--device",
        "reception-pc",
        "--out",
        p12.to_str().unwrap(),
        "--password-file",
        pw.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    exercise_through_the_service(&demo);
    exercise_through_the_api(&demo);
    demo
}

/// What `verify --json` declares as not covered: (table, column or every column).
fn declared(report: &serde_json::Value) -> Vec<(String, Option<String>)> {
    report["not_covered"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["table"].as_str().unwrap().to_owned(),
                n["column"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

#[test]
fn every_column_of_every_table_is_covered_or_declared() {
    let dir = tempfile::tempdir().unwrap();
    let demo = filled_demo(dir.path());
    let o = mamori(&["verify", "--data", demo.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "the demo must verify:\n{}", text(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(report["state_rows"].as_u64().unwrap() > 100, "{report}");
    let declared = declared(&report);
    let is_declared = |t: &str, c: &str| {
        declared
            .iter()
            .any(|(dt, dc)| (dt == t || dt == "*") && dc.as_deref().is_none_or(|dc| dc == c))
    };

    let work = dir.path().join("work");
    copy_dir(&demo, &work);
    let conn = rusqlite::Connection::open(demo.join("mamori.db")).unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut unnoticed = Vec::new();
    let mut empty = Vec::new();
    let mut tried = 0;
    for table in &tables {
        let columns: Vec<String> = conn
            .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        // The row to change: for meta, a covered key; elsewhere the first.
        let filter = if table == "meta" {
            " WHERE key = 'facility'"
        } else {
            ""
        };
        for column in &columns {
            if is_declared(table, column) {
                continue;
            }
            let first: Option<(Value, Value)> = conn
                .query_row(
                    &format!("SELECT rowid, \"{column}\" FROM \"{table}\"{filter} LIMIT 1"),
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .ok()
                .or_else(|| {
                    // WITHOUT ROWID tables: the first row by its key, found again by value.
                    conn.query_row(
                        &format!("SELECT \"{column}\", \"{column}\" FROM \"{table}\" LIMIT 1"),
                        [],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .ok()
                });
            let Some((locator, value)) = first else {
                empty.push(table.clone());
                break;
            };
            copy_db(&demo, &work);
            let w = rusqlite::Connection::open(work.join("mamori.db")).unwrap();
            let triggers: Vec<String> = w
                .prepare("SELECT name FROM sqlite_schema WHERE type = 'trigger'")
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            for t in triggers {
                w.execute_batch(&format!("DROP TRIGGER \"{t}\"")).unwrap();
            }
            w.execute_batch("PRAGMA ignore_check_constraints = ON; PRAGMA foreign_keys = OFF")
                .unwrap();
            let by_rowid = format!("UPDATE \"{table}\" SET \"{column}\" = ?1 WHERE rowid = ?2");
            let by_value = format!(
                "UPDATE \"{table}\" SET \"{column}\" = ?1 WHERE rowid IN (SELECT rowid FROM \"{table}\" WHERE \"{column}\" IS ?2 LIMIT 1)"
            );
            let n = w
                .execute(&by_rowid, rusqlite::params![changed(&value), locator])
                .or_else(|_| {
                    // WITHOUT ROWID: match on the value itself (every row with it).
                    w.execute(
                        &format!(
                            "UPDATE \"{table}\" SET \"{column}\" = ?1 WHERE \"{column}\" IS ?2"
                        ),
                        rusqlite::params![changed(&value), locator],
                    )
                })
                .or_else(|_| w.execute(&by_value, rusqlite::params![changed(&value), value]))
                .unwrap_or_else(|e| panic!("{table}.{column}: {e}"));
            assert!(n > 0, "{table}.{column}: nothing changed");
            drop(w);
            tried += 1;
            let o = mamori(&["verify", "--data", work.to_str().unwrap()]);
            let out = text(&o);
            if o.status.success() || !out.contains(table.as_str()) && !out.contains("ledger entry")
            {
                unnoticed.push(format!("{table}.{column}"));
            }
        }
    }
    assert!(
        unnoticed.is_empty(),
        "changed without verify naming it ({} of {tried}): {unnoticed:?}\n(tables with no row in the demo, not tried: {empty:?})",
        unnoticed.len()
    );
    assert!(tried > 120, "only {tried} columns tried");

    // A signed record moved to another patient's chart: the signed statement names the first
    // patient, and `evidence verify` says so.
    copy_db(&demo, &work);
    let w = rusqlite::Connection::open(work.join("mamori.db")).unwrap();
    let (rec, other): (i64, String) = w
        .query_row(
            "SELECT s.record_id, (SELECT id FROM patients WHERE id <> r.patient_id LIMIT 1)
             FROM signatures s JOIN records r ON r.id = s.record_id LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    w.execute(
        "UPDATE records SET patient_id = ?1 WHERE id = ?2",
        rusqlite::params![other, rec],
    )
    .unwrap();
    drop(w);
    let o = mamori(&[
        "evidence",
        "verify",
        "--data",
        work.to_str().unwrap(),
        "--record",
        &rec.to_string(),
    ]);
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(out.contains("記録の付け替え"), "{out}");

    // The checkpoints table is declared (its rows are signed notes), but a checkpoint taken out
    // of the evidence record that protects it is named against the sealing entry.
    copy_db(&demo, &work);
    let w = rusqlite::Connection::open(work.join("mamori.db")).unwrap();
    let triggers: Vec<String> = w
        .prepare(
            "SELECT name FROM sqlite_schema WHERE type = 'trigger' AND tbl_name = 'checkpoints'",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for t in triggers {
        w.execute_batch(&format!("DROP TRIGGER \"{t}\"")).unwrap();
    }
    let unsealed = w
        .execute(
            "UPDATE checkpoints SET evidence_family = NULL, evidence_position = NULL
             WHERE size = (SELECT min(size) FROM checkpoints WHERE evidence_family IS NOT NULL)",
            [],
        )
        .unwrap();
    assert_eq!(unsealed, 1);
    drop(w);
    let o = mamori(&["evidence", "verify", "--data", work.to_str().unwrap()]);
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(out.contains("付け替えまたは解除"), "{out}");
    assert!(
        empty.is_empty(),
        "tables with no row to change, so untested (fill them in exercise_through_*): {empty:?}"
    );
    eprintln!("{tried} columns changed one at a time, each named by verify");
}

/// An instance made by the release before state capture (commit e366439: `init`, a doctor, a
/// patient and a finalised record, through its API) is upgraded in one recorded step the first
/// time this release opens it; from then on an edit of any row is found.
#[test]
fn an_instance_from_the_previous_release_is_baselined_once_then_covered() {
    let (_dir, data) = unpack_fixture("instance-before-state-capture.tar.gz");
    let d = data.to_str().unwrap();
    // Before it is opened: verifies as before, and says the rows are not compared yet.
    let o = mamori(&["verify", "--data", d, "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let rep: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(rep["state_rows"], 0);
    assert!(rep["notes"].to_string().contains("基準"), "{rep}");
    let size_before = rep["ledger_entries"].as_u64().unwrap();

    // Opened once by this release (any command that opens the instance).
    let o = mamori(&["evidence", "seal", "--data", d]);
    assert!(o.status.success(), "{}", text(&o));
    let o = mamori(&["verify", "--data", d, "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let rep: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(rep["state_rows"].as_u64().unwrap() > 20, "{rep}");
    assert!(rep["ledger_entries"].as_u64().unwrap() > size_before);
    let conn = rusqlite::Connection::open(data.join("mamori.db")).unwrap();
    let baselines: i64 = conn
        .query_row(
            "SELECT count(*) FROM ledger WHERE action = 'state.baseline'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(baselines, 1, "one recorded step");
    // Opening again states nothing anew.
    let o = mamori(&["evidence", "seal", "--data", d]);
    assert!(o.status.success(), "{}", text(&o));
    let again: i64 = conn
        .query_row(
            "SELECT count(*) FROM ledger WHERE action = 'state.baseline'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(again, 1);
    // The mix-up JAHIS 09-001 §7.1.2 forbids: the record moved to another chart, and the
    // patient's name, edited behind mamori's back.
    conn.execute_batch(
        "CREATE TEMP TABLE twin AS SELECT * FROM patients WHERE id = 'P1';
         UPDATE twin SET id = 'P2';
         INSERT INTO patients SELECT * FROM twin;
         UPDATE records SET patient_id = 'P2';
         UPDATE patients SET birth_date = '1961-05-05' WHERE id = 'P1';",
    )
    .unwrap();
    drop(conn);
    let o = mamori(&["verify", "--data", d]);
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(out.contains("records [1] 列 patient_id"), "{out}");
    assert!(out.contains("patients [\"P1\"] 列 birth_date"), "{out}");
    assert!(
        out.contains("patients [\"P2\"]: 台帳が作成していない行"),
        "{out}"
    );
}

/// The same trial on PostgreSQL: the demo clinic moved there with `store migrate`, then each
/// column of every table in PostgreSQL's catalogue changed in turn by a superuser with the
/// triggers off (`session_replication_role = replica`: the state capture and the foreign keys
/// too), and `mamori verify` must fail naming the table — except what it declares.
#[test]
fn every_column_of_every_table_is_covered_or_declared_on_postgresql() {
    let cluster = mamori_testkit::postgres::Cluster::start();
    let dir = tempfile::tempdir().unwrap();
    let demo = filled_demo(dir.path());
    let db = "provable";
    let url = cluster.database(db);
    let o = mamori(&[
        "store",
        "migrate",
        "--data",
        demo.to_str().unwrap(),
        "--to",
        &url,
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let o = mamori(&["verify", "--data", demo.to_str().unwrap(), "--json"]);
    assert!(
        o.status.success(),
        "the moved demo must verify:\n{}",
        text(&o)
    );
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let declared = declared(&report);
    let is_declared = |t: &str, c: &str| {
        declared
            .iter()
            .any(|(dt, dc)| (dt == t || dt == "*") && dc.as_deref().is_none_or(|dc| dc == c))
    };
    // Each change is undone from a copy kept in a schema of its own (verify reads `public`).
    // CHECK constraints go (the attacker's first step; verify does not rely on them).
    cluster.psql(db, "CREATE SCHEMA trial");
    cluster.psql(
        db,
        "DO $$ DECLARE r record; BEGIN
           FOR r IN SELECT conrelid::regclass AS t, conname FROM pg_constraint
                    WHERE contype = 'c' AND connamespace = 'public'::regnamespace LOOP
             EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', r.t, r.conname);
           END LOOP;
         END $$",
    );
    let columns = cluster.psql(
        db,
        "SELECT c.table_name || ' ' || c.column_name || ' ' || c.data_type
         FROM information_schema.columns c JOIN information_schema.tables t
           ON t.table_schema = c.table_schema AND t.table_name = c.table_name
         WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'
         ORDER BY c.table_name, c.ordinal_position",
    );
    let (mut tried, mut unnoticed, mut empty) = (0, Vec::new(), Vec::<String>::new());
    for line in columns.lines() {
        let mut parts = line.splitn(3, ' ');
        let (table, column, ty) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        if is_declared(table, column) || empty.iter().any(|t| t == table) {
            continue;
        }
        let filter = if table == "meta" {
            " WHERE key = 'facility'"
        } else {
            ""
        };
        let rows: i64 = cluster
            .psql(db, &format!("SELECT count(*) FROM \"{table}\"{filter}"))
            .parse()
            .unwrap();
        if rows == 0 {
            empty.push(table.to_owned());
            continue;
        }
        let c = format!("\"{column}\"");
        let new_value = match ty {
            "bigint" | "integer" | "smallint" => format!("COALESCE({c}, 0) + 1000003"),
            "double precision" | "real" | "numeric" => format!("COALESCE({c}, 0) + 1.5"),
            "bytea" => format!("COALESCE({c}, '\\x'::bytea) || '\\x00'::bytea"),
            "boolean" => format!("NOT COALESCE({c}, false)"),
            _ => format!("COALESCE({c}, '') || 'x'"),
        };
        cluster.psql(
            db,
            &format!(
                "DROP TABLE IF EXISTS trial.saved; CREATE TABLE trial.saved AS SELECT * FROM \"{table}\";
                 SET session_replication_role = replica;
                 UPDATE \"{table}\" SET {c} = {new_value}
                 WHERE ctid = (SELECT ctid FROM \"{table}\"{filter} LIMIT 1)"
            ),
        );
        tried += 1;
        let o = mamori(&["verify", "--data", demo.to_str().unwrap()]);
        let out = text(&o);
        if o.status.success() || !out.contains(table) && !out.contains("ledger entry") {
            unnoticed.push(format!("{table}.{column}"));
        }
        cluster.psql(
            db,
            &format!(
                "SET session_replication_role = replica; DELETE FROM \"{table}\";
                 INSERT INTO \"{table}\" OVERRIDING SYSTEM VALUE SELECT * FROM trial.saved"
            ),
        );
    }
    assert!(
        unnoticed.is_empty(),
        "changed on PostgreSQL without verify naming it ({} of {tried}): {unnoticed:?}\n(tables with no row, not tried: {empty:?})",
        unnoticed.len()
    );
    assert!(tried > 120, "only {tried} columns tried");
    assert!(
        empty.is_empty(),
        "tables with no row to change, so untested: {empty:?}"
    );
    // Undone: the instance verifies again.
    let o = mamori(&["verify", "--data", demo.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    eprintln!("{tried} columns changed one at a time on PostgreSQL, each named by verify");
}
