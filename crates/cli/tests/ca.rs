//! The facility CA through `mamori ca`, checked by openssl as an independent verifier:
//! PKCS#12 files open with their password, certificates chain to the CA and carry the device
//! identity, and a revoked one is listed in the CRL (`openssl verify -crl_check`).

mod support;

use std::path::Path;
use std::process::Command;

use support::*;

fn openssl(args: &[&str], dir: &Path) -> (bool, String) {
    let o = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is installed (Debian package openssl)");
    (o.status.success(), text(&o))
}

#[test]
fn issue_revoke_and_crl_verified_by_openssl() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let data = init_instance(dir);
    let d = data.to_str().unwrap();
    std::fs::write(dir.join("p12pw"), "p12 password 2026\n").unwrap();
    let pwf = dir.join("p12pw");
    let p = pwf.to_str().unwrap();

    // A short PKCS#12 password is refused.
    std::fs::write(dir.join("short"), "short\n").unwrap();
    let o = mamori(&[
        "ca",
        "issue",
        "--data",
        d,
        "--device",
        "x",
        "--out",
        "x.p12",
        "--password-file",
        dir.join("short").to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(text(&o).contains("8文字以上"), "{}", text(&o));

    let dev = dir.join("dev.p12");
    let o = mamori(&[
        "ca",
        "issue",
        "--data",
        d,
        "--device",
        "ward-pc-1",
        "--device-id",
        "SN-12345",
        "--out",
        dev.to_str().unwrap(),
        "--password-file",
        p,
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let usr = dir.join("admin.p12");
    let o = mamori(&[
        "ca",
        "issue",
        "--data",
        d,
        "--user",
        "admin",
        "--out",
        usr.to_str().unwrap(),
        "--password-file",
        p,
    ]);
    assert!(o.status.success(), "{}", text(&o));
    // Only an existing account gets a staff certificate.
    let o = mamori(&[
        "ca",
        "issue",
        "--data",
        d,
        "--user",
        "nobody",
        "--out",
        "n.p12",
        "--password-file",
        p,
    ]);
    assert!(!o.status.success());
    let o = mamori(&[
        "ca",
        "cert",
        "--data",
        d,
        "--out",
        dir.join("ca.pem").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));

    // openssl opens the bundles with the password (and not without it).
    let (ok, out) = openssl(
        &[
            "pkcs12",
            "-in",
            "dev.p12",
            "-passin",
            "file:p12pw",
            "-nodes",
            "-out",
            "dev.pem",
        ],
        dir,
    );
    assert!(ok, "{out}");
    let (ok, _) = openssl(
        &[
            "pkcs12",
            "-in",
            "dev.p12",
            "-passin",
            "pass:wrong",
            "-nodes",
            "-out",
            "x.pem",
        ],
        dir,
    );
    assert!(!ok, "a wrong password must not open the bundle");
    let (ok, out) = openssl(
        &[
            "pkcs12",
            "-in",
            "admin.p12",
            "-passin",
            "file:p12pw",
            "-nodes",
            "-out",
            "admin.pem",
        ],
        dir,
    );
    assert!(ok, "{out}");
    let (ok, out) = openssl(
        &[
            "x509",
            "-in",
            "dev.pem",
            "-noout",
            "-ext",
            "subjectAltName,extendedKeyUsage",
        ],
        dir,
    );
    assert!(
        ok && out.contains("urn:mamori:device-id:SN-12345")
            && out.contains("TLS Web Client Authentication"),
        "{out}"
    );
    let (ok, out) = openssl(&["verify", "-CAfile", "ca.pem", "dev.pem"], dir);
    assert!(ok, "{out}");

    // OCSP from the running server, asked by openssl: good now.
    let ocsp = |dir: &Path| -> String {
        let port = free_port();
        let mut server = serve(&data, port);
        let url = format!("http://127.0.0.1:{port}/ocsp");
        let (_, out) = openssl(
            &[
                "ocsp",
                "-issuer",
                "ca.pem",
                "-cert",
                "dev.pem",
                "-cert",
                "admin.pem",
                "-url",
                &url,
                "-CAfile",
                "ca.pem",
            ],
            dir,
        );
        let _ = server.kill();
        let _ = server.wait();
        out
    };
    let out = ocsp(dir);
    assert!(
        out.contains("Response verify OK")
            && out.contains("dev.pem: good")
            && out.contains("admin.pem: good"),
        "{out}"
    );

    // Revoke the device (lost); the CRL lists it, the staff certificate stays good.
    let (_, serial) = openssl(&["x509", "-in", "dev.pem", "-noout", "-serial"], dir);
    let serial = serial
        .trim()
        .trim_start_matches("serial=")
        .to_ascii_lowercase();
    let o = mamori(&["ca", "revoke", "--data", d, &serial, "--reason", "lost"]);
    assert!(!o.status.success(), "an unknown reason is refused");
    let o = mamori(&[
        "ca",
        "revoke",
        "--data",
        d,
        &serial,
        "--reason",
        "key_compromise",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let o = mamori(&[
        "ca",
        "revoke",
        "--data",
        d,
        &serial,
        "--reason",
        "key_compromise",
    ]);
    assert!(!o.status.success(), "twice is an error");
    let o = mamori(&[
        "ca",
        "crl",
        "--data",
        d,
        "--out",
        dir.join("crl.pem").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let (ok, out) = openssl(
        &[
            "verify",
            "-crl_check",
            "-CRLfile",
            "crl.pem",
            "-CAfile",
            "ca.pem",
            "dev.pem",
        ],
        dir,
    );
    assert!(!ok && out.contains("certificate revoked"), "{out}");
    let (ok, out) = openssl(
        &[
            "verify",
            "-crl_check",
            "-CRLfile",
            "crl.pem",
            "-CAfile",
            "ca.pem",
            "admin.pem",
        ],
        dir,
    );
    assert!(ok, "{out}");
    let (ok, out) = openssl(&["crl", "-in", "crl.pem", "-noout", "-text"], dir);
    assert!(ok && out.contains("Key Compromise"), "{out}");
    // OCSP says so too, with the reason; the staff certificate stays good.
    let out = ocsp(dir);
    assert!(
        out.contains("Response verify OK")
            && out.contains("dev.pem: revoked")
            && out.contains("Reason: keyCompromise")
            && out.contains("admin.pem: good"),
        "{out}"
    );

    // The list shows both, one revoked; and the ledger still verifies.
    let o = mamori(&["ca", "list", "--data", d]);
    let listed = text(&o);
    assert!(
        listed.contains("ward-pc-1")
            && listed.contains("key_compromise")
            && listed.contains("admin"),
        "{listed}"
    );
    let o = mamori(&["verify", "--data", d]);
    assert!(o.status.success(), "{}", text(&o));
}
