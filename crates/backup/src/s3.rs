//! An S3-compatible bucket as a write-once target: every object is written with Object Lock
//! retention in COMPLIANCE mode (which nobody, not even the account's root, can shorten), and
//! retention is extended on objects that newer snapshots still use.
//!
//! Requests are signed with AWS Signature Version 4 over the HTTP client the workspace already
//! has; the SDK would bring a far larger tree for five calls. Path-style addressing works with
//! AWS and with on-premises S3 servers alike.
//!
//! Ransomware that holds the backup credentials can at most hide objects behind delete
//! markers; reads fall back to the newest real version, so a restore still finds them.
//!
//! Length: about 130 of these lines are the tests against a local S3 (moto); the client
//! itself (SigV4, object lock, retries) stays in one file because it is one protocol.

use std::io::Read;
use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, Mac};
use md5::Md5;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::{BackupError, Result};
use crate::target::Target;

type HmacSha256 = Hmac<Sha256>;

#[derive(Clone)]
pub struct Credentials {
    pub access_key: String,
    pub secret_key: String,
    pub session_token: Option<String>,
}

pub struct S3Target {
    endpoint: String,
    host: String,
    /// Virtual-hosted addressing (`bucket.host/key`, AWS's default) rather than path-style
    /// (`host/bucket/key`, what most on-premises servers expect).
    virtual_host: bool,
    region: String,
    bucket: String,
    prefix: String,
    lock_days: Option<u32>,
    creds: Credentials,
    agent: ureq::Agent,
    retry: Retry,
}

/// How often and how patiently a request S3 asks to retry is sent again.
#[derive(Clone, Copy, Debug)]
pub struct Retry {
    pub attempts: u32,
    pub first: Duration,
    pub longest: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        // 8 attempts over about a minute: long enough for a throttling burst or a rolling
        // restart of an S3 server, short enough that a dead endpoint is reported.
        Retry {
            attempts: 8,
            first: Duration::from_millis(200),
            longest: Duration::from_secs(20),
        }
    }
}

fn rand_u8() -> u8 {
    crate::seal::random_bytes::<1>()[0]
}

/// `MAMORI_S3_RETRY=attempts,first_ms,longest_ms` (for tests and unusual servers).
fn retry_from_env() -> Retry {
    let Ok(v) = std::env::var("MAMORI_S3_RETRY") else {
        return Retry::default();
    };
    let n: Vec<u64> = v.split(',').filter_map(|x| x.trim().parse().ok()).collect();
    match n[..] {
        [a, f, l] if a > 0 => Retry {
            attempts: a as u32,
            first: Duration::from_millis(f),
            longest: Duration::from_millis(l),
        },
        _ => Retry::default(),
    }
}

fn bad_url(url: &str, why: &str) -> BackupError {
    BackupError::Invalid(format!("S3 のバックアップ先 {url} を解釈できません: {why}"))
}

impl Credentials {
    /// AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (/ AWS_SESSION_TOKEN).
    pub fn from_env() -> Result<Self> {
        Ok(Credentials {
            access_key: std::env::var("AWS_ACCESS_KEY_ID").map_err(|_| {
                BackupError::Invalid("S3 の認証情報 AWS_ACCESS_KEY_ID が設定されていません".into())
            })?,
            secret_key: std::env::var("AWS_SECRET_ACCESS_KEY").map_err(|_| {
                BackupError::Invalid(
                    "S3 の認証情報 AWS_SECRET_ACCESS_KEY が設定されていません".into(),
                )
            })?,
            session_token: std::env::var("AWS_SESSION_TOKEN").ok(),
        })
    }
}

/// Names under `.localhost` are the machine itself (RFC 6761 §6.3), as browsers treat them;
/// virtual-hosted addressing against a local S3 server needs `bucket.localhost`.
fn resolve(netloc: &str) -> std::io::Result<Vec<std::net::SocketAddr>> {
    use std::net::ToSocketAddrs;
    if let Some((host, port)) = netloc.rsplit_once(':')
        && (host == "localhost" || host.ends_with(".localhost"))
        && let Ok(port) = port.parse::<u16>()
    {
        return Ok(vec![
            (std::net::Ipv4Addr::LOCALHOST, port).into(),
            (std::net::Ipv6Addr::LOCALHOST, port).into(),
        ]);
    }
    Ok(netloc.to_socket_addrs()?.collect())
}

impl S3Target {
    /// `s3://bucket/prefix?endpoint=http://127.0.0.1:9000&region=ap-northeast-1&lock_days=30`
    /// (`&addressing=virtual` for `bucket.host`); credentials from the environment.
    pub fn from_url(url: &str) -> Result<Self> {
        Self::from_url_with(url, Credentials::from_env()?)
    }

    /// The same with the credentials given.
    pub fn from_url_with(url: &str, creds: Credentials) -> Result<Self> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| bad_url(url, "s3:// で始まりません"))?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (bucket, prefix) = path.split_once('/').unwrap_or((path, ""));
        if bucket.is_empty()
            || !bucket
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.".contains(&b))
        {
            return Err(bad_url(url, "バケット名が不正です"));
        }
        let mut endpoint = std::env::var("AWS_ENDPOINT_URL").ok();
        let mut region = std::env::var("AWS_REGION").unwrap_or_else(|_| "ap-northeast-1".into());
        let mut lock_days = Some(30);
        let mut virtual_host = false;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "endpoint" => endpoint = Some(v.to_owned()),
                "region" => region = v.to_owned(),
                "lock_days" => {
                    let days: u32 = v
                        .parse()
                        .map_err(|_| bad_url(url, "lock_days は日数です"))?;
                    lock_days = (days > 0).then_some(days);
                }
                "addressing" => {
                    virtual_host = match v {
                        "virtual" => true,
                        "path" => false,
                        _ => return Err(bad_url(url, "addressing は virtual か path です")),
                    }
                }
                _ => return Err(bad_url(url, &format!("{k} という設定はありません"))),
            }
        }
        let endpoint = endpoint
            .unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"))
            .trim_end_matches('/')
            .to_owned();
        let host = endpoint
            .split_once("://")
            .map(|(_, h)| h.split('/').next().unwrap_or(h).to_owned())
            .ok_or_else(|| bad_url(url, "endpoint は http(s)://ホスト です"))?;
        if virtual_host
            && host
                .rsplit_once(':')
                .map_or(host.as_str(), |(h, _)| h)
                .trim_matches(['[', ']'])
                .parse::<std::net::IpAddr>()
                .is_ok()
        {
            return Err(bad_url(
                url,
                "addressing=virtual にはホスト名の endpoint が必要です（IP アドレスの前にバケット名は付けられません）",
            ));
        }
        let agent = ureq::AgentBuilder::new()
            .resolver(resolve)
            .timeout_connect(Duration::from_secs(10))
            .timeout(Duration::from_secs(300))
            .build();
        Ok(S3Target {
            endpoint,
            host,
            virtual_host,
            region,
            bucket: bucket.to_owned(),
            prefix: prefix.trim_matches('/').to_owned(),
            lock_days,
            creds,
            agent,
            retry: retry_from_env(),
        })
    }

    /// How patiently requests are retried (the default: 8 attempts over about a minute).
    pub fn with_retry(mut self, retry: Retry) -> Self {
        self.retry = retry;
        self
    }

    fn key(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{}/{name}", self.prefix)
        }
    }

    fn name_of<'k>(&self, key: &'k str) -> Option<&'k str> {
        if self.prefix.is_empty() {
            Some(key)
        } else {
            key.strip_prefix(&self.prefix)?.strip_prefix('/')
        }
    }

    /// Sends a signed request, retrying what S3 asks to be retried (5xx, `SlowDown`, 429,
    /// dropped connections) with exponential back-off and jitter, signed afresh each time;
    /// `Ok(Err((status, code)))` for an S3 error answer that is final.
    fn send(
        &self,
        method: &str,
        key: Option<&str>,
        query: &[(&str, &str)],
        headers: &[(&str, String)],
        body: &[u8],
    ) -> Result<std::result::Result<Vec<u8>, (u16, String)>> {
        let mut attempt = 0u32;
        loop {
            let answer = self.send_once(method, key, query, headers, body);
            let retry = match &answer {
                Ok(Err((status, code))) => *status >= 500 || *status == 429 || code == "SlowDown",
                Err(BackupError::Io(_)) => true,
                _ => false,
            };
            if !retry || attempt + 1 >= self.retry.attempts {
                return answer;
            }
            let backoff = self.retry.first * 2u32.saturating_pow(attempt);
            let backoff = backoff.min(self.retry.longest);
            // Up to half again at random, so that many clients do not retry in step.
            let jitter = backoff.mul_f64(f64::from(rand_u8()) / 510.0);
            std::thread::sleep(backoff + jitter);
            attempt += 1;
        }
    }

    fn send_once(
        &self,
        method: &str,
        key: Option<&str>,
        query: &[(&str, &str)],
        headers: &[(&str, String)],
        body: &[u8],
    ) -> Result<std::result::Result<Vec<u8>, (u16, String)>> {
        let path = match (key, self.virtual_host) {
            (Some(k), false) => format!("/{}/{}", self.bucket, uri_encode(k, false)),
            (None, false) => format!("/{}", self.bucket),
            (Some(k), true) => format!("/{}", uri_encode(k, false)),
            (None, true) => "/".to_owned(),
        };
        let (host, endpoint) = if self.virtual_host {
            let (scheme, _) = self.endpoint.split_once("://").unwrap_or(("https", ""));
            let host = format!("{}.{}", self.bucket, self.host);
            let endpoint = format!("{scheme}://{host}");
            (host, endpoint)
        } else {
            (self.host.clone(), self.endpoint.clone())
        };
        let now = OffsetDateTime::now_utc();
        let mut all: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .collect();
        all.push(("host".into(), host));
        all.push((
            "x-amz-content-sha256".into(),
            hex::encode(Sha256::digest(body)),
        ));
        all.push(("x-amz-date".into(), amz_date(now)));
        if let Some(t) = &self.creds.session_token {
            all.push(("x-amz-security-token".into(), t.clone()));
        }
        let auth = sign_v4(
            &self.creds,
            &self.region,
            method,
            &path,
            query,
            &mut all,
            now,
        );
        let qs = canonical_query(query);
        let url = if qs.is_empty() {
            format!("{endpoint}{path}")
        } else {
            format!("{endpoint}{path}?{qs}")
        };
        let mut req = self.agent.request(method, &url).set("authorization", &auth);
        for (k, v) in &all {
            if k != "host" {
                req = req.set(k, v);
            }
        }
        let result = if body.is_empty() && method != "PUT" {
            req.call()
        } else {
            req.send_bytes(body)
        };
        match result {
            Ok(resp) => {
                let mut out = Vec::new();
                resp.into_reader()
                    .take(1 << 31)
                    .read_to_end(&mut out)
                    .map_err(|e| BackupError::Io(format!("S3: {e}")))?;
                Ok(Ok(out))
            }
            Err(ureq::Error::Status(status, resp)) => {
                let text = resp.into_string().unwrap_or_default();
                let code = xml_values(&text, "Error/Code")
                    .into_iter()
                    .next()
                    .unwrap_or_else(|| format!("HTTP {status}"));
                Ok(Err((status, code)))
            }
            Err(e) => Err(BackupError::Io(format!("S3 {}: {e}", self.endpoint))),
        }
    }

    /// `key` is the object's full key (prefix included).
    fn fail(&self, what: &str, key: &str, (status, code): (u16, String)) -> BackupError {
        BackupError::Io(format!(
            "S3 {what} {}/{key} が失敗しました: {code} (HTTP {status})",
            self.bucket
        ))
    }

    fn retention_body(until: OffsetDateTime) -> String {
        format!(
            "<Retention xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Mode>COMPLIANCE</Mode><RetainUntilDate>{}</RetainUntilDate></Retention>",
            iso_seconds(until)
        )
    }

    /// Every version of every key under `prefix`: (key, version id, is a delete marker, is latest).
    fn versions(&self, prefix: &str) -> Result<Vec<(String, String, bool, bool)>> {
        Ok(self
            .versions_dated(prefix)?
            .into_iter()
            .map(|(k, v, marker, latest, _)| (k, v, marker, latest))
            .collect())
    }

    /// The current objects under `prefix` (names without the target's prefix) and when each
    /// was last written.
    pub fn list_dated(&self, prefix: &str) -> Result<Vec<(String, OffsetDateTime)>> {
        let mut out = Vec::new();
        for (k, _, marker, latest, modified) in self.versions_dated(&self.key(prefix))? {
            if !latest || marker {
                continue;
            }
            let Some(name) = self.name_of(&k) else {
                continue;
            };
            let at = modified
                .as_deref()
                .and_then(|m| OffsetDateTime::parse(m, &Rfc3339).ok())
                .ok_or_else(|| {
                    BackupError::Io(format!("S3 の一覧: {k} の LastModified を読めません"))
                })?;
            out.push((name.to_owned(), at));
        }
        Ok(out)
    }

    /// `versions`, with each version's LastModified.
    #[allow(clippy::type_complexity)]
    fn versions_dated(
        &self,
        prefix: &str,
    ) -> Result<Vec<(String, String, bool, bool, Option<String>)>> {
        let mut out = Vec::new();
        let (mut key_marker, mut version_marker) = (String::new(), String::new());
        loop {
            let mut q = vec![("versions", ""), ("prefix", prefix)];
            if !key_marker.is_empty() {
                q.push(("key-marker", &key_marker));
                q.push(("version-id-marker", &version_marker));
            }
            let body = match self.send("GET", None, &q, &[], b"")? {
                Ok(b) => b,
                Err(e) => return Err(self.fail("一覧", prefix, e)),
            };
            let unreadable = |why: String| {
                BackupError::Io(format!(
                    "S3 の一覧 {}/{prefix} を読み取れません（途中で切れたか壊れた応答）: {why}",
                    self.bucket
                ))
            };
            let text = std::str::from_utf8(&body).map_err(|e| unreadable(e.to_string()))?;
            let (records, top) =
                xml_records(text, "ListVersionsResult", &["Version", "DeleteMarker"])
                    .map_err(unreadable)?;
            for (kind, fields) in records {
                let get = |f: &str| fields.iter().find(|(k, _)| k == f).map(|(_, v)| v.clone());
                let (Some(key), Some(version)) = (get("Key"), get("VersionId")) else {
                    return Err(unreadable(format!("a {kind} without Key or VersionId")));
                };
                out.push((
                    key,
                    version,
                    kind == "DeleteMarker",
                    get("IsLatest").as_deref() == Some("true"),
                    get("LastModified"),
                ));
            }
            let field = |name: &str| top.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
            match field("IsTruncated").as_deref() {
                Some("false") => return Ok(out),
                Some("true") => {}
                other => return Err(unreadable(format!("IsTruncated is {other:?}"))),
            }
            key_marker = field("NextKeyMarker").unwrap_or_default();
            version_marker = field("NextVersionIdMarker").unwrap_or_default();
            if key_marker.is_empty() {
                return Err(unreadable(
                    "a truncated listing without NextKeyMarker cannot be continued".into(),
                ));
            }
        }
    }

    /// The newest version of `key` that is not a delete marker.
    fn surviving_version(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .versions(key)?
            .into_iter()
            .filter(|(k, _, marker, _)| k == key && !marker)
            .map(|(_, v, _, _)| v)
            .next())
    }

    fn get_with(&self, name: &str, range: Option<(u64, u64)>) -> Result<Vec<u8>> {
        let key = self.key(name);
        let headers: Vec<(&str, String)> = match range {
            Some((off, len)) => vec![("range", format!("bytes={off}-{}", off + len - 1))],
            None => vec![],
        };
        match self.send("GET", Some(&key), &[], &headers, b"")? {
            Ok(b) => Ok(b),
            Err((404, _)) => {
                let Some(version) = self.surviving_version(&key)? else {
                    return Err(BackupError::Missing {
                        what: "オブジェクト",
                        name: name.to_owned(),
                    });
                };
                match self.send("GET", Some(&key), &[("versionId", &version)], &headers, b"")? {
                    Ok(b) => Ok(b),
                    Err(e) => Err(self.fail("読み出し", &key, e)),
                }
            }
            Err((416, _)) => Err(BackupError::corrupt("パック", name, "途中で切れています")),
            Err(e) => Err(self.fail("読み出し", &key, e)),
        }
    }

    /// One PUT, locked in COMPLIANCE mode for `lock_days` when given.
    fn put_object(&self, name: &str, bytes: &[u8], lock_days: Option<u32>) -> Result<()> {
        let mut headers = vec![(
            "content-md5",
            base64::engine::general_purpose::STANDARD.encode(Md5::digest(bytes)),
        )];
        if let Some(days) = lock_days {
            let until = OffsetDateTime::now_utc() + time::Duration::days(days.into());
            headers.push(("x-amz-object-lock-mode", "COMPLIANCE".into()));
            headers.push(("x-amz-object-lock-retain-until-date", iso_seconds(until)));
        }
        match self.send("PUT", Some(&self.key(name)), &[], &headers, bytes)? {
            Ok(_) => Ok(()),
            Err(e) => Err(self.fail("書き込み", &self.key(name), e)),
        }
    }

    /// Refuses to start a write-once repository in a bucket that cannot hold locks.
    fn check_object_lock(&self) -> Result<()> {
        if self.lock_days.is_none() {
            return Ok(());
        }
        match self.send("GET", None, &[("object-lock", "")], &[], b"")? {
            Ok(body) if String::from_utf8_lossy(&body).contains("Enabled") => Ok(()),
            _ => Err(BackupError::Invalid(format!(
                "バケット {} でオブジェクトロックが有効になっていません。オブジェクトロックを有効にして作成したバケットを使うか、lock_days=0 を指定してください",
                self.bucket
            ))),
        }
    }
}

impl Target for S3Target {
    fn describe(&self) -> String {
        let lock = match self.lock_days {
            Some(d) => format!(" (COMPLIANCE {d}日)"),
            None => String::new(),
        };
        format!("s3://{}/{}{lock}", self.bucket, self.prefix)
    }

    fn put(&self, name: &str, bytes: &[u8]) -> Result<()> {
        self.put_object(name, bytes, self.lock_days)
    }

    fn get(&self, name: &str) -> Result<Vec<u8>> {
        self.get_with(name, None)
    }

    fn get_range(&self, name: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        let bytes = self.get_with(name, Some((offset, len)))?;
        if bytes.len() as u64 != len {
            return Err(BackupError::corrupt("パック", name, "途中で切れています"));
        }
        Ok(bytes)
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let mut names: Vec<String> = self
            .versions(&self.key(prefix))?
            .into_iter()
            .filter(|(_, _, marker, _)| !marker)
            .filter_map(|(k, _, _, _)| self.name_of(&k).map(str::to_owned))
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    fn delete(&self, name: &str) -> Result<()> {
        let key = self.key(name);
        for (k, version, _, _) in self.versions(&key)? {
            if k != key {
                continue;
            }
            match self.send("DELETE", Some(&key), &[("versionId", &version)], &[], b"")? {
                Ok(_) | Err((404, _)) => {}
                Err((403, _)) | Err((400, _)) => return Err(BackupError::Locked(name.to_owned())),
                Err(e) => return Err(self.fail("削除", &key, e)),
            }
        }
        Ok(())
    }

    fn lock_days(&self) -> Option<u32> {
        self.lock_days
    }

    fn put_lock(&self, name: &str, bytes: &[u8]) -> Result<()> {
        // Without retention: a lock must be removable by its holder.
        self.put_object(name, bytes, None)
    }

    fn delete_lock(&self, name: &str) -> Result<()> {
        // A delete marker hides it from `list_current`, whatever retention the bucket applies.
        match self.send("DELETE", Some(&self.key(name)), &[], &[], b"")? {
            Ok(_) | Err((404, _)) => Ok(()),
            Err(e) => Err(self.fail("削除", &self.key(name), e)),
        }
    }

    fn list_current(&self, prefix: &str) -> Result<Vec<String>> {
        let mut names: Vec<String> = self
            .versions(&self.key(prefix))?
            .into_iter()
            .filter(|(_, _, marker, latest)| *latest && !marker)
            .filter_map(|(k, _, _, _)| self.name_of(&k).map(str::to_owned))
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    fn check_ready(&self) -> Result<()> {
        self.check_object_lock()
    }

    fn older_copies(&self, name: &str, range: Option<(u64, u64)>) -> Result<Vec<Vec<u8>>> {
        let key = self.key(name);
        let headers: Vec<(&str, String)> = match range {
            Some((off, len)) => vec![("range", format!("bytes={off}-{}", off + len - 1))],
            None => vec![],
        };
        let mut out = Vec::new();
        for (k, version, marker, latest) in self.versions(&key)? {
            if k != key || marker || latest {
                continue;
            }
            if let Ok(body) =
                self.send("GET", Some(&key), &[("versionId", &version)], &headers, b"")?
            {
                out.push(body);
            }
        }
        Ok(out)
    }

    fn extend_lock(&self, name: &str, until: OffsetDateTime) -> Result<()> {
        if self.lock_days.is_none() {
            return Ok(());
        }
        let body = Self::retention_body(until);
        let headers = vec![(
            "content-md5",
            base64::engine::general_purpose::STANDARD.encode(Md5::digest(body.as_bytes())),
        )];
        match self.send(
            "PUT",
            Some(&self.key(name)),
            &[("retention", "")],
            &headers,
            body.as_bytes(),
        )? {
            Ok(_) => Ok(()),
            Err(e) => Err(self.fail("保持期間の延長", &self.key(name), e)),
        }
    }
}

fn amz_date(t: OffsetDateTime) -> String {
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn iso_seconds(t: OffsetDateTime) -> String {
    t.replace_nanosecond(0)
        .expect("zero nanoseconds")
        .format(&Rfc3339)
        .expect("RFC 3339")
}

/// RFC 3986 encoding as SigV4 wants it: unreserved characters kept, '/' kept in paths.
fn uri_encode(s: &str, encode_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) || (b == b'/' && !encode_slash) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn canonical_query(query: &[(&str, &str)]) -> String {
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| (uri_encode(k, true), uri_encode(v, true)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// AWS Signature Version 4 (header form). `headers` must hold every header to be sent,
/// including host, x-amz-date and x-amz-content-sha256; all of them are signed.
fn sign_v4(
    creds: &Credentials,
    region: &str,
    method: &str,
    path: &str,
    query: &[(&str, &str)],
    headers: &mut [(String, String)],
    now: OffsetDateTime,
) -> String {
    headers.sort_by(|a, b| a.0.cmp(&b.0));
    let canonical_headers: String = headers
        .iter()
        .map(|(k, v)| format!("{k}:{}\n", v.trim()))
        .collect();
    let signed: Vec<&str> = headers.iter().map(|(k, _)| k.as_str()).collect();
    let signed = signed.join(";");
    let payload_hash = headers
        .iter()
        .find(|(k, _)| k == "x-amz-content-sha256")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let canonical = format!(
        "{method}\n{path}\n{}\n{canonical_headers}\n{signed}\n{payload_hash}",
        canonical_query(query)
    );
    let date = amz_date(now);
    let day = &date[..8];
    let scope = format!("{day}/{region}/s3/aws4_request");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let k = hmac(
        format!("AWS4{}", creds.secret_key).as_bytes(),
        day.as_bytes(),
    );
    let k = hmac(&k, region.as_bytes());
    let k = hmac(&k, b"s3");
    let k = hmac(&k, b"aws4_request");
    let signature = hex::encode(hmac(&k, to_sign.as_bytes()));
    format!(
        "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed}, Signature={signature}",
        creds.access_key
    )
}

/// Text of every element at `path` ("A/B/C", from the document root); empty for a document
/// that cannot be read (used for error answers, where a code is a courtesy).
fn xml_values(xml: &str, path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let _ = walk_xml(xml, |p, text| {
        if p == path {
            out.push(text.to_owned());
        }
    });
    out
}

/// The child fields of every element named one of `names` directly under the root, and the
/// text of the root's other direct children; an error for anything but one whole, well-formed
/// document whose root is `root`. A listing cut short must never look like a short listing:
/// prune would delete what the missing part still uses.
#[allow(clippy::type_complexity)]
fn xml_records(
    xml: &str,
    root: &str,
    names: &[&str],
) -> std::result::Result<(Vec<(String, Vec<(String, String)>)>, Vec<(String, String)>), String> {
    let mut out: Vec<(String, Vec<(String, String)>)> = Vec::new();
    let mut top: Vec<(String, String)> = Vec::new();
    let mut roots = 0;
    let mut open_record = false;
    walk_xml_events(xml, |ev| {
        match ev {
            XmlEvent::Start(path) => {
                let parts: Vec<&str> = path.split('/').collect();
                if parts.len() == 1 {
                    roots += 1;
                    if parts[0] != root {
                        return Err(format!("root element is {} (expected {root})", parts[0]));
                    }
                } else if parts.len() == 2 && names.contains(&parts[1]) {
                    out.push((parts[1].to_owned(), Vec::new()));
                    open_record = true;
                }
            }
            XmlEvent::End(path) => {
                if path.split('/').count() == 2 {
                    open_record = false;
                }
            }
            XmlEvent::Text(path, text) => {
                let parts: Vec<&str> = path.split('/').collect();
                if parts.len() == 3 && open_record && names.contains(&parts[1]) {
                    out.last_mut()
                        .expect("a record is open")
                        .1
                        .push((parts[2].to_owned(), text.to_owned()));
                } else if parts.len() == 2 {
                    top.push((parts[1].to_owned(), text.to_owned()));
                }
            }
        }
        Ok(())
    })?;
    if roots != 1 {
        return Err(format!("{roots} root elements"));
    }
    Ok((out, top))
}

enum XmlEvent<'a> {
    Start(&'a str),
    End(&'a str),
    Text(&'a str, &'a str),
}

fn walk_xml(xml: &str, mut f: impl FnMut(&str, &str)) -> std::result::Result<(), String> {
    walk_xml_events(xml, |ev| {
        if let XmlEvent::Text(p, t) = ev {
            f(p, t);
        }
        Ok(())
    })
}

/// Every element start, end and text with its path; an error for malformed XML, an entity
/// that cannot be resolved, an end tag without its start, or a document that ends inside an
/// element (a truncated answer).
fn walk_xml_events(
    xml: &str,
    mut f: impl FnMut(XmlEvent<'_>) -> std::result::Result<(), String>,
) -> std::result::Result<(), String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<String> = Vec::new();
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => {
                stack.push(String::from_utf8_lossy(e.local_name().as_ref()).into_owned());
                f(XmlEvent::Start(&stack.join("/")))?;
            }
            Ok(Event::Empty(e)) => {
                stack.push(String::from_utf8_lossy(e.local_name().as_ref()).into_owned());
                let path = stack.join("/");
                f(XmlEvent::Start(&path))?;
                f(XmlEvent::End(&path))?;
                stack.pop();
            }
            Ok(Event::End(_)) => {
                if stack.is_empty() {
                    return Err("an end tag without its start".into());
                }
                f(XmlEvent::End(&stack.join("/")))?;
                stack.pop();
            }
            Ok(Event::Text(t)) => {
                let text = t.unescape().map_err(|e| format!("text: {e}"))?;
                let text = text.trim();
                if !text.is_empty() {
                    if stack.is_empty() {
                        return Err("text outside the root element".into());
                    }
                    f(XmlEvent::Text(&stack.join("/"), text))?;
                }
            }
            Ok(Event::Eof) => {
                if !stack.is_empty() {
                    return Err(format!("the document ends inside <{}>", stack.join("/")));
                }
                return Ok(());
            }
            Err(e) => return Err(format!("at byte {}: {e}", reader.buffer_position())),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example of AWS's "Signature Calculations for the Authorization Header"
    /// (GET Object with a Range header).
    #[test]
    fn signs_the_published_aws_example() {
        let creds = Credentials {
            access_key: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
        };
        let now = time::macros::datetime!(2013-05-24 00:00:00 UTC);
        let mut headers = vec![
            (
                "host".to_owned(),
                "examplebucket.s3.amazonaws.com".to_owned(),
            ),
            ("range".to_owned(), "bytes=0-9".to_owned()),
            (
                "x-amz-content-sha256".to_owned(),
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".to_owned(),
            ),
            ("x-amz-date".to_owned(), "20130524T000000Z".to_owned()),
        ];
        let auth = sign_v4(
            &creds,
            "us-east-1",
            "GET",
            "/test.txt",
            &[],
            &mut headers,
            now,
        );
        assert!(
            auth.ends_with(
                "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
            ),
            "{auth}"
        );
        assert!(auth.contains("SignedHeaders=host;range;x-amz-content-sha256;x-amz-date"));
    }

    #[test]
    fn reads_version_listings() {
        let xml = r#"<?xml version="1.0"?><ListVersionsResult><IsTruncated>false</IsTruncated>
          <Version><Key>p/a</Key><VersionId>v1</VersionId><IsLatest>false</IsLatest></Version>
          <DeleteMarker><Key>p/a</Key><VersionId>v2</VersionId><IsLatest>true</IsLatest></DeleteMarker>
          <Version><Key>p/b</Key><VersionId>v3</VersionId><IsLatest>true</IsLatest></Version>
          </ListVersionsResult>"#;
        let (recs, top) =
            xml_records(xml, "ListVersionsResult", &["Version", "DeleteMarker"]).unwrap();
        assert_eq!(recs.len(), 3);
        assert_eq!(top, [("IsTruncated".to_owned(), "false".to_owned())]);
        assert_eq!(recs[1].0, "DeleteMarker");
        assert_eq!(recs[2].1[0], ("Key".into(), "p/b".into()));
        assert_eq!(xml_values(xml, "ListVersionsResult/IsTruncated"), ["false"]);
        assert_eq!(uri_encode("a b/ü", false), "a%20b/%C3%BC");
        assert_eq!(
            canonical_query(&[("versions", ""), ("prefix", "x/y")]),
            "prefix=x%2Fy&versions="
        );
    }

    #[test]
    fn a_listing_cut_short_or_malformed_is_an_error_not_a_shorter_listing() {
        let whole = r#"<?xml version="1.0"?><ListVersionsResult><IsTruncated>false</IsTruncated><Version><Key>p/a</Key><VersionId>v1</VersionId><IsLatest>true</IsLatest></Version><Version><Key>p/b</Key><VersionId>v2</VersionId><IsLatest>true</IsLatest></Version></ListVersionsResult>"#;
        let names = ["Version", "DeleteMarker"];
        assert_eq!(
            xml_records(whole, "ListVersionsResult", &names)
                .unwrap()
                .0
                .len(),
            2
        );
        // Cut at every byte: never a valid, shorter listing.
        for cut in 1..whole.len() {
            if !whole.is_char_boundary(cut) {
                continue;
            }
            let part = &whole[..cut];
            assert!(
                xml_records(part, "ListVersionsResult", &names).is_err(),
                "accepted a listing cut at byte {cut}: {part}"
            );
        }
        for bad in [
            "<ListVersionsResult><Version><Key>a</Key></Versio></ListVersionsResult>",
            "<ListVersionsResult><Version><Key>a&bogus;</Key></Version></ListVersionsResult>",
            "<Error><Code>InternalError</Code></Error>",
            "<ListVersionsResult></ListVersionsResult><ListVersionsResult></ListVersionsResult>",
            "",
        ] {
            assert!(
                xml_records(bad, "ListVersionsResult", &names).is_err(),
                "accepted {bad}"
            );
        }
    }

    proptest::proptest! {
        /// Whatever a server (or something between it and mamori) sends, the listing parser
        /// answers without panicking; and a listing with anything cut off its end is never
        /// taken for a whole one.
        #[test]
        fn any_answer_is_parsed_or_refused_and_no_cut_listing_passes(
            junk in ".{0,400}",
            keys in proptest::collection::vec("[a-z0-9/]{1,12}", 0..6),
            cut in 1usize..2000,
        ) {
            let names = ["Version", "DeleteMarker"];
            let _ = xml_records(&junk, "ListVersionsResult", &names);
            let mut whole = String::from("<ListVersionsResult><IsTruncated>false</IsTruncated>");
            for (i, k) in keys.iter().enumerate() {
                whole.push_str(&format!("<Version><Key>{k}</Key><VersionId>v{i}</VersionId></Version>"));
            }
            whole.push_str("</ListVersionsResult>");
            let (records, _) = xml_records(&whole, "ListVersionsResult", &names).unwrap();
            proptest::prop_assert_eq!(records.len(), keys.len());
            let at = cut % whole.len();
            if at > 0 && whole.is_char_boundary(at) {
                proptest::prop_assert!(xml_records(&whole[..at], "ListVersionsResult", &names).is_err());
            }
        }
    }
}
