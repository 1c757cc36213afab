//! Evidence for finalised records (JAHIS 09-001 §6.8, guideline 6.0 企画管理編 14):
//!
//! - [`cades`]: detached CMS signatures at CAdES-B-B (content-type, message-digest, signing-time,
//!   ESS signing-certificate-v2) and B-T (a signature time-stamp), built in three steps so the
//!   private key can live on an HPKI card or in a cloud signing service;
//! - [`tsp`]: RFC 3161 requests, responses and token verification, and a development TSA;
//! - [`ers`]: RFC 4998 evidence records — one time-stamp over a hash tree of many documents,
//!   renewed by time-stamp renewal or hash-tree renewal;
//! - [`cert`]: the certificate checks the three share.
//!
//! Nothing here does I/O or reads the clock: times come in as arguments, so tests can travel.
#![forbid(unsafe_code)]

pub mod asn1;
pub mod cades;
pub mod cert;
pub mod cms;
pub mod crl;
mod error;
pub mod ers;
pub mod hcrole;
pub mod jpki;
pub mod ocsp;
pub mod pades;
pub mod tsp;

pub use error::{EvidenceError, Result};

/// Milliseconds since the Unix epoch (the workspace's time unit).
pub type UnixMs = i64;

/// SHA-256 of some bytes.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(data).into()
}

/// `YYYY-MM-DD HH:MM:SS UTC` for messages.
pub fn format_time(ms: UnixMs) -> String {
    der::asn1::GeneralizedTime::from_unix_duration(std::time::Duration::from_millis(
        ms.max(0) as u64
    ))
    .map(|t| {
        let d = t.to_date_time();
        format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            d.year(),
            d.month(),
            d.day(),
            d.hour(),
            d.minutes(),
            d.seconds()
        )
    })
    .unwrap_or_else(|_| ms.to_string())
}
