//! `mamori serve` over HTTPS requiring client certificates of the facility CA, with real peers:
//! curl and openssl s_client. A device certificate gets in and is named in the ledger; no
//! certificate, or one from another CA, is refused in the handshake; a certificate revoked
//! while the server runs is refused from the next connection.

mod support;

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

fn run(cmd: &str, args: &[&str], dir: &Path) -> (bool, String) {
    let o = Command::new(cmd)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{cmd} is installed: {e}"));
    (o.status.success(), text(&o))
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// curl with the given client certificate (PEM with key), trusting the server's certificate.
fn curl(dir: &Path, port: u16, cert: Option<&str>, args: &[&str]) -> (bool, String) {
    let url_base = format!("https://127.0.0.1:{port}");
    let mut a: Vec<String> = vec![
        "-sS".into(),
        "--max-time".into(),
        "10".into(),
        "--cacert".into(),
        "server.pem".into(),
    ];
    if let Some(c) = cert {
        a.extend(["--cert".into(), c.into()]);
    }
    for x in args {
        a.push(x.replace("URL", &url_base));
    }
    let refs: Vec<&str> = a.iter().map(String::as_str).collect();
    run("curl", &refs, dir)
}

/// The server's own certificate for 127.0.0.1, made with openssl (outside mamori).
fn server_certificate(dir: &Path) {
    let (ok, e) = run(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.pem",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        dir,
    );
    assert!(ok, "{e}");
}

/// Issues a certificate with `mamori ca issue` and converts the PKCS#12 to PEM for curl.
fn issue(dir: &Path, data: &str, kind: &str, name: &str, out: &str) {
    let o = mamori(&[
        "ca",
        "issue",
        "--data",
        data,
        kind,
        name,
        "--out",
        dir.join(out).to_str().unwrap(),
        "--password-file",
        dir.join("p12pw").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let pem = out.replace(".p12", ".pem");
    let (ok, e) = run(
        "openssl",
        &[
            "pkcs12",
            "-in",
            out,
            "-passin",
            "file:p12pw",
            "-nodes",
            "-out",
            &pem,
        ],
        dir,
    );
    assert!(ok, "{e}");
}

/// Starts `mamori serve` over HTTPS with the given client-certificate mode.
fn serve_tls(dir: &Path, data: &str, port: u16, mode: &str) -> Server {
    let child = Command::new(env!("CARGO_BIN_EXE_mamori"))
        .args([
            "serve",
            "--data",
            data,
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--tls-cert",
            dir.join("server.pem").to_str().unwrap(),
            "--tls-key",
            dir.join("server.key").to_str().unwrap(),
            "--client-cert",
            mode,
        ])
        .env("MAMORI_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Server(child)
}

#[test]
fn client_certificates_gate_the_connection_and_revocation_is_immediate() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let data = init_instance(dir);
    let d = data.to_str().unwrap();
    std::fs::write(dir.join("p12pw"), "p12 password 2026\n").unwrap();
    for (kind, name, out) in [
        ("--device", "ward-pc-1", "dev.p12"),
        ("--device", "ward-pc-2", "dev2.p12"),
        ("--user", "admin", "admin.p12"),
    ] {
        issue(dir, d, kind, name, out);
    }
    server_certificate(dir);
    // A client certificate from some other CA.
    let (ok, e) = run(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "stranger.key",
            "-out",
            "stranger.crt",
            "-days",
            "1",
            "-subj",
            "/CN=stranger",
        ],
        dir,
    );
    assert!(ok, "{e}");
    let stranger = format!(
        "{}{}",
        std::fs::read_to_string(dir.join("stranger.crt")).unwrap(),
        std::fs::read_to_string(dir.join("stranger.key")).unwrap()
    );
    std::fs::write(dir.join("stranger.pem"), stranger).unwrap();

    let port = free_port();
    let _server = serve_tls(dir, d, port, "required");
    let start = Instant::now();
    loop {
        let (ok, _) = curl(dir, port, Some("dev.pem"), &["URL/api/v1/health"]);
        if ok {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "server did not start"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // A device certificate of the facility CA gets in.
    let (ok, body) = curl(
        dir,
        port,
        Some("dev.pem"),
        &["-w", "%{http_code}", "URL/api/v1/health"],
    );
    assert!(ok && body.ends_with("200"), "{body}");
    // No certificate, or another CA's: refused in the handshake (openssl s_client agrees).
    let (ok, out) = curl(dir, port, None, &["URL/api/v1/health"]);
    assert!(!ok, "no certificate: {out}");
    let (ok, out) = curl(dir, port, Some("stranger.pem"), &["URL/api/v1/health"]);
    assert!(!ok, "stranger: {out}");
    let mut s = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-CAfile",
            "server.pem",
            "-cert",
            "dev2.pem",
            "-key",
            "dev2.pem",
            "-quiet",
        ])
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    s.stdin
        .take()
        .unwrap()
        .write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let o = s.wait_with_output().unwrap();
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("200 OK"),
        "{}",
        text(&o)
    );

    // The administrator (with their own certificate) signs in and revokes ward-pc-2 through
    // the API while the server runs; its next connection is refused.
    let (ok, login) = curl(
        dir,
        port,
        Some("admin.pem"),
        &[
            "-H",
            "content-type: application/json",
            "-d",
            &format!(
                "{{\"login\":\"admin\",\"old_password\":\"{ADMIN_PW}\",\"new_password\":\"{PW}\"}}"
            ),
            "URL/api/v1/auth/password",
        ],
    );
    assert!(ok, "{login}");
    let token = serde_json::from_str::<serde_json::Value>(&login).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let auth = format!("Authorization: Bearer {token}");
    let (_, list) = curl(
        dir,
        port,
        Some("admin.pem"),
        &["-H", &auth, "URL/api/v1/certificates"],
    );
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    let serial = list
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["subject"] == "ward-pc-2")
        .unwrap()["serial"]
        .as_str()
        .unwrap()
        .to_owned();
    let (ok, out) = curl(
        dir,
        port,
        Some("admin.pem"),
        &[
            "-H",
            &auth,
            "-H",
            "content-type: application/json",
            "-d",
            "{\"reason\":\"key_compromise\"}",
            "-w",
            "%{http_code}",
            &format!("URL/api/v1/certificates/{serial}/revoke"),
        ],
    );
    assert!(ok && out.ends_with("204"), "{out}");
    let (ok, out) = curl(dir, port, Some("dev2.pem"), &["URL/api/v1/health"]);
    assert!(!ok, "revoked certificate still served: {out}");
    let (ok, _) = curl(dir, port, Some("dev.pem"), &["URL/api/v1/health"]);
    assert!(ok, "the other device is unaffected");

    // The ledger names the certificate on each entry, and records the refusal.
    drop(_server);
    let ro = mamori_store::ReadOnly::open(&data).unwrap();
    let entries = |prefix: &str| -> Vec<String> {
        ro.get()
            .audit_events(&mamori_store::AuditFilter {
                action_prefix: Some(prefix.into()),
                limit: 1000,
                ..Default::default()
            })
            .unwrap()
            .into_iter()
            .map(|r| String::from_utf8(r.payload).unwrap())
            .collect()
    };
    assert!(entries("cert.revoked").iter().any(|e| e.contains(&serial)));
    assert!(entries("tls.refused").iter().any(|e| e.contains(&serial)));
    let signed_in = entries("auth.password_changed");
    assert!(
        signed_in
            .iter()
            .any(|e| e.contains("cert:") && e.contains(" admin")),
        "{signed_in:?}"
    );
    let o = mamori(&["verify", "--data", d]);
    assert!(o.status.success(), "{}", text(&o));
}

/// `--client-cert optional` with a role that requires certificates: the administrators sign in
/// only from a connection with a facility certificate; other people need none.
#[test]
fn a_role_can_require_a_certificate_while_others_connect_without() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let data = init_instance(dir);
    let d = data.to_str().unwrap();
    std::fs::write(dir.join("p12pw"), "p12 password 2026\n").unwrap();
    issue(dir, d, "--user", "admin", "admin.p12");
    server_certificate(dir);
    let port = free_port();
    let _server = serve_tls(dir, d, port, "optional");
    let start = Instant::now();
    while !curl(dir, port, None, &["URL/api/v1/health"]).0 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "server did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let json_post = |cert: Option<&str>, token: Option<&str>, body: &str, path: &str| {
        let auth = token.map(|t| format!("Authorization: Bearer {t}"));
        let mut args = vec![
            "-H",
            "content-type: application/json",
            "-d",
            body,
            "-w",
            "\n%{http_code}",
        ];
        if let Some(a) = &auth {
            args.extend(["-H", a.as_str()]);
        }
        let url = format!("URL/api/v1{path}");
        args.push(&url);
        curl(dir, port, cert, &args).1
    };
    // Without a certificate the administrator can still change the first password here…
    let out = json_post(
        None,
        None,
        &format!(
            "{{\"login\":\"admin\",\"old_password\":\"{ADMIN_PW}\",\"new_password\":\"{PW}\"}}"
        ),
        "/auth/password",
    );
    assert!(out.ends_with("200"), "{out}");
    let token =
        serde_json::from_str::<serde_json::Value>(out.lines().next().unwrap()).unwrap()["token"]
            .as_str()
            .unwrap()
            .to_owned();
    // …and requires certificates for administrators.
    let out = json_post(
        None,
        Some(&token),
        "{\"required\":true}",
        "/roles/sysadmin/client-cert",
    );
    assert!(out.ends_with("204"), "{out}");
    // From now on the same session without a certificate is refused, a new sign-in too…
    let (_, out) = curl(
        dir,
        port,
        None,
        &[
            "-H",
            &format!("Authorization: Bearer {token}"),
            "-w",
            "\n%{http_code}",
            "URL/api/v1/users",
        ],
    );
    assert!(
        out.ends_with("403") && out.contains("client_certificate_required"),
        "{out}"
    );
    let login = format!("{{\"login\":\"admin\",\"password\":\"{PW}\"}}");
    let out = json_post(None, None, &login, "/auth/login");
    assert!(
        out.ends_with("403") && out.contains("client_certificate_required"),
        "{out}"
    );
    // …and with the administrator's certificate both work.
    let out = json_post(Some("admin.pem"), None, &login, "/auth/login");
    assert!(out.ends_with("200"), "{out}");
    let (_, out) = curl(
        dir,
        port,
        Some("admin.pem"),
        &[
            "-H",
            &format!("Authorization: Bearer {token}"),
            "-w",
            "\n%{http_code}",
            "URL/api/v1/users",
        ],
    );
    assert!(out.ends_with("200"), "{out}");
}
