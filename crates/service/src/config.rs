//! `mamori.toml` in the data directory, overridable by environment variables named
//! `MAMORI_<SECTION>_<KEY>` (e.g. `MAMORI_SERVER_LISTEN`, `MAMORI_LOCKOUT_MAX_FAILURES`).

use crate::ErrorCode;
use std::path::Path;

use mamori_domain::password::{LockoutPolicy, PasswordPolicy, SessionPolicy};
use serde::{Deserialize, Serialize};

use crate::error::{Result, ServiceError};

pub const CONFIG_FILE: &str = "mamori.toml";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    pub facility: FacilityConfig,
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub password: PasswordPolicy,
    #[serde(default)]
    pub lockout: LockoutPolicy,
    #[serde(default)]
    pub session: SessionPolicy,
    #[serde(default)]
    pub records: RecordsConfig,
    #[serde(default)]
    pub ledger: LedgerConfig,
    #[serde(default)]
    pub emergency: EmergencyConfig,
    #[serde(default)]
    pub time: TimeConfig,
    #[serde(default)]
    pub backup: BackupConfig,
    #[serde(default)]
    pub evidence: EvidenceConfig,
    #[serde(default)]
    pub database: DatabaseConfig,
}

/// Where the instance's state lives: empty for SQLite in the data directory (the default),
/// or a `postgres://` URL (issue #22). A URL to another machine needs
/// `sslmode=require&sslrootcert=…` (or an explicit `sslmode=disable`); its password may be
/// given as MAMORI_DATABASE_URL instead of in this file.
///
/// `blobs`: where content files live when the state is in PostgreSQL — empty for `blobs/` in
/// the data directory, or `s3://bucket/prefix?endpoint=…&region=…[&addressing=virtual]`
/// (credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY), which every node of the
/// instance then shares.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct DatabaseConfig {
    pub url: String,
    pub blobs: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct EvidenceConfig {
    /// Sign every finalised version (CAdES) with its responsible author's key.
    pub sign: bool,
    /// RFC 3161 TSAs, comma-separated, tried in order. In production a 総務大臣認定 TSA.
    pub tsa_urls: String,
    /// PEM file of the TSAs' root certificates (relative to the data directory).
    pub tsa_trust: String,
    /// PEM file of further signer roots (e.g. HPKI), beside the facility CA.
    pub signer_trust: String,
    /// mamori's own TSA when no TSA URL is set: for demos and tests only, no legal weight.
    pub dev_tsa: bool,
    /// Validity of the development TSA's certificates (a new one is made before renewal).
    pub dev_tsa_days: u64,
    /// How often `serve` seals new signatures and checkpoints into an evidence record.
    pub seal_interval_hours: u64,
    /// Renew an evidence record this many days before its newest TSA certificate expires.
    pub renew_days: u64,
    /// Hash algorithm of new evidence records (`sha256` or `sha512`); changing it renews every
    /// record's hash tree with the new algorithm (RFC 4998 hash-tree renewal).
    pub hash: String,
    /// Validity of staff signing certificates issued by the facility CA.
    pub signer_days: u64,
    /// Logins of authors who sign outside mamori (HPKI card, cloud signing), comma-separated:
    /// their finalised versions wait for a signature through the external-signing API.
    pub external_signers: String,
    /// PEM file (in the data directory) of the accredited (総務大臣認定) TSAs' certificates, or of
    /// the CA certificates that issue them: a time-stamp from any other TSA is shown as not
    /// accredited, and the self-assessment answers from it.
    pub accredited_tsa_certs: String,
    /// The accredited TSAs' policy OIDs, comma-separated (empty: any policy of a listed TSA).
    pub accredited_tsa_policies: String,
    /// CRL files (DER or PEM, in the data directory, comma-separated) of the CAs in
    /// `signer_trust` (HPKI CAs publish them; download them as they are renewed): a signer
    /// certificate they list is refused from its revocation on. The facility CA's own
    /// revocations need no file.
    pub signer_crls: String,
    /// Record kinds whose signer must hold one of these qualifications (hcRole names as HPKI
    /// writes them: `Medical Doctor`, `Dentist`, `Pharmacist` …), from their certificate.
    pub qualifications: std::collections::BTreeMap<String, Vec<String>>,
    /// Whether the facility CA's own statement of a qualification (in its certificates, marked
    /// as not HPKI) satisfies `qualifications`; `false` asks for HPKI certificates.
    pub facility_qualifications: bool,
    /// The PKCS#11 module holding the staff's signing keys (an HSM's library). Empty: Debian's
    /// SoftHSM2 (`apt-get install softhsm2`), its tokens in `keys/tokens/` of the data directory.
    pub pkcs11_module: String,
    /// How long a signing window stays open after its holder entered the signing PIN.
    pub signing_window_hours: u64,
    /// The shortest signing PIN accepted.
    pub signing_pin_min: usize,
    /// Record kinds whose finalised versions also get a PDF signed by their author (PAdES),
    /// comma-separated: 紹介状, 同意書 and 診断書 (add a kind with the code
    /// `medical_certificate`). Empty: none.
    pub pdf_kinds: String,
    /// The OpenType font embedded (as a subset) in those PDFs. Empty: the first of Debian's
    /// Japanese fonts found (Noto Sans CJK from fonts-noto-cjk, then IPAex Gothic).
    pub pdf_font: String,
    /// The face in a font collection (`.ttc`): 0 is Japanese in Noto Sans CJK.
    pub pdf_font_index: u32,
    /// PEM file (in the data directory) of the JPKI 署名用認証局 roots: a patient's signature made
    /// with their マイナンバーカード (e.g. on an uploaded consent form) then verifies and shows the
    /// holder's name. Such certificates never sign as staff.
    pub jpki_trust: String,
    /// The largest uploaded PDF an author may sign (MiB).
    pub pdf_sign_max_mb: u64,
}

impl Default for EvidenceConfig {
    fn default() -> Self {
        Self {
            sign: true,
            tsa_urls: String::new(),
            tsa_trust: String::new(),
            signer_trust: String::new(),
            dev_tsa: false,
            dev_tsa_days: 5 * 365,
            seal_interval_hours: 24,
            renew_days: 365,
            hash: "sha256".into(),
            signer_days: 2 * 365,
            external_signers: String::new(),
            accredited_tsa_certs: String::new(),
            accredited_tsa_policies: String::new(),
            signer_crls: String::new(),
            qualifications: [("prescription", ()), ("referral", ())]
                .into_iter()
                .map(|(k, ())| {
                    (
                        k.to_owned(),
                        vec!["Medical Doctor".to_owned(), "Dentist".to_owned()],
                    )
                })
                .collect(),
            facility_qualifications: true,
            pkcs11_module: String::new(),
            signing_window_hours: 8,
            signing_pin_min: 8,
            pdf_kinds: "referral,consent,medical_certificate".into(),
            pdf_font: String::new(),
            pdf_font_index: 0,
            jpki_trust: String::new(),
            pdf_sign_max_mb: 32,
        }
    }
}

/// Debian's Japanese fonts, in the order tried when `evidence.pdf_font` is empty.
pub const PDF_FONTS: &[&str] = &[
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf",
    "/usr/share/fonts/truetype/fonts-japanese-gothic.ttf",
];

impl EvidenceConfig {
    /// Whether finalised versions of `kind` get a signed PDF.
    pub fn pdf_for(&self, kind: &str) -> bool {
        self.pdf_kinds.split(',').any(|k| k.trim() == kind)
    }

    /// The font file for PDFs and its face.
    pub fn pdf_font_path(&self) -> Option<(std::path::PathBuf, u32)> {
        if !self.pdf_font.trim().is_empty() {
            return Some((self.pdf_font.trim().into(), self.pdf_font_index));
        }
        PDF_FONTS
            .iter()
            .map(std::path::PathBuf::from)
            .find(|p| p.is_file())
            .map(|p| (p, 0))
    }

    pub fn tsa_url_list(&self) -> Vec<String> {
        self.tsa_urls
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct BackupConfig {
    /// Where `serve` backs up on schedule, comma-separated: directories (NAS, removable media)
    /// and `s3://bucket/prefix?endpoint=…&lock_days=30`. Empty: no schedule.
    pub targets: String,
    /// The key file (`mamori backup keygen`) for scheduled backups; the passphrase may come
    /// from MAMORI_BACKUP_PASSPHRASE instead. Keep a printed copy offline.
    pub key_file: String,
    /// How often `serve` backs up (0 = only on demand).
    pub interval_hours: u64,
    /// Generations kept per target (the guideline's Q&A example: 5 for electronic records).
    pub keep: u32,
    /// Include the instance's keys (ledger and CA) so that a restore stands alone.
    pub include_keys: bool,
    /// Warn when no copy has been recorded as taken offline for this many days.
    pub offline_days: u64,
    /// Warn when no restore drill has passed for this many days.
    pub drill_days: u64,
}

impl Default for BackupConfig {
    fn default() -> Self {
        Self {
            targets: String::new(),
            key_file: String::new(),
            interval_hours: 24,
            keep: 5,
            include_keys: true,
            offline_days: 7,
            drill_days: 30,
        }
    }
}

impl BackupConfig {
    pub fn target_list(&self) -> Vec<String> {
        self.targets
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct TimeConfig {
    /// NTP servers to compare the clock with, comma-separated (`ntp.nict.jp, 10.0.0.1:123`);
    /// empty: the kernel's synchronisation state alone.
    pub ntp_servers: String,
    pub check_interval_secs: u64,
    /// A larger difference from the NTP server counts as unsynchronised.
    pub max_offset_ms: i64,
    pub timeout_ms: u64,
}

impl Default for TimeConfig {
    fn default() -> Self {
        Self {
            ntp_servers: String::new(),
            check_interval_secs: 300,
            max_offset_ms: 1000,
            timeout_ms: 2000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct EmergencyConfig {
    /// How long one break-glass access lasts.
    pub minutes: u32,
    /// Where each use is announced at once (HTTP POST of a JSON body); empty: in-app only.
    pub webhook_url: String,
    /// The mail server for announcements by e-mail: `smtp://host:25`,
    /// `smtp://user:password@host:587?tls=required` (STARTTLS) or `smtps://host:465`.
    pub smtp_url: String,
    /// Sender address of the announcements.
    pub mail_from: String,
    /// Security officers to e-mail, comma-separated; empty: no e-mail.
    pub mail_to: String,
}

impl Default for EmergencyConfig {
    fn default() -> Self {
        Self {
            minutes: 30,
            webhook_url: String::new(),
            smtp_url: String::new(),
            mail_from: "mamori@localhost".into(),
            mail_to: String::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FacilityConfig {
    pub name: String,
    /// The 10-digit 保険医療機関コード (都道府県 2 + 点数表 1 + 医療機関 7): the system of the
    /// facility's patient IDs in FHIR (`urn:oid:1.2.392.100495.20.3.51.1` + this code, as JP
    /// Core has it). Empty: `urn:mamori:patient-id`.
    #[serde(default)]
    pub institution_code: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerConfig {
    pub listen: String,
    /// Set the Secure flag on cookies. Browsers accept Secure cookies on http://localhost;
    /// anything else must be served over TLS.
    pub secure_cookies: bool,
    /// The WebAuthn relying-party ID passkeys are bound to: the host name staff use (an IP
    /// address cannot be one; the demo is used at http://localhost:8080 for passkeys).
    pub passkey_rp_id: String,
    /// Exact origins pages are served from, comma-separated; empty: https on the RP ID (any
    /// port), and http://localhost.
    pub passkey_origins: String,
    /// Host names the server answers to, comma-separated (besides `localhost`, IP addresses
    /// and `passkey_rp_id`). A request naming another host is refused, so that a web page
    /// on a name that an attacker points at this server (DNS rebinding) cannot reach it.
    pub allowed_hosts: String,
    /// Open connections at most; past it a new connection is closed at once. Also kept below
    /// the process's open-file limit.
    pub max_connections: usize,
    /// Seconds a client has to send a request's headers (and to finish a TLS handshake).
    pub header_timeout_secs: u64,
    /// Seconds a connection may stay idle (no request in progress, nothing sent either way).
    pub idle_timeout_secs: u64,
    /// Reverse proxies (nginx, HAProxy) in front of mamori, comma-separated addresses or ranges:
    /// only for connections from these is `X-Forwarded-For` believed, and only as far as they
    /// wrote it. Empty: the connecting address is the client.
    pub trusted_proxies: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            secure_cookies: true,
            passkey_rp_id: "localhost".into(),
            passkey_origins: String::new(),
            allowed_hosts: String::new(),
            max_connections: 1024,
            header_timeout_secs: 10,
            idle_timeout_secs: 60,
            trusted_proxies: String::new(),
        }
    }
}

impl ServerConfig {
    /// `trusted_proxies`, parsed; an entry that is not an address or a range is an error.
    pub fn trusted_proxy_list(&self) -> Result<Vec<mamori_domain::net::Cidr>> {
        mamori_domain::net::parse_list(&self.trusted_proxies).map_err(|e| {
            ServiceError::new(ErrorCode::Config, format!("server.trusted_proxies: {e}"))
        })
    }

    /// Adds the DNS names among `hosts` to `allowed_hosts` (addresses and `localhost` are
    /// always allowed), keeping those already there.
    pub fn allow_hosts(&mut self, hosts: &[String]) {
        let mut list: Vec<String> = self
            .allowed_hosts
            .split(',')
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect();
        for h in hosts {
            let h = h.trim().trim_end_matches('.').to_ascii_lowercase();
            if h != "localhost" && h.parse::<std::net::IpAddr>().is_err() && !list.contains(&h) {
                list.push(h);
            }
        }
        self.allowed_hosts = list.join(",");
    }

    /// Whether a request's `Host` (with or without its port) is one this server answers to.
    pub fn host_allowed(&self, host: &str) -> bool {
        let name = match host.strip_prefix('[') {
            // [::1]:8080
            Some(rest) => {
                return rest
                    .split(']')
                    .next()
                    .is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok());
            }
            None => host.rsplit_once(':').map_or(host, |(h, port)| {
                if port.bytes().all(|b| b.is_ascii_digit()) {
                    h
                } else {
                    host
                }
            }),
        };
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        name == "localhost"
            || name.parse::<std::net::IpAddr>().is_ok()
            || name == self.passkey_rp_id.trim().to_ascii_lowercase()
            || self
                .allowed_hosts
                .split(',')
                .map(|h| h.trim().trim_end_matches('.').to_ascii_lowercase())
                .any(|h| !h.is_empty() && h == name)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct RecordsConfig {
    /// Largest attachment accepted, in bytes.
    pub max_attachment_bytes: u64,
}

impl Default for RecordsConfig {
    fn default() -> Self {
        Self {
            max_attachment_bytes: 20 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct LedgerConfig {
    /// A new signed checkpoint is made this often while the ledger grows.
    pub checkpoint_interval_secs: u64,
    /// `serve` re-verifies the whole instance this often (0 = never); the result is in the
    /// ledger and on the audit pages.
    pub verify_interval_hours: u64,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        Self {
            checkpoint_interval_secs: 300,
            verify_interval_hours: 24,
        }
    }
}

impl Config {
    pub fn new(facility: &str) -> Self {
        Self {
            facility: FacilityConfig {
                name: facility.to_owned(),
                institution_code: String::new(),
            },
            server: ServerConfig::default(),
            password: PasswordPolicy::default(),
            lockout: LockoutPolicy::default(),
            session: SessionPolicy::default(),
            records: RecordsConfig::default(),
            ledger: LedgerConfig::default(),
            emergency: EmergencyConfig::default(),
            time: TimeConfig::default(),
            backup: BackupConfig::default(),
            evidence: EvidenceConfig::default(),
            database: DatabaseConfig::default(),
        }
    }

    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(CONFIG_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            ServiceError::new(
                ErrorCode::Config,
                format!("設定ファイル {} を読めません: {e}", path.display()),
            )
        })?;
        Self::parse(&text, |k| std::env::var(k).ok())
    }

    /// Rewrites `dir/mamori.toml` with `change` applied, as a whole new file (written beside
    /// it, synced, renamed). Environment overrides are not written into it.
    pub fn edit(dir: &Path, change: impl FnOnce(&mut Config)) -> Result<()> {
        let path = dir.join(CONFIG_FILE);
        let fail = |e: std::io::Error| {
            ServiceError::new(
                ErrorCode::Config,
                format!("設定ファイル {} を書き換えられません: {e}", path.display()),
            )
        };
        let text = std::fs::read_to_string(&path).map_err(fail)?;
        let mut config = Self::parse(&text, |_| None)?;
        change(&mut config);
        let fresh = path.with_extension("toml.new");
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            let _ = std::fs::remove_file(&fresh);
            let mut o = std::fs::OpenOptions::new();
            o.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                o.mode(0o600);
            }
            let mut f = o.open(&fresh)?;
            f.write_all(config.to_toml().as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&fresh, &path)
        };
        write().map_err(fail)
    }

    /// Parses TOML text and applies overrides from `env` (a function so tests need no globals).
    pub fn parse(text: &str, env: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let mut value: toml::Value = toml::from_str(text).map_err(|e| {
            ServiceError::new(
                ErrorCode::Config,
                format!("設定ファイルの書式が正しくありません: {e}"),
            )
        })?;
        // Overrides apply to every known key, including those left to their defaults.
        let defaults = toml::Value::try_from(Config::new("")).map_err(ServiceError::internal)?;
        if let (Some(table), Some(def)) = (value.as_table_mut(), defaults.as_table()) {
            for (section, keys) in def {
                let Some(keys) = keys.as_table() else {
                    continue;
                };
                for (key, default) in keys {
                    let var = format!("MAMORI_{}_{}", section.to_uppercase(), key.to_uppercase());
                    let Some(raw) = env(&var) else { continue };
                    let parsed = match default {
                        toml::Value::Integer(_) => {
                            raw.parse::<i64>().map(toml::Value::Integer).ok()
                        }
                        toml::Value::Boolean(_) => {
                            raw.parse::<bool>().map(toml::Value::Boolean).ok()
                        }
                        _ => Some(toml::Value::String(raw.clone())),
                    }
                    .ok_or_else(|| {
                        ServiceError::new(
                            ErrorCode::Config,
                            format!("環境変数 {var} の値 '{raw}' が正しくありません"),
                        )
                    })?;
                    let sec = table
                        .entry(section.clone())
                        .or_insert_with(|| toml::Value::Table(Default::default()));
                    if let Some(t) = sec.as_table_mut() {
                        t.insert(key.clone(), parsed);
                    }
                }
            }
        }
        let config: Config = value.try_into().map_err(|e| {
            ServiceError::new(
                ErrorCode::Config,
                format!("設定の値が正しくありません: {e}"),
            )
        })?;
        config.server.trusted_proxy_list()?;
        Ok(config)
    }

    pub fn to_toml(&self) -> String {
        let body = toml::to_string_pretty(self).expect("config serialises");
        format!(
            "# mamori の設定ファイル。値は MAMORI_<SECTION>_<KEY> 環境変数で上書きできます\n\
             # (例: MAMORI_SERVER_LISTEN=0.0.0.0:8443)。詳細は docs/operations.md を参照。\n\n{body}"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trusted_proxy_that_is_not_an_address_stops_the_start() {
        let with = |v: &str| {
            let mut c = Config::new("テスト診療所");
            c.server.trusted_proxies = v.into();
            Config::parse(&c.to_toml(), |_| None)
        };
        let e = with("10.0.0.2, nginx").unwrap_err();
        assert!(e.message.contains("server.trusted_proxies"), "{e:?}");
        let c = with("10.0.0.0/24").unwrap();
        assert_eq!(c.server.trusted_proxy_list().unwrap().len(), 1);
    }

    #[test]
    fn certificate_host_names_join_the_allowed_hosts_and_addresses_do_not() {
        let mut s = ServerConfig::default();
        s.allow_hosts(&[
            "Karte.Clinic.Local.".into(),
            "192.168.1.10".into(),
            "localhost".into(),
        ]);
        assert_eq!(s.allowed_hosts, "karte.clinic.local");
        s.allow_hosts(&["karte.clinic.local".into(), "b.local".into()]);
        assert_eq!(s.allowed_hosts, "karte.clinic.local,b.local");
        assert!(s.host_allowed("karte.clinic.local:8443"));
        assert!(!s.host_allowed("evil.example"));
    }

    #[test]
    fn round_trip_and_env_overrides() {
        let text = Config::new("テスト診療所").to_toml();
        let c = Config::parse(&text, |_| None).unwrap();
        assert_eq!(c.facility.name, "テスト診療所");
        assert_eq!(c.lockout.max_failures, 5);
        let srv = ServerConfig {
            allowed_hosts: "karte.clinic.example, mamori.local".into(),
            ..Default::default()
        };
        for ok in [
            "localhost:8080",
            "127.0.0.1:8080",
            "[::1]:8080",
            "192.168.1.10",
            "Karte.Clinic.Example",
            "mamori.local:443",
            "localhost.",
        ] {
            assert!(srv.host_allowed(ok), "{ok}");
        }
        for bad in [
            "attacker.example",
            "attacker.example:8080",
            "localhost.attacker.example",
            "",
            "[evil]:80",
            "mamori.local.evil",
        ] {
            assert!(!srv.host_allowed(bad), "{bad}");
        }
        let c = Config::parse(&text, |k| match k {
            "MAMORI_SERVER_LISTEN" => Some("0.0.0.0:9999".into()),
            "MAMORI_LOCKOUT_MAX_FAILURES" => Some("3".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(c.server.listen, "0.0.0.0:9999");
        assert_eq!(c.lockout.max_failures, 3);
        let bad = Config::parse(&text, |k| {
            (k == "MAMORI_LOCKOUT_MAX_FAILURES").then(|| "many".into())
        });
        assert!(
            bad.unwrap_err()
                .message
                .contains("MAMORI_LOCKOUT_MAX_FAILURES")
        );
        assert!(Config::parse("facility = 3", |_| None).is_err());
    }
}

#[cfg(test)]
mod host_properties {
    use super::ServerConfig;
    use proptest::prelude::*;

    proptest! {
        /// Any `Host` a client sends is answered without panicking, and a name that is not
        /// localhost, an IP address, the RP ID or a configured host is refused, with any port.
        #[test]
        fn only_configured_names_pass(host in "\\PC{0,80}", label in "[a-z][a-z0-9-]{0,20}", port in 0u32..70000) {
            let srv = ServerConfig { allowed_hosts: "karte.clinic.example".into(), ..Default::default() };
            let _ = srv.host_allowed(&host);
            let name = format!("{label}.attacker.example");
            prop_assert!(!srv.host_allowed(&name));
            let with_port = format!("{name}:{port}");
            let ours = format!("karte.clinic.example:{port}");
            prop_assert!(!srv.host_allowed(&with_port));
            prop_assert!(srv.host_allowed(&ours));
        }
    }
}
