//! `mamori transactions`: import (a JP PINT file needs no flags; the new ID is the last line),
//! search, the tax officer's ZIP, 一括検証 and the registration-number check, each with its
//! Japanese refusal and exit code.

mod support;

use std::io::Read;
use std::path::Path;

use support::*;

fn fixture(name: &str) -> String {
    format!(
        "{}/../../tests/fixtures/jp-pint/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn last_line(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .to_owned()
}

fn with_dev_tsa(data: &Path) {
    let mut cfg = mamori_service::Config::load(data).unwrap();
    cfg.evidence.dev_tsa = true;
    std::fs::write(
        data.join(mamori_service::config::CONFIG_FILE),
        cfg.to_toml(),
    )
    .unwrap();
}

#[test]
fn check_number_exit_codes() {
    let ok = mamori(&["transactions", "check-number", "T1180301018771"]);
    assert!(ok.status.success(), "{}", text(&ok));
    let bad = mamori(&["transactions", "check-number", "T1234567890123"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(text(&bad).contains("検査用数字"), "{}", text(&bad));
    let short = mamori(&["transactions", "check-number", "T12345"]);
    assert_eq!(short.status.code(), Some(1));
    assert!(text(&short).contains("13桁"));
    // A sole proprietor's number: format only.
    let ind = mamori(&[
        "transactions",
        "check-number",
        "--individual",
        "T1234567890123",
    ]);
    assert!(ind.status.success(), "{}", text(&ind));
}

#[test]
fn import_search_export_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let data = init_instance(dir.path());
    with_dev_tsa(&data);
    let d = data.to_str().unwrap();

    // A JP PINT e-invoice: no flags needed.
    let out = mamori(&[
        "transactions",
        "import",
        "--data",
        d,
        &fixture("NTA_QandA_45.xml"),
        "--received",
        "2023-12-04",
    ]);
    let printed = assert_prints(&out, &["電子インボイス", "タイムスタンプを付与しました"]);
    let xml_id: i64 = last_line(&out)
        .parse()
        .unwrap_or_else(|_| panic!("{printed}"));

    // A PDF with its fields.
    let pdf = dir.path().join("請求書.pdf");
    std::fs::write(&pdf, b"%PDF-1.4\n% cli\n%%EOF\n").unwrap();
    let args = |extra: &[&str]| {
        let mut a = vec!["transactions", "import", "--data", d, pdf.to_str().unwrap()];
        a.extend_from_slice(extra);
        a.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let run = |a: Vec<String>| mamori(&a.iter().map(String::as_str).collect::<Vec<_>>());
    // Bad input: named field, Japanese, non-zero, nothing stored.
    for (extra, expect) in [
        (vec!["--registration", "T1234567890123"], "検査用数字"),
        (vec!["--date", "2099-01-01"], "未来"),
        (vec!["--amount", "-5"], "0以上"),
        (vec!["--type", "memo"], "--type"),
    ] {
        let o = run(args(&extra));
        assert!(!o.status.success(), "{extra:?}");
        assert!(text(&o).contains(expect), "{extra:?}: {}", text(&o));
    }
    let broken = dir.path().join("broken.xml");
    std::fs::write(
        &broken,
        "<Invoice xmlns=\"urn:oasis:names:specification:ubl:schema:xsd:Invoice-2\"><cbc:ID>",
    )
    .unwrap();
    let o = mamori(&[
        "transactions",
        "import",
        "--data",
        d,
        broken.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("電子インボイス（XML）を読めません"),
        "{}",
        text(&o)
    );
    let o = run(args(&[
        "--date",
        "2023-11-20",
        "--amount",
        "55000",
        "--counterparty",
        "ＡＢＣ薬品株式会社",
        "--registration",
        "T4011001098993",
        "--received",
        "2023-11-21",
    ]));
    assert_prints(&o, &["登録し"]);
    let pdf_id: i64 = last_line(&o).parse().unwrap();
    // The same file again is a duplicate.
    let o = run(args(&["--date", "2023-11-20"]));
    assert!(!o.status.success());
    assert!(text(&o).contains("二重登録"), "{}", text(&o));

    // Search: by amount range, by counterparty, combined; JSON for scripts.
    let o = mamori(&[
        "transactions",
        "search",
        "--data",
        d,
        "--min",
        "10000",
        "--max",
        "20000",
        "--json",
    ]);
    let rows: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 1);
    assert_eq!(rows[0]["id"], xml_id);
    let o = mamori(&[
        "transactions",
        "search",
        "--data",
        d,
        "--counterparty",
        "abc薬品",
        "--from",
        "2023-11-01",
        "--to",
        "2023-11-30",
    ]);
    let t = assert_prints(&o, &["1 件"]);
    assert!(t.contains("55,000円"), "{t}");
    let o = mamori(&["transactions", "search", "--data", d, "--min", "x"]);
    assert!(!o.status.success() && text(&o).contains("数字"));

    // The tax officer's download.
    let zip = dir.path().join("2023.zip");
    let o = mamori(&[
        "transactions",
        "export",
        "--data",
        d,
        "--from",
        "2023-01-01",
        "--to",
        "2023-12-31",
        "--out",
        zip.to_str().unwrap(),
    ]);
    assert_prints(&o, &["2 書類"]);
    let mut z = zip::ZipArchive::new(std::fs::File::open(&zip).unwrap()).unwrap();
    let mut index = String::new();
    z.by_name("index.csv")
        .unwrap()
        .read_to_string(&mut index)
        .unwrap();
    assert!(index.starts_with('\u{feff}'));
    assert_eq!(index.lines().count(), 3);

    // 一括検証: the development TSA's stamps verify (and are labelled as such).
    let o = mamori(&[
        "transactions",
        "verify-stamps",
        "--data",
        d,
        "--from",
        "2023-01-01",
        "--to",
        "2023-12-31",
        "--json",
    ]);
    let rep: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(rep["stamps"], 2, "{rep}");
    assert_eq!(rep["development"], 2);
    assert!(o.status.success());

    // Each act is in the ledger as the command-line operator's.
    let registered = ledger_actions(&data, "transaction.registered");
    let ids: Vec<i64> = registered
        .iter()
        .filter(|e| e["outcome"] == "ok")
        .map(|e| e["detail"]["document"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [xml_id, pdf_id]);
    assert!(
        registered
            .iter()
            .all(|e| e["detail"]["operator"] == "command line" || e["outcome"] != "ok")
    );
    assert_eq!(ledger_actions(&data, "transaction.exported").len(), 1);
    let v = mamori(&["verify", "--data", d]);
    assert!(v.status.success(), "{}", text(&v));
}

/// The NTA data imported from the command line; a row changed behind mamori's back afterwards
/// is named by verify (the table is proven as a whole by the digest its import stated).
#[test]
fn the_registry_import_is_proven_by_its_digest() {
    let dir = tempfile::tempdir().unwrap();
    let data = init_instance(dir.path());
    let d = data.to_str().unwrap();
    let mut cols = vec![String::new(); 30];
    cols[1] = "1180301018771".into();
    cols[2] = "01".into();
    cols[6] = "1".into();
    cols[7] = "2023-10-01".into();
    cols[18] = "医療材料株式会社".into();
    let csv = dir.path().join("zenken.csv");
    std::fs::write(&csv, cols.join(",")).unwrap();
    let o = mamori(&[
        "transactions",
        "import-registry",
        "--data",
        d,
        csv.to_str().unwrap(),
    ]);
    assert_prints(&o, &["1 件"]);
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "not,the,file\n").unwrap();
    let o = mamori(&[
        "transactions",
        "import-registry",
        "--data",
        d,
        bad.to_str().unwrap(),
    ]);
    assert!(
        !o.status.success() && text(&o).contains("公表サイト"),
        "{}",
        text(&o)
    );
    let v = mamori(&["verify", "--data", d]);
    assert!(v.status.success(), "{}", text(&v));
    sql(
        &data,
        "UPDATE invoice_registry SET cancelled_on = '2024-01-01'",
    );
    let v = mamori(&["verify", "--data", d]);
    assert!(!v.status.success());
    assert!(text(&v).contains("invoice_registry"), "{}", text(&v));
}
