//! `mamori demo`: a clinic with staff of every role, about 50 patients and a few hundred
//! records with versions, written through the same service calls as real use (so the ledger
//! holds every step), on a clock that walks through the past six months.

use mamori_service::ErrorCode;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use mamori_domain::Clock;
use mamori_service::access::accounts::NewAccount;
use mamori_service::instance::{InitParams, init, is_instance, open_with};
use mamori_service::records::patients::NewPatient;
use mamori_service::records::{RecordInput, Upload};
use mamori_service::{Principal, Service, ServiceError};
use mamori_store::StoreOptions;

pub const DEMO_PASSWORD: &str = "mamori-demo-2026";
/// Every demo signer's signing PIN (a real one is the holder's own secret).
pub const DEMO_SIGNING_PIN: &str = "mamori-sign-2026";
const INITIAL: &str = "demo initial 2026";

pub const STAFF: &[(&str, &str, &str)] = &[
    ("dr.tanaka", "田中 一郎", "doctor"),
    ("dr.suzuki", "鈴木 花子", "doctor"),
    ("dent.kobayashi", "小林 健", "dentist"),
    ("ph.yamamoto", "山本 薫", "pharmacist"),
    ("ns.sato", "佐藤 美咲", "nurse"),
    ("rt.watanabe", "渡辺 翔", "radiographer"),
    ("mt.ito", "伊藤 彩", "lab_technician"),
    ("clerk.nakamura", "中村 由美", "clerk"),
    ("audit.kato", "加藤 誠", "auditor"),
    ("keiri.kimura", "木村 恵", "accountant"),
    ("se.yoshida", "吉田 大輔", "maintenance"),
];

struct StepClock(AtomicI64);

impl Clock for StepClock {
    fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// The login of the demo EHR's service account.
const DEMO_EHR: &str = "ehr.demo";

fn banner(dir: &Path, listen: &str) -> String {
    let mut s = format!(
        "デモ診療所「守りクリニック」のデータ: {}\n\nデモ用アカウント（パスワードはすべて {DEMO_PASSWORD}）:\n  admin            システム管理者\n",
        dir.display()
    );
    for (login, name, role) in STAFF {
        s.push_str(&format!("  {login:<16} {name}（{role}）\n"));
    }
    s.push_str(
        "（保守要員 se.yoshida は、admin が 管理 › 保守作業 で承認した作業時間の中でだけログインできます）\n",
    );
    s.push_str(&format!(
        "\nバックアップ: 起動2分後に {} へ（管理 › バックアップ）。手動では\n  mamori backup run --data {} --key-file {}\n",
        mamori_service::Config::load(dir)
            .map(|c| c.backup.targets)
            .unwrap_or_default(),
        dir.display(),
        dir.join(DEMO_BACKUP_KEY).display()
    ));
    s.push_str(&format!(
        "\n電子署名: 確定した記録は、作成者が署名用 PIN（デモではすべて {DEMO_SIGNING_PIN}）で署名ウィンドウを開くと\n  本人の鍵（SoftHSM2 のトークン内）で署名され、開発用TSA（法的効力なし）でタイムスタンプが付きます。\n  検証: mamori evidence verify --data {}\n",
        dir.display()
    ));
    s.push_str(&format!(
        "\nAPI の例: curl -s -X POST http://{listen}/api/v1/auth/login -H 'content-type: application/json' \\\n"
    ));
    s.push_str(&format!(
        "           -d '{{\"login\":\"dr.tanaka\",\"password\":\"{DEMO_PASSWORD}\"}}'\n"
    ));
    s.push_str(&format!(
        "FHIR R4 (JP Core): curl -s http://{listen}/fhir/r4/metadata（docs/fhir.md）\n  電子カルテ連携のサービスアカウント {DEMO_EHR}: OAuth クライアント（SMART Backend Services）の登録は docs/fhir.md\n"
    ));
    s
}

/// Creates the demo instance if `dir` has none; returns the text to print.
pub fn prepare(dir: &Path, listen: &str) -> Result<String, ServiceError> {
    if is_instance(dir) {
        return Ok(banner(dir, listen));
    }
    println!("デモ診療所を作成しています（初回のみ、数秒かかります）…");
    init(
        dir,
        &InitParams {
            facility: "守りクリニック（デモ）",
            admin_login: "admin",
            admin_password: INITIAL,
        },
    )?;
    // Signatures and time-stamps from the start: the demo's finalised records are signed as
    // they are seeded, by the development TSA (labelled as having no legal weight).
    let mut cfg = mamori_service::Config::load(dir)?;
    cfg.evidence.dev_tsa = true;
    // A made-up 保険医療機関コード (東京都 13, 医科 1): the system of the demo's patient IDs in FHIR.
    cfg.facility.institution_code = "1311234567".into();
    std::fs::write(dir.join(mamori_service::config::CONFIG_FILE), cfg.to_toml())
        .map_err(|e| ServiceError::new(ErrorCode::Io, e.to_string()))?;
    let now = mamori_domain::SystemClock.now();
    let clock = Arc::new(StepClock(AtomicI64::new(now - 180 * 86_400_000)));
    let svc = open_with(dir, clock.clone(), StoreOptions::default(), None)?;
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let result = rt.block_on(seed(&svc, &clock, now));
    rt.block_on(svc.checkpoint_now())?;
    svc.store().close();
    result?;
    configure_backups(dir)?;
    Ok(banner(dir, listen))
}

/// Backups for the demo: a key file in the data directory (a real clinic keeps it elsewhere,
/// and a printed copy in a safe) and a directory target beside it; `serve` takes the first
/// backup two minutes after it starts.
fn configure_backups(dir: &Path) -> Result<(), ServiceError> {
    let io = |e: std::io::Error| ServiceError::new(ErrorCode::Io, e.to_string());
    let key = dir.join(DEMO_BACKUP_KEY);
    std::fs::write(&key, mamori_service::backup::KeyFile::generate().to_text()).map_err(io)?;
    mamori_store::restrict_file(&key).map_err(io)?;
    let abs = std::path::absolute(dir).map_err(io)?;
    let target = abs.parent().unwrap_or(&abs).join(format!(
        "{}-backups",
        abs.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    ));
    let mut cfg = mamori_service::Config::load(dir)?;
    cfg.backup.targets = target.display().to_string();
    cfg.backup.key_file = DEMO_BACKUP_KEY.into();
    std::fs::write(dir.join(mamori_service::config::CONFIG_FILE), cfg.to_toml()).map_err(io)?;
    Ok(())
}

const DEMO_BACKUP_KEY: &str = "backup-key.txt";

fn pick<'a>(list: &[&'a str], i: usize) -> &'a str {
    list[i % list.len()]
}

/// An approved two-hour maintenance window for `login`, starting now (demo time).
async fn demo_window(
    svc: &Arc<Service>,
    admin: &Principal,
    login: &str,
) -> Result<i64, ServiceError> {
    let id = svc
        .list_accounts(admin)
        .await?
        .into_iter()
        .find(|a| a.login == login)
        .map(|a| a.id)
        .ok_or_else(|| ServiceError::not_found("アカウント"))?;
    let now = svc.now();
    let w = svc
        .request_maintenance(
            admin,
            mamori_service::access::maintenance::WindowRequest {
                account_id: id,
                starts_at: now,
                ends_at: now + 2 * 3_600_000,
                purpose: "mamori 導入時の初期設定（ベンダー作業）".into(),
                personal_info: false,
            },
        )
        .await?;
    svc.decide_maintenance(admin, w.window.id, true).await?;
    Ok(w.window.id)
}

async fn seed(svc: &Arc<Service>, clock: &StepClock, end: i64) -> Result<(), ServiceError> {
    let ok = svc
        .change_password("admin", INITIAL, DEMO_PASSWORD, None)
        .await?;
    let admin = svc.authenticate(&ok.token, None).await?;
    let mut staff: Vec<Principal> = Vec::new();
    let mut maintenance_windows = Vec::new();
    for (login, name, role) in STAFF {
        svc.create_account(
            &admin,
            NewAccount {
                login: (*login).into(),
                display_name: (*name).into(),
                role: (*role).into(),
                password: Some(INITIAL.into()),
                service: false,
            },
        )
        .await?;
        if *role == mamori_service::access::maintenance::MAINTENANCE_ROLE {
            // The engineer's first sign-in happens inside an approved set-up window, as it
            // must; the window's report is acknowledged once it has passed.
            maintenance_windows.push(demo_window(svc, &admin, login).await?);
        }
        let ok = svc
            .change_password(login, INITIAL, DEMO_PASSWORD, None)
            .await?;
        staff.push(svc.authenticate(&ok.token, None).await?);
    }
    // The EHR's service account: it signs in with an OAuth client (a key of the EHR's own,
    // registered by the administrator) or an API token, never with a password (docs/fhir.md).
    svc.create_account(
        &admin,
        NewAccount {
            login: DEMO_EHR.into(),
            display_name: "電子カルテ連携（デモ）".into(),
            role: "clerk".into(),
            password: None,
            service: true,
        },
    )
    .await?;
    let by = |login: &str| {
        staff
            .iter()
            .find(|p| p.account.login == login)
            .expect("demo staff")
            .clone()
    };
    let signers = demo_signing_keys(svc, &staff).await?;
    let (tanaka, suzuki, dentist) = (by("dr.tanaka"), by("dr.suzuki"), by("dent.kobayashi"));
    let (pharm, nurse, rt, mt, clerk) = (
        by("ph.yamamoto"),
        by("ns.sato"),
        by("rt.watanabe"),
        by("mt.ito"),
        by("clerk.nakamura"),
    );

    let surnames = [
        ("佐々木", "ササキ"),
        ("山口", "ヤマグチ"),
        ("松本", "マツモト"),
        ("井上", "イノウエ"),
        ("木村", "キムラ"),
        ("林", "ハヤシ"),
        ("斎藤", "サイトウ"),
        ("清水", "シミズ"),
        ("山崎", "ヤマザキ"),
        ("森", "モリ"),
        ("池田", "イケダ"),
        ("橋本", "ハシモト"),
        ("阿部", "アベ"),
        ("石川", "イシカワ"),
        ("前田", "マエダ"),
        ("藤田", "フジタ"),
        ("小川", "オガワ"),
    ];
    let given = [
        ("太郎", "タロウ", "male"),
        ("陽子", "ヨウコ", "female"),
        ("健太", "ケンタ", "male"),
        ("真理子", "マリコ", "female"),
        ("翔太", "ショウタ", "male"),
        ("さくら", "サクラ", "female"),
        ("誠", "マコト", "male"),
    ];
    let complaints = [
        "頭痛",
        "咳嗽・発熱",
        "腹痛",
        "腰痛",
        "めまい",
        "高血圧の定期受診",
        "糖尿病の定期受診",
        "皮疹",
    ];
    let plans = [
        "経過観察。2週間後に再診。",
        "血液検査を実施。",
        "内服薬を処方。",
        "紹介状を作成。",
        "生活指導を行った。",
    ];
    let drugs = [
        "アムロジピン錠5mg 1日1回",
        "ロキソプロフェン錠60mg 頓用",
        "メトホルミン錠250mg 1日2回",
        "カルボシステイン錠500mg 1日3回",
    ];

    let patients = 50usize;
    let total_steps = patients as i64 * 6;
    let start = clock.now();
    let step = (end - start - 3_600_000) / total_steps.max(1);
    let tick = || {
        clock.0.fetch_add(step, Ordering::SeqCst);
    };
    for i in 0..patients {
        let (sn, sk) = surnames[i % surnames.len()];
        let (gn, gk, sex) = given[(i * 3) % given.len()];
        let pid = format!("P{:05}", 1001 + i);
        svc.create_patient(
            &clerk,
            NewPatient {
                id: pid.clone(),
                name_kanji: format!("{sn} {gn}"),
                name_kana: format!("{sk} {gk}"),
                birth_date: format!(
                    "{}-{:02}-{:02}",
                    1940 + (i * 7) % 75,
                    1 + i % 12,
                    1 + (i * 5) % 28
                ),
                sex: sex.into(),
            },
        )
        .await?;
        let doctor = if i % 2 == 0 { &tanaka } else { &suzuki };
        let c = pick(&complaints, i);
        let note = |visit: usize| -> String {
            format!(
                "S: {c}を主訴に来院（{visit}回目）。\nO: 体温 36.{}℃、血圧 1{}/{} mmHg。\nA: {c}。\nP: {}",
                (i + visit) % 10,
                20 + (i * 3 + visit) % 30,
                70 + (i + visit) % 20,
                pick(&plans, i + visit)
            )
        };
        // Two visits' notes by the doctor, finalised; some amended later.
        for visit in 1..=2 {
            tick();
            let w = finalised(
                svc,
                doctor,
                input(
                    &pid,
                    "medical_record",
                    &format!("外来診療録（{c}）"),
                    &note(visit),
                ),
                vec![],
            )
            .await?;
            if (i + visit) % 4 == 0 {
                let mut a = input(
                    "",
                    "",
                    &format!("外来診療録（{c}）"),
                    &format!("{}\n追記: 検査結果を踏まえ診断を確定。", note(visit)),
                );
                a.reason = Some("検査結果の追記".into());
                svc.amend_record(doctor, w.record_id, a, vec![]).await?;
            }
        }
        tick();
        finalised(
            svc,
            &nurse,
            input(
                &pid,
                "nursing",
                "看護記録",
                &format!("バイタル測定。{c}について説明し、不安の訴えなし。"),
            ),
            vec![],
        )
        .await?;
        tick();
        finalised(
            svc,
            doctor,
            input(&pid, "prescription", "処方箋", pick(&drugs, i)),
            vec![],
        )
        .await?;
        tick();
        if i % 2 == 0 {
            finalised(
                svc,
                &mt,
                input(
                    &pid,
                    "lab_result",
                    "血液検査結果",
                    "WBC 6200 /μL, Hb 13.8 g/dL, CRP 0.2 mg/dL",
                ),
                vec![],
            )
            .await?;
        } else {
            let png = Upload {
                name: "胸部X線.png".into(),
                bytes: demo_png(),
            };
            finalised(
                svc,
                &rt,
                input(
                    &pid,
                    "imaging",
                    "胸部X線撮影",
                    "胸部正面像。明らかな異常陰影なし。",
                ),
                vec![png],
            )
            .await?;
        }
        if i % 5 == 0 {
            finalised(
                svc,
                &pharm,
                input(
                    &pid,
                    "pharmacy",
                    "服薬指導記録",
                    "服用方法と副作用について説明した。",
                ),
                vec![],
            )
            .await?;
        }
        if i % 7 == 3 {
            finalised(
                svc,
                &dentist,
                input(
                    &pid,
                    "medical_record",
                    "歯科診療録",
                    "右下6番 う蝕。CR充填。",
                ),
                vec![],
            )
            .await?;
        }
        tick();
        // The clerk enters referral letters on the doctor's behalf; the newest wait for approval.
        let mut r = input(
            &pid,
            "referral",
            "診療情報提供書",
            &format!("{c}の精査をお願いいたします。"),
        );
        r.author_id = Some(doctor.account.id);
        let w = svc.create_record(&clerk, r, vec![]).await?;
        svc.submit_record(&clerk, w.record_id).await?;
        if i < patients - 6 {
            svc.approve_record(doctor, w.record_id).await?;
        }
        if i % 10 == 9 {
            svc.create_record(
                doctor,
                input(&pid, "medical_record", "次回の方針（下書き）", "検討中"),
                vec![],
            )
            .await?;
        }
        if i % 16 == 15 {
            let w = finalised(
                svc,
                doctor,
                input(
                    &pid,
                    "medical_record",
                    "外来診療録",
                    "別患者の内容を誤って入力",
                ),
                vec![],
            )
            .await?;
            svc.mark_entered_in_error(doctor, w.record_id, "患者取り違えのため".into())
                .await?;
        }
    }
    for id in maintenance_windows {
        svc.acknowledge_maintenance(&admin, id, "初期設定の作業報告を確認した")
            .await?;
    }
    sign_as_the_authors(svc, &signers).await?;
    if !signers.is_empty() {
        // Two of today's records wait for dr.tanaka's signature (her home page lists them).
        let pid = "P01001";
        for title in ["本日の外来診療録", "紹介状（下書きから確定）"] {
            finalised(
                svc,
                &tanaka,
                input(
                    pid,
                    "medical_record",
                    title,
                    "署名ウィンドウを開くと署名されます",
                ),
                vec![],
            )
            .await?;
        }
    }
    // People who work here sign in regularly; one technician has not for months (the
    // account the checklist's 不要なアカウント item flags until someone disables it).
    for (login, _, role) in STAFF {
        if *role != mamori_service::access::maintenance::MAINTENANCE_ROLE && *login != IDLE_STAFF {
            svc.login(login, DEMO_PASSWORD, None).await?;
        }
    }
    svc.login("admin", DEMO_PASSWORD, None).await?;
    seed_compliance(svc, &admin).await?;
    crate::demo_books::seed(svc, &by("keiri.kimura"), clock.now()).await?;
    // The ledger verified once set up, as `serve` does every `ledger.verify_interval_hours`.
    svc.verify_and_record(None).await?;
    Ok(())
}

const IDLE_STAFF: &str = "mt.ito";

/// Each member of staff who finalises records sets a signing PIN: a key in a token of their
/// own. None when no PKCS#11 token is available (the records then wait for signatures).
async fn demo_signing_keys(
    svc: &Arc<Service>,
    staff: &[Principal],
) -> Result<Vec<Principal>, ServiceError> {
    let mut signers = Vec::new();
    for p in staff {
        if !p
            .role
            .allows(mamori_domain::permission::Action::Finalise, None)
        {
            continue;
        }
        let change = mamori_service::evidence::PinChange::new_key(DEMO_SIGNING_PIN, DEMO_PASSWORD);
        match svc.set_signing_pin(p, &change).await {
            Ok(_) => signers.push(p.clone()),
            Err(e) if e.code == ErrorCode::TokenUnavailable => {
                println!("（電子署名なし: {}）", e.message);
                return Ok(Vec::new());
            }
            Err(e) => return Err(e),
        }
    }
    Ok(signers)
}

/// Each signer opens their signing window once, at the end of the demo's half year, and
/// signs what they finalised; then closes it, as at the end of a working day.
async fn sign_as_the_authors(
    svc: &Arc<Service>,
    signers: &[Principal],
) -> Result<(), ServiceError> {
    for p in signers {
        let mut rep = svc.open_signing_window(p, DEMO_SIGNING_PIN).await?;
        while rep.remaining > 0 && rep.signed > 0 {
            rep = svc.sign_pending(p).await?;
        }
        svc.close_signing_window(p).await?;
    }
    Ok(())
}

/// Last year's closed self-assessment, the security organisation, part of the contact chart
/// and of the asset ledger: enough that a new assessment shows observed answers both ways.
async fn seed_compliance(svc: &Arc<Service>, admin: &Principal) -> Result<(), ServiceError> {
    use mamori_compliance::assets::Asset;
    use mamori_service::compliance::AnswerInput;
    use mamori_service::compliance::facility::ContactInput;
    svc.save_compliance_profile(
        admin,
        mamori_service::compliance::observe::Profile {
            security_officer: "事務長 中村 恵".into(),
            director: "院長 田中 一郎".into(),
            rules_adopted_on: String::new(),
            bcp_adopted_on: String::new(),
        },
    )
    .await?;
    let contact = |category: &str, name: &str, organisation: &str, phone: &str| ContactInput {
        category: category.into(),
        name: name.into(),
        organisation: organisation.into(),
        phone: phone.into(),
        email: String::new(),
        note: String::new(),
    };
    svc.save_contacts(
        admin,
        vec![
            contact(
                "internal",
                "安全管理責任者 中村",
                "みなと診療所 事務",
                "内線 201",
            ),
            contact("internal", "院長 田中", "みなと診療所", "内線 100"),
            contact(
                "vendor",
                "電子カルテ保守窓口",
                "（株）サンプルメディカル",
                "0120-000-000",
            ),
        ],
    )
    .await?;
    let asset = |kind: &str,
                 name: &str,
                 location: &str,
                 os: &str,
                 patched: &str,
                 remote: &str,
                 vendor: &str,
                 mds: &str,
                 restriction: &str| Asset {
        kind: kind.into(),
        name: name.into(),
        location: location.into(),
        owner: "事務長 中村".into(),
        os: os.into(),
        patched_on: Some(patched.into()),
        remote_maintenance: remote.into(),
        maintainer: if remote == "yes" {
            vendor.into()
        } else {
            String::new()
        },
        vendor: vendor.into(),
        mds_sds: mds.into(),
        connection_restriction: restriction.into(),
        note: String::new(),
    };
    let today = mamori_service::ledger::audit::jst_date(svc.now());
    for a in [
        asset(
            "server",
            "mamori サーバ",
            "サーバ室",
            "Debian 12",
            &today,
            "no",
            "",
            "na",
            "院内LANのみ・クライアント証明書",
        ),
        asset(
            "pc",
            "診察室1 PC",
            "診察室1",
            "Windows 11 24H2",
            &today,
            "no",
            "",
            "na",
            "",
        ),
        asset(
            "pc",
            "受付PC",
            "受付",
            "Windows 10 22H2",
            "2025-01-15",
            "unknown",
            "",
            "na",
            "",
        ),
        asset(
            "network",
            "UTM（VPN装置）",
            "サーバ室",
            "FortiOS 7.2",
            &today,
            "yes",
            "（株）サンプルネット",
            "not_received",
            "保守VPNは作業時のみ開放",
        ),
    ] {
        svc.save_asset(admin, a).await?;
    }
    // Last fiscal year's assessment on the 令和6年度 sheet, answered and closed.
    let last = svc
        .new_assessment(admin, "mhlw-checklist-medical-r6", "2025-07-01")
        .await?;
    for (item, answer, due) in [
        ("R6-M-2-02", "no", "2025-12-31"),
        ("R6-M-2-03", "no", "2026-03-31"),
        ("R6-M-2-08", "yes", ""),
        ("R6-M-2-09", "yes", ""),
        ("R6-M-2-10", "yes", ""),
        ("R6-M-2-12", "no", "2026-03-31"),
        ("R6-M-3-03", "no", "2026-03-31"),
    ] {
        svc.answer_item(
            admin,
            last,
            item,
            AnswerInput {
                answer: answer.into(),
                owner: "事務長 中村".into(),
                due: due.into(),
                note: String::new(),
            },
        )
        .await?;
    }
    svc.close_assessment(admin, last).await
}

/// Writes a record and finalises it as its author.
async fn finalised(
    svc: &Arc<Service>,
    who: &Principal,
    input: RecordInput,
    uploads: Vec<Upload>,
) -> Result<mamori_service::records::WriteResult, ServiceError> {
    let w = svc.create_record(who, input, uploads).await?;
    svc.finalise_record(who, w.record_id).await
}

fn input(pid: &str, kind: &str, title: &str, body: &str) -> RecordInput {
    RecordInput {
        patient_id: pid.into(),
        kind: kind.into(),
        title: title.into(),
        body: body.into(),
        ..Default::default()
    }
}

/// A tiny valid PNG (a grey 1×1 image) standing in for an X-ray.
fn demo_png() -> Vec<u8> {
    vec![
        0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44,
        0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x00, 0x00, 0x00, 0x3A,
        0x7E, 0x9B, 0x55, 0x00, 0x00, 0x00, 0x0A, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x68,
        0x00, 0x00, 0x00, 0x82, 0x00, 0x81, 0x77, 0xCD, 0x72, 0xB6, 0x00, 0x00, 0x00, 0x00, 0x49,
        0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
    ]
}
