//! HTTPS by default (issue #21): `init` issues the server's certificate from the facility CA
//! for the names given, `serve` uses it without being told, a PC that trusts the CA connects
//! by name and by address, and plain HTTP is refused on an address the network reaches.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

fn curl(args: &[&str]) -> (bool, String) {
    let o = Command::new("curl")
        .args(["-sSf", "--max-time", "5"])
        .args(args)
        .output()
        .expect("curl (installed by .ci/run)");
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

fn init_with_hosts(dir: &Path, hosts: &[&str]) -> (std::path::PathBuf, String) {
    init_with(dir, hosts, None)
}

fn init_with(dir: &Path, hosts: &[&str], listen: Option<&str>) -> (std::path::PathBuf, String) {
    let mut args = Vec::new();
    for h in hosts {
        args.extend(["--host", h]);
    }
    if let Some(l) = listen {
        args.extend(["--listen", l]);
    }
    init_instance_with(dir, &args)
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

struct Server(std::process::Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(data: &Path, port: u16, extra: &[&str]) -> Server {
    let listen = format!("127.0.0.1:{port}");
    let mut args = vec!["serve", "--data", data.to_str().unwrap()];
    // Port 0: where `init --listen` put it, from mamori.toml.
    if port != 0 {
        args.extend(["--listen", &listen]);
    }
    let child = Command::new(env!("CARGO_BIN_EXE_mamori"))
        .args(&args)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Server(child)
}

fn wait_for(url: &str, ca: &str) -> (bool, String) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = curl(&["--cacert", ca, url]);
        if r.0 || Instant::now() > deadline {
            return r;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn init_issues_a_server_certificate_and_serve_speaks_https_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let (data, said) = init_with(
        dir.path(),
        &["karte.clinic.test", "127.0.0.1"],
        Some(&listen),
    );
    assert!(said.contains("karte.clinic.test, 127.0.0.1"), "{said}");
    assert!(said.contains("SHA-256"), "{said}");
    // Requests naming the host are answered (DNS rebinding is refused for other names), and
    // passkeys are bound to it.
    let toml = std::fs::read_to_string(data.join("mamori.toml")).unwrap();
    assert!(
        toml.contains("allowed_hosts = \"karte.clinic.test\""),
        "{toml}"
    );
    assert!(
        toml.contains("passkey_rp_id = \"karte.clinic.test\""),
        "{toml}"
    );
    let tls = data.join("tls");
    assert_eq!(mode(&tls), 0o700);
    assert_eq!(mode(&tls.join("server.key")), 0o600);
    let issued = ledger_actions(&data, "cert.issued");
    assert_eq!(issued.len(), 1, "{issued:?}");
    assert_eq!(issued[0]["detail"]["kind"], "server");

    // A PC with the CA certificate installed trusts the server by name and by address.
    let ca = dir.path().join("ca.pem");
    let o = mamori(
        &["ca", "cert", "--data", data.to_str().unwrap(), "--out"]
            .into_iter()
            .chain([ca.to_str().unwrap()])
            .collect::<Vec<_>>(),
    );
    assert!(o.status.success(), "{}", text(&o));
    let ca = ca.to_str().unwrap();
    // Started without --listen: the address init wrote into mamori.toml.
    let _server = start(&data, 0, &[]);
    let (ok, out) = wait_for(&format!("https://127.0.0.1:{port}/api/v1/health"), ca);
    assert!(ok, "{out}");
    let resolve = format!("karte.clinic.test:{port}:127.0.0.1");
    let (ok, out) = curl(&[
        "--cacert",
        ca,
        "--resolve",
        &resolve,
        &format!("https://karte.clinic.test:{port}/api/v1/health"),
    ]);
    assert!(ok, "{out}");
    // A name the certificate does not carry is refused by the client, and plain HTTP is not
    // served on the same port.
    let other = format!("other.clinic.test:{port}:127.0.0.1");
    let (ok, _) = curl(&[
        "--cacert",
        ca,
        "--resolve",
        &other,
        &format!("https://other.clinic.test:{port}/api/v1/health"),
    ]);
    assert!(!ok);
    let (ok, out) = curl(&[&format!("http://127.0.0.1:{port}/api/v1/health")]);
    assert!(!ok, "{out}");
    // The CA certificate PCs install is served for the administrator's instructions.
    let (ok, out) = curl(&[
        "--cacert",
        ca,
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{content_type}",
        &format!("https://127.0.0.1:{port}/ca.crt"),
    ]);
    assert!(ok, "{out}");
    assert_eq!(out, "200 application/x-x509-ca-cert");
}

#[test]
fn a_new_server_certificate_supersedes_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let (data, _) = init_with_hosts(dir.path(), &["old.clinic.test"]);
    let d = data.to_str().unwrap();
    let before = std::fs::read(data.join("tls/server.pem")).unwrap();
    let o = mamori(&[
        "ca",
        "server-cert",
        "--data",
        d,
        "--host",
        "new.clinic.test",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert_ne!(std::fs::read(data.join("tls/server.pem")).unwrap(), before);
    let toml = std::fs::read_to_string(data.join("mamori.toml")).unwrap();
    assert!(
        toml.contains("allowed_hosts = \"old.clinic.test,new.clinic.test\""),
        "{toml}"
    );
    let o = mamori(&["ca", "list", "--data", d]);
    let list = text(&o);
    let lines: Vec<&str> = list.lines().filter(|l| l.contains("server")).collect();
    assert_eq!(lines.len(), 2, "{list}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("new.clinic.test") && !l.contains("superseded"))
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("old.clinic.test") && l.contains("superseded"))
    );
    assert!(data.read_dir().unwrap().count() > 0);
    assert!(
        !std::fs::read_dir(data.join("tls")).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".new")),
        "no half-written files left"
    );
    // A name that is neither a host name nor an address is refused, and nothing changes; so is
    // a listening address that is not one, before any instance is made.
    let o = mamori(&[
        "init",
        "--data",
        dir.path().join("other").to_str().unwrap(),
        "--facility",
        "x",
        "--admin",
        "admin",
        "--admin-password-file",
        dir.path().join("admin-password.txt").to_str().unwrap(),
        "--listen",
        "everywhere",
    ]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("待ち受けアドレスではありません"),
        "{}",
        text(&o)
    );
    assert!(!dir.path().join("other").exists());
    let o = mamori(&["ca", "server-cert", "--data", d, "--host", "bad name/"]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("ホスト名でも IP アドレスでもありません"),
        "{}",
        text(&o)
    );
}

#[test]
fn plain_http_only_on_loopback_or_when_insisted() {
    let dir = tempfile::tempdir().unwrap();
    let (data, _) = init_with_hosts(dir.path(), &["127.0.0.1"]);
    let d = data.to_str().unwrap();
    // An address other hosts reach, without a certificate: refused before any socket opens.
    std::fs::remove_dir_all(data.join("tls")).unwrap();
    let o = mamori(&["serve", "--data", d, "--listen", "0.0.0.0:1"]);
    assert!(!o.status.success());
    let out = text(&o);
    assert!(out.contains("mamori ca server-cert"), "{out}");
    // Loopback without a certificate: plain HTTP (the demo's way).
    let port = free_port();
    let _server = start(&data, port, &[]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut r = (false, String::new());
    while Instant::now() < deadline && !r.0 {
        r = curl(&[&format!("http://127.0.0.1:{port}/api/v1/health")]);
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(r.0, "{}", r.1);
    // Client certificates need TLS.
    let o = mamori(&[
        "serve",
        "--data",
        d,
        "--listen",
        "127.0.0.1:1",
        "--insecure-http",
        "--client-cert",
        "required",
    ]);
    assert!(!o.status.success());
    assert!(text(&o).contains("HTTPS が必要"), "{}", text(&o));
}
