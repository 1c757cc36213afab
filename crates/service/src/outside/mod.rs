//! Ports to the world outside mamori: the time-stamping authority, webhooks, e-mail, NTP
//! servers and the kernel's clock. Use cases call these small traits, never a socket, so they
//! can be tested without a network (`Outside::with`) and other transports plugged in. The
//! adapters live beside this file: `http` (TSA and webhooks over ureq), `smtp` (lettre),
//! `sntp` (UDP) and `kernel` (adjtimex).
//!
//! Signing keys are not behind a port yet: issue #24 moves them into a PKCS#11 token, whose
//! session and PIN model decides the shape of that interface.

pub mod http;
pub mod kernel;
pub mod s3_blobs;
pub mod smtp;
pub mod sntp;

use std::sync::Arc;
use std::time::Duration;

use mamori_domain::Millis;

/// An error from outside, already worded for the ledger and the administrator (no secrets:
/// adapters leave URLs with credentials out).
pub type Failure = String;

/// RFC 3161 over a transport: the DER query out, the DER response back.
pub trait TimeStampTransport: Send + Sync {
    fn request(&self, url: &str, query: &[u8]) -> Result<Vec<u8>, Failure>;
}

/// A JSON announcement to a webhook; the HTTP status on success.
pub trait WebhookTransport: Send + Sync {
    fn post(&self, url: &str, body: &serde_json::Value) -> Result<u16, Failure>;
}

/// One e-mail (subject, body) to every address in `to`; the number of recipients on success.
pub trait MailTransport: Send + Sync {
    fn send(
        &self,
        smtp_url: &str,
        from: &str,
        to: &[String],
        mail: &(String, String),
    ) -> Result<usize, Failure>;
}

/// Where trusted time comes from.
pub trait TimeSource: Send + Sync {
    /// One SNTP exchange with `server`: (offset, round-trip delay) against `now`.
    fn ntp(
        &self,
        server: &str,
        timeout: Duration,
        now: &dyn Fn() -> Millis,
    ) -> Result<(Millis, Millis), Failure>;
    /// The kernel's view: Some(false) when it says the clock is unsynchronised.
    fn kernel_synchronised(&self) -> Option<bool>;
}

/// The adapters one `Service` uses.
#[derive(Clone)]
pub struct Outside {
    pub time_stamps: Arc<dyn TimeStampTransport>,
    pub webhooks: Arc<dyn WebhookTransport>,
    pub mail: Arc<dyn MailTransport>,
    pub time: Arc<dyn TimeSource>,
}

impl Outside {
    /// The real network and kernel.
    pub fn system() -> Outside {
        Outside {
            time_stamps: Arc::new(http::Http),
            webhooks: Arc::new(http::Http),
            mail: Arc::new(smtp::Smtp),
            time: Arc::new(SystemTime),
        }
    }
}

impl Default for Outside {
    fn default() -> Self {
        Outside::system()
    }
}

/// NTP over UDP and the kernel's adjtimex.
pub struct SystemTime;

impl TimeSource for SystemTime {
    fn ntp(
        &self,
        server: &str,
        timeout: Duration,
        now: &dyn Fn() -> Millis,
    ) -> Result<(Millis, Millis), Failure> {
        sntp::query(server, timeout, now)
    }

    fn kernel_synchronised(&self) -> Option<bool> {
        kernel::synchronised()
    }
}
