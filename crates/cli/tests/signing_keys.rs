//! The real binary keeps each signer's key in a SoftHSM2 token of the instance's own
//! (`keys/tokens/`): no file of the data directory, nor of a restored backup, holds a private
//! signing key, and the restored tokens still open with their holders' PINs.

mod support;

use std::path::Path;

use support::*;

fn tokens(data: &Path) -> usize {
    std::fs::read_dir(data.join("keys/tokens"))
        .map(|d| d.flatten().filter(|e| e.path().is_dir()).count())
        .unwrap_or(0)
}

#[test]
fn signing_keys_live_in_the_instances_tokens_and_a_restored_backup_still_signs() {
    let dir = tempfile::tempdir().unwrap();
    let demo = dir.path().join("demo");
    let d = demo.to_str().unwrap();
    let o = mamori(&["demo", "--data", d, "--no-serve"]);
    assert!(o.status.success(), "{}", text(&o));
    // One token per member of staff who finalises (doctors, dentist, pharmacist, nurse, …).
    assert!(tokens(&demo) >= 6, "{}", tokens(&demo));
    assert!(mamori_testkit::keys::assert_no_private_signing_key(&demo, &[]) > 20);
    assert!(!demo.join("keys/signers").exists());
    export_a_signed_pdf(&demo, dir.path());

    // Backed up with the keys, restored elsewhere: the tokens come along, still sealed.
    let cfg = mamori_service::Config::load(&demo).unwrap();
    let key = demo.join(&cfg.backup.key_file);
    let o = mamori(&[
        "backup",
        "run",
        "--data",
        d,
        "--key-file",
        key.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let restored = dir.path().join("restored");
    let o = mamori(&[
        "restore",
        "--target",
        &cfg.backup.targets,
        "--snapshot",
        "latest",
        "--to",
        restored.to_str().unwrap(),
        "--key-file",
        key.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(tokens(&restored), tokens(&demo));
    mamori_testkit::keys::assert_no_private_signing_key(&restored, &[]);

    // The restored instance: dr.tanaka signs in and opens her window with her PIN; the two
    // records that waited for her are signed with the restored key.
    let port = free_port();
    let mut server = serve(&restored, port);
    let api = |path: &str| format!("http://127.0.0.1:{port}/api/v1{path}");
    let agent = fresh();
    let login: serde_json::Value = agent
        .post(&api("/auth/login"))
        .send_json(serde_json::json!({ "login": "dr.tanaka", "password": "mamori-demo-2026" }))
        .unwrap()
        .into_json()
        .unwrap();
    let bearer = format!("Bearer {}", login["token"].as_str().unwrap());
    let waiting: serde_json::Value = agent
        .get(&api("/records/sign-pending"))
        .set("authorization", &bearer)
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    assert_eq!(waiting.as_array().unwrap().len(), 2, "{waiting}");
    let wrong = agent
        .post(&api("/auth/signing-window"))
        .set("authorization", &bearer)
        .send_json(serde_json::json!({ "pin": "not her PIN 0" }));
    assert!(matches!(wrong, Err(ureq::Error::Status(403, _))));
    let rep: serde_json::Value = agent
        .post(&api("/auth/signing-window"))
        .set("authorization", &bearer)
        .send_json(serde_json::json!({ "pin": "mamori-sign-2026" }))
        .unwrap()
        .into_json()
        .unwrap();
    assert_eq!(
        (rep["signed"].as_u64(), rep["remaining"].as_u64()),
        (Some(2), Some(0)),
        "{rep}"
    );
    let _ = server.kill();
    let _ = server.wait();
    // The restored copy's SoftHSM2 configuration names its own token directory.
    let conf = std::fs::read_to_string(restored.join("keys/softhsm2.conf")).unwrap();
    assert!(
        conf.contains(restored.join("keys/tokens").to_str().unwrap()),
        "{conf}"
    );
}

/// `mamori export pdf` writes a signed 紹介状 or 同意書 of the demo that pyHanko accepts, records
/// the export, and refuses a version without a PDF or an existing file.
fn export_a_signed_pdf(demo: &Path, dir: &Path) {
    let d = demo.to_str().unwrap();
    let o = mamori(&["evidence", "verify", "--data", d]);
    assert!(
        o.status.success() && text(&o).contains("署名付き PDF") && text(&o).contains("PAdES-B-LTA"),
        "{}",
        text(&o)
    );
    let (id, version) = {
        let ro = mamori_service::instance::read_only(demo).unwrap();
        let r = ro.get();
        (1..2000)
            .find_map(|id| r.signed_pdfs_of(id).unwrap().into_iter().next())
            .map(|p| (p.record_id, p.version_no))
            .expect("the demo signs some referrals and consent forms as PDFs")
    };
    let out = dir.join("letter.pdf");
    let (id_s, v_s) = (id.to_string(), version.to_string());
    let args = |out: &Path| {
        vec![
            "export".to_owned(),
            "pdf".into(),
            id_s.clone(),
            "--version".into(),
            v_s.clone(),
            "--data".into(),
            d.into(),
            "--out".into(),
            out.to_str().unwrap().into(),
        ]
    };
    let run = |a: Vec<String>| mamori(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let o = run(args(&out));
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("PAdES-B-T + DocTimeStamp"),
        "{}",
        text(&o)
    );
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, mamori_service::access::ca::ca_pem(demo).unwrap()).unwrap();
    let v = std::process::Command::new("pyhanko")
        .args([
            "sign",
            "validate",
            "--no-revocation-check",
            "--trust-replace",
            "--trust",
        ])
        .arg(&ca)
        .arg(&out)
        .output()
        .expect("pyhanko");
    let said = String::from_utf8_lossy(&v.stdout);
    assert!(
        v.status.success() && said.contains(":INTACT:TRUSTED,TIMESTAMP_TOKEN<INTACT:TRUSTED>"),
        "{said}"
    );
    // Again to the same name: refused, the file untouched.
    let before = std::fs::read(&out).unwrap();
    let o = run(args(&out));
    assert!(!o.status.success(), "{}", text(&o));
    assert_eq!(std::fs::read(&out).unwrap(), before);
    // A version that has no PDF: refused, nothing written.
    let none = dir.join("none.pdf");
    let mut a = args(&none);
    a[4] = "99".into();
    let o = run(a);
    assert!(
        !o.status.success() && text(&o).contains("ありません"),
        "{}",
        text(&o)
    );
    assert!(!none.exists());
}
