//! `mamori fhir`: the client side of SMART Backend Services, for whoever sets up an
//! integration — a key to register, and a signed assertion to trade for an access token (the
//! EHR's own software does the same with its own key).

use std::path::PathBuf;
use std::process::ExitCode;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use clap::Subcommand;
use mamori_fhir::smart::ClientKey;

use crate::fail;

#[derive(Subcommand)]
pub enum FhirCmd {
    /// Make a P-384 client key: the private key goes to --out (mode 0600, PKCS#8 PEM); the
    /// public JWK to register (POST /api/v1/users/{id}/oauth-clients) is printed.
    ClientKey {
        #[arg(long)]
        out: PathBuf,
    },
    /// Print a client assertion (ES384 JWT, valid two minutes) for the token endpoint.
    Assertion {
        /// The client's private key (from `mamori fhir client-key`).
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        client_id: String,
        /// The token endpoint, e.g. https://mamori.example/fhir/r4/auth/token
        #[arg(long)]
        token_url: String,
    },
}

const PEM_LABEL: &str = "PRIVATE KEY";

pub fn run(cmd: FhirCmd) -> ExitCode {
    match cmd {
        FhirCmd::ClientKey { out } => {
            if out.exists() {
                return fail(format!(
                    "{} は既にあります（上書きしません）",
                    out.display()
                ));
            }
            let (key, der) = ClientKey::generate();
            let body = STANDARD.encode(&der);
            let mut pem = format!("-----BEGIN {PEM_LABEL}-----\n");
            for line in body.as_bytes().chunks(64) {
                pem.push_str(std::str::from_utf8(line).unwrap_or_default());
                pem.push('\n');
            }
            pem.push_str(&format!("-----END {PEM_LABEL}-----\n"));
            if let Err(e) = write_private(&out, pem.as_bytes()) {
                return fail(format!("{} に書けません: {e}", out.display()));
            }
            println!("{}", key.public_jwk());
            ExitCode::SUCCESS
        }
        FhirCmd::Assertion {
            key,
            client_id,
            token_url,
        } => {
            let text = match std::fs::read_to_string(&key) {
                Ok(t) => t,
                Err(e) => return fail(format!("{} を読めません: {e}", key.display())),
            };
            let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
            let key = match STANDARD
                .decode(body.trim())
                .map_err(|_| "PEM の中身が base64 ではありません".to_owned())
                .and_then(|der| ClientKey::from_pkcs8(&der))
            {
                Ok(k) => k,
                Err(e) => return fail(e),
            };
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            let jti = mamori_fhir::smart::random_jti();
            println!("{}", key.assertion(&client_id, &token_url, &jti, now, 120));
            ExitCode::SUCCESS
        }
    }
}

fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path)?.write_all(bytes)
}
