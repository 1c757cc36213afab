//! `mamori compliance` end to end: catalogues listed, an assessment started (its ID on the
//! last line), its report written as JSON (every item, observed or declared), HTML and PDF —
//! the PDF's text read back by poppler's pdftotext as an independent reader.

mod support;

use std::process::Command;

use support::*;

#[test]
fn catalogues_new_and_reports_in_three_formats() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let data = init_instance(dir);
    let d = data.to_str().unwrap();

    let o = mamori(&["compliance", "catalogues", "--data", d]);
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    for id in [
        "mhlw-checklist-medical-r7",
        "mhlw-checklist-vendor-r7",
        "mhlw-checklist-medical-r6",
        "mhlw-guideline-6.0",
    ] {
        assert!(out.contains(id), "{out}");
    }

    // A broken local catalogue is reported by name, and the rest still load.
    std::fs::create_dir_all(data.join("catalogues")).unwrap();
    std::fs::write(data.join("catalogues/broken.toml"), "[catalogue]\nid = 1\n").unwrap();
    let o = mamori(&["compliance", "catalogues", "--data", d]);
    assert!(!o.status.success());
    assert!(text(&o).contains("broken.toml"), "{}", text(&o));
    assert!(text(&o).contains("mhlw-checklist-medical-r7"));
    std::fs::remove_file(data.join("catalogues/broken.toml")).unwrap();

    let o = mamori(&["compliance", "new", "--data", d, "--catalogue", "no-such"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("見つかりません"), "{}", text(&o));
    let o = mamori(&[
        "compliance",
        "new",
        "--data",
        d,
        "--catalogue",
        "mhlw-checklist-medical-r7",
        "--date",
        "2026-11-26",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let id = String::from_utf8_lossy(&o.stdout)
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_owned();
    assert!(id.parse::<i64>().is_ok(), "{id}");

    let json = dir.join("r.json");
    let o = mamori(&[
        "compliance",
        "report",
        "--data",
        d,
        "--assessment",
        &id,
        "--format",
        "json",
        "--out",
        json.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 18);
    for i in items {
        let src = i["source"].as_str().unwrap();
        assert!(["observed", "declared", "none"].contains(&src));
        assert_eq!(src == "observed", i["observation"].is_object(), "{i}");
    }
    // A fresh instance: no officer named (observed いいえ), roles as templated (observed はい).
    let by = |id: &str| items.iter().find(|i| i["id"] == id).unwrap().clone();
    assert_eq!(by("R7-M-1-01")["answer"], "no");
    assert_eq!(by("R7-M-2-04")["answer"], "yes");
    assert_eq!(by("R7-M-2-08")["source"], "none");

    let html = dir.join("r.html");
    let o = mamori(&[
        "compliance",
        "report",
        "--data",
        d,
        "--assessment",
        &id,
        "--format",
        "html",
        "--out",
        html.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let h = std::fs::read_to_string(&html).unwrap();
    assert!(h.contains("<style>") && h.contains("自己点検結果") && h.contains("2-⑩"));

    let pdf = dir.join("r.pdf");
    let o = mamori(&[
        "compliance",
        "report",
        "--data",
        d,
        "--assessment",
        &id,
        "--format",
        "pdf",
        "--out",
        pdf.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let t = Command::new("pdftotext")
        .args([pdf.to_str().unwrap(), "-"])
        .output()
        .expect("pdftotext is installed (Debian package poppler-utils)");
    assert!(t.status.success(), "{}", String::from_utf8_lossy(&t.stderr));
    let t = String::from_utf8_lossy(&t.stdout).replace(['\n', ' '], "");
    assert!(t.contains("自己点検結果"), "{t}");
    assert!(t.contains("医療情報システム安全管理責任者"), "{t}");
    assert!(t.contains("安全管理責任者が設定されていません"), "{t}");

    let o = mamori(&[
        "compliance",
        "report",
        "--data",
        d,
        "--assessment",
        "999",
        "--format",
        "pdf",
        "--out",
        dir.join("x.pdf").to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let o = mamori(&[
        "compliance",
        "report",
        "--data",
        d,
        "--assessment",
        &id,
        "--format",
        "docx",
        "--out",
        dir.join("x.docx").to_str().unwrap(),
    ]);
    assert!(!o.status.success());

    // Everything the command line did is in the ledger, and the ledger still verifies.
    let o = mamori(&["verify", "--data", d]);
    assert!(o.status.success(), "{}", text(&o));
}
