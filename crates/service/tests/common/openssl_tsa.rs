//! A TSA that is not mamori's, for the tests: `openssl ts -reply` behind a small HTTP server
//! (its own root CA, policy 1.2.3.4.1).

/// An RFC 3161 TSA that is not mamori's: `openssl ts -reply` behind a small HTTP server.
pub struct OpensslTsa {
    child: std::process::Child,
    pub url: String,
    pub root_pem: String,
}

impl Drop for OpensslTsa {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn sh(dir: &std::path::Path, script: &str) {
    let o = std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{script}: {o:?}");
}

pub fn openssl_tsa(dir: &std::path::Path) -> OpensslTsa {
    sh(
        dir,
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem \
           -subj '/CN=Independent TSA Root' -days 3650 \
           -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null && \
         openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout tsa.key -out tsa.csr \
           -subj '/CN=OpenSSL Test TSA' 2>/dev/null && \
         printf 'keyUsage=critical,digitalSignature,nonRepudiation\\nextendedKeyUsage=critical,timeStamping\\n' > ext.cnf && \
         openssl x509 -req -in tsa.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out tsa.pem -days 3650 \
           -extfile ext.cnf 2>/dev/null && echo 01 > tsaserial",
    );
    let d = dir.display();
    std::fs::write(
        dir.join("tsa.cnf"),
        format!(
            "[tsa]\ndefault_tsa = tsa_config1\n[tsa_config1]\nserial = {d}/tsaserial\n\
             signer_cert = {d}/tsa.pem\ncerts = {d}/ca.pem\nsigner_key = {d}/tsa.key\n\
             signer_digest = sha256\ndefault_policy = 1.2.3.4.1\ndigests = sha256, sha384, sha512\n\
             accuracy = secs:1\nordering = yes\ntsa_name = yes\ness_cert_id_chain = no\n\
             ess_cert_id_alg = sha256\n"
        ),
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = format!(
        r#"
import http.server, subprocess
D = {d:?}
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        req = self.rfile.read(int(self.headers['Content-Length']))
        open(D + '/req.tsq', 'wb').write(req)
        subprocess.run(['openssl', 'ts', '-reply', '-config', D + '/tsa.cnf', '-queryfile', D + '/req.tsq',
                        '-out', D + '/resp.tsr'], check=True, capture_output=True)
        body = open(D + '/resp.tsr', 'rb').read()
        self.send_response(200)
        self.send_header('Content-Type', 'application/timestamp-reply')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.HTTPServer(('127.0.0.1', {port}), H).serve_forever()
"#
    );
    let child = std::process::Command::new("python3")
        .arg("-c")
        .arg(server)
        .spawn()
        .expect("python3 runs the TSA fixture");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    OpensslTsa {
        child,
        url: format!("http://127.0.0.1:{port}/"),
        root_pem: std::fs::read_to_string(dir.join("ca.pem")).unwrap(),
    }
}
