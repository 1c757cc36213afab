//! `mamori evidence verify`, `mamori evidence seal` and `mamori export` as an operator runs
//! them: beside a live server, on the real binary; the bundle checked by OpenSSL alone.

mod support;

use std::path::Path;
use std::process::Command;

use support::*;

fn run(args: &[&str]) -> (bool, String) {
    let o = mamori(args);
    (o.status.success(), text(&o))
}

fn enable_dev_tsa(data: &Path) {
    let mut cfg = mamori_service::Config::load(data).unwrap();
    cfg.evidence.dev_tsa = true;
    std::fs::write(data.join("mamori.toml"), cfg.to_toml()).unwrap();
}

/// Unpacks a bundle and runs its verify.sh; (passed, output, directory).
fn verify_bundle(zip: &Path) -> (bool, String, std::path::PathBuf) {
    let out = zip.with_extension("d");
    let o = Command::new("python3")
        .args(["-m", "zipfile", "-e"])
        .arg(zip)
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    let o = Command::new("sh")
        .arg(out.join("verify.sh"))
        .output()
        .unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        out,
    )
}

#[test]
fn verify_seal_and_export_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = init_instance(dir.path());
    enable_dev_tsa(&data);
    let ids = populate(&data);
    let d = data.to_str().unwrap();

    // Beside a live server: the read-only check runs, and is recorded through the outbox.
    let port = free_port();
    let server = serve(&data, port);
    let (ok, out) = run(&["evidence", "verify", "--data", d]);
    assert!(ok, "{out}");
    assert!(out.contains("確定版 3 件: 正常 3"), "{out}");
    assert!(out.contains("開発用"), "{out}");
    let o = mamori(&[
        "evidence",
        "verify",
        "--data",
        d,
        "--json",
        "--record",
        &ids[0].to_string(),
    ]);
    assert!(o.status.success());
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["items"][0]["level"], "CAdES-B-LT");
    assert_eq!(json["items"][0]["status"], "ok");
    let (ok, out) = run(&["evidence", "seal", "--data", d]);
    assert!(!ok && out.contains("サーバーが動いています"), "{out}");
    let _ = Command::new("kill").arg(server.id().to_string()).status();
    let mut server = server;
    let _ = server.wait();

    // Not served: seal now. The server's own sweep may already have sealed them.
    let (ok, out) = run(&["evidence", "seal", "--data", d]);
    assert!(ok, "{out}");
    let (ok, out) = run(&["evidence", "verify", "--data", d]);
    assert!(ok && out.contains("証拠記録 1 件"), "{out}");

    // Export one record and the patient; OpenSSL verifies them on its own.
    let one = dir.path().join("record.zip");
    let (ok, out) = run(&[
        "export",
        "record",
        &ids[0].to_string(),
        "--data",
        d,
        "--out",
        one.to_str().unwrap(),
    ]);
    assert!(ok, "{out}");
    let (ok, out, unpacked) = verify_bundle(&one);
    assert!(ok, "{out}");
    assert_eq!(out.matches("OK ").count(), 3, "{out}");
    let atts: Vec<_> =
        std::fs::read_dir(unpacked.join(format!("records/{}/v1/attachments", ids[0])))
            .unwrap()
            .collect();
    assert_eq!(atts.len(), 1, "the attachment is in the bundle");
    let all = dir.path().join("patient.zip");
    let (ok, out) = run(&[
        "export",
        "patient",
        "P1",
        "--data",
        d,
        "--out",
        all.to_str().unwrap(),
    ]);
    assert!(ok, "{out}");
    let (ok, out, _) = verify_bundle(&all);
    assert!(ok && out.matches("OK ").count() == 9, "{out}");
    let (ok, out) = run(&[
        "export",
        "patient",
        "P1",
        "--data",
        d,
        "--out",
        all.to_str().unwrap(),
    ]);
    assert!(!ok && out.contains("上書きしません"), "{out}");
    let (ok, out) = run(&[
        "export",
        "patient",
        "P404",
        "--data",
        d,
        "--out",
        dir.path().join("x.zip").to_str().unwrap(),
    ]);
    assert!(!ok && out.contains("患者"), "{out}");
    assert!(
        !dir.path().join("x.zip").exists(),
        "nothing half-written is left"
    );
    let exports = ledger_actions(&data, "record.print_export");
    assert!(
        exports
            .iter()
            .filter(|e| e["detail"]["format"] == "evidence_bundle")
            .count()
            >= 2,
        "{exports:?}"
    );
    assert!(!ledger_actions(&data, "evidence.verified").is_empty());

    // A changed signature: verification fails and names the version.
    sql(
        &data,
        &format!(
            // One byte of the signer's certificate inside the .p7s, flipped.
            "UPDATE signatures SET p7s = CAST(substr(p7s, 1, 199)
                || CASE WHEN substr(p7s, 200, 1) = X'FF' THEN X'00' ELSE X'FF' END
                || substr(p7s, 201) AS BLOB) WHERE record_id = {}",
            ids[1]
        ),
    );
    let o = mamori(&["evidence", "verify", "--data", d]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains(&format!("記録 {} 第1版", ids[1])) && out.contains("失敗"),
        "{out}"
    );
}
