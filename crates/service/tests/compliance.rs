//! The self-assessment: every observed answer follows the system both ways; declarations
//! follow the checklist's rules; closing freezes what was observed; year-on-year comparison;
//! the JSON and PDF reports; the asset ledger's all-or-nothing import.

mod common;

use common::*;
use mamori_compliance::assets::Asset;
use mamori_compliance::{Answer, Source};
use mamori_service::Principal;
use mamori_service::compliance::facility::ContactInput;
use mamori_service::compliance::observe::Profile;
use mamori_service::compliance::{AnswerInput, EvidenceInput};
use mamori_service::records::patients::NewPatient;

const DAY: i64 = 86_400_000;

async fn answer_of(f: &Fixture, p: &Principal, key: &str) -> Answer {
    let mut all = f.svc.observations(p).await.unwrap();
    all.remove(key)
        .unwrap_or_else(|| panic!("no observation {key}"))
        .answer
}

fn contact(category: &str) -> ContactInput {
    ContactInput {
        category: category.into(),
        name: format!("{category} 窓口"),
        organisation: String::new(),
        phone: "03-0000-0000".into(),
        email: String::new(),
        note: String::new(),
    }
}

#[tokio::test]
async fn observed_answers_follow_the_system_both_ways() {
    let backups = tempfile::tempdir().unwrap();
    let key = backups.path().join("key.txt");
    std::fs::write(&key, mamori_service::backup::KeyFile::generate().to_text()).unwrap();
    let target = backups.path().join("nas");
    let f = fixture_with(|c| {
        c.backup.targets = target.display().to_string();
        c.backup.key_file = key.display().to_string();
    })
    .await;
    let admin = f.admin().await;
    let auditor = f.user(&admin, "audit.c", "auditor").await;
    let doctor = f.user(&admin, "dr.c", "doctor").await;
    let yes = Answer::Yes;
    let no = Answer::No;

    // Organisation: officer, operating rules, BCP.
    for k in ["security_officer", "operating_rules", "bcp"] {
        assert_eq!(answer_of(&f, &auditor, k).await, no, "{k}");
    }
    f.svc
        .save_compliance_profile(
            &auditor,
            Profile {
                security_officer: "事務長".into(),
                director: "院長".into(),
                rules_adopted_on: "2026-04-01".into(),
                bcp_adopted_on: "2026-04-01".into(),
            },
        )
        .await
        .unwrap();
    for k in ["security_officer", "operating_rules", "bcp"] {
        assert_eq!(answer_of(&f, &auditor, k).await, yes, "{k}");
    }
    let bad = f
        .svc
        .save_compliance_profile(
            &auditor,
            Profile {
                rules_adopted_on: "4月1日".into(),
                ..Profile::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(bad.field, Some("rules_adopted_on"));

    // The contact chart needs staff, vendors, MHLW and the police.
    assert_eq!(answer_of(&f, &auditor, "contact_chart").await, no);
    f.svc
        .save_contacts(
            &auditor,
            vec![contact("internal"), contact("vendor"), contact("mhlw")],
        )
        .await
        .unwrap();
    assert_eq!(answer_of(&f, &auditor, "contact_chart").await, no);
    f.svc
        .save_contacts(
            &auditor,
            ["internal", "vendor", "mhlw", "police"]
                .map(contact)
                .to_vec(),
        )
        .await
        .unwrap();
    assert_eq!(answer_of(&f, &auditor, "contact_chart").await, yes);

    // Roles: wider than the template is いいえ; two factors for every role in use.
    assert_eq!(answer_of(&f, &auditor, "role_access").await, yes);
    f.svc
        .save_role(
            &admin,
            mamori_service::access::settings::RoleInput {
                code: "auditor".into(),
                name_ja: "監査担当".into(),
                name_en: "Auditor".into(),
                grants: vec!["read_audit".into(), "read:*".into()],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(answer_of(&f, &auditor, "role_access").await, no);
    f.svc
        .save_role(
            &admin,
            mamori_service::access::settings::RoleInput {
                code: "auditor".into(),
                name_ja: "監査担当".into(),
                name_en: "Auditor".into(),
                grants: vec!["read_audit".into()],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(answer_of(&f, &auditor, "role_access").await, yes);
    assert_eq!(answer_of(&f, &auditor, "two_factor").await, no);
    // Without two factors and without expiry, 8-character passwords are not enough (R7 2-⑦).
    assert_eq!(answer_of(&f, &auditor, "password_policy").await, no);
    for role in ["sysadmin", "auditor", "doctor"] {
        f.svc
            .set_role_two_factor(&admin, role.into(), true)
            .await
            .unwrap();
    }
    let tf = f.svc.observations(&auditor).await.unwrap()["two_factor"].clone();
    assert_eq!(tf.answer, yes, "{}", tf.evidence_ja);
    assert_eq!(answer_of(&f, &auditor, "password_policy").await, yes);
    assert_eq!(answer_of(&f, &auditor, "idle_lock").await, yes);
    // Back off again (the sign-ins below use passwords only).
    f.svc
        .set_role_two_factor(&admin, "doctor".into(), false)
        .await
        .unwrap();
    assert_eq!(answer_of(&f, &auditor, "two_factor").await, no);
    for role in ["sysadmin", "auditor"] {
        f.svc
            .set_role_two_factor(&admin, role.into(), false)
            .await
            .unwrap();
    }

    // The ledger: never verified, verified, then stale.
    for k in ["access_logs", "finalisation"] {
        assert_eq!(answer_of(&f, &auditor, k).await, no, "{k}");
    }
    f.svc.verify_and_record(None).await.unwrap();
    for k in ["access_logs", "finalisation"] {
        assert_eq!(answer_of(&f, &auditor, k).await, yes, "{k}");
    }

    // Retention: a kind kept less than five years.
    assert_eq!(answer_of(&f, &auditor, "retention").await, yes);
    f.svc
        .save_kind(
            &admin,
            mamori_domain::kinds::RecordKind {
                code: "memo".into(),
                name_ja: "メモ".into(),
                name_en: "Memo".into(),
                retention_years: 1,
            },
        )
        .await
        .unwrap();
    assert_eq!(answer_of(&f, &auditor, "retention").await, no);

    // Break-glass: an unreviewed use older than a week is いいえ until reviewed.
    f.svc
        .create_patient(
            &doctor,
            NewPatient {
                id: "P0300".into(),
                name_kanji: "点検 太郎".into(),
                name_kana: "てんけん たろう".into(),
                birth_date: "1970-01-01".into(),
                sex: "male".into(),
            },
        )
        .await
        .unwrap();
    let e = f
        .svc
        .start_emergency(&doctor, "P0300", "救急搬送、既往歴の確認")
        .await
        .unwrap();
    assert_eq!(answer_of(&f, &auditor, "emergency_access").await, yes);

    // Backups: none yet; a backup and a passing drill make it はい.
    assert_eq!(answer_of(&f, &auditor, "backup_restore").await, no);
    f.svc.backup_now(Some(&admin)).await.unwrap();
    f.backups_idle(&admin).await;
    f.svc.drill_now(&admin).await.unwrap();
    f.backups_idle(&admin).await;
    assert_eq!(answer_of(&f, &auditor, "backup_restore").await, yes);
    // GL6-S-12 asks for storage off the network too: not はい until an offline copy is recorded,
    // and いいえ again once it is overdue.
    assert_eq!(answer_of(&f, &auditor, "backup_offline").await, no);
    f.svc
        .record_offline_copy(&admin, &target.display().to_string(), "USB-1 月曜", "")
        .await
        .unwrap();
    assert_eq!(answer_of(&f, &auditor, "backup_offline").await, yes);

    // Eight days on: the break-glass use is overdue for review, the ledger verification is
    // stale, and the accounts have not been used — and then each is put right.
    f.clock.advance(8 * DAY);
    let auditor = f
        .svc
        .authenticate(&f.svc.login("audit.c", PW, None).await.unwrap().token, None)
        .await;
    let auditor = match auditor {
        Ok(a) => a,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(answer_of(&f, &auditor, "emergency_access").await, no);
    assert_eq!(answer_of(&f, &auditor, "access_logs").await, no);
    f.svc
        .review_emergency(&auditor, e.id, "救急外来の記録と一致")
        .await
        .unwrap();
    assert_eq!(answer_of(&f, &auditor, "emergency_access").await, yes);

    // Log review: someone read the audit trail within a month.
    f.clock.advance(40 * DAY);
    assert_eq!(answer_of(&f, &auditor, "log_review").await, no);
    f.svc
        .audit_events(&auditor, Default::default())
        .await
        .unwrap();
    assert_eq!(answer_of(&f, &auditor, "log_review").await, yes);

    // Unused accounts: 90 days without a sign-in; disabling them puts it right.
    f.clock.advance(50 * DAY);
    let auditor = f
        .svc
        .authenticate(&f.svc.login("audit.c", PW, None).await.unwrap().token, None)
        .await
        .unwrap();
    let unused = f.svc.observations(&auditor).await.unwrap()["unused_accounts"].clone();
    assert_eq!(unused.answer, no);
    assert!(
        unused.evidence_ja.contains("dr.c"),
        "{}",
        unused.evidence_ja
    );
    let admin = f
        .svc
        .authenticate(
            &f.svc
                .login("admin", "管理者の新しいパスワード 2026", None)
                .await
                .unwrap()
                .token,
            None,
        )
        .await
        .unwrap();
    for a in f.svc.list_accounts(&admin).await.unwrap() {
        if a.login == "dr.c" {
            f.svc.set_account_active(&admin, a.id, false).await.unwrap();
        }
    }
    assert_eq!(answer_of(&f, &auditor, "unused_accounts").await, yes);

    // Clinical staff cannot see any of it.
    let e = f.svc.observations(&doctor).await.unwrap_err();
    assert_eq!(e.code, "forbidden");
}

#[tokio::test]
async fn maintenance_reports_left_unacknowledged_are_observed() {
    let f = fixture().await;
    let admin = f.admin().await;
    assert_eq!(
        answer_of(&f, &admin, "maintenance_control").await,
        Answer::Yes
    );
    f.svc
        .create_account(
            &admin,
            mamori_service::access::accounts::NewAccount {
                login: "se.c".into(),
                display_name: "保守".into(),
                role: "maintenance".into(),
                password: Some("temporary pass 1234".into()),
                service: false,
            },
        )
        .await
        .unwrap();
    let se = f
        .svc
        .list_accounts(&admin)
        .await
        .unwrap()
        .into_iter()
        .find(|a| a.login == "se.c")
        .unwrap()
        .id;
    let now = f.svc.now();
    let w = f
        .svc
        .request_maintenance(
            &admin,
            mamori_service::access::maintenance::WindowRequest {
                account_id: se,
                starts_at: now + 60_000,
                ends_at: now + 3_600_000,
                purpose: "更新".into(),
                personal_info: false,
            },
        )
        .await
        .unwrap();
    f.svc
        .decide_maintenance(&admin, w.window.id, true)
        .await
        .unwrap();
    f.clock.advance(9 * DAY);
    let admin = f
        .svc
        .authenticate(
            &f.svc
                .login("admin", "管理者の新しいパスワード 2026", None)
                .await
                .unwrap()
                .token,
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        answer_of(&f, &admin, "maintenance_control").await,
        Answer::No
    );
    f.svc
        .acknowledge_maintenance(&admin, w.window.id, "作業なしを確認")
        .await
        .unwrap();
    assert_eq!(
        answer_of(&f, &admin, "maintenance_control").await,
        Answer::Yes
    );
}

#[tokio::test]
async fn an_assessment_from_start_to_report_and_next_year() {
    let f = fixture().await;
    let admin = f.admin().await;
    let auditor = f.user(&admin, "audit.a", "auditor").await;
    let nurse = f.user(&admin, "ns.a", "nurse").await;
    assert_eq!(
        f.svc
            .new_assessment(&nurse, "mhlw-checklist-medical-r6", "2025-07-01")
            .await
            .unwrap_err()
            .code,
        "forbidden"
    );
    assert_eq!(
        f.svc
            .new_assessment(&auditor, "no-such-catalogue", "")
            .await
            .unwrap_err()
            .code,
        "not_found"
    );
    let last = f
        .svc
        .new_assessment(&auditor, "mhlw-checklist-medical-r6", "2025-07-01")
        .await
        .unwrap();
    let ans = |a: &str, due: &str, note: &str| AnswerInput {
        answer: a.into(),
        owner: "事務長".into(),
        due: due.into(),
        note: note.into(),
    };
    // いいえ needs a target date; overriding an observation needs a note.
    let e = f
        .svc
        .answer_item(&auditor, last, "R6-M-2-08", ans("no", "", ""))
        .await
        .unwrap_err();
    assert_eq!(e.field, Some("due"));
    f.svc
        .answer_item(&auditor, last, "R6-M-2-08", ans("no", "2026-03-31", ""))
        .await
        .unwrap();
    // 1-① is observed いいえ (no officer named yet): saying はい needs a reason.
    let e = f
        .svc
        .answer_item(&auditor, last, "R6-M-1-01", ans("yes", "", ""))
        .await
        .unwrap_err();
    assert_eq!(e.field, Some("note"));
    f.svc
        .answer_item(
            &auditor,
            last,
            "R6-M-1-01",
            ans("yes", "", "院内規程で事務長を指名（紙）"),
        )
        .await
        .unwrap();
    assert_eq!(
        f.svc
            .answer_item(&auditor, last, "R7-M-1-01", ans("yes", "", ""))
            .await
            .unwrap_err()
            .code,
        "not_found"
    );
    // Evidence: a link, a PDF, and a refused executable.
    f.svc
        .add_item_evidence(
            &auditor,
            last,
            "R6-M-2-08",
            EvidenceInput::Link {
                name: "規程".into(),
                url: "https://intra.example/rules".into(),
            },
        )
        .await
        .unwrap();
    f.svc
        .add_item_evidence(
            &auditor,
            last,
            "R6-M-2-08",
            EvidenceInput::File {
                name: "手順書.pdf".into(),
                bytes: b"%PDF-1.4\n%\n".to_vec(),
            },
        )
        .await
        .unwrap();
    let e = f
        .svc
        .add_item_evidence(
            &auditor,
            last,
            "R6-M-2-08",
            EvidenceInput::File {
                name: "run.exe".into(),
                bytes: b"MZ\x90\x00".to_vec(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.field, Some("file"));
    let e = f
        .svc
        .add_item_evidence(
            &auditor,
            last,
            "R6-M-2-08",
            EvidenceInput::Link {
                name: String::new(),
                url: "javascript:alert(1)".into(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.field, Some("url"));

    let v = f.svc.assessment(&auditor, last).await.unwrap();
    let item = |v: &mamori_service::compliance::AssessmentView, id: &str| {
        v.items.iter().find(|i| i.item.id == id).unwrap().clone()
    };
    assert_eq!(item(&v, "R6-M-1-01").resolved.answer, Answer::Yes);
    assert!(item(&v, "R6-M-1-01").resolved.overrides_observation);
    assert_eq!(item(&v, "R6-M-2-08").evidence.len(), 2);
    assert_eq!(v.fiscal_year, 2025);
    // Closing freezes the observations as they are now.
    let unused_before = item(&v, "R6-M-2-05").resolved.answer;
    f.svc.close_assessment(&auditor, last).await.unwrap();
    assert_eq!(
        f.svc
            .answer_item(&auditor, last, "R6-M-2-08", ans("yes", "", ""))
            .await
            .unwrap_err()
            .code,
        "conflict"
    );
    assert_eq!(
        f.svc
            .close_assessment(&auditor, last)
            .await
            .unwrap_err()
            .code,
        "conflict"
    );

    // This year: the officer is named now, so the new assessment observes はい while last
    // year's closed one keeps what it recorded.
    f.svc
        .save_compliance_profile(
            &auditor,
            Profile {
                security_officer: "事務長 中村".into(),
                ..Profile::default()
            },
        )
        .await
        .unwrap();
    let this = f
        .svc
        .new_assessment(&auditor, "mhlw-checklist-medical-r7", "2026-11-26")
        .await
        .unwrap();
    let v = f.svc.assessment(&auditor, this).await.unwrap();
    let officer = item(&v, "R7-M-1-01");
    assert_eq!(officer.resolved.answer, Answer::Yes);
    assert_eq!(officer.resolved.source, mamori_compliance::Source::Observed);
    assert!(
        officer
            .resolved
            .observation
            .as_ref()
            .unwrap()
            .evidence_ja
            .contains("事務長 中村")
    );
    assert_eq!(officer.previous, Some(Answer::Yes));
    assert_eq!(item(&v, "R7-M-2-08").previous, None); // new in R7
    assert_eq!(v.previous.as_ref().unwrap().0.id, last);
    assert!(v.next_steps.iter().all(|s| s.answer != Answer::Yes));
    let closed = f.svc.assessment(&auditor, last).await.unwrap();
    let frozen = item(&closed, "R6-M-1-01");
    assert_eq!(frozen.resolved.answer, Answer::Yes);
    assert!(
        frozen
            .resolved
            .observation
            .as_ref()
            .unwrap()
            .evidence_ja
            .contains("設定されていません")
    );
    assert_eq!(item(&closed, "R6-M-2-05").resolved.answer, unused_before);

    // Reports: JSON lists every item with observed/declared; PDF and HTML render.
    let j = f.svc.assessment_json(Some(&auditor), this).await.unwrap();
    let items = j["items"].as_array().unwrap();
    assert_eq!(items.len(), 18);
    assert!(
        items
            .iter()
            .all(|i| ["observed", "declared", "none"].contains(&i["source"].as_str().unwrap()))
    );
    assert_eq!(items[0]["source"], "observed");
    let doc = f.svc.assessment_doc(Some(&auditor), this).await.unwrap();
    let text = doc.text();
    assert!(
        text.contains("［観測］") && text.contains("事務長 中村"),
        "{text}"
    );
    let pdf = mamori_compliance::pdf::render(&doc);
    assert!(pdf.starts_with(b"%PDF-"));
    assert!(doc.to_html(None, "").contains("自己点検結果"));
    // The command line's operator can report too (recorded without a person).
    let via_cli = f.svc.assessment_json(None, this).await.unwrap();
    assert_eq!(via_cli["items"].as_array().unwrap().len(), 18);
    let listed = f.svc.assessments(&auditor).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().any(|a| a.closed));
}

#[tokio::test]
async fn asset_csv_imports_all_or_nothing_and_the_documents_reflect_settings() {
    let f = fixture().await;
    let admin = f.admin().await;
    let head = "kind,name,location,owner,os,patched_on,remote_maintenance,maintainer,vendor,mds_sds,connection_restriction,note\n";
    f.svc
        .save_asset(
            &admin,
            Asset {
                kind: "server".into(),
                name: "SV1".into(),
                location: "サーバ室".into(),
                owner: "院長".into(),
                os: "Debian".into(),
                patched_on: None,
                remote_maintenance: "no".into(),
                maintainer: String::new(),
                vendor: String::new(),
                mds_sds: "na".into(),
                connection_restriction: String::new(),
                note: String::new(),
            },
        )
        .await
        .unwrap();
    let bad = format!(
        "{head}pc,PC1,受付,事務,Win,2026-11-01,no,,,na,,\npc,PC2,,,,2026-13-01,,,,,,\nphone,X,,,,,,,,,,\n"
    );
    let e = f
        .svc
        .import_assets(&admin, bad.as_bytes())
        .await
        .unwrap_err();
    assert!(
        e.message.contains("何も取り込んでいません"),
        "{}",
        e.message
    );
    assert!(
        e.message.contains("3行目") && e.message.contains("4行目"),
        "{}",
        e.message
    );
    assert_eq!(f.svc.assets(&admin).await.unwrap().len(), 1);
    let good = format!(
        "{head}pc,PC1,受付,事務,Win,2026-11-01,no,,,na,,\nserver,SV1,サーバ室,院長,Debian 13,2026-11-20,no,,,na,,更新\n"
    );
    assert_eq!(
        f.svc.import_assets(&admin, good.as_bytes()).await.unwrap(),
        2
    );
    let rows = f.svc.assets(&admin).await.unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(
        rows.iter()
            .find(|r| r.asset.name == "SV1")
            .unwrap()
            .asset
            .os,
        "Debian 13"
    );
    let csv = f.svc.assets_csv(&admin).await.unwrap();
    assert_eq!(f.svc.import_assets(&admin, &csv).await.unwrap(), 2);
    // MDS/SDS files: a PDF is filed and marks the device received; an executable is refused.
    let id = rows[0].id;
    f.svc
        .attach_mds(&admin, id, "sds.pdf", b"%PDF-1.7\n".to_vec())
        .await
        .unwrap();
    let (name, media, bytes) = f.svc.mds_document(&admin, id).await.unwrap();
    assert_eq!(
        (name.as_str(), media.as_str(), bytes.len()),
        ("sds.pdf", "application/pdf", 9)
    );
    assert!(
        f.svc
            .attach_mds(&admin, id, "x.sh", b"#!/bin/sh".to_vec())
            .await
            .is_err()
    );

    // Risks are seeded once, with the common threats.
    let risks = f.svc.risks(&admin).await.unwrap();
    assert_eq!(risks.len(), 6);
    assert_eq!(f.svc.risks(&admin).await.unwrap().len(), 6);
    assert!(
        risks
            .iter()
            .any(|r| r.risk.threat.contains("ランサムウェア"))
    );

    // The drafts state the live settings.
    use mamori_service::compliance::docs::DocKind;
    let rules = f
        .svc
        .facility_doc(&admin, DocKind::OperatingRules)
        .await
        .unwrap()
        .text();
    assert!(rules.contains("8 文字以上"), "{rules}");
    for article in [
        "情報の破棄",
        "持ち出し",
        "教育と訓練",
        "業務の委託と外部保存",
        "見直し",
    ] {
        assert!(
            rules.contains(article),
            "{article} missing from the rules draft"
        );
    }
    assert!(rules.contains("破棄の証明書"), "{rules}");
    assert!(
        rules.contains("5 分で画面をロック") || rules.contains("分で画面をロック"),
        "{rules}"
    );
    let bcp = f
        .svc
        .facility_doc(&admin, DocKind::BackupBcp)
        .await
        .unwrap()
        .text();
    assert!(bcp.contains("5 世代"), "{bcp}");
    let chart = f
        .svc
        .facility_doc(&admin, DocKind::ContactChart)
        .await
        .unwrap()
        .text();
    assert!(chart.contains("未登録"), "{chart}");
}

#[tokio::test]
async fn idle_lock_and_signatures_are_observed_from_the_configuration() {
    let f = fixture_with(|c| {
        c.session.lock_minutes = 0;
        c.evidence.sign = false;
    })
    .await;
    let admin = f.admin().await;
    assert_eq!(answer_of(&f, &admin, "idle_lock").await, Answer::No);
    assert_eq!(answer_of(&f, &admin, "signatures").await, Answer::No);
    let f = fixture_with(|c| c.evidence.dev_tsa = true).await;
    let admin = f.admin().await;
    assert_eq!(answer_of(&f, &admin, "idle_lock").await, Answer::Yes);
    // Signing with the development TSA is not enough for the guideline: no legal weight.
    let sig = f.svc.observations(&admin).await.unwrap()["signatures"].clone();
    assert_eq!(sig.answer, Answer::No);
    assert!(sig.evidence_ja.contains("開発用"), "{}", sig.evidence_ja);
}

/// Issue #18: an item mamori sees only in part is never はい by observation alone; the sheets'
/// dates are the sheets'; the password item follows the 令和7年度 rule; a role the facility
/// defined is named as something mamori cannot judge.
#[tokio::test]
async fn observations_never_claim_more_than_was_checked() {
    let f = fixture().await;
    let admin = f.admin().await;
    f.svc
        .save_compliance_profile(
            &admin,
            Profile {
                security_officer: "安全 管理".into(),
                director: "院長".into(),
                rules_adopted_on: "2026-04-01".into(),
                bcp_adopted_on: String::new(),
            },
        )
        .await
        .unwrap();
    let id = f
        .svc
        .new_assessment(&admin, "mhlw-guideline-6.0", "2026-11-01")
        .await
        .unwrap();
    let v = f.svc.assessment(&admin, id).await.unwrap();
    let item = |id: &str| v.items.iter().find(|i| i.item.id == id).unwrap().clone();
    let mut partial_seen = 0;
    for i in &v.items {
        if i.item.unseen.is_some() {
            assert_ne!(
                i.resolved.answer,
                Answer::Yes,
                "{} is only partly observed",
                i.item.id
            );
            if i.resolved
                .observation
                .as_ref()
                .is_some_and(|o| o.answer == Answer::Yes)
            {
                assert_eq!(i.resolved.source, Source::PartlyObserved, "{}", i.item.id);
                partial_seen += 1;
            }
        }
    }
    // The operating rules were adopted: GL6-P-1 is seen in part (the adoption, not the review).
    let p1 = item("GL6-P-1");
    assert_eq!(p1.resolved.source, Source::PartlyObserved);
    assert!(
        p1.resolved
            .observation
            .unwrap()
            .unseen_ja
            .unwrap()
            .contains("見直")
    );
    assert!(partial_seen >= 1);
    // The MFA item's date is 令和9年度, so it is not overdue now.
    assert_eq!(item("GL6-S-14-MFA").item.required_by, 2027);
    // GL6-S-12 needs an offline copy: none recorded, so いいえ.
    let s12 = item("GL6-S-12");
    assert_eq!(s12.item.observe.as_deref(), Some("backup_offline"));
    assert_eq!(s12.resolved.answer, Answer::No);

    // The password item: the default policy mixes letters, digits and symbols.
    let obs = f.svc.observations(&admin).await.unwrap();
    assert!(obs["password_policy"].evidence_ja.contains("混在を必須"));
    // A role the facility defined itself: mamori says it cannot judge it.
    assert!(obs["role_access"].unseen_ja.is_none());
    f.svc
        .save_role(
            &admin,
            mamori_service::access::settings::RoleInput {
                code: "night_desk".into(),
                name_ja: "夜間受付".into(),
                grants: vec!["read:*".into()],
                create: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let obs = f.svc.observations(&admin).await.unwrap();
    assert!(
        obs["role_access"]
            .unseen_ja
            .as_deref()
            .is_some_and(|u| u.contains("夜間受付")),
        "{:?}",
        obs["role_access"]
    );
}

#[tokio::test]
async fn a_policy_without_mixing_is_not_the_r7_rule() {
    let f = fixture_with(|c| c.password.require_mix = false).await;
    let admin = f.admin().await;
    let obs = f.svc.observations(&admin).await.unwrap();
    assert_eq!(obs["password_policy"].answer, Answer::No);
    assert!(obs["password_policy"].evidence_ja.contains("求めていない"));
}
