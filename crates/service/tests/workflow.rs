mod common;

use common::*;
use mamori_service::ledger::verify::{VerifyOptions, verify};
use mamori_service::records::{RecordInput, Upload};

fn input(patient: &str, kind: &str, title: &str, body: &str) -> RecordInput {
    RecordInput {
        patient_id: patient.into(),
        kind: kind.into(),
        title: title.into(),
        body: body.into(),
        ..Default::default()
    }
}

fn verify_ok(dir: &std::path::Path) -> mamori_service::ledger::verify::VerifyReport {
    verify(
        dir,
        &VerifyOptions {
            external_checkpoint: None,
            trusted_key: None,
            skip_blobs: false,
        },
    )
    .unwrap()
}

#[tokio::test]
async fn first_login_forces_a_password_change() {
    let f = fixture().await;
    let err = f.svc.login("admin", ADMIN_PW, None).await.unwrap_err();
    assert_eq!(err.code, "password_change_required");
    let err = f
        .svc
        .change_password("admin", ADMIN_PW, "short", None)
        .await
        .unwrap_err();
    assert_eq!(err.code, "invalid_input");
    let ok = f
        .svc
        .change_password("admin", ADMIN_PW, "管理者の新しいパスワード 2026", None)
        .await
        .unwrap();
    assert!(f.svc.authenticate(&ok.token, None).await.is_ok());
    assert_eq!(
        f.svc.login("admin", ADMIN_PW, None).await.unwrap_err().code,
        "invalid_credentials"
    );
    f.svc
        .login("admin", "管理者の新しいパスワード 2026", None)
        .await
        .unwrap();
}

#[tokio::test]
async fn lockout_after_five_failures_until_unlocked() {
    let f = fixture().await;
    let admin = f.admin().await;
    f.user(&admin, "nurse1", "nurse").await;
    for _ in 0..4 {
        assert_eq!(
            f.svc
                .login("nurse1", "wrong password!", None)
                .await
                .unwrap_err()
                .code,
            "invalid_credentials"
        );
    }
    // The guess that locks, and even the right password while locked, answer like any
    // failure (so that the answer tells no one that the name exists).
    assert_eq!(
        f.svc
            .login("nurse1", "wrong password!", None)
            .await
            .unwrap_err()
            .code,
        "invalid_credentials"
    );
    assert_eq!(
        f.svc.login("nurse1", PW, None).await.unwrap_err().code,
        "invalid_credentials"
    );
    let id = f
        .svc
        .store()
        .reader()
        .unwrap()
        .get()
        .account_by_login("nurse1")
        .unwrap()
        .unwrap()
        .id;
    f.svc.unlock_account(&admin, id).await.unwrap();
    f.svc.login("nurse1", PW, None).await.unwrap();
    // Or after the configured time passes.
    for _ in 0..5 {
        let _ = f.svc.login("nurse1", "wrong password!", None).await;
    }
    assert_eq!(
        f.svc.login("nurse1", PW, None).await.unwrap_err().code,
        "invalid_credentials"
    );
    f.clock.advance(31 * 60_000);
    f.svc.login("nurse1", PW, None).await.unwrap();
}

#[tokio::test]
async fn idle_sessions_lock_then_expire() {
    let f = fixture().await;
    let admin = f.admin().await;
    let pw = "管理者の新しいパスワード 2026";
    let tok = f.svc.login("admin", pw, None).await.unwrap().token;
    f.clock.advance(4 * 60_000);
    f.svc.authenticate(&tok, None).await.unwrap();
    // Five idle minutes lock the screen (not an API token, not a sign-out).
    f.clock.advance(6 * 60_000);
    assert_eq!(
        f.svc.authenticate(&tok, None).await.unwrap_err().code,
        "session_locked"
    );
    let locked = f.svc.authenticate_pending(&tok, None).await.unwrap();
    assert!(locked.locked);
    // A wrong password does not unlock (and counts as a failure); the right one does.
    assert_eq!(
        f.svc
            .unlock_session(&locked, "wrong password")
            .await
            .unwrap_err()
            .code,
        "invalid_credentials"
    );
    f.svc.unlock_session(&locked, pw).await.unwrap();
    let p = f.svc.authenticate(&tok, None).await.unwrap();
    // Locking on request, then fifteen idle minutes end the session even while locked.
    f.svc.lock_session(&p).await.unwrap();
    assert_eq!(
        f.svc.authenticate(&tok, None).await.unwrap_err().code,
        "session_locked"
    );
    f.clock.advance(16 * 60_000);
    assert_eq!(
        f.svc.authenticate(&tok, None).await.unwrap_err().code,
        "session_expired"
    );
    let _ = admin;
}

#[tokio::test]
async fn proxy_entry_finalise_amend_and_verify() {
    let f = fixture().await;
    let admin = f.admin().await;
    let doctor = f.user(&admin, "dr.sato", "doctor").await;
    let clerk = f.user(&admin, "clerk.ito", "clerk").await;
    let nurse = f.user(&admin, "ns.kato", "nurse").await;
    create_yamada(&f.svc, &clerk).await;
    assert_eq!(
        f.svc.search_patients(&nurse, "ヤマダ").await.unwrap().len(),
        1
    );
    assert_eq!(f.svc.search_patients(&nurse, "P00").await.unwrap().len(), 1);

    // The clerk enters a record on the doctor's behalf.
    let mut i = input("P0001", "medical_record", "初診", "頭痛。");
    i.author_id = Some(doctor.account.id);
    let pdf = Upload {
        name: "紹介状.pdf".into(),
        bytes: b"%PDF-1.4\n%test\n".to_vec(),
    };
    let w = f.svc.create_record(&clerk, i, vec![pdf]).await.unwrap();
    assert_eq!(
        f.svc
            .finalise_record(&clerk, w.record_id)
            .await
            .unwrap_err()
            .code,
        "forbidden"
    );
    // The nurse cannot see the unapproved entry.
    assert_eq!(
        f.svc.record(&nurse, w.record_id).await.unwrap_err().code,
        "not_found"
    );
    f.svc.submit_record(&clerk, w.record_id).await.unwrap();
    let pending = f.svc.pending_approvals(&doctor).await.unwrap();
    assert_eq!(pending.len(), 1);
    let rej = f
        .svc
        .reject_record(&doctor, w.record_id, "病名を追記してください".into())
        .await
        .unwrap();
    assert_eq!(rej.state, mamori_domain::version::VersionState::Draft);
    let view = f.svc.record(&clerk, w.record_id).await.unwrap();
    let att = view.versions[0].content.attachments[0].sha256.clone();
    let mut edit = input("", "", "初診", "頭痛。片頭痛の疑い。");
    edit.keep_attachments = vec![att.clone()];
    edit.base_sha256 = Some("0".repeat(64));
    assert_eq!(
        f.svc
            .update_draft(&clerk, w.record_id, edit.clone(), vec![])
            .await
            .unwrap_err()
            .code,
        "conflict"
    );
    edit.base_sha256 = Some(view.versions[0].content_sha256.clone());
    f.svc
        .update_draft(&clerk, w.record_id, edit, vec![])
        .await
        .unwrap();
    f.svc.submit_record(&clerk, w.record_id).await.unwrap();
    f.svc.approve_record(&doctor, w.record_id).await.unwrap();
    assert_eq!(
        f.svc
            .approve_record(&doctor, w.record_id)
            .await
            .unwrap_err()
            .code,
        "invalid_state"
    );
    let view = f.svc.record(&nurse, w.record_id).await.unwrap();
    assert_eq!(view.status_label, "確定");
    assert_eq!(view.versions[0].author.login, "dr.sato");
    assert_eq!(view.versions[0].enterer.login, "clerk.ito");

    // Amend with a reason; both versions stay readable and comparable.
    let mut a = input("", "", "初診", "頭痛。片頭痛。");
    a.reason = Some("診断名の訂正".into());
    a.keep_attachments = vec![att.clone()];
    let w2 = f
        .svc
        .amend_record(&doctor, w.record_id, a, vec![])
        .await
        .unwrap();
    assert_eq!(w2.version_no, 2);
    let hist = f.svc.record_versions(&nurse, w.record_id).await.unwrap();
    assert_eq!(hist.versions.len(), 2);
    assert_eq!(hist.status_label, "修正あり");
    let diff = f
        .svc
        .diff_versions(&nurse, w.record_id, 1, 2)
        .await
        .unwrap();
    assert!(
        diff.iter()
            .any(|d| d.tag == "insert" && d.text.contains("片頭痛。"))
    );
    let (meta, bytes) = f.svc.attachment(&nurse, w.record_id, &att).await.unwrap();
    assert_eq!(meta.media_type, "application/pdf");
    assert!(bytes.starts_with(b"%PDF"));
    assert_eq!(
        f.svc
            .mark_entered_in_error(&nurse, w.record_id, "患者違い".into())
            .await
            .unwrap_err()
            .code,
        "forbidden"
    );
    f.svc
        .mark_entered_in_error(&doctor, w.record_id, "患者違い".into())
        .await
        .unwrap();
    assert_eq!(
        f.svc
            .record(&nurse, w.record_id)
            .await
            .unwrap()
            .status_label,
        "誤記入"
    );

    // Who opened P0001's chart?
    let auditor = f.user(&admin, "audit1", "auditor").await;
    assert_eq!(
        f.svc
            .audit_events(&nurse, Default::default())
            .await
            .unwrap_err()
            .code,
        "forbidden"
    );
    let ev = f
        .svc
        .audit_events(
            &auditor,
            mamori_store::AuditFilter {
                patient: Some("P0001".into()),
                limit: 500,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(
        ev.iter()
            .any(|e| e.action == "record.read" && e.actor_login.as_deref() == Some("ns.kato"))
    );
    assert!(
        ev.iter()
            .any(|e| e.action == "record.read" && e.outcome == "failed")
    );
    let counts = f
        .svc
        .patient_access_counts(&auditor, t0() - 86_400_000, t0() + 86_400_000, None)
        .await
        .unwrap();
    assert_eq!(counts[0].patient_id, "P0001");
    assert!(counts[0].by_actor.iter().any(|a| a.login == "ns.kato"));

    f.svc.checkpoint_now().await.unwrap();
    let rep = verify_ok(&f.data());
    assert!(rep.ok, "{:?}", rep.problems);
    assert!(rep.ledger_entries > 20);
}

#[tokio::test]
async fn account_hygiene_lists_unused_accounts_expired_passwords_and_broad_roles() {
    let f = common::fixture_with(|c| c.password.max_age_days = Some(90)).await;
    let admin = f.admin().await;
    let nurse = f.user(&admin, "ns.h", "nurse").await;
    f.user(&admin, "dr.h", "doctor").await;
    // Widen the nurse role beyond its template.
    let mut grants: Vec<String> = nurse.role.grants.iter().map(ToString::to_string).collect();
    grants.push("read_audit".into());
    f.svc
        .save_role(
            &admin,
            mamori_service::access::settings::RoleInput {
                code: "nurse".into(),
                name_ja: "看護師".into(),
                name_en: "Nurse".into(),
                grants,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let h = f.svc.account_hygiene(&admin, 30).await.unwrap();
    assert!(h.unused.is_empty() && h.expired_passwords.is_empty());
    assert_eq!(h.broad_roles.len(), 1);
    assert_eq!(h.broad_roles[0].code, "nurse");
    assert_eq!(h.broad_roles[0].extra_grants, ["read_audit"]);
    assert_eq!(h.broad_roles[0].accounts, 1);

    // 100 days later nobody has signed in (the administrator's query does not count as one),
    // and every password is past 90 days: signing in now demands a new one.
    f.clock.advance(100 * 86_400_000);
    assert_eq!(
        f.svc
            .login("dr.h", common::PW, None)
            .await
            .unwrap_err()
            .code,
        "password_change_required"
    );
    let h = f.svc.account_hygiene(&admin, 30).await.unwrap();
    let logins = |v: &[mamori_service::access::accounts::AccountView]| {
        let mut l: Vec<String> = v.iter().map(|a| a.login.clone()).collect();
        l.sort();
        l
    };
    assert_eq!(logins(&h.unused), ["admin", "dr.h", "ns.h"]);
    assert_eq!(logins(&h.expired_passwords), ["admin", "dr.h", "ns.h"]);
    // Only administrators may ask.
    assert_eq!(
        f.svc.account_hygiene(&nurse, 30).await.unwrap_err().code,
        "forbidden"
    );
}

fn code_now(secret_b32: &str, now: i64) -> String {
    let secret = mamori_domain::totp::decode_secret(secret_b32).unwrap();
    mamori_domain::totp::code_at_step(&secret, mamori_domain::totp::step_at(now))
}

#[tokio::test]
async fn totp_enrolment_second_step_recovery_codes_and_role_policy() {
    let f = common::fixture().await;
    let admin = f.admin().await;
    let dr = f.user(&admin, "dr.totp", "doctor").await;
    let now = || f.svc.now();

    // Enrol: a wrong first code is refused; the right one returns ten recovery codes.
    let e = f.svc.begin_totp(&dr).await.unwrap();
    assert!(e.uri.starts_with("otpauth://totp/") && e.uri.contains(&e.secret));
    assert_eq!(
        f.svc.confirm_totp(&dr, "000000").await.unwrap_err().field,
        Some("code")
    );
    let codes = f
        .svc
        .confirm_totp(&dr, &code_now(&e.secret, now()))
        .await
        .unwrap();
    assert_eq!(codes.len(), 10);
    assert!(f.svc.second_factor_status(&dr).await.unwrap().totp_enabled);

    // Signing in now takes two steps; the half-open session opens nothing.
    f.clock.advance(31_000);
    let ok = f.svc.login("dr.totp", common::PW, None).await.unwrap();
    assert_eq!(ok.second_factor, Some("totp"));
    assert_eq!(
        f.svc.authenticate(&ok.token, None).await.unwrap_err().code,
        "second_factor_required"
    );
    let half = f.svc.authenticate_pending(&ok.token, None).await.unwrap();
    assert_eq!(
        f.svc
            .complete_second_factor(&half, "123456")
            .await
            .unwrap_err()
            .field,
        Some("code")
    );
    let code = code_now(&e.secret, now());
    f.svc.complete_second_factor(&half, &code).await.unwrap();
    let full = f.svc.authenticate(&ok.token, None).await.unwrap();
    assert!(!full.second_factor_pending);

    // The same code cannot be used again (replay), even within its 30 seconds.
    let again = f.svc.login("dr.totp", common::PW, None).await.unwrap();
    let half = f
        .svc
        .authenticate_pending(&again.token, None)
        .await
        .unwrap();
    assert!(f.svc.complete_second_factor(&half, &code).await.is_err());
    // A recovery code works once.
    f.svc
        .complete_second_factor(&half, &codes[0].to_uppercase())
        .await
        .unwrap();
    let third = f.svc.login("dr.totp", common::PW, None).await.unwrap();
    let half = f
        .svc
        .authenticate_pending(&third.token, None)
        .await
        .unwrap();
    assert!(
        f.svc
            .complete_second_factor(&half, &codes[0])
            .await
            .is_err()
    );
    assert_eq!(
        f.svc
            .second_factor_status(&full)
            .await
            .unwrap()
            .recovery_codes_left,
        9
    );

    // Five wrong codes lock the account, like wrong passwords.
    let mut last = None;
    for _ in 0..5 {
        last = Some(
            f.svc
                .complete_second_factor(&half, "999999")
                .await
                .unwrap_err(),
        );
    }
    assert_eq!(last.unwrap().code, "account_locked");
    f.svc.unlock_account(&admin, dr.account.id).await.unwrap();

    // Policy: doctors must use a second factor. A doctor without one must enrol first.
    f.svc
        .set_role_two_factor(&admin, "doctor".into(), true)
        .await
        .unwrap();
    f.svc
        .create_account(
            &admin,
            mamori_service::access::accounts::NewAccount {
                login: "dr.new".into(),
                display_name: "新任医師".into(),
                role: "doctor".into(),
                password: Some("temporary pass 1234".into()),
                service: false,
            },
        )
        .await
        .unwrap();
    let ok2 = f
        .svc
        .change_password("dr.new", "temporary pass 1234", common::PW, None)
        .await
        .unwrap();
    assert_eq!(ok2.second_factor, Some("enrol"));
    let dr2 = f.svc.authenticate_pending(&ok2.token, None).await.unwrap();
    assert!(f.svc.authenticate(&ok2.token, None).await.is_err());
    let e2 = f.svc.begin_totp(&dr2).await.unwrap();
    f.svc
        .confirm_totp(&dr2, &code_now(&e2.secret, now()))
        .await
        .unwrap();
    // The same session is now a full sign-in…
    let me = f.svc.authenticate(&ok2.token, None).await.unwrap();
    // …and cannot remove the factor while the policy stands.
    assert_eq!(
        f.svc
            .remove_own_totp(&me, common::PW)
            .await
            .unwrap_err()
            .code,
        "invalid_state"
    );

    // Lost phone: the administrator resets it with an identity-check note; sessions end.
    assert_eq!(
        f.svc
            .reset_second_factor(&admin, dr.account.id, " ".into())
            .await
            .unwrap_err()
            .field,
        Some("identity_check")
    );
    f.svc
        .reset_second_factor(&admin, dr.account.id, "職員証を対面で確認".into())
        .await
        .unwrap();
    assert!(f.svc.authenticate(&ok.token, None).await.is_err());
    let after = f.svc.login("dr.totp", common::PW, None).await.unwrap();
    assert_eq!(after.second_factor, Some("enrol"));
    // Only administrators may reset or set the policy.
    assert_eq!(
        f.svc
            .set_role_two_factor(&full, "nurse".into(), true)
            .await
            .unwrap_err()
            .code,
        "forbidden"
    );
}

/// A role that requires client certificates: its members sign in and act only over a
/// connection that presented a facility certificate; the refusal is in the ledger.
#[tokio::test]
async fn a_role_can_require_a_client_certificate() {
    use mamori_service::access::auth::{client_label, has_client_certificate};
    let f = fixture().await;
    let admin = f.admin().await;
    let _ = f.user(&admin, "dr.cert", "doctor").await;
    let nurse = f.user(&admin, "ns.cert", "nurse").await;
    assert_eq!(
        f.svc
            .set_role_client_cert(&nurse, "doctor".into(), true)
            .await
            .unwrap_err()
            .code,
        "forbidden"
    );
    f.svc
        .set_role_client_cert(&admin, "doctor".into(), true)
        .await
        .unwrap();
    assert_eq!(f.svc.client_cert_roles().await.unwrap(), ["doctor"]);

    let plain = client_label(Some("192.0.2.7".into()), None);
    let with_cert = client_label(Some("192.0.2.7".into()), Some(("1a2b", "診察室1 PC")));
    assert!(!has_client_certificate(plain.as_deref()));
    assert!(has_client_certificate(with_cert.as_deref()));

    let e = f.svc.login("dr.cert", PW, plain.clone()).await.unwrap_err();
    assert_eq!(e.code, "client_certificate_required");
    let ok = f.svc.login("dr.cert", PW, with_cert.clone()).await.unwrap();
    f.svc
        .authenticate(&ok.token, with_cert.clone())
        .await
        .unwrap();
    // The same session from a connection without a certificate is refused.
    assert_eq!(
        f.svc
            .authenticate(&ok.token, plain.clone())
            .await
            .unwrap_err()
            .code,
        "client_certificate_required"
    );
    // Other roles are unaffected.
    f.svc.login("ns.cert", PW, plain).await.unwrap();
    // The refused sign-in is in the ledger with its reason.
    let auditor = f.user(&admin, "audit.cert", "auditor").await;
    let ev = f
        .svc
        .audit_events(
            &auditor,
            mamori_store::AuditFilter {
                action_prefix: Some("auth.login_failed".into()),
                limit: 50,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(
        ev.iter()
            .any(|e| e.detail.to_string().contains("client_certificate_required")),
        "{ev:?}"
    );
}

/// Passkeys as the second factor: enrolled while a role's requirement makes someone enrol,
/// recovery codes for a first factor, the second step of signing in with it, refusals (wrong
/// key, replayed assertion, other site) counted like wrong codes, and the last one kept while
/// the role requires two factors.
#[tokio::test]
async fn passkeys_enrol_and_sign_in_as_the_second_factor() {
    use mamori_passkey::{b64url, from_b64url, soft::Authenticator};
    use mamori_service::access::passkeys::{Assertion, Registration};
    let f = fixture().await;
    let admin = f.admin().await;
    let _ = f.user(&admin, "dr.pk", "doctor").await;
    f.svc
        .set_role_two_factor(&admin, "doctor".into(), true)
        .await
        .unwrap();
    // The password alone opens a session that must enrol first.
    let ok = f.svc.login("dr.pk", PW, None).await.unwrap();
    let pending = f.svc.authenticate_pending(&ok.token, None).await.unwrap();
    assert!(pending.second_factor_pending);
    let mut key = Authenticator::new();
    let origin = "http://localhost:8080";
    let o = f.svc.begin_passkey_registration(&pending).await.unwrap();
    let ch = from_b64url(o["challenge"].as_str().unwrap()).unwrap();
    assert_eq!(o["rp"]["id"], "localhost");
    // A response for another site is refused; the challenge is then spent.
    let (cd, att) = key.create("localhost", "https://phish.example", &ch);
    let bad = f
        .svc
        .finish_passkey_registration(
            &pending,
            Registration {
                name: String::new(),
                client_data_json: b64url(&cd),
                attestation_object: b64url(&att),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(bad.field, Some("passkey"));
    let o = f.svc.begin_passkey_registration(&pending).await.unwrap();
    let ch = from_b64url(o["challenge"].as_str().unwrap()).unwrap();
    let (cd, att) = key.create("localhost", origin, &ch);
    let codes = f
        .svc
        .finish_passkey_registration(
            &pending,
            Registration {
                name: "診察室1".into(),
                client_data_json: b64url(&cd),
                attestation_object: b64url(&att),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        codes.len(),
        10,
        "a first second factor comes with recovery codes"
    );
    // The enrolling session is now a full sign-in.
    f.svc.authenticate(&ok.token, None).await.unwrap();

    // Next sign-in: the passkey is the second step.
    let ok = f.svc.login("dr.pk", PW, None).await.unwrap();
    let pending = f.svc.authenticate_pending(&ok.token, None).await.unwrap();
    assert!(pending.second_factor_pending);
    let o = f.svc.begin_passkey_assertion(&pending).await.unwrap();
    let ch = from_b64url(o["challenge"].as_str().unwrap()).unwrap();
    let (cd, ad, sig) = key.get("localhost", origin, &ch);
    let assertion = Assertion {
        credential_id: b64url(&key.credential_id),
        client_data_json: b64url(&cd),
        authenticator_data: b64url(&ad),
        signature: b64url(&sig),
    };
    f.svc
        .complete_passkey(&pending, assertion.clone())
        .await
        .unwrap();
    let full = f.svc.authenticate(&ok.token, None).await.unwrap();
    assert_eq!(
        f.svc.begin_passkey_assertion(&full).await.unwrap_err().code,
        "invalid_state"
    );

    // A replayed assertion in a new sign-in is refused (challenge and counter).
    let ok2 = f.svc.login("dr.pk", PW, None).await.unwrap();
    let pending2 = f.svc.authenticate_pending(&ok2.token, None).await.unwrap();
    let _ = f.svc.begin_passkey_assertion(&pending2).await.unwrap();
    let e = f
        .svc
        .complete_passkey(&pending2, assertion)
        .await
        .unwrap_err();
    assert_eq!(e.field, Some("passkey"));
    // Another authenticator's key is not this account's.
    let other = Authenticator::new();
    let o = f.svc.begin_passkey_assertion(&pending2).await.unwrap();
    let ch = from_b64url(o["challenge"].as_str().unwrap()).unwrap();
    let mut other = other;
    let (cd, ad, sig) = other.get("localhost", origin, &ch);
    let e = f
        .svc
        .complete_passkey(
            &pending2,
            Assertion {
                credential_id: b64url(&other.credential_id),
                client_data_json: b64url(&cd),
                authenticator_data: b64url(&ad),
                signature: b64url(&sig),
            },
        )
        .await
        .unwrap_err();
    assert!(
        e.message.contains("このアカウントのパスキーではありません"),
        "{}",
        e.message
    );

    // The last passkey stays while the role requires two factors.
    let keys = f.svc.passkeys(&full).await.unwrap();
    assert_eq!(keys.len(), 1);
    assert!(keys[0].last_used_at.is_some());
    let e = f.svc.remove_passkey(&full, keys[0].id).await.unwrap_err();
    assert_eq!(e.code, "invalid_state");
    f.svc
        .set_role_two_factor(&admin, "doctor".into(), false)
        .await
        .unwrap();
    f.svc.remove_passkey(&full, keys[0].id).await.unwrap();
    assert!(f.svc.passkeys(&full).await.unwrap().is_empty());
}

/// A refused write leaves no file behind: its files are removed in the same step. A file left
/// by a crash between storing and committing is reported by verify and removed by the sweep
/// (with a ledger entry); a file still referenced is never touched.
#[tokio::test]
async fn content_of_a_refused_write_is_reported_then_swept() {
    let f = fixture().await;
    let admin = f.admin().await;
    let doctor = f.user(&admin, "dr.orphan", "doctor").await;
    let pdf = |tag: &str| Upload {
        name: "scan.pdf".into(),
        bytes: format!("%PDF-1.4\n%{tag}\n").into_bytes(),
    };
    // A record for a patient that does not exist: refused after its attachment was stored.
    let err = f
        .svc
        .create_record(
            &doctor,
            input("P9999", "medical_record", "誤り", "本文"),
            vec![pdf("orphan")],
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, "not_found", "{err:?}");
    let rep = verify_ok(f.svc.data_dir());
    assert!(rep.ok, "{:?}", rep.problems);
    assert_eq!(rep.orphan_files, 0, "{:?}", rep.notes);
    // Likewise an MDS/SDS file for a device that does not exist.
    let err = f
        .svc
        .attach_mds(&admin, 99_999, "mds.pdf", b"%PDF-1.4\n%mds\n".to_vec())
        .await
        .unwrap_err();
    assert_eq!(err.code, "not_found", "{err:?}");
    assert_eq!(verify_ok(f.svc.data_dir()).orphan_files, 0);
    // As if the process had died between storing a file and committing its row.
    f.svc.store().blobs().put(b"%PDF-1.4\n%crash\n").unwrap();
    let rep = verify_ok(f.svc.data_dir());
    assert!(rep.ok, "{:?}", rep.problems);
    assert_eq!(rep.orphan_files, 1, "{:?}", rep.notes);
    // Younger than the age limit: left alone.
    assert_eq!(f.svc.sweep_orphan_blobs(3_600_000).await.unwrap(), 0);
    assert_eq!(f.svc.sweep_orphan_blobs(0).await.unwrap(), 1);
    let rep = verify_ok(f.svc.data_dir());
    assert!(rep.ok, "{:?}", rep.problems);
    assert_eq!(rep.orphan_files, 0);
    // Referenced files survive a sweep.
    let clerk = f.user(&admin, "clerk.orphan", "clerk").await;
    f.svc
        .create_patient(
            &clerk,
            mamori_service::records::patients::NewPatient {
                id: "P0101".into(),
                name_kanji: "掃除 残".into(),
                name_kana: "ソウジ ノコル".into(),
                birth_date: "1990-01-01".into(),
                sex: "female".into(),
            },
        )
        .await
        .unwrap();
    f.svc
        .create_record(
            &doctor,
            input("P0101", "medical_record", "正", "本文"),
            vec![pdf("kept")],
        )
        .await
        .unwrap();
    assert_eq!(f.svc.sweep_orphan_blobs(0).await.unwrap(), 0);
    let rep = verify_ok(f.svc.data_dir());
    assert!(
        rep.ok && rep.orphan_files == 0,
        "{:?} {:?}",
        rep.problems,
        rep.notes
    );
}
