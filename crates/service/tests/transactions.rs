//! 電子帳簿保存法: registering, correcting and cancelling transaction documents, who may, the
//! インボイス checks, the search, the time-stamps and their 一括検証, and the tax officer's ZIP.

mod common;

use std::io::Read;

use common::*;
use mamori_domain::bookkeeping::{Direction, DocType, DocumentFields, InvoiceKind, RateAmount};
use mamori_service::transactions::{StampVerdict, TxFile, TxInput, TxSearch};
use mamori_service::{ErrorCode, Principal};

fn pdf(tag: &str) -> TxFile {
    TxFile {
        name: format!("請求書_{tag}.pdf"),
        bytes: format!("%PDF-1.4\n% {tag}\n%%EOF\n").into_bytes(),
    }
}

fn fixture_file(name: &str) -> TxFile {
    TxFile {
        name: name.into(),
        bytes: std::fs::read(format!(
            "{}/../../tests/fixtures/jp-pint/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    }
}

fn invoice(date: &str, amount: i64, counterparty: &str) -> TxInput {
    TxInput {
        fields: DocumentFields {
            doc_type: DocType::Invoice,
            direction: Direction::Received,
            transaction_date: Some(date.into()),
            amount: Some(amount),
            counterparty: Some(counterparty.into()),
            registration_number: Some("T1180301018771".into()),
            received_on: Some(date.into()),
            invoice_kind: Some(InvoiceKind::Qualified),
            recipient: Some("テスト診療所".into()),
            description: Some("診療材料".into()),
            rates: vec![RateAmount {
                rate: 10,
                base: amount * 10 / 11,
                tax: Some(amount - amount * 10 / 11),
            }],
            ..Default::default()
        },
        ..Default::default()
    }
}

fn today(f: &Fixture) -> String {
    use mamori_domain::Clock;
    mamori_service::ledger::audit::jst_date(f.clock.now())
}

async fn blobs_and_docs(f: &Fixture) -> (usize, usize) {
    let files = f.svc.store().blobs().files().unwrap().len();
    let docs = f
        .svc
        .search_transactions(
            None,
            TxSearch {
                include_cancelled: true,
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .len();
    (files, docs)
}

async fn setup() -> (Fixture, Principal, Principal) {
    let f = fixture_with(|c| c.evidence.dev_tsa = true).await;
    let admin = f.admin().await;
    let accountant = f.user(&admin, "keiri", "accountant").await;
    (f, admin, accountant)
}

#[tokio::test]
async fn only_the_roles_that_hold_the_right_may_register_or_read() {
    let (f, admin, accountant) = setup().await;
    let d = today(&f);
    let ok = f
        .svc
        .register_transaction(
            Some(&accountant),
            invoice(&d, 11_000, "医療材料株式会社"),
            pdf("a"),
        )
        .await
        .unwrap();
    assert!(ok.stamped, "{:?}", ok.stamp_error);
    for role in ["doctor", "nurse", "clerk", "auditor", "sysadmin"] {
        let p = if role == "sysadmin" {
            admin.clone()
        } else {
            f.user(&admin, &format!("u.{role}"), role).await
        };
        let e = f
            .svc
            .register_transaction(Some(&p), invoice(&d, 1, "x"), pdf(role))
            .await
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::Forbidden, "{role}");
        let e = f.svc.transaction(Some(&p), ok.id).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::Forbidden, "{role}");
        let e = f
            .svc
            .search_transactions(Some(&p), TxSearch::default())
            .await
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::Forbidden, "{role}");
    }
    // Each refusal is in the ledger too.
    let refused = f.events("transaction.");
    assert!(refused.iter().filter(|e| e["outcome"] == "denied").count() >= 15);
}

#[tokio::test]
async fn register_correct_cancel_keeps_every_version_and_reason() {
    let (f, _, acc) = setup().await;
    let d = today(&f);
    let w = f
        .svc
        .register_transaction(
            Some(&acc),
            invoice(&d, 11_000, "医療材料株式会社"),
            pdf("v1"),
        )
        .await
        .unwrap();
    let v = f.svc.transaction(Some(&acc), w.id).await.unwrap();
    assert_eq!(v.versions.len(), 1);
    assert!(v.stamp.as_ref().is_some_and(|s| s.development));
    assert!(v.checks.iter().all(|c| c.ok), "{:#?}", v.checks);
    assert!(
        v.warnings.iter().any(|w| w.contains("開発用TSA")),
        "{:?}",
        v.warnings
    );

    // A correction needs its reason and the version it started from.
    let mut fixed = invoice(&d, 12_100, "医療材料株式会社");
    fixed.fields.document_number = Some("INV-7".into());
    let e = f
        .svc
        .correct_transaction(Some(&acc), w.id, 1, fixed.clone(), None, " ".into())
        .await
        .unwrap_err();
    assert_eq!(e.field, Some("reason"));
    let c = f
        .svc
        .correct_transaction(
            Some(&acc),
            w.id,
            1,
            fixed.clone(),
            None,
            "金額の入力誤り".into(),
        )
        .await
        .unwrap();
    assert_eq!(c.version, 2);
    let stale = f
        .svc
        .correct_transaction(Some(&acc), w.id, 1, fixed, None, "二重の訂正".into())
        .await
        .unwrap_err();
    assert_eq!(stale.code, ErrorCode::Conflict);
    // A new file gets its own stamp.
    let c3 = f
        .svc
        .correct_transaction(
            Some(&acc),
            w.id,
            2,
            invoice(&d, 12_100, "医療材料株式会社"),
            Some(pdf("v3")),
            "差し替え後の請求書を受領".into(),
        )
        .await
        .unwrap();
    assert!(c3.stamped);
    let cancelled = f
        .svc
        .cancel_transaction(Some(&acc), w.id, 3, "二重に登録したため".into())
        .await
        .unwrap();
    assert_eq!(cancelled, 4);
    let v = f.svc.transaction(Some(&acc), w.id).await.unwrap();
    assert_eq!(v.document.status, "cancelled");
    let changes: Vec<&str> = v.versions.iter().map(|v| v.change.as_str()).collect();
    assert_eq!(
        changes,
        ["registered", "corrected", "corrected", "cancelled"]
    );
    assert_eq!(v.versions[1].reason.as_deref(), Some("金額の入力誤り"));
    assert_eq!(v.stamps.len(), 2, "both files keep their stamps");
    // The first file still opens.
    let (_, _, first) = f
        .svc
        .transaction_file(Some(&acc), w.id, Some(1))
        .await
        .unwrap();
    assert_eq!(first, pdf("v1").bytes);
    // Cancelled documents drop out of the default search but are found on request.
    assert!(
        f.svc
            .search_transactions(Some(&acc), TxSearch::default())
            .await
            .unwrap()
            .is_empty()
    );
    let all = TxSearch {
        include_cancelled: true,
        ..Default::default()
    };
    assert_eq!(
        f.svc
            .search_transactions(Some(&acc), all)
            .await
            .unwrap()
            .len(),
        1
    );
    // No change can be made to a cancelled one.
    let e = f
        .svc
        .correct_transaction(Some(&acc), w.id, 4, invoice(&d, 1, "x"), None, "r".into())
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidState);
    // Every step is in the ledger with its reason.
    let ev = f.events("transaction.");
    for (action, reason) in [
        ("transaction.corrected", "金額の入力誤り"),
        ("transaction.cancelled", "二重に登録したため"),
    ] {
        assert!(
            ev.iter()
                .any(|e| e["action"] == action && e["detail"]["reason"] == reason),
            "{action}"
        );
    }
}

#[tokio::test]
async fn bad_input_is_refused_by_field_and_nothing_is_kept() {
    let (f, _, acc) = setup().await;
    let d = today(&f);
    let before = blobs_and_docs(&f).await;
    let cases: Vec<(TxInput, TxFile, &str)> = vec![
        (
            {
                let mut i = invoice(&d, 100, "A");
                i.fields.registration_number = Some("T1234567890123".into());
                i
            },
            pdf("cd"),
            "registration_number",
        ),
        (
            invoice("2099-01-01", 100, "A"),
            pdf("future"),
            "transaction_date",
        ),
        (invoice(&d, -100, "A"), pdf("neg"), "amount"),
        (
            invoice(&d, 100, "A"),
            TxFile {
                name: "x.exe".into(),
                bytes: b"MZ\x90\x00".to_vec(),
            },
            "file",
        ),
        (
            invoice(&d, 100, "A"),
            TxFile {
                name: "broken.xml".into(),
                bytes: b"<Invoice><oops".to_vec(),
            },
            "file",
        ),
        (
            invoice(&d, 100, "A"),
            TxFile {
                name: "order.xml".into(),
                bytes: b"<Order xmlns=\"urn:oasis:names:specification:ubl:schema:xsd:Order-2\"/>"
                    .to_vec(),
            },
            "file",
        ),
        (
            invoice(&d, 100, "A"),
            TxFile {
                name: "huge.pdf".into(),
                bytes: [b"%PDF-".as_slice(), &vec![0u8; 21 * 1024 * 1024]].concat(),
            },
            "file",
        ),
        (
            invoice(&d, 100, "A"),
            TxFile {
                name: "empty.pdf".into(),
                bytes: vec![],
            },
            "file",
        ),
    ];
    for (input, file, field) in cases {
        let e = f
            .svc
            .register_transaction(Some(&acc), input, file)
            .await
            .unwrap_err();
        assert_eq!(e.field, Some(field), "{}", e.message);
        assert!(
            e.message
                .chars()
                .any(|c| ('\u{3040}'..='\u{30ff}').contains(&c)),
            "in Japanese: {}",
            e.message
        );
    }
    assert_eq!(blobs_and_docs(&f).await, before, "nothing half-stored");
    // The same number kept as printed is accepted, and its check shows the failure.
    let mut printed = invoice(&d, 100, "A");
    printed.fields.registration_number = Some("T1234567890123".into());
    printed.as_printed = true;
    let w = f
        .svc
        .register_transaction(Some(&acc), printed, pdf("printed"))
        .await
        .unwrap();
    let v = f.svc.transaction(Some(&acc), w.id).await.unwrap();
    assert!(v.checks.iter().any(|c| c.code == "registration" && !c.ok));
    // A duplicate: the same file, or the same counterparty's number and date.
    let e = f
        .svc
        .register_transaction(Some(&acc), invoice(&d, 100, "B"), pdf("printed"))
        .await
        .unwrap_err();
    assert_eq!((e.code, e.field), (ErrorCode::Conflict, Some("file")));
    let mut numbered = invoice(&d, 100, "Ｃ商事");
    numbered.fields.document_number = Some("No.1".into());
    f.svc
        .register_transaction(Some(&acc), numbered.clone(), pdf("n1"))
        .await
        .unwrap();
    numbered.fields.counterparty = Some("株式会社 C商事".into());
    let e = f
        .svc
        .register_transaction(Some(&acc), numbered, pdf("n2"))
        .await
        .unwrap_err();
    assert_eq!(
        (e.code, e.field),
        (ErrorCode::Conflict, Some("document_number"))
    );
}

#[tokio::test]
async fn a_jp_pint_file_fills_the_fields_and_its_checks_show() {
    let (f, _, acc) = setup().await;
    let w = f
        .svc
        .register_transaction(
            Some(&acc),
            TxInput {
                fields: DocumentFields {
                    received_on: Some(today(&f)),
                    ..Default::default()
                },
                given: vec!["received_on"],
                ..Default::default()
            },
            fixture_file("NTA_QandA_45.xml"),
        )
        .await
        .unwrap();
    assert!(w.e_invoice.is_some());
    let v = f.svc.transaction(Some(&acc), w.id).await.unwrap();
    assert_eq!(v.fields.amount, Some(18_400));
    assert_eq!(v.fields.counterparty.as_deref(), Some("株式会社 △△商事"));
    assert_eq!(v.versions[0].media_type, "application/xml");
    // The sample's registration number is the specification's placeholder: shown, not fixed.
    let failed: Vec<&str> = v
        .checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| c.code.as_str())
        .collect();
    assert_eq!(failed, ["registration"]);
    assert_eq!(
        v.fields.registration_number.as_deref(),
        Some("T1234567890123")
    );
}

#[tokio::test]
async fn search_bulk_verification_and_the_tax_officers_zip() {
    let (f, _, acc) = setup().await;
    let d = today(&f);
    let mut ids = Vec::new();
    for (i, (amount, who)) in [
        (11_000, "医療材料株式会社"),
        (55_000, "ＡＢＣ薬品"),
        (3_300, "東京ガス株式会社"),
    ]
    .into_iter()
    .enumerate()
    {
        let w = f
            .svc
            .register_transaction(Some(&acc), invoice(&d, amount, who), pdf(&format!("s{i}")))
            .await
            .unwrap();
        ids.push(w.id);
    }
    let search = |s: TxSearch| {
        let svc = f.svc.clone();
        let acc = acc.clone();
        async move {
            svc.search_transactions(Some(&acc), s)
                .await
                .unwrap()
                .iter()
                .map(|d| d.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        search(TxSearch {
            counterparty: "abc".into(),
            ..Default::default()
        })
        .await,
        [ids[1]]
    );
    assert_eq!(
        search(TxSearch {
            min: "5000".into(),
            max: "20000".into(),
            ..Default::default()
        })
        .await,
        [ids[0]]
    );
    assert_eq!(
        search(TxSearch {
            from: d.clone(),
            to: d.clone(),
            counterparty: "株式会社".into(),
            ..Default::default()
        })
        .await
        .len(),
        3,
        "a corporate-form mark alone matches everything"
    );

    let rep = f
        .svc
        .verify_transaction_stamps(Some(&acc), d.clone(), d.clone())
        .await
        .unwrap();
    assert_eq!((rep.documents, rep.stamps, rep.development), (3, 3, 3));
    assert!(rep.passed(), "{rep:#?}");
    // A file changed on disk is named by the bulk verification.
    let sha = f
        .svc
        .transaction(Some(&acc), ids[0])
        .await
        .unwrap()
        .document
        .file_sha256;
    let path = f.data().join("blobs").join(&sha[..2]).join(&sha[2..]);
    std::fs::write(&path, b"%PDF-1.4 altered").unwrap();
    let rep = f
        .svc
        .verify_transaction_stamps(Some(&acc), d.clone(), d.clone())
        .await
        .unwrap();
    assert!(!rep.passed());
    assert!(
        rep.problems
            .iter()
            .any(|p| p.document == ids[0] && p.verdict == StampVerdict::FileChanged)
    );
    std::fs::write(&path, pdf("s0").bytes).unwrap();

    let (zip, summary) = f
        .svc
        .export_transactions(Some(&acc), d.clone(), d.clone())
        .await
        .unwrap();
    assert_eq!(
        (summary.documents, summary.files, summary.stamps),
        (3, 3, 3)
    );
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap();
    let mut index = Vec::new();
    z.by_name("index.csv")
        .unwrap()
        .read_to_end(&mut index)
        .unwrap();
    assert!(index.starts_with(b"\xef\xbb\xbf"), "UTF-8 with BOM");
    let text = String::from_utf8(index[3..].to_vec()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4);
    assert!(lines[0].starts_with("書類ID,版,状態,書類の種類,受領/発行,取引年月日,取引金額,取引先"));
    assert!(text.contains("ＡＢＣ薬品") && text.contains("55000"));
    for name in ["versions.csv", "tsa-roots.pem", "README.txt"] {
        assert!(z.by_name(name).is_ok(), "{name}");
    }
    let mut file = Vec::new();
    z.by_name(&format!("files/{:06}/v1_請求書_s1.pdf", ids[1]))
        .unwrap()
        .read_to_end(&mut file)
        .unwrap();
    assert_eq!(file, pdf("s1").bytes);
    let ev = f.events("transaction.exported");
    assert_eq!(ev[0]["detail"]["documents"], 3);
    // A period is required.
    let e = f
        .svc
        .export_transactions(Some(&acc), String::new(), d)
        .await
        .unwrap_err();
    assert_eq!(e.field, Some("from"));
}

#[tokio::test]
async fn the_dencho_checklist_is_answered_from_the_documents_both_ways() {
    use mamori_compliance::Answer;
    let (f, admin, acc) = setup().await;
    let auditor = f.user(&admin, "kansa", "auditor").await;
    let observed = |key: &'static str| {
        let svc = f.svc.clone();
        let auditor = auditor.clone();
        async move { svc.observations(&auditor).await.unwrap().remove(key) }
    };
    // Nothing registered: nothing to say about documents (a person answers).
    for key in ["tx_history", "tx_timestamps", "tx_search", "invoice_checks"] {
        assert!(observed(key).await.is_none(), "{key}");
    }
    assert_eq!(observed("tx_retention").await.unwrap().answer, Answer::No);
    let d = today(&f);
    f.svc
        .register_transaction(
            Some(&acc),
            invoice(&d, 11_000, "医療材料株式会社"),
            pdf("o1"),
        )
        .await
        .unwrap();
    let mut blank = invoice(&d, 2_200, "x");
    blank.fields.counterparty = None;
    blank.fields.invoice_kind = None;
    f.svc
        .register_transaction(Some(&acc), blank, pdf("o2"))
        .await
        .unwrap();
    // The development TSA's stamps have no legal weight: いいえ, saying why.
    let t = observed("tx_timestamps").await.unwrap();
    assert_eq!(t.answer, Answer::No);
    assert!(t.evidence_ja.contains("開発用TSA"), "{}", t.evidence_ja);
    let s = observed("tx_search").await.unwrap();
    assert_eq!(s.answer, Answer::No);
    assert!(s.evidence_ja.contains("#2"), "{}", s.evidence_ja);
    assert_eq!(
        observed("invoice_checks").await.unwrap().answer,
        Answer::Yes
    );
    // A failing invoice turns it.
    let mut wrong = invoice(&d, 11_000, "ＡＢＣ商事");
    wrong.fields.rates[0].tax = Some(999);
    f.svc
        .register_transaction(Some(&acc), wrong, pdf("o3"))
        .await
        .unwrap();
    let i = observed("invoice_checks").await.unwrap();
    assert_eq!(i.answer, Answer::No);
    assert!(i.evidence_ja.contains("#3"));
    // Settings saved: retention is the facility's own.
    f.svc
        .save_bookkeeping_settings(Some(&acc), Default::default())
        .await
        .unwrap();
    assert_eq!(observed("tx_retention").await.unwrap().answer, Answer::Yes);
    // History: vouched for once the ledger is verified.
    assert_eq!(observed("tx_history").await.unwrap().answer, Answer::No);
    f.svc.verify_and_record(None).await.unwrap();
    assert_eq!(observed("tx_history").await.unwrap().answer, Answer::Yes);
    // The catalogue is there with these items observed.
    let (list, problems) = f.svc.catalogue_summaries();
    assert!(problems.is_empty(), "{problems:?}");
    assert!(
        list.iter()
            .any(|c| c.header.id == "nta-dencho-2024" && c.observable == 6)
    );
}

fn registry_csv(rows: &[(&str, &str, &str, &str)]) -> Vec<u8> {
    rows.iter()
        .map(|(number, registered, cancelled, name)| {
            let mut cols = vec![String::new(); 30];
            cols[1] = number.to_string();
            cols[2] = "01".into();
            cols[4] = "2".into();
            cols[6] = "1".into();
            cols[7] = registered.to_string();
            cols[9] = cancelled.to_string();
            cols[18] = name.to_string();
            cols.join(",")
        })
        .collect::<Vec<_>>()
        .join("\n")
        .into_bytes()
}

#[tokio::test]
async fn the_nta_registry_confirms_numbers_on_the_transaction_date() {
    let (f, _, acc) = setup().await;
    let d = today(&f);
    let w = f
        .svc
        .register_transaction(
            Some(&acc),
            invoice(&d, 11_000, "医療材料株式会社"),
            pdf("r1"),
        )
        .await
        .unwrap();
    // Before any import the check is not made (format and check digit only).
    let v = f.svc.transaction(Some(&acc), w.id).await.unwrap();
    assert!(!v.checks.iter().any(|c| c.code == "registry"));
    // A broken file is refused in Japanese and imports nothing.
    let e = f
        .svc
        .import_invoice_registry(Some(&acc), "x.csv".into(), b"a,b\n".to_vec())
        .await
        .unwrap_err();
    assert_eq!(e.field, Some("file"));
    assert!(e.message.contains("公表サイト"));
    assert!(f.svc.invoice_registry_status().await.unwrap().is_none());
    // Registered: the check passes.
    let s = f
        .svc
        .import_invoice_registry(
            Some(&acc),
            "zenken.csv".into(),
            registry_csv(&[("1180301018771", "2023-10-01", "", "医療材料株式会社")]),
        )
        .await
        .unwrap();
    assert_eq!(s.rows, 1);
    let v = f.svc.transaction(Some(&acc), w.id).await.unwrap();
    let c = v.checks.iter().find(|c| c.code == "registry").unwrap();
    assert!(c.ok, "{}", c.message);
    // A later 差分 file cancels it before the transaction date: the check fails, saying so.
    f.svc
        .import_invoice_registry(
            Some(&acc),
            "sabun.csv".into(),
            registry_csv(&[(
                "T1180301018771",
                "2023-10-01",
                "2024-03-31",
                "医療材料株式会社",
            )]),
        )
        .await
        .unwrap();
    let v = f.svc.transaction(Some(&acc), w.id).await.unwrap();
    let c = v.checks.iter().find(|c| c.code == "registry").unwrap();
    assert!(!c.ok && c.message.contains("取消済み"), "{}", c.message);
    let ev = f.events("transaction.registry_imported");
    assert_eq!(ev.len(), 3, "two imports and the refusal: {ev:#?}");
    // verify recomputes the digest the import stated.
    let rep = f.svc.verify_and_record(None).await.unwrap();
    assert!(rep.ok, "{:?}", rep.problems);
}

/// DC-A-2 follows the configured accredited TSAs: a TSA nothing names accredited is only part
/// of the item (はい with what mamori could not see); named, a full はい; named under another
/// policy, いいえ with the documents.
#[tokio::test]
async fn the_time_stamp_item_follows_the_tsas_named_accredited() {
    use mamori_compliance::Answer;
    let tsa_dir = tempfile::tempdir().unwrap();
    let tsa = common::openssl_tsa::openssl_tsa(tsa_dir.path());
    let config = |policies: &'static str| {
        let url = tsa.url.clone();
        move |c: &mut mamori_service::Config| {
            c.evidence.tsa_urls = url;
            c.evidence.tsa_trust = "tsa-roots.pem".into();
            if !policies.is_empty() {
                c.evidence.accredited_tsa_certs = "tsa-roots.pem".into();
                c.evidence.accredited_tsa_policies = policies.into();
            }
        }
    };
    let f = fixture_with(config("")).await;
    // OpenSSL stamps with the real time; the instance's clock follows.
    f.run_on_real_time();
    std::fs::write(f.data().join("tsa-roots.pem"), &tsa.root_pem).unwrap();
    let admin = f.admin().await;
    let acc = f.user(&admin, "keiri", "accountant").await;
    let auditor = f.user(&admin, "kansa", "auditor").await;
    let d = today(&f);
    let ok = f
        .svc
        .register_transaction(
            Some(&acc),
            invoice(&d, 11_000, "医療材料株式会社"),
            pdf("t1"),
        )
        .await
        .unwrap();
    assert!(ok.stamped, "{:?}", ok.stamp_error);
    let observed = |f: &Fixture| {
        let (svc, auditor) = (f.svc.clone(), auditor.clone());
        async move {
            svc.observations(&auditor)
                .await
                .unwrap()
                .remove("tx_timestamps")
                .unwrap()
        }
    };
    let o = observed(&f).await;
    assert!(o.is_partial_yes(), "{o:?}");
    assert!(o.unseen_ja.unwrap().contains("総務大臣認定"));

    // The same instance with the TSA named accredited, then under another policy.
    let reopen = |f: Fixture, tweak: Box<dyn FnOnce(&mut mamori_service::Config)>| {
        let Fixture { dir, svc, clock } = f;
        svc.store().close();
        drop(svc);
        let data = dir.path().join("data");
        let mut cfg = fast_config(&data);
        tweak(&mut cfg);
        let svc = mamori_service::instance::open_with(
            &data,
            clock.clone(),
            mamori_store::StoreOptions::default(),
            Some(cfg),
        )
        .unwrap();
        Fixture { dir, svc, clock }
    };
    let f = reopen(f, Box::new(config("1.2.3.4.1")));
    let o = observed(&f).await;
    assert_eq!(o.answer, Answer::Yes);
    assert!(o.unseen_ja.is_none(), "{o:?}");
    assert!(
        o.evidence_ja.contains("総務大臣認定として設定された"),
        "{}",
        o.evidence_ja
    );
    let f = reopen(f, Box::new(config("1.2.392.200999.1")));
    let o = observed(&f).await;
    assert_eq!(o.answer, Answer::No);
    assert!(o.evidence_ja.contains("#1"), "{}", o.evidence_ja);
}
