//! Every API route × every default role: allowed (2xx) or refused (403 forbidden), as the
//! default role configuration says. Also: no route answers without authentication.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine;
use common::*;
use serde_json::json;

const MR_FINALISERS: &[&str] = &["doctor", "dentist"];

/// The configured expectation: which default roles may call each operation.
fn allowed(op: &str) -> Vec<&'static str> {
    match op {
        "me"
        | "logout"
        | "listRecordKinds"
        | "pendingApprovals"
        | "ledgerCheckpoint"
        | "secondFactorStatus"
        | "beginTotp"
        | "confirmTotp"
        | "completeSecondFactor"
        | "removeTotp"
        | "clockStatus"
        | "passkeyRegistrationOptions"
        | "registerPasskey"
        | "listPasskeys"
        | "removePasskey"
        | "passkeyAssertionOptions"
        | "completePasskey" => ROLES.to_vec(),
        "createUser"
        | "listUsers"
        | "unusedUsers"
        | "accountHygiene"
        | "disableUser"
        | "enableUser"
        | "unlockUser"
        | "resetPassword"
        | "setRole"
        | "issueToken"
        | "revokeToken"
        | "registerOAuthClient"
        | "listOAuthClients"
        | "revokeOAuthClient"
        | "listRoles"
        | "saveRole"
        | "listRoleProposals"
        | "approveRoleProposal"
        | "rejectRoleProposal"
        | "saveRecordKind"
        | "resetSecondFactor"
        | "setRoleTwoFactor"
        | "setRoleClientCert"
        | "maintenanceWindows"
        | "requestMaintenance"
        | "approveMaintenance"
        | "rejectMaintenance"
        | "maintenanceReport"
        | "acknowledgeMaintenance"
        | "listCertificates"
        | "issueCertificate"
        | "revokeCertificate"
        | "runBackup"
        | "runRestoreDrill"
        | "recordOfflineCopy"
        | "eraseBackupTarget"
        | "metrics" => vec!["sysadmin"],
        "backupStatus" | "evidenceStatus" => vec!["sysadmin", "auditor"],
        "listCatalogues"
        | "listAssessments"
        | "createAssessment"
        | "getAssessment"
        | "assessmentReportPdf"
        | "answerItem"
        | "addItemEvidence"
        | "closeAssessment"
        | "listAssets"
        | "saveAsset"
        | "importAssets"
        | "exportAssets"
        | "listRisks"
        | "saveRisk"
        | "listContacts"
        | "saveContacts"
        | "listRegister"
        | "saveRegisterEntry"
        | "complianceProfile"
        | "saveComplianceProfile"
        | "facilityDocument" => vec!["sysadmin", "auditor"],
        "sealEvidence" => vec!["sysadmin"],
        "searchTransactions"
        | "registerTransaction"
        | "bookkeepingSettings"
        | "saveBookkeepingSettings"
        | "checkRegistrationNumber"
        | "verifyTransactionStamps"
        | "exportTransactions"
        | "getTransaction"
        | "transactionFile"
        | "transactionTimestamp"
        | "correctTransaction"
        | "cancelTransaction"
        | "importInvoiceRegistry" => vec!["accountant"],
        "bookkeepingDocument" => vec!["sysadmin", "auditor", "accountant"],
        "recordEvidence" => READERS.to_vec(),
        // Those who may print and export 紹介状 (and read them).
        "recordPdf" => vec!["doctor", "dentist", "clerk"],
        // The author of a finalised version, in their window: those who finalise charts.
        "signAttachmentPdf" => MR_FINALISERS.to_vec(),
        "exportRecordBundle"
        | "exportPatientBundle"
        | "exportRecordBundleEncrypted"
        | "exportPatientBundleEncrypted"
        | "beginExternalSignature"
        | "completeExternalSignature" => MR_FINALISERS.to_vec(),
        "signingStatus" | "setSigningPin" | "openSigningWindow" | "closeSigningWindow"
        | "awaitingSignature" | "signPending" => vec![
            "doctor",
            "dentist",
            "pharmacist",
            "nurse",
            "radiographer",
            "lab_technician",
        ],
        "createPatient" => vec!["doctor", "dentist", "clerk"],
        "searchPatients" | "getPatient" | "patientRecords" | "getRecord" | "recordVersions"
        | "diffVersions" | "getAttachment" => READERS.to_vec(),
        "createRecord" | "updateDraft" | "submitRecord" | "amendRecord" => MR_WRITERS.to_vec(),
        "finalizeRecord" | "approveRecord" | "rejectRecord" | "markEnteredInError"
        | "printRecord" => MR_FINALISERS.to_vec(),
        "auditEvents"
        | "patientAccessCounts"
        | "ledgerProof"
        | "emergencyQueue"
        | "reviewEmergency" => vec!["auditor"],
        "startEmergency" | "endEmergency" => vec![
            "doctor",
            "dentist",
            "pharmacist",
            "nurse",
            "radiographer",
            "lab_technician",
        ],
        other => panic!("no expectation for {other}"),
    }
}

/// An outside CA (standing in for HPKI) with one signer's certificate and key.
struct OutsideCa {
    root_pem: String,
    cert_pem: String,
    key: rcgen::KeyPair,
}

impl OutsideCa {
    fn new() -> Self {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
        };
        let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name
            .push(DnType::CommonName, "Matrix HPKI Root");
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        let ca = p.self_signed(&ca_key).unwrap();
        let issuer = Issuer::from_ca_cert_der(ca.der(), ca_key).unwrap();
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name
            .push(DnType::CommonName, "Matrix Signer");
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::ContentCommitment,
        ];
        let cert = p.signed_by(&key, &issuer).unwrap();
        Self {
            root_pem: ca.pem(),
            cert_pem: cert.pem(),
            key,
        }
    }

    fn sign(&self, msg: &[u8]) -> Vec<u8> {
        use rcgen::SigningKey;
        self.key.sign(msg).unwrap()
    }
}

fn pdf_b64() -> String {
    base64::engine::general_purpose::STANDARD.encode(b"%PDF-1.4\n% matrix\n")
}

/// Waits until no backup or drill runs (each refuses to start beside another).
fn backups_idle(s: &TestServer, admin: &str) -> serde_json::Value {
    for _ in 0..300 {
        let st = s.call("GET", "/backup/status", Some(admin), None).body;
        if st["running"] == false {
            return st;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("the backup did not finish");
}

#[test]
fn every_route_for_every_role() {
    let backups = tempfile::tempdir().unwrap();
    let key = backups.path().join("key.txt");
    std::fs::write(&key, mamori_service::backup::KeyFile::generate().to_text()).unwrap();
    let target = backups.path().join("nas");
    // External signatures: each role's user signs its own record with a key outside mamori,
    // certified by an outside CA (as HPKI would be).
    let outside = OutsideCa::new();
    let trust = backups.path().join("hpki-roots.pem");
    std::fs::write(&trust, &outside.root_pem).unwrap();
    let s = start(|c| {
        c.backup.targets = target.display().to_string();
        c.backup.key_file = key.display().to_string();
        c.evidence.dev_tsa = true;
        c.evidence.signer_trust = trust.display().to_string();
        c.evidence.external_signers = ROLES
            .iter()
            .enumerate()
            .map(|(i, r)| format!("u{i}.{r}"))
            .collect::<Vec<_>>()
            .join(",");
    });
    let admin = s.admin_token();
    // One finished backup, so that an offline copy of it can be recorded.
    let r = s.call("POST", "/backup/run", Some(&admin), None);
    assert_eq!(r.status, 202, "{}", r.body);
    let st = backups_idle(&s, &admin);
    assert!(st["targets"][0]["last_ok_at"].is_i64(), "{st}");
    let (dr, dr_tok) = s.user(&admin, "dr.matrix", "doctor");
    let (_, clerk_tok) = s.user(&admin, "clerk.matrix", "clerk");
    let r = s.call(
        "POST",
        "/patients",
        Some(&clerk_tok),
        Some(json!({ "id": "P1", "name_kanji": "試験 太郎", "name_kana": "シケン タロウ", "birth_date": "1970-01-01", "sex": "male" })),
    );
    assert_eq!(r.status, 201, "{:?}", r.body);

    // A finalised, amended record with an attachment, for the read-only operations.
    let mut body = record_body("P1", "medical_record", "共有記録", None);
    body["attachments"] = json!([{ "name": "a.pdf", "content_base64": pdf_b64() }]);
    let shared = s.call("POST", "/records", Some(&dr_tok), Some(body)).body["record_id"]
        .as_i64()
        .unwrap();
    assert_eq!(
        s.call(
            "POST",
            &format!("/records/{shared}/finalize"),
            Some(&dr_tok),
            None
        )
        .status,
        200
    );
    let v = s.call("GET", &format!("/records/{shared}"), Some(&dr_tok), None);
    let att = v.body["versions"][0]["content"]["attachments"][0]["sha256"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = s.call(
        "POST",
        &format!("/records/{shared}/amend"),
        Some(&dr_tok),
        Some(json!({ "title": "共有記録", "body": "訂正", "reason": "誤字", "keep_attachments": [att] })),
    );
    assert_eq!(r.status, 201, "{:?}", r.body);

    // A referral its author signed in their window: it has a signed PDF (PAdES).
    let pin = json!({ "pin": "matrix 医師 PIN 2468" });
    let r = s.call(
        "POST",
        "/auth/signing-pin",
        Some(&dr_tok),
        Some(json!({ "pin": "matrix 医師 PIN 2468", "password": PW })),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = s.call("POST", "/auth/signing-window", Some(&dr_tok), Some(pin));
    assert_eq!(r.status, 200, "{}", r.body);
    let referral = s
        .call(
            "POST",
            "/records",
            Some(&dr_tok),
            Some(record_body("P1", "referral", "紹介状", None)),
        )
        .body["record_id"]
        .as_i64()
        .unwrap();
    let r = s.call(
        "POST",
        &format!("/records/{referral}/finalize"),
        Some(&dr_tok),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = s.call(
        "GET",
        &format!("/records/{referral}/versions/1/pdf"),
        Some(&dr_tok),
        None,
    );
    assert_eq!(
        r.status, 200,
        "the author's referral has its PDF: {}",
        r.body
    );
    let r = s.call("POST", "/auth/signing-window/close", Some(&dr_tok), None);
    assert_eq!(r.status, 200, "{}", r.body);

    let finalised = |s: &TestServer, title: &str| -> i64 {
        let id = s
            .call(
                "POST",
                "/records",
                Some(&dr_tok),
                Some(record_body("P1", "medical_record", title, None)),
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
        id
    };
    let proxy_pending = |s: &TestServer, author: i64| -> i64 {
        let mut b = record_body("P1", "medical_record", "代行入力", Some(author));
        b["submit"] = json!(true);
        let r = s.call("POST", "/records", Some(&clerk_tok), Some(b));
        assert_eq!(r.status, 201, "{:?}", r.body);
        r.body["record_id"].as_i64().unwrap()
    };

    // A maintenance engineer, and a short window that has ended by the time anyone asks to
    // acknowledge its report.
    let (engineer, _) = s.user(&admin, "se.matrix", "maintenance");
    let ended = s.open_maintenance_window(&admin, engineer, 1500);
    std::thread::sleep(std::time::Duration::from_millis(1600));
    let window_request = |s: &TestServer| -> i64 {
        let now = s.svc.now();
        let r = s.call(
            "POST",
            "/maintenance",
            Some(&admin),
            Some(json!({ "account_id": engineer, "starts_at": now + 3_600_000, "ends_at": now + 7_200_000, "purpose": "点検" })),
        );
        assert_eq!(r.status, 201, "{:?}", r.body);
        r.body["id"].as_i64().unwrap()
    };

    let (_, keiri_tok) = s.user(&admin, "keiri.matrix", "accountant");
    let today = mamori_service::ledger::audit::jst_date(s.svc.now());
    let mut failures = Vec::new();
    let mut covered: BTreeSet<&str> = BTreeSet::new();
    for (i, role) in ROLES.iter().enumerate() {
        let (me_id, tok) = s.user(&admin, &format!("u{i}.{role}"), role);
        let _ = me_id;
        // Targets, made by someone entitled to make them.
        let target_user = s.user(&admin, &format!("t{i}.target"), "nurse").0;
        let target_service = s.service_account(&admin, &format!("s{i}.svc"), "clerk");
        let revoke_svc = s.service_account(&admin, &format!("r{i}.svc"), "clerk");
        let token_id = s
            .call(
                "POST",
                &format!("/users/{revoke_svc}/tokens"),
                Some(&admin),
                Some(json!({ "name": "x" })),
            )
            .body["token_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let jwk = mamori_fhir::smart::ClientKey::generate().0.public_jwk();
        let oauth_client = |s: &TestServer| {
            s.call(
                "POST",
                &format!("/users/{revoke_svc}/oauth-clients"),
                Some(&admin),
                Some(json!({ "name": "EHR", "jwk": jwk, "scopes": ["system/Patient.read"] })),
            )
            .body["client_id"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        let client_id = oauth_client(&s);
        let amend_target = finalised(&s, "修正対象");
        let error_target = finalised(&s, "誤記入対象");
        let can_finalise = MR_FINALISERS.contains(role);
        let finalize_target = if can_finalise {
            s.call(
                "POST",
                "/records",
                Some(&tok),
                Some(record_body("P1", "medical_record", "自分の下書き", None)),
            )
            .body["record_id"]
                .as_i64()
                .unwrap()
        } else {
            s.call(
                "POST",
                "/records",
                Some(&dr_tok),
                Some(record_body("P1", "medical_record", "医師の下書き", None)),
            )
            .body["record_id"]
                .as_i64()
                .unwrap()
        };
        let approver = if can_finalise { me_id } else { dr };
        let (approve_target, reject_target) =
            (proxy_pending(&s, approver), proxy_pending(&s, approver));
        let foreign_draft = s
            .call(
                "POST",
                "/records",
                Some(&clerk_tok),
                Some(record_body(
                    "P1",
                    "medical_record",
                    "他人の下書き",
                    Some(dr),
                )),
            )
            .body["record_id"]
            .as_i64()
            .unwrap();

        // Two changes of the administrator's own role, waiting for a second administrator:
        // one to approve, one to reject.
        let proposal = |s: &TestServer| -> i64 {
            let roles = s.call("GET", "/roles", Some(&admin), None).body;
            let sysadmin = roles
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["code"] == "sysadmin")
                .unwrap()
                .clone();
            let r = s.call(
                "POST",
                "/roles",
                Some(&admin),
                Some(json!({ "code": "sysadmin", "name_ja": sysadmin["name_ja"], "grants": sysadmin["grants"] })),
            );
            assert_eq!(r.status, 202, "{:?}", r.body);
            r.body["id"].as_i64().unwrap()
        };
        let (approve_proposal, reject_proposal) = (proposal(&s), proposal(&s));

        let mut own_draft: Option<i64> = None;
        let mut end_elsewhere: Option<u16> = None;
        let me_login = format!("u{i}.{role}");
        let mut since = s.svc.now();
        let mut check = |op: &'static str, r: Resp| {
            covered.insert(op);
            let want = allowed(op).contains(role);
            let ok = if want {
                (200..300).contains(&r.status)
            } else {
                r.status == 403 && r.code() == "forbidden"
            };
            if !ok {
                failures.push(format!(
                    "{role} {op}: expected {}, got {} {}",
                    if want { "2xx" } else { "403" },
                    r.status,
                    r.body
                ));
            }
            // Each refusal is in the ledger, as a denied event of the person refused.
            if !want && r.status == 403 {
                let ledgered = s.recent_events(40).iter().any(|e| {
                    e["outcome"] == "denied"
                        && e["actor"]["login"] == me_login.as_str()
                        && e["ts"].as_i64().unwrap_or(0) >= since
                });
                if !ledgered {
                    failures.push(format!("{role} {op}: refused, but not in the ledger"));
                }
            }
            since = s.svc.now();
        };
        let t = Some(tok.as_str());
        check("me", s.call("GET", "/auth/me", t, None));
        check("listRecordKinds", s.call("GET", "/record-kinds", t, None));
        check("pendingApprovals", s.call("GET", "/approvals", t, None));
        check(
            "ledgerCheckpoint",
            s.call("GET", "/ledger/checkpoint", t, None),
        );
        check(
            "createUser",
            s.call("POST", "/users", t, Some(json!({ "login": format!("new{i}"), "display_name": "新人", "role": "nurse", "password": "temporary pass 1234" }))),
        );
        check("listUsers", s.call("GET", "/users", t, None));
        check(
            "unusedUsers",
            s.call("GET", "/users/unused?days=30", t, None),
        );
        check(
            "accountHygiene",
            s.call("GET", "/users/hygiene?days=30", t, None),
        );
        check(
            "disableUser",
            s.call("POST", &format!("/users/{target_user}/disable"), t, None),
        );
        check(
            "enableUser",
            s.call("POST", &format!("/users/{target_user}/enable"), t, None),
        );
        check(
            "unlockUser",
            s.call("POST", &format!("/users/{target_user}/unlock"), t, None),
        );
        check(
            "resetPassword",
            s.call(
                "POST",
                &format!("/users/{target_user}/reset-password"),
                t,
                Some(json!({ "temporary_password": "another temp 5678", "identity_check": "職員証を目視確認" })),
            ),
        );
        check(
            "setRole",
            s.call(
                "POST",
                &format!("/users/{target_user}/role"),
                t,
                Some(json!({ "role": "clerk" })),
            ),
        );
        check(
            "issueToken",
            s.call(
                "POST",
                &format!("/users/{target_service}/tokens"),
                t,
                Some(json!({ "name": "EHR", "days": 30 })),
            ),
        );
        check(
            "revokeToken",
            s.call(
                "POST",
                "/tokens/revoke",
                t,
                Some(json!({ "token_id": token_id })),
            ),
        );
        check(
            "registerOAuthClient",
            s.call(
                "POST",
                &format!("/users/{target_service}/oauth-clients"),
                t,
                Some(json!({ "name": "EHR", "jwk": jwk, "scopes": ["system/DocumentReference.write"] })),
            ),
        );
        check("listOAuthClients", s.call("GET", "/oauth-clients", t, None));
        check(
            "revokeOAuthClient",
            s.call(
                "POST",
                "/oauth-clients/revoke",
                t,
                Some(json!({ "client_id": client_id })),
            ),
        );
        check("listRoles", s.call("GET", "/roles", t, None));
        check(
            "saveRole",
            s.call("POST", "/roles", t, Some(json!({ "code": format!("custom{i}"), "name_ja": "独自職種", "grants": ["read:nursing"] }))),
        );
        check(
            "listRoleProposals",
            s.call("GET", "/roles/proposals", t, None),
        );
        check(
            "approveRoleProposal",
            s.call(
                "POST",
                &format!("/roles/proposals/{approve_proposal}/approve"),
                t,
                None,
            ),
        );
        check(
            "rejectRoleProposal",
            s.call(
                "POST",
                &format!("/roles/proposals/{reject_proposal}/reject"),
                t,
                None,
            ),
        );
        check(
            "saveRecordKind",
            s.call("POST", "/record-kinds", t, Some(json!({ "code": "memo", "name_ja": "メモ", "name_en": "Memo", "retention_years": 5 }))),
        );
        check(
            "createPatient",
            s.call(
                "POST",
                "/patients",
                t,
                Some(json!({ "id": format!("Q{i}"), "name_kanji": "新患 花子", "name_kana": "シンカン ハナコ", "birth_date": "1990-05-05", "sex": "female" })),
            ),
        );
        check("searchPatients", s.call("GET", "/patients?q=P1", t, None));
        check("getPatient", s.call("GET", "/patients/P1", t, None));
        check(
            "patientRecords",
            s.call("GET", "/patients/P1/records", t, None),
        );
        let r = s.call(
            "POST",
            "/records",
            t,
            Some(record_body("P1", "medical_record", "代行の記録", Some(dr))),
        );
        if r.status == 201 {
            own_draft = r.body["record_id"].as_i64();
        }
        check("createRecord", r);
        let draft = own_draft.unwrap_or(foreign_draft);
        check(
            "updateDraft",
            s.call(
                "PUT",
                &format!("/records/{draft}/draft"),
                t,
                Some(json!({ "title": "更新", "body": "本文2" })),
            ),
        );
        check(
            "submitRecord",
            s.call("POST", &format!("/records/{draft}/submit"), t, None),
        );
        check(
            "getRecord",
            s.call("GET", &format!("/records/{shared}"), t, None),
        );
        check(
            "recordVersions",
            s.call("GET", &format!("/records/{shared}/versions"), t, None),
        );
        check(
            "diffVersions",
            s.call(
                "GET",
                &format!("/records/{shared}/diff?from=1&to=2"),
                t,
                None,
            ),
        );
        check(
            "getAttachment",
            s.call(
                "GET",
                &format!("/records/{shared}/attachments/{att}"),
                t,
                None,
            ),
        );
        check(
            "printRecord",
            s.call("GET", &format!("/records/{shared}/print"), t, None),
        );
        check(
            "recordPdf",
            s.call(
                "GET",
                &format!("/records/{referral}/versions/1/pdf"),
                t,
                None,
            ),
        );
        check(
            "recordEvidence",
            s.call("GET", &format!("/records/{shared}/evidence"), t, None),
        );
        check(
            "exportRecordBundle",
            s.call("GET", &format!("/records/{shared}/bundle"), t, None),
        );
        check(
            "exportPatientBundle",
            s.call("GET", "/patients/P1/bundle", t, None),
        );
        let take_out = json!({ "password": "ABCD-EFGH-JKLM-NPQR", "purpose": "紹介先へ", "approved_by": "院長" });
        check(
            "exportRecordBundleEncrypted",
            s.call(
                "POST",
                &format!("/records/{shared}/bundle/encrypted"),
                t,
                Some(take_out.clone()),
            ),
        );
        check(
            "exportPatientBundleEncrypted",
            s.call("POST", "/patients/P1/bundle/encrypted", t, Some(take_out)),
        );
        // A record of one's own, finalised (and so waiting for one's external signature);
        // roles that cannot write one try someone else's.
        let r = s.call(
            "POST",
            "/records",
            t,
            Some(record_body("P1", "medical_record", "外部署名の記録", None)),
        );
        let to_sign = match r.body["record_id"].as_i64() {
            Some(id)
                if s.call("POST", &format!("/records/{id}/finalize"), t, None)
                    .status
                    == 200 =>
            {
                id
            }
            _ => shared,
        };
        let began = s.call(
            "POST",
            &format!("/records/{to_sign}/versions/1/signing"),
            t,
            Some(json!({ "certificate_pem": outside.cert_pem })),
        );
        let tbs = began.body["to_be_signed"]
            .as_str()
            .map(|b| base64::engine::general_purpose::STANDARD.decode(b).unwrap());
        check("beginExternalSignature", began);
        let signature = base64::engine::general_purpose::STANDARD
            .encode(outside.sign(&tbs.unwrap_or_default()));
        check(
            "completeExternalSignature",
            s.call(
                "POST",
                &format!("/records/{to_sign}/versions/1/signature"),
                t,
                Some(json!({ "signature_base64": signature })),
            ),
        );
        // Signing keys under sole control: a key in a token of one's own under a PIN, the
        // window opened with it, what awaits one's signature, signing it, closing.
        check("signingStatus", s.call("GET", "/auth/signing", t, None));
        let pin = json!({ "pin": "matrix PIN 13579" });
        check(
            "setSigningPin",
            s.call(
                "POST",
                "/auth/signing-pin",
                t,
                Some(json!({ "pin": "matrix PIN 13579", "password": PW })),
            ),
        );
        check(
            "openSigningWindow",
            s.call("POST", "/auth/signing-window", t, Some(pin)),
        );
        check(
            "awaitingSignature",
            s.call("GET", "/records/sign-pending", t, None),
        );
        check(
            "signPending",
            s.call("POST", "/records/sign-pending", t, None),
        );
        // An uploaded PDF of one's own finalised chart, signed in the open window; roles that
        // cannot finalise one try the shared chart, which is not theirs.
        let mut body = record_body("P1", "medical_record", "添付に署名する記録", None);
        body["attachments"] = json!([{ "name": "report.pdf", "content_base64": base64::engine::general_purpose::STANDARD.encode(mamori_testkit::pdf::one_page("matrix")) }]);
        let r = s.call("POST", "/records", t, Some(body));
        let (with_pdf, pdf_sha) = match r.body["record_id"].as_i64() {
            Some(id)
                if s.call("POST", &format!("/records/{id}/finalize"), t, None)
                    .status
                    == 200 =>
            {
                let v = s.call("GET", &format!("/records/{id}"), t, None);
                let sha = v.body["versions"][0]["content"]["attachments"][0]["sha256"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                (id, sha)
            }
            _ => (shared, att.clone()),
        };
        check(
            "signAttachmentPdf",
            s.call(
                "POST",
                &format!("/records/{with_pdf}/versions/1/attachments/{pdf_sha}/sign"),
                t,
                None,
            ),
        );
        check(
            "closeSigningWindow",
            s.call("POST", "/auth/signing-window/close", t, None),
        );
        check("evidenceStatus", s.call("GET", "/evidence/status", t, None));
        check("sealEvidence", s.call("POST", "/evidence/seal", t, None));
        check(
            "finalizeRecord",
            s.call(
                "POST",
                &format!("/records/{finalize_target}/finalize"),
                t,
                None,
            ),
        );
        check(
            "approveRecord",
            s.call(
                "POST",
                &format!("/records/{approve_target}/approve"),
                t,
                None,
            ),
        );
        check(
            "rejectRecord",
            s.call(
                "POST",
                &format!("/records/{reject_target}/reject"),
                t,
                Some(json!({ "reason": "追記を" })),
            ),
        );
        check(
            "amendRecord",
            s.call(
                "POST",
                &format!("/records/{amend_target}/amend"),
                t,
                Some(json!({ "title": "修正", "body": "x", "reason": "訂正", "author_id": dr })),
            ),
        );
        check(
            "markEnteredInError",
            s.call(
                "POST",
                &format!("/records/{error_target}/entered-in-error"),
                t,
                Some(json!({ "reason": "患者違い" })),
            ),
        );
        check(
            "auditEvents",
            s.call("GET", "/audit/events?patient=P1", t, None),
        );
        check(
            "patientAccessCounts",
            s.call("GET", "/audit/patient-access-counts", t, None),
        );
        check("ledgerProof", s.call("GET", "/ledger/proof/0", t, None));
        // The self-assessment: an open assessment made by the administrator for each role.
        let aid = s
            .call(
                "POST",
                "/compliance/assessments",
                Some(&admin),
                Some(json!({ "catalogue": "mhlw-checklist-medical-r7" })),
            )
            .body["id"]
            .as_i64()
            .unwrap();
        check(
            "listCatalogues",
            s.call("GET", "/compliance/catalogues", t, None),
        );
        check(
            "listAssessments",
            s.call("GET", "/compliance/assessments", t, None),
        );
        check(
            "createAssessment",
            s.call(
                "POST",
                "/compliance/assessments",
                t,
                Some(json!({ "catalogue": "mhlw-guideline-6.0", "assessed_on": "2026-04-01" })),
            ),
        );
        check(
            "getAssessment",
            s.call("GET", &format!("/compliance/assessments/{aid}"), t, None),
        );
        check(
            "assessmentReportPdf",
            s.call(
                "GET",
                &format!("/compliance/assessments/{aid}/report.pdf"),
                t,
                None,
            ),
        );
        check(
            "answerItem",
            s.call(
                "POST",
                &format!("/compliance/assessments/{aid}/items/R7-M-2-08/answer"),
                t,
                Some(json!({ "answer": "yes", "note": "規程で禁止" })),
            ),
        );
        check(
            "addItemEvidence",
            s.call(
                "POST",
                &format!("/compliance/assessments/{aid}/items/R7-M-2-08/evidence"),
                t,
                Some(json!({ "name": "規程", "url": "https://intra.example/rules" })),
            ),
        );
        check(
            "closeAssessment",
            s.call(
                "POST",
                &format!("/compliance/assessments/{aid}/close"),
                t,
                None,
            ),
        );
        check("listAssets", s.call("GET", "/compliance/assets", t, None));
        check(
            "saveAsset",
            s.call(
                "POST",
                "/compliance/assets",
                t,
                Some(json!({ "kind": "pc", "name": format!("PC-{i}"), "location": "受付", "owner": "事務", "os": "Windows 11", "patched_on": null, "remote_maintenance": "no", "maintainer": "", "vendor": "", "mds_sds": "na", "connection_restriction": "", "note": "" })),
            ),
        );
        check(
            "importAssets",
            s.raw(
                "POST",
                "/compliance/assets/import",
                t,
                Some(&format!("kind,name\nserver,SV-{i}\n")),
                "text/csv",
            ),
        );
        check(
            "exportAssets",
            s.call("GET", "/compliance/assets.csv", t, None),
        );
        check("listRisks", s.call("GET", "/compliance/risks", t, None));
        check(
            "saveRisk",
            s.call(
                "POST",
                "/compliance/risks",
                t,
                Some(json!({ "asset": "予約システム", "threat": "停電", "likelihood": 2, "impact": 3, "control": "UPS", "feature": "", "residual": 1, "owner": "" })),
            ),
        );
        check(
            "listContacts",
            s.call("GET", "/compliance/contacts", t, None),
        );
        check(
            "saveContacts",
            s.call(
                "POST",
                "/compliance/contacts",
                t,
                Some(json!([{ "category": "police", "name": "所轄署", "phone": "110" }])),
            ),
        );
        check(
            "listRegister",
            s.call("GET", "/compliance/registers/training", t, None),
        );
        check(
            "saveRegisterEntry",
            s.call(
                "POST",
                "/compliance/registers/disposal",
                t,
                Some(json!({ "fields": { "disposed_on": "2026-11-30", "what": format!("旧PC-{i} のディスク"), "personal": "yes", "method": "physical", "performed_by": "業者", "confirmed_by": "事務長" } })),
            ),
        );
        check(
            "complianceProfile",
            s.call("GET", "/compliance/profile", t, None),
        );
        check(
            "saveComplianceProfile",
            s.call(
                "POST",
                "/compliance/profile",
                t,
                Some(json!({ "security_officer": "事務長", "director": "院長", "rules_adopted_on": "", "bcp_adopted_on": "" })),
            ),
        );
        check(
            "facilityDocument",
            s.call("GET", "/compliance/documents/rules", t, None),
        );
        // Transaction documents (電子帳簿保存法), made by an accounting clerk for each role.
        let tx_doc = |tag: String| -> i64 {
            let file =
                base64::engine::general_purpose::STANDARD.encode(format!("%PDF-1.4\n% {tag}\n"));
            let r = s.call(
                "POST",
                "/transactions",
                Some(&keiri_tok),
                Some(
                    json!({ "doc_type": "invoice", "transaction_date": today, "amount": 1100,
                    "counterparty": "医療材料株式会社", "received_on": today,
                    "file": { "name": "請求書.pdf", "content_base64": file } }),
                ),
            );
            assert_eq!(r.status, 201, "{}", r.body);
            r.body["id"].as_i64().unwrap()
        };
        let (tx_a, tx_b) = (tx_doc(format!("a{i}")), tx_doc(format!("b{i}")));
        check(
            "searchTransactions",
            s.call(
                "GET",
                "/transactions?counterparty=%E5%8C%BB%E7%99%82&min=100",
                t,
                None,
            ),
        );
        check(
            "registerTransaction",
            s.call(
                "POST",
                "/transactions",
                t,
                Some(json!({ "doc_type": "receipt", "transaction_date": today, "amount": 330,
                    "counterparty": "文具店",
                    "file": { "name": "領収書.pdf", "content_base64": base64::engine::general_purpose::STANDARD.encode(format!("%PDF-1.4\n% r{i}\n")) } })),
            ),
        );
        check(
            "getTransaction",
            s.call("GET", &format!("/transactions/{tx_a}"), t, None),
        );
        check(
            "transactionFile",
            s.call("GET", &format!("/transactions/{tx_a}/file"), t, None),
        );
        check(
            "transactionTimestamp",
            s.call("GET", &format!("/transactions/{tx_a}/timestamp"), t, None),
        );
        check(
            "correctTransaction",
            s.call(
                "POST",
                &format!("/transactions/{tx_a}/corrections"),
                t,
                Some(json!({ "base_version": 1, "reason": "金額の誤り", "doc_type": "invoice",
                    "transaction_date": today, "amount": 1210, "counterparty": "医療材料株式会社" })),
            ),
        );
        check(
            "cancelTransaction",
            s.call(
                "POST",
                &format!("/transactions/{tx_b}/cancel"),
                t,
                Some(json!({ "base_version": 1, "reason": "二重登録" })),
            ),
        );
        check(
            "verifyTransactionStamps",
            s.call(
                "POST",
                "/transactions/verify-stamps",
                t,
                Some(json!({ "from": today, "to": today })),
            ),
        );
        check(
            "exportTransactions",
            s.call(
                "GET",
                &format!("/transactions/export?from={today}&to={today}"),
                t,
                None,
            ),
        );
        check(
            "bookkeepingSettings",
            s.call("GET", "/transactions/settings", t, None),
        );
        check(
            "saveBookkeepingSettings",
            s.call(
                "POST",
                "/transactions/settings",
                t,
                Some(
                    json!({ "legal_form": "medical_corporation", "fiscal_year_end_month": 3,
                    "filing_extension": false, "loss_years": [], "processing_months": 0 }),
                ),
            ),
        );
        {
            let mut cols = vec![String::new(); 30];
            cols[1] = "T1180301018771".into();
            cols[2] = "01".into();
            cols[6] = "1".into();
            cols[7] = "2023-10-01".into();
            cols[18] = format!("取引先{i}");
            let csv = base64::engine::general_purpose::STANDARD.encode(cols.join(","));
            check(
                "importInvoiceRegistry",
                s.call(
                    "POST",
                    "/transactions/registry",
                    t,
                    Some(json!({ "name": "sabun.csv", "content_base64": csv })),
                ),
            );
        }
        check(
            "bookkeepingDocument",
            s.call("GET", "/transactions/documents/rules", t, None),
        );
        check(
            "checkRegistrationNumber",
            s.call(
                "GET",
                "/transactions/check-number?number=T1180301018771",
                t,
                None,
            ),
        );
        check("backupStatus", s.call("GET", "/backup/status", t, None));
        check("metrics", s.call("GET", "/metrics", t, None));
        backups_idle(&s, &admin);
        check("runBackup", s.call("POST", "/backup/run", t, None));
        backups_idle(&s, &admin);
        check("runRestoreDrill", s.call("POST", "/backup/drill", t, None));
        backups_idle(&s, &admin);
        check(
            "recordOfflineCopy",
            s.call(
                "POST",
                "/backup/offline",
                t,
                Some(json!({ "target": target.display().to_string(), "medium": "USB-1" })),
            ),
        );
        // A copy of the repository, as a retired medium would hold, for each role to erase.
        let retired = backups.path().join(format!("retired-{i}"));
        let copied = std::process::Command::new("cp")
            .arg("-r")
            .arg(&target)
            .arg(&retired)
            .status()
            .unwrap();
        assert!(copied.success());
        let spec = retired.display().to_string();
        check(
            "eraseBackupTarget",
            s.call(
                "POST",
                "/backup/erase",
                t,
                Some(json!({ "target": spec, "confirm": spec })),
            ),
        );
        let (to_approve, to_reject) = (window_request(&s), window_request(&s));
        check("maintenanceWindows", s.call("GET", "/maintenance", t, None));
        check(
            "requestMaintenance",
            s.call(
                "POST",
                "/maintenance",
                t,
                Some(json!({ "account_id": engineer, "starts_at": "2099-01-01T09:00", "ends_at": "2099-01-01T12:00", "purpose": "更新作業", "personal_info": true })),
            ),
        );
        check(
            "approveMaintenance",
            s.call(
                "POST",
                &format!("/maintenance/{to_approve}/approve"),
                t,
                None,
            ),
        );
        check(
            "rejectMaintenance",
            s.call("POST", &format!("/maintenance/{to_reject}/reject"), t, None),
        );
        check(
            "maintenanceReport",
            s.call("GET", &format!("/maintenance/{ended}/report"), t, None),
        );
        check(
            "acknowledgeMaintenance",
            s.call(
                "POST",
                &format!("/maintenance/{ended}/acknowledge"),
                t,
                Some(json!({ "comment": "確認した" })),
            ),
        );
        // Break-glass: those allowed open and end their own; others are refused (and have
        // none to end: someone else's is "not found" to them, so that case is checked apart).
        let started = s.call(
            "POST",
            "/patients/P1/emergency",
            t,
            Some(json!({ "reason": "救急搬送のため確認" })),
        );
        let emergency_id = started.body["id"].as_i64();
        check("startEmergency", started);
        match emergency_id {
            Some(eid) => {
                let id_for_review = eid;
                check(
                    "endEmergency",
                    s.call("POST", &format!("/emergency/{eid}/end"), t, None),
                );
                check(
                    "reviewEmergency",
                    s.call(
                        "POST",
                        &format!("/emergency/{id_for_review}/review"),
                        t,
                        Some(json!({ "comment": "確認" })),
                    ),
                );
            }
            None => {
                end_elsewhere = Some(s.call("POST", "/emergency/999999/end", t, None).status);
                let dr_e = s.call(
                    "POST",
                    "/patients/P1/emergency",
                    Some(&dr_tok),
                    Some(json!({ "reason": "救急搬送のため確認" })),
                );
                let eid = dr_e.body["id"].as_i64().unwrap_or(0);
                s.call(
                    "POST",
                    &format!("/emergency/{eid}/end"),
                    Some(&dr_tok),
                    None,
                );
                check(
                    "reviewEmergency",
                    s.call(
                        "POST",
                        &format!("/emergency/{eid}/review"),
                        t,
                        Some(json!({ "comment": "確認" })),
                    ),
                );
            }
        }
        check("emergencyQueue", s.call("GET", "/emergency?all=1", t, None));
        check(
            "resetSecondFactor",
            s.call(
                "POST",
                &format!("/users/{target_user}/reset-second-factor"),
                t,
                Some(json!({ "identity_check": "対面で確認" })),
            ),
        );
        check(
            "setRoleTwoFactor",
            s.call(
                "POST",
                "/roles/radiographer/two-factor",
                t,
                Some(json!({ "required": false })),
            ),
        );
        check(
            "setRoleClientCert",
            s.call(
                "POST",
                "/roles/radiographer/client-cert",
                t,
                Some(json!({ "required": false })),
            ),
        );
        check("clockStatus", s.call("GET", "/time", t, None));
        // Passkeys: register one with a software authenticator, sign in again with it as
        // the second factor, then remove it.
        let mut key = mamori_passkey::soft::Authenticator::new();
        let origin = "http://localhost:8080";
        let r = s.call("POST", "/auth/passkeys/options", t, None);
        let challenge = mamori_passkey::from_b64url(r.body["challenge"].as_str().unwrap_or(""))
            .unwrap_or_default();
        check("passkeyRegistrationOptions", r);
        let (cd, att) = key.create("localhost", origin, &challenge);
        check(
            "registerPasskey",
            s.call(
                "POST",
                "/auth/passkeys",
                t,
                Some(json!({ "name": "matrix", "client_data_json": mamori_passkey::b64url(&cd), "attestation_object": mamori_passkey::b64url(&att) })),
            ),
        );
        let r = s.call("GET", "/auth/passkeys", t, None);
        let passkey_id = r.body[0]["id"].as_i64().unwrap_or(0);
        check("listPasskeys", r);
        let pending = s.login(&format!("u{i}.{role}"), PW);
        let p = Some(pending.as_str());
        let r = s.call("POST", "/auth/second-factor/passkey/options", p, None);
        let challenge = mamori_passkey::from_b64url(r.body["challenge"].as_str().unwrap_or(""))
            .unwrap_or_default();
        check("passkeyAssertionOptions", r);
        let (cd, ad, sig) = key.get("localhost", origin, &challenge);
        check(
            "completePasskey",
            s.call(
                "POST",
                "/auth/second-factor/passkey",
                p,
                Some(json!({
                    "credential_id": mamori_passkey::b64url(&key.credential_id),
                    "client_data_json": mamori_passkey::b64url(&cd),
                    "authenticator_data": mamori_passkey::b64url(&ad),
                    "signature": mamori_passkey::b64url(&sig),
                })),
            ),
        );
        check(
            "removePasskey",
            s.call(
                "POST",
                &format!("/auth/passkeys/{passkey_id}/remove"),
                t,
                None,
            ),
        );
        let issued = s.call(
            "POST",
            "/certificates",
            Some(&admin),
            Some(json!({ "kind": "device", "name": format!("pc-{i}"), "password": "p12 password 1" })),
        );
        let serial = issued.body["serial"].as_str().unwrap().to_owned();
        check("listCertificates", s.call("GET", "/certificates", t, None));
        check(
            "issueCertificate",
            s.call(
                "POST",
                "/certificates",
                t,
                Some(json!({ "kind": "device", "name": format!("own-{i}"), "device_id": "SN-1", "password": "p12 password 1" })),
            ),
        );
        check(
            "revokeCertificate",
            s.call(
                "POST",
                &format!("/certificates/{serial}/revoke"),
                t,
                Some(json!({ "reason": "cessation_of_operation" })),
            ),
        );
        // Everyone may set up their own second factor and sign in with it.
        check(
            "secondFactorStatus",
            s.call("GET", "/auth/second-factor", t, None),
        );
        let begin = s.call("POST", "/auth/totp/begin", t, None);
        let secret = begin.body["secret"].as_str().unwrap_or("").to_owned();
        check("beginTotp", begin);
        let code = mamori_domain::totp::decode_secret(&secret)
            .map(|k| {
                let step = mamori_domain::totp::step_at(s.svc.now());
                mamori_domain::totp::code_at_step(&k, step)
            })
            .unwrap_or_default();
        let confirm = s.call(
            "POST",
            "/auth/totp/confirm",
            t,
            Some(json!({ "code": code })),
        );
        let recovery = confirm.body["recovery_codes"][0]
            .as_str()
            .unwrap_or("")
            .to_owned();
        check("confirmTotp", confirm);
        let half = s.call(
            "POST",
            "/auth/login",
            None,
            Some(json!({ "login": format!("u{i}.{role}"), "password": PW })),
        );
        assert_eq!(half.body["second_factor"], "totp", "{role}");
        let half_tok = half.body["token"].as_str().unwrap().to_owned();
        assert_eq!(
            s.call("GET", "/auth/me", Some(&half_tok), None).code(),
            "second_factor_required"
        );
        check(
            "completeSecondFactor",
            s.call(
                "POST",
                "/auth/second-factor",
                Some(&half_tok),
                Some(json!({ "code": recovery })),
            ),
        );
        check(
            "removeTotp",
            s.call(
                "POST",
                "/auth/totp/remove",
                t,
                Some(json!({ "password": PW })),
            ),
        );
        check("logout", s.call("POST", "/auth/logout", t, None));
        if let Some(status) = end_elsewhere {
            covered.insert("endEmergency");
            if status != 404 {
                failures.push(format!("{role} endEmergency: expected 404, got {status}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // The matrix covers every authenticated route of the router.
    let routes: BTreeSet<&str> = mamori_web::ROUTES
        .iter()
        .filter(|r| !r.public)
        .map(|r| r.op)
        .collect();
    assert_eq!(covered, routes);

    // Every refusal is in the ledger as a denied event.
    let guard = s.svc.store().reader().unwrap();
    let denied = guard
        .get()
        .audit_events(&mamori_store::AuditFilter {
            limit: 10_000,
            ..Default::default()
        })
        .unwrap()
        .into_iter()
        .filter(|e| e.outcome == "denied")
        .count();
    assert!(denied > 100, "{denied}");
}

#[test]
fn no_route_answers_without_authentication_and_all_are_documented() {
    let s = start(|_| {});
    let doc = s.call("GET", "/openapi.json", None, None).body;
    let mut by_path: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in mamori_web::ROUTES {
        let path = r
            .path
            .replace("{id}", "1")
            .replace("{sha256}", &"0".repeat(64))
            .replace("{index}", "0");
        assert!(
            doc["paths"][r.path][r.method.to_lowercase()].is_object(),
            "{} {} undocumented",
            r.method,
            r.path
        );
        by_path
            .entry(path.clone())
            .or_default()
            .push(r.method.to_owned());
        if r.public {
            continue;
        }
        let res = s.call(
            r.method,
            &path,
            None,
            if r.method == "GET" {
                None
            } else {
                Some(json!({}))
            },
        );
        assert_eq!(res.status, 401, "{} {}", r.method, r.path);
        assert_eq!(res.code(), "unauthenticated");
        let res = s.call(
            r.method,
            &path,
            Some("not-a-token"),
            if r.method == "GET" {
                None
            } else {
                Some(json!({}))
            },
        );
        assert_eq!(res.status, 401, "{} {} with a bad token", r.method, r.path);
    }
    assert!(!by_path.is_empty());
}
