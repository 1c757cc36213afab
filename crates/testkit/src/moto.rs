//! moto's S3 server on 127.0.0.1 (`pip install 'moto[server]'`; `.ci/run` installs it), with
//! boto3 as an independent S3 client for checks (and for playing the attacker).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The credentials the tests use; moto accepts any.
pub const ACCESS_KEY: &str = "backup-writer";
pub const SECRET_KEY: &str = "not-a-real-secret";

pub struct Moto(Child, u16);

impl Moto {
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server is installed (pip install 'moto[server]')");
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Moto(child, port);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("moto_server did not start");
    }

    pub fn port(&self) -> u16 {
        self.1
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.1)
    }

    /// Runs boto3 against the server (`s3` is the client); success and what it printed.
    pub fn boto(&self, script: &str) -> (bool, String) {
        let o = Command::new("python3")
            .arg("-c")
            .arg(format!(
                "import boto3, botocore\ns3 = boto3.client('s3', endpoint_url='{}', region_name='us-east-1')\n{script}",
                self.endpoint()
            ))
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        (o.status.success(), text)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
