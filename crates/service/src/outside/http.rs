//! HTTP adapters (ureq, blocking; callers run them off the async workers): RFC 3161
//! time-stamp requests and webhook announcements.

use std::io::Read;
use std::time::Duration;

use super::{Failure, TimeStampTransport, WebhookTransport};

const TIMEOUT: Duration = Duration::from_secs(10);
/// A time-stamp response is a few kilobytes; more is not a TSA talking.
const MAX_RESPONSE: u64 = 1 << 20;

pub struct Http;

impl TimeStampTransport for Http {
    fn request(&self, url: &str, query: &[u8]) -> Result<Vec<u8>, Failure> {
        let resp = ureq::post(url)
            .timeout(TIMEOUT)
            .set("Content-Type", "application/timestamp-query")
            .send_bytes(query)
            .map_err(|e| e.to_string())?;
        let mut body = Vec::new();
        resp.into_reader()
            .take(MAX_RESPONSE)
            .read_to_end(&mut body)
            .map_err(|e| e.to_string())?;
        Ok(body)
    }
}

impl WebhookTransport for Http {
    fn post(&self, url: &str, body: &serde_json::Value) -> Result<u16, Failure> {
        ureq::AgentBuilder::new()
            .timeout(TIMEOUT)
            .build()
            .post(url)
            .send_json(body)
            .map(|r| r.status())
            .map_err(|e| match e {
                ureq::Error::Status(code, _) => format!("HTTP {code}"),
                ureq::Error::Transport(t) => t.kind().to_string(),
            })
    }
}
