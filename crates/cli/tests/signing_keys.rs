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
