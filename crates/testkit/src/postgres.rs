//! A PostgreSQL cluster of the test's own: `initdb` into a temporary directory, `pg_ctl start`
//! on a free port of 127.0.0.1, `pg_ctl stop -m immediate` (a crash, as far as the data
//! files know) when dropped or asked.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
}

/// Where Debian keeps the server binaries (`/usr/lib/postgresql/<major>/bin`), newest major first,
/// else whatever `initdb` is on the PATH.
fn server_bin() -> PathBuf {
    let mut majors: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((major, bin))
        })
        .collect();
    majors.sort();
    if let Some((_, bin)) = majors.pop() {
        return bin;
    }
    let found = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p).find(|d| d.join("initdb").exists() && d.join("pg_ctl").exists())
    });
    found.unwrap_or_else(|| {
        panic!(
            "PostgreSQL's server binaries (initdb, pg_ctl) were not found: `apt install postgresql` \
             (.ci/run does this) — the PostgreSQL tests run against a real server"
        )
    })
}

/// `psql` beside the server binaries, else the one on the PATH.
fn psql_in(bin: &Path) -> PathBuf {
    Some(bin.join("psql"))
        .filter(|p| p.exists())
        .unwrap_or_else(|| "psql".into())
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().unwrap().port()
}

impl Cluster {
    /// A fresh cluster with durable commits (fsync and `synchronous_commit` on, the defaults).
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// A fresh cluster with extra `postgresql.conf` settings.
    pub fn start_with(settings: &[(&str, &str)]) -> Self {
        Self::start_with_files(settings, &[])
    }

    /// A cluster that serves TLS with this certificate chain and key (PEM); `ssl = on`.
    pub fn start_with_tls(cert_pem: &str, key_pem: &str) -> Self {
        Self::start_with_files(
            &[
                ("ssl", "on"),
                ("ssl_cert_file", "../server.crt"),
                ("ssl_key_file", "../server.key"),
            ],
            &[
                ("server.crt", cert_pem.as_bytes()),
                ("server.key", key_pem.as_bytes()),
            ],
        )
    }

    /// As `start_with`, with files put beside the data directory first (owner-only, owned by
    /// the server's user), for settings that name them relative to it.
    pub fn start_with_files(settings: &[(&str, &str)], files: &[(&str, &[u8])]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("mamori-pg-")
            .tempdir()
            .expect("temporary directory");
        let as_postgres = rustix::process::geteuid().is_root();
        let cluster = Self {
            dir,
            bin: server_bin(),
            port: free_port(),
            as_postgres,
        };
        cluster.own(cluster.dir.path());
        for (name, bytes) in files {
            let path = cluster.dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            cluster.must(Command::new("chmod").arg("600").arg(&path));
            cluster.own(&path);
        }
        let data = cluster.data();
        cluster.must(
            cluster
                .server("initdb")
                .args([
                    "--auth=trust",
                    "--username=postgres",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-sync",
                    "-D",
                ])
                .arg(&data),
        );
        let mut conf = format!(
            "listen_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{}'\n\
             max_connections = 300\nshared_buffers = 128MB\nfsync = on\nsynchronous_commit = on\n\
             log_min_messages = warning\nlogging_collector = off\n",
            cluster.port,
            cluster.dir.path().display()
        );
        for (k, v) in settings {
            conf.push_str(&format!("{k} = '{v}'\n"));
        }
        let mut existing = std::fs::read_to_string(data.join("postgresql.conf")).unwrap();
        existing.push_str(&conf);
        std::fs::write(data.join("postgresql.conf"), existing).unwrap();
        cluster.start_again();
        cluster
    }

    /// A streaming standby of this cluster (`pg_basebackup -R`) on a port of its own, started
    /// and connected. Make it synchronous with [`Cluster::require_synchronous_standby`].
    pub fn standby(&self) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("mamori-pg-standby-")
            .tempdir()
            .expect("temporary directory");
        let standby = Self {
            dir,
            bin: self.bin.clone(),
            port: free_port(),
            as_postgres: self.as_postgres,
        };
        standby.own(standby.dir.path());
        standby.must(
            standby
                .server("pg_basebackup")
                .args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &self.port.to_string(),
                    "-U",
                    "postgres",
                ])
                .args(["-X", "stream", "-R", "--no-sync", "--checkpoint=fast", "-D"])
                .arg(standby.data()),
        );
        let conf = standby.data().join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).unwrap();
        text.push_str(&format!(
            "port = {}\nunix_socket_directories = '{}'\ncluster_name = 'standby{}'\n",
            standby.port,
            standby.dir.path().display(),
            standby.port
        ));
        std::fs::write(&conf, text).unwrap();
        standby.start_again();
        standby
    }

    /// Commits on this primary wait until a standby has the WAL on disk
    /// (`synchronous_standby_names = '*'`); returns once one standby streams synchronously.
    pub fn require_synchronous_standby(&self) {
        self.psql(
            "postgres",
            "ALTER SYSTEM SET synchronous_standby_names = '*'",
        );
        self.psql("postgres", "SELECT pg_reload_conf()");
        for _ in 0..300 {
            if self.psql(
                "postgres",
                "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync' AND state = 'streaming'",
            ) == "1"
            {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("no synchronous standby after 30 s:\n{}", self.log());
    }

    /// Makes this standby the primary (`pg_ctl promote`) and waits until it accepts writes.
    pub fn promote(&self) {
        let out = self.pg_ctl(&["-w", "-t", "60", "promote"]);
        assert!(
            out.status.success(),
            "pg_ctl promote failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Gives `path` to the server's user when the tests run as root.
    fn own(&self, path: &Path) {
        if self.as_postgres {
            self.must(Command::new("chown").arg("postgres:").arg(path));
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A server binary, run as the cluster's owner.
    fn server(&self, name: &str) -> Command {
        let program = self.bin.join(name);
        let mut c = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        c.current_dir(self.dir.path());
        c
    }

    fn must(&self, c: &mut Command) -> Output {
        let out = c.output().unwrap_or_else(|e| panic!("{c:?}: {e}"));
        assert!(
            out.status.success(),
            "{c:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn pg_ctl(&self, args: &[&str]) -> Output {
        let log = self.dir.path().join("server.log");
        let mut c = self.server("pg_ctl");
        c.arg("-D").arg(self.data()).arg("-l").arg(log).args(args);
        c.output().unwrap_or_else(|e| panic!("pg_ctl: {e}"))
    }

    /// Starts the server (again) and waits until it accepts connections.
    pub fn start_again(&self) {
        let out = self.pg_ctl(&["-w", "-t", "60", "start"]);
        assert!(
            out.status.success(),
            "pg_ctl start failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
    }

    /// Stops the server the way a crash would (`pg_ctl stop -m immediate`: no checkpoint, the
    /// next start replays the WAL).
    pub fn stop_immediate(&self) {
        let out = self.pg_ctl(&["-w", "-m", "immediate", "stop"]);
        assert!(
            out.status.success(),
            "pg_ctl stop failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The server's log so far (for a failing test's message).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A connection URL for `database` as the superuser, over TCP on 127.0.0.1.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Creates an empty database and returns its URL.
    pub fn database(&self, name: &str) -> String {
        self.psql("postgres", &format!("CREATE DATABASE \"{name}\""));
        self.url(name)
    }

    /// Runs SQL through `psql` (unaligned, tuples only) and returns what it printed.
    pub fn psql(&self, database: &str, sql: &str) -> String {
        self.try_psql(database, sql)
            .unwrap_or_else(|e| panic!("psql `{sql}` failed: {e}"))
    }

    /// Runs SQL through `psql`; what it printed, or what the server refused.
    pub fn try_psql(&self, database: &str, sql: &str) -> Result<String, String> {
        let out = Command::new(psql_in(&self.bin))
            .args([
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
            ])
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                database,
                "-c",
                sql,
            ])
            .output()
            .expect("psql");
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.pg_ctl(&["-w", "-m", "immediate", "stop"]);
    }
}

/// When `MAMORI_TEST_POSTGRES_URL` names a server (`postgres://postgres@127.0.0.1:PORT`, as
/// `scripts/test-on-postgres.sh` starts one), a new empty database on it for one test's
/// instance; otherwise `None` and the test's instance is on SQLite. This is how the API and
/// service suites run a second time with their state in PostgreSQL.
pub fn suite_database() -> Option<String> {
    let server = std::env::var("MAMORI_TEST_POSTGRES_URL").ok()?;
    let server = server.trim_end_matches('/');
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let name = format!(
        "t{}_{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let out = Command::new(psql_in(&server_bin()))
        .args([
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            &format!("{server}/postgres"),
        ])
        .args(["-c", &format!("CREATE DATABASE \"{name}\"")])
        .output()
        .expect("psql");
    assert!(
        out.status.success(),
        "CREATE DATABASE on {server} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(format!("{server}/{name}"))
}

/// Whether this test run puts its instances on PostgreSQL (`scripts/test-on-postgres.sh`):
/// a test of a SQLite mechanism (its page-level incremental backups, its full-disk handling)
/// says so and returns.
pub fn suite_on_postgresql(test: &str, why: &str) -> bool {
    let on = std::env::var_os("MAMORI_TEST_POSTGRES_URL").is_some();
    if on {
        eprintln!("{test}: not run on PostgreSQL — {why}");
    }
    on
}
