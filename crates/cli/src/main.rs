//! The `mamori` command: a thin adapter over the service layer.
#![deny(unsafe_code)]

mod backup;
mod bench;
mod ca;
mod compliance;
mod demo;
mod demo_books;
mod evidence;
mod fhir;
mod transactions;

use mamori_service::ErrorCode;
use mamori_web::tls::Transport;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use mamori_service::instance::{InitParams, open};
use mamori_service::ledger::verify::{VerifyOptions, verify};

#[derive(Parser)]
#[command(
    name = "mamori",
    version,
    about = "mamori（守り）— 診療録等の電子保存と改ざん検知台帳"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create a new instance with one administrator (who must change the password at first login).
    Init {
        #[arg(long, env = "MAMORI_DATA")]
        data: PathBuf,
        #[arg(long)]
        facility: String,
        #[arg(long)]
        admin: String,
        /// File holding the administrator's initial password (never given on the command line).
        #[arg(long)]
        admin_password_file: PathBuf,
        /// A host name or IP address staff use to reach this server (repeat for each); the
        /// HTTPS certificate is issued for them. Default: this machine's name and localhost.
        #[arg(long = "host")]
        hosts: Vec<String>,
        /// Where `serve` listens (server.listen), e.g. 0.0.0.0:8443 for the clinic's PCs.
        /// Default: 127.0.0.1:8080, this machine only.
        #[arg(long)]
        listen: Option<String>,
        /// Keep the instance's state in this PostgreSQL database (`postgres://user@host/db`;
        /// another machine needs `?sslmode=require&sslrootcert=ca.pem`) instead of SQLite in
        /// the data directory, which then keeps the configuration, keys and content files.
        #[arg(long, env = "MAMORI_DATABASE_URL")]
        database: Option<String>,
        /// Keep content files in an S3-compatible bucket every node shares
        /// (`s3://bucket/prefix?endpoint=https://…&region=…`; credentials from
        /// AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY). Needs --database; the prefix must be empty.
        #[arg(long)]
        blobs: Option<String>,
    },
    /// Serve an instance over HTTPS with the certificate `init` issued (tls/), or the one given
    /// by --tls-cert/--tls-key. Plain HTTP only on a loopback address or with --insecure-http.
    Serve {
        #[arg(long, env = "MAMORI_DATA")]
        data: PathBuf,
        /// Address to listen on (overrides mamori.toml's server.listen).
        #[arg(long)]
        listen: Option<String>,
        /// The server's certificate chain (PEM), instead of tls/server.pem.
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The server's private key (PEM).
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Client certificates of the facility CA: required, optional or none.
        #[arg(long, default_value = "none")]
        client_cert: String,
        /// Serve plain HTTP even to the network (every page then warns that it is unencrypted).
        #[arg(long, conflicts_with = "tls_cert")]
        insecure_http: bool,
    },
    /// Create (if absent) and serve a demo clinic with staff of every role and sample records.
    Demo {
        #[arg(long, default_value = "demo-data")]
        data: PathBuf,
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// Create the demo clinic and exit without serving it.
        #[arg(long)]
        no_serve: bool,
    },
    /// Print the latest signed checkpoint, for someone outside the administrator's control to keep.
    Checkpoint {
        #[arg(long, env = "MAMORI_DATA")]
        data: PathBuf,
    },
    /// Re-hash every blob, version and ledger entry and check every checkpoint. Exit 0 only if all hold.
    Verify {
        #[arg(long, env = "MAMORI_DATA")]
        data: PathBuf,
        /// A checkpoint kept elsewhere (detects removal of the newest entries).
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        /// The verifier key to trust (name+id+key, as `mamori checkpoint` prints it), instead
        /// of the instance's key file: an outside verifier needs only this and a copy of the
        /// data, without `keys/`.
        #[arg(long = "trusted-key", visible_alias = "key")]
        key: Option<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Skip re-hashing blobs (faster; ledger and versions only).
        #[arg(long)]
        skip_blobs: bool,
    },
    /// The facility CA: client certificates for devices and staff (mTLS).
    Ca {
        #[command(subcommand)]
        cmd: ca::CaCmd,
    },
    /// Encrypted, deduplicated backups in generations; restore drills.
    Backup {
        #[command(subcommand)]
        cmd: backup::BackupCmd,
    },
    /// Signatures, time-stamps and evidence records: verify, or seal now.
    Evidence {
        #[command(subcommand)]
        cmd: evidence::EvidenceCmd,
    },
    /// Self-assessment against the MHLW checklist and guideline: catalogues, new, report.
    Compliance {
        #[command(subcommand)]
        cmd: compliance::ComplianceCmd,
    },
    /// 電子帳簿保存法: transaction documents — import, search, export (税務調査用), 一括検証,
    /// registration-number check.
    Transactions {
        #[command(subcommand)]
        cmd: transactions::TransactionsCmd,
    },
    /// FHIR integrations (SMART Backend Services): a client key, a signed client assertion.
    Fhir {
        #[command(subcommand)]
        cmd: fhir::FhirCmd,
    },
    /// Export a record or a patient's records as a ZIP that verifies with OpenSSL alone.
    Export {
        #[command(subcommand)]
        what: evidence::ExportCmd,
    },
    /// Restore a snapshot into a new instance directory (never over an existing one).
    Restore {
        #[arg(long)]
        target: String,
        /// A snapshot id, or "latest".
        #[arg(long)]
        snapshot: String,
        #[arg(long)]
        to: PathBuf,
        #[command(flatten)]
        key: backup::KeyArgs,
    },
    /// Where the instance's state lives: move it from SQLite to PostgreSQL.
    Store {
        #[command(subcommand)]
        cmd: StoreCmd,
    },
    /// Benchmarks that print their figures (see docs/benchmarks.md).
    Bench {
        #[command(subcommand)]
        which: bench::Which,
    },
}

#[derive(Subcommand)]
enum StoreCmd {
    /// Copy a SQLite instance into an empty PostgreSQL database in one recorded step (the
    /// server must be stopped); the SQLite files are kept in before-postgres/.
    Migrate {
        #[arg(long, env = "MAMORI_DATA")]
        data: PathBuf,
        /// The database: postgres://user@host/db (another machine needs
        /// ?sslmode=require&sslrootcert=ca.pem).
        #[arg(long)]
        to: String,
        /// Move the content files into this bucket too (s3://bucket/prefix?endpoint=…;
        /// the prefix must be empty); they are kept in before-postgres/blobs/.
        #[arg(long)]
        blobs: Option<String>,
    },
}

/// Logs to standard error: readable lines by default, one JSON object per line with
/// `MAMORI_LOG_FORMAT=json` (for journald forwarding or a log collector).
fn init_tracing() {
    init_tracing_at("info");
}

/// Logs to stderr from `default` up, unless `MAMORI_LOG` says otherwise.
fn init_tracing_at(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MAMORI_LOG")
        .unwrap_or_else(|_| default.into());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("MAMORI_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json")) {
        logs.json().init();
    } else {
        logs.init();
    }
}

fn migrate_store(data: &std::path::Path, to: &str, blobs: Option<&str>) -> ExitCode {
    match mamori_service::instance::migrate_to_postgres(data, to, blobs) {
        Ok(m) => {
            println!(
                "PostgreSQL に移しました: {} 表・{} 行（台帳 {} 件、root {}、SQLite 側と一致）",
                m.copied.tables, m.copied.rows, m.ledger_size, m.ledger_root
            );
            println!(
                "元の SQLite のファイルは {}/ に残してあります。mamori verify --data {} で確かめられます。",
                mamori_service::instance::BEFORE_POSTGRES_DIR,
                data.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

fn fail(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("エラー: {e}");
    ExitCode::from(2)
}

/// glibc's allocator serialises threads that free what another allocated (a request's rows
/// are built on a reader thread and dropped on an async worker); mimalloc frees locally.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    if let Some(dir) = data_dir_of(&matches) {
        use_instance_tokens(&dir);
    }
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    match cli.cmd {
        Cmd::Init {
            data,
            facility,
            admin,
            admin_password_file,
            hosts,
            listen,
            database,
            blobs,
        } => {
            let pw = match std::fs::read_to_string(&admin_password_file) {
                Ok(s) => s.trim_end_matches(['\r', '\n']).to_owned(),
                Err(e) => {
                    return fail(format!(
                        "{} を読めません: {e}",
                        admin_password_file.display()
                    ));
                }
            };
            let hosts = if hosts.is_empty() {
                mamori_service::access::server_cert::default_hosts()
            } else {
                hosts
            };
            // The names and the address are checked before anything is created.
            if let Some(l) = &listen
                && l.parse::<std::net::SocketAddr>().is_err()
            {
                return fail(format!(
                    "「{l}」は待ち受けアドレスではありません（例: 0.0.0.0:8443）"
                ));
            }
            for h in &hosts {
                if let Err(e) = mamori_service::access::server_cert::check_host(h) {
                    return fail(e);
                }
            }
            let made = mamori_service::instance::init_with_database(
                &data,
                &InitParams {
                    facility: &facility,
                    admin_login: &admin,
                    admin_password: &pw,
                },
                database.as_deref(),
                blobs.as_deref(),
            )
            .and_then(|()| match &listen {
                Some(l) => mamori_service::instance::set_listen(&data, l),
                None => Ok(()),
            })
            .and_then(|()| mamori_service::instance::set_passkey_host(&data, &hosts))
            .and_then(|()| {
                let svc = open(&data)?;
                let rt = tokio::runtime::Runtime::new().expect("runtime");
                let info = rt.block_on(svc.issue_server_certificate(
                    None,
                    &hosts,
                    mamori_service::access::server_cert::DEFAULT_DAYS,
                ));
                svc.store().close();
                info
            });
            match made {
                Ok(info) => {
                    println!("インスタンスを作成しました: {}", data.display());
                    println!("{}", ca::server_cert_said(&info, &data));
                    println!("管理者 {admin} で初回ログインし、パスワードを変更してください。");
                    println!("起動: mamori serve --data {}", data.display());
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        Cmd::Serve {
            data,
            listen,
            tls_cert,
            tls_key,
            client_cert,
            insecure_http,
        } => {
            init_tracing();
            let client_certs = match client_cert.parse() {
                Ok(c) => c,
                Err(e) => return fail(e),
            };
            let transport = match (tls_cert, tls_key) {
                (Some(cert), Some(key)) => Transport::Given(mamori_web::tls::TlsOptions {
                    cert,
                    key,
                    client_certs,
                }),
                _ => Transport::Instance {
                    client_certs,
                    insecure_http,
                },
            };
            run_server(&data, listen, None, transport)
        }
        Cmd::Demo {
            data,
            listen,
            no_serve,
        } => {
            init_tracing();
            match demo::prepare(&data, &listen) {
                Ok(_) if no_serve => ExitCode::SUCCESS,
                Ok(banner) => run_server(
                    &data,
                    Some(listen),
                    Some(banner),
                    Transport::Instance {
                        client_certs: mamori_web::tls::ClientCerts::Off,
                        insecure_http: false,
                    },
                ),
                Err(e) => fail(e),
            }
        }
        Cmd::Checkpoint { data } => checkpoint(&data),
        Cmd::Ca { cmd } => ca::run(cmd),
        Cmd::Evidence { cmd } => evidence::run(cmd),
        Cmd::Export { what } => evidence::export(what),
        Cmd::Fhir { cmd } => fhir::run(cmd),
        Cmd::Compliance { cmd } => compliance::run(cmd),
        Cmd::Transactions { cmd } => transactions::run(cmd),
        Cmd::Verify {
            data,
            checkpoint,
            key,
            json,
            skip_blobs,
        } => {
            let text = match checkpoint.map(std::fs::read_to_string).transpose() {
                Ok(t) => t,
                Err(e) => return fail(format!("チェックポイントのファイルを読めません: {e}")),
            };
            let opts = VerifyOptions {
                external_checkpoint: text.as_deref(),
                trusted_key: key.as_deref(),
                skip_blobs,
            };
            match verify(&data, &opts) {
                Ok(rep) => {
                    if json {
                        println!(
                            "{}",
                            serde_json::to_string_pretty(&rep).expect("report serialises")
                        );
                    } else {
                        print_report(&rep);
                    }
                    if rep.ok {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(1)
                    }
                }
                Err(e) => fail(e),
            }
        }
        Cmd::Backup { cmd } => backup::run(cmd),
        Cmd::Restore {
            target,
            snapshot,
            to,
            key,
        } => backup::restore(&target, &snapshot, &to, &key),
        Cmd::Store {
            cmd: StoreCmd::Migrate { data, to, blobs },
        } => {
            // The operator moving the instance is the administrator: the detail of a failure
            // belongs on their terminal.
            init_tracing_at("warn");
            migrate_store(&data, &to, blobs.as_deref())
        }
        Cmd::Bench { which } => {
            // Quiet unless asked: the figures are the output (MAMORI_LOG=mamori_backup=debug
            // shows where a backup's time goes).
            if std::env::var_os("MAMORI_LOG").is_some() {
                init_tracing();
            }
            bench::run(which)
        }
    }
}

fn print_report(rep: &mamori_service::ledger::verify::VerifyReport) {
    println!("台帳の項目: {}  (root {})", rep.ledger_entries, rep.root);
    println!(
        "保存ハッシュ: {}  版: {}  ファイル: {}",
        rep.stored_hashes, rep.versions, rep.blobs
    );
    println!(
        "確認したチェックポイント: {}  (最新 size {:?})",
        rep.checkpoints_checked, rep.latest_checkpoint_size
    );
    println!(
        "台帳と照合した行: {}  (照合しないもの {} 件: verify --json の not_covered)",
        rep.state_rows,
        rep.not_covered.len()
    );
    for n in &rep.notes {
        println!("注記: {n}");
    }
    if rep.ok {
        println!(
            "検証結果: OK — 記録・台帳・ファイル・保存されたすべての行に変更や削除は見つかりませんでした ({:.2} 秒)",
            rep.seconds
        );
    } else {
        println!(
            "検証結果: NG — {} 件の問題が見つかりました:",
            rep.problems_total
        );
        for p in &rep.problems {
            println!("  - {p}");
        }
        if rep.problems_total > rep.problems.len() {
            println!("  …ほか {} 件", rep.problems_total - rep.problems.len());
        }
    }
}

fn checkpoint(data: &Path) -> ExitCode {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    match open(data) {
        Ok(svc) => {
            let r = rt.block_on(svc.checkpoint_now());
            svc.store().close();
            match r {
                Ok(cp) => {
                    print!("{}", cp.note);
                    eprintln!("検証鍵: {}", cp.verifier_key);
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        // While the server runs it signs checkpoints itself; show its newest one.
        Err(e) if e.code == ErrorCode::LockedInstance => {
            match mamori_service::instance::read_only(data).and_then(|ro| {
                Ok((
                    ro.get().checkpoints()?.pop(),
                    ro.get().meta("verifier_key")?,
                ))
            }) {
                Ok((Some(cp), vkey)) => {
                    print!("{}", cp.note);
                    eprintln!("（稼働中のサーバーが最後に署名したチェックポイントです）");
                    eprintln!("検証鍵: {}", vkey.unwrap_or_default());
                    ExitCode::SUCCESS
                }
                Ok((None, _)) => fail("チェックポイントがまだありません"),
                Err(e) => fail(e),
            }
        }
        Err(e) => fail(e),
    }
}

fn run_server(
    data: &Path,
    listen: Option<String>,
    banner: Option<String>,
    transport: Transport,
) -> ExitCode {
    let addr = match listen {
        Some(a) => a,
        None => match mamori_service::Config::load(data) {
            Ok(c) => c.server.listen,
            Err(e) => return fail(e),
        },
    };
    // An address given as numbers is judged before any socket is opened.
    let decided = match addr.parse::<std::net::SocketAddr>() {
        Ok(a) => match mamori_web::tls::choose(data, transport, a) {
            Ok(tls) => Ok(tls),
            Err(e) => return fail(e),
        },
        Err(_) => Err(transport),
    };
    let svc = match open(data) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let result = rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .map_err(|e| format!("{addr} で待ち受けできません: {e}"))?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        let tls = match decided {
            Ok(tls) => tls,
            Err(later) => mamori_web::tls::choose(data, later, local)?,
        };
        if let Some(b) = banner {
            println!("{b}");
        }
        let scheme = if tls.is_some() { "https" } else { "http" };
        println!(
            "mamori を起動しました: {scheme}://{local}/  (API: {scheme}://{local}/api/v1/openapi.json)"
        );
        println!("停止するには Ctrl+C を押してください。");
        let shutdown = async {
            let ctrl_c = tokio::signal::ctrl_c();
            #[cfg(unix)]
            {
                let mut term =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                        .expect("signal");
                tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
            }
            #[cfg(not(unix))]
            let _ = ctrl_c.await;
        };
        mamori_web::serve_with(svc, listener, tls, shutdown)
            .await
            .map_err(|e| e.to_string())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

/// The `--data` directory of whichever subcommand was given.
fn data_dir_of(m: &clap::ArgMatches) -> Option<PathBuf> {
    if let Some((_, sub)) = m.subcommand() {
        return data_dir_of(sub);
    }
    m.try_get_one::<PathBuf>("data").ok().flatten().cloned()
}

/// With the default PKCS#11 module (SoftHSM2), the signing keys' tokens are the instance's
/// own: `keys/tokens/` of its data directory, named to SoftHSM2 by `SOFTHSM2_CONF` (the only
/// way it takes one). A configured module (an HSM) keeps the operator's environment.
#[allow(unsafe_code)]
fn use_instance_tokens(dir: &Path) {
    let module = mamori_service::Config::load(dir)
        .map(|c| c.evidence.pkcs11_module)
        .unwrap_or_default();
    if !module.trim().is_empty() {
        return;
    }
    let Ok(abs) = std::path::absolute(dir) else {
        return;
    };
    let conf = mamori_service::evidence::window::softhsm_conf_path(&abs);
    // SAFETY: called first thing in `main`, before the runtime or any other thread exists, so
    // nothing reads the environment concurrently.
    unsafe { std::env::set_var("SOFTHSM2_CONF", conf) };
}
