//! Maintenance engineers sign in only inside an approved window; the work report lists what
//! they did and whose records they touched, for the administrator to acknowledge.

mod common;

use common::*;
use mamori_service::access::maintenance::WindowRequest;
use mamori_service::records::patients::NewPatient;

#[tokio::test]
async fn maintenance_windows_gate_sign_in_and_produce_a_report() {
    let f = fixture().await;
    let admin = f.admin().await;
    let clerk = f.user(&admin, "clerk.m", "clerk").await;
    // The engineer's account; its first password change is itself outside any window.
    f.svc
        .create_account(
            &admin,
            mamori_service::access::accounts::NewAccount {
                login: "se.m".into(),
                display_name: "保守 太郎".into(),
                role: "maintenance".into(),
                password: Some("temporary pass 1234".into()),
                service: false,
            },
        )
        .await
        .unwrap();
    let se_id = f
        .svc
        .list_accounts(&admin)
        .await
        .unwrap()
        .into_iter()
        .find(|a| a.login == "se.m")
        .unwrap()
        .id;
    assert_eq!(
        f.svc
            .change_password("se.m", "temporary pass 1234", PW, None)
            .await
            .unwrap_err()
            .code,
        "maintenance_window_required"
    );
    // This facility lets its engineers read charts during work (to check a data migration).
    f.svc
        .save_role(
            &admin,
            mamori_service::access::settings::RoleInput {
                code: "maintenance".into(),
                name_ja: "保守要員".into(),
                name_en: "Maintenance engineer".into(),
                grants: vec!["read:*".into()],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    f.svc
        .create_patient(
            &clerk,
            NewPatient {
                id: "P0200".into(),
                name_kanji: "保守 確認".into(),
                name_kana: "ほしゅ かくにん".into(),
                birth_date: "1970-01-01".into(),
                sex: "female".into(),
            },
        )
        .await
        .unwrap();

    let now = f.svc.now();
    let hour = 3_600_000;
    let req = |start: i64, end: i64, purpose: &str| WindowRequest {
        account_id: se_id,
        starts_at: start,
        ends_at: end,
        purpose: purpose.into(),
        personal_info: true,
    };
    // Bad requests are refused with the field named.
    let e = f
        .svc
        .request_maintenance(&admin, req(now + 2 * hour, now + hour, "x"))
        .await
        .unwrap_err();
    assert_eq!(e.field, Some("ends_at"));
    let e = f
        .svc
        .request_maintenance(&admin, req(now + hour, now + 2 * hour, "  "))
        .await
        .unwrap_err();
    assert_eq!(e.field, Some("purpose"));
    let e = f
        .svc
        .request_maintenance(
            &admin,
            mamori_service::access::maintenance::WindowRequest {
                account_id: clerk.account.id,
                ..req(now + hour, now + 2 * hour, "x")
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.field, Some("account_id"));

    // Requested for an hour from now: not yet approved, so no sign-in.
    let w = f
        .svc
        .request_maintenance(
            &admin,
            req(now + hour, now + 3 * hour, "電子カルテ連携の設定変更"),
        )
        .await
        .unwrap();
    let rejected = f
        .svc
        .request_maintenance(&admin, req(now, now + hour, "不要になった作業"))
        .await
        .unwrap();
    f.svc
        .decide_maintenance(&admin, rejected.window.id, false)
        .await
        .unwrap();
    assert_eq!(
        f.svc
            .change_password("se.m", "temporary pass 1234", PW, None)
            .await
            .unwrap_err()
            .code,
        "maintenance_window_required",
        "a rejected window opens nothing"
    );
    f.svc
        .decide_maintenance(&admin, w.window.id, true)
        .await
        .unwrap();
    assert_eq!(
        f.svc
            .decide_maintenance(&admin, w.window.id, false)
            .await
            .unwrap_err()
            .code,
        "invalid_state"
    );
    assert!(
        f.svc
            .change_password("se.m", "temporary pass 1234", PW, None)
            .await
            .is_err(),
        "approved, but not started"
    );

    // Inside the window the engineer signs in and works.
    f.clock.advance(hour + 60_000);
    let ok = f
        .svc
        .change_password("se.m", "temporary pass 1234", PW, None)
        .await
        .unwrap();
    let se = f.svc.authenticate(&ok.token, None).await.unwrap();
    f.svc.patient(&se, "P0200").await.unwrap();
    f.svc.patient_records(&se, "P0200").await.unwrap();
    assert_eq!(
        f.svc.list_accounts(&se).await.unwrap_err().code,
        "forbidden"
    );
    // The report is not final while the window is open, and cannot be acknowledged yet.
    let report = f.svc.maintenance_report(&admin, w.window.id).await.unwrap();
    assert!(!report.complete);
    assert_eq!(
        f.svc
            .acknowledge_maintenance(&admin, w.window.id, "確認")
            .await
            .unwrap_err()
            .code,
        "invalid_state"
    );

    // At the end of the window the session ends with it.
    f.clock.advance(2 * hour);
    assert!(f.svc.authenticate(&ok.token, None).await.is_err());
    assert_eq!(
        f.svc.login("se.m", PW, None).await.unwrap_err().code,
        "maintenance_window_required"
    );

    let report = f.svc.maintenance_report(&admin, w.window.id).await.unwrap();
    assert!(report.complete);
    assert_eq!(report.window.login, "se.m");
    assert!(report.window.window.personal_info);
    assert_eq!(report.patients.len(), 1);
    assert_eq!(report.patients[0].patient_id, "P0200");
    assert_eq!(report.patients[0].name, "保守 確認");
    assert_eq!(report.refused, 1, "the refused account list");
    assert!(report.by_action.contains_key("auth.login"));
    assert!(report.by_action.contains_key("patient.read"));
    assert!(report.first_at.unwrap() >= w.window.starts_at);
    assert!(report.last_at.unwrap() < w.window.ends_at);
    f.svc
        .acknowledge_maintenance(&admin, w.window.id, "作業内容と閲覧した患者を確認した")
        .await
        .unwrap();
    let listed = f.svc.maintenance_windows(&admin).await.unwrap();
    let mine = listed.iter().find(|x| x.window.id == w.window.id).unwrap();
    assert_eq!(mine.acknowledged_by_login.as_deref(), Some("admin"));
    assert_eq!(
        f.svc.maintenance_windows(&clerk).await.unwrap_err().code,
        "forbidden"
    );
}
