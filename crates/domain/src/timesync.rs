//! Trusted time (guideline 6.0 システム運用編: 標準時刻と同期した時刻): the SNTP packet
//! (RFC 4330) and the judgement of whether the server's clock can be trusted. No I/O here; the
//! service sends and receives.

use serde::Serialize;

use crate::Millis;

/// Seconds from 1900-01-01 (NTP era 0) to 1970-01-01.
const NTP_UNIX_OFFSET: i64 = 2_208_988_800;
pub const PACKET_LEN: usize = 48;

/// An NTP timestamp (seconds since 1900 and a 32-bit fraction) from milliseconds since 1970.
pub fn to_ntp(ms: Millis) -> [u8; 8] {
    let secs = ms.div_euclid(1000) + NTP_UNIX_OFFSET;
    let frac = ((ms.rem_euclid(1000) as u64) << 32) / 1000;
    let mut out = [0u8; 8];
    out[..4].copy_from_slice(&(secs as u32).to_be_bytes());
    out[4..].copy_from_slice(&(frac as u32).to_be_bytes());
    out
}

/// Reads a timestamp; RFC 4330 §3: with the top bit clear it is in era 1 (from 2036-02-07).
pub fn from_ntp(b: &[u8]) -> Millis {
    let raw = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    let secs = i64::from(raw) + if raw & 0x8000_0000 == 0 { 1 << 32 } else { 0 };
    let frac = u64::from(u32::from_be_bytes([b[4], b[5], b[6], b[7]]));
    (secs - NTP_UNIX_OFFSET) * 1000 + ((frac * 1000) >> 32) as i64
}

/// A client request: version 4, mode 3 (client), our transmit time in the transmit field
/// (the server echoes it as the originate time, which ties the answer to this request).
pub fn request(now: Millis) -> [u8; PACKET_LEN] {
    let mut p = [0u8; PACKET_LEN];
    p[0] = (4 << 3) | 3;
    p[40..48].copy_from_slice(&to_ntp(now));
    p
}

/// A server's answer (also what a test server writes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub leap: u8,
    pub stratum: u8,
    pub originate: Millis,
    pub receive: Millis,
    pub transmit: Millis,
    /// The raw originate field, compared byte for byte with what we sent.
    pub originate_raw: [u8; 8],
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SntpError {
    #[error("応答が短すぎます ({0} bytes)")]
    Short(usize),
    #[error("サーバーの応答ではありません (mode {0})")]
    NotServer(u8),
    #[error("サーバーが同期していません (stratum 0 / leap 3)")]
    Unsynchronised,
    #[error("応答が要求と対応しません")]
    Mismatch,
}

pub fn parse_reply(b: &[u8], sent: &[u8; PACKET_LEN]) -> Result<Reply, SntpError> {
    if b.len() < PACKET_LEN {
        return Err(SntpError::Short(b.len()));
    }
    let mode = b[0] & 0x7;
    if mode != 4 {
        return Err(SntpError::NotServer(mode));
    }
    let leap = b[0] >> 6;
    let stratum = b[1];
    if stratum == 0 || leap == 3 {
        return Err(SntpError::Unsynchronised);
    }
    let mut originate_raw = [0u8; 8];
    originate_raw.copy_from_slice(&b[24..32]);
    if originate_raw != sent[40..48] {
        return Err(SntpError::Mismatch);
    }
    Ok(Reply {
        leap,
        stratum,
        originate: from_ntp(&b[24..32]),
        receive: from_ntp(&b[32..40]),
        transmit: from_ntp(&b[40..48]),
        originate_raw,
    })
}

/// A server's answer packet for `reply` (for test servers).
pub fn encode_reply(stratum: u8, originate: &[u8], receive: Millis, transmit: Millis) -> [u8; 48] {
    let mut p = [0u8; PACKET_LEN];
    p[0] = (4 << 3) | 4;
    p[1] = stratum;
    p[24..32].copy_from_slice(&originate[..8]);
    p[32..40].copy_from_slice(&to_ntp(receive));
    p[40..48].copy_from_slice(&to_ntp(transmit));
    p
}

/// Clock offset (server minus us) and round-trip delay, RFC 4330 §5, from T1 (sent), T2
/// (server received), T3 (server sent), T4 (received).
pub fn offset_and_delay(t1: Millis, t2: Millis, t3: Millis, t4: Millis) -> (Millis, Millis) {
    (((t2 - t1) + (t3 - t4)) / 2, (t4 - t1) - (t3 - t2))
}

/// What is known of the clock at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClockStatus {
    pub checked_at: Millis,
    /// `ntp HOST` that answered, or `kernel` when only the kernel's state is known.
    pub source: String,
    pub offset_ms: Option<Millis>,
    pub delay_ms: Option<Millis>,
    /// The kernel's own view (adjtimex), where the platform tells.
    pub kernel_synchronised: Option<bool>,
    pub synchronised: bool,
    /// Why it is not trusted, for people.
    pub problem: Option<String>,
}

/// An NTP server and what asking it gave: (offset, delay) or why not.
pub type NtpAnswer = (String, Result<(Millis, Millis), String>);

/// The verdict: trusted when a server answered within `max_offset` and the kernel does not
/// say it is unsynchronised; with no servers configured, the kernel's word alone.
pub fn judge(
    now: Millis,
    ntp: Option<NtpAnswer>,
    kernel_synchronised: Option<bool>,
    max_offset: Millis,
) -> ClockStatus {
    let mut s = ClockStatus {
        checked_at: now,
        source: "kernel".into(),
        offset_ms: None,
        delay_ms: None,
        kernel_synchronised,
        synchronised: kernel_synchronised.unwrap_or(false),
        problem: None,
    };
    match ntp {
        Some((host, Ok((offset, delay)))) => {
            s.source = format!("ntp {host}");
            s.offset_ms = Some(offset);
            s.delay_ms = Some(delay);
            s.synchronised = offset.abs() <= max_offset && kernel_synchronised != Some(false);
            if offset.abs() > max_offset {
                s.problem = Some(format!(
                    "時刻のずれが {offset} ms あります（許容 {max_offset} ms）"
                ));
            }
        }
        Some((host, Err(e))) => {
            s.source = format!("ntp {host}");
            s.synchronised = false;
            s.problem = Some(format!("NTP サーバー {host} に問い合わせできません: {e}"));
        }
        None if kernel_synchronised.is_none() => {
            s.problem = Some("時刻の同期状態を確認できません（NTP サーバーが未設定）".into());
        }
        None => {}
    }
    if s.problem.is_none() && kernel_synchronised == Some(false) {
        s.problem = Some("OS の時刻同期が外れています（chrony / systemd-timesyncd を確認）".into());
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ntp_timestamps_round_trip_and_know_the_epoch() {
        // 1970-01-01 is 2,208,988,800 s after 1900-01-01.
        assert_eq!(to_ntp(0)[..4], 2_208_988_800u32.to_be_bytes());
        for ms in [0, 1, 999, 1_795_482_000_123, 4_000_000_000_000] {
            assert!((from_ntp(&to_ntp(ms)) - ms).abs() <= 1, "{ms}");
        }
    }

    #[test]
    fn offset_and_delay_follow_rfc4330() {
        // Server 5 s ahead, 40 ms each way, 10 ms in the server.
        let (t1, t2, t3, t4) = (1000, 6040, 6050, 1090);
        assert_eq!(offset_and_delay(t1, t2, t3, t4), (5000, 80));
    }

    #[test]
    fn replies_are_checked() {
        let sent = request(1_795_482_000_000);
        assert_eq!(sent[0], 0x23, "LI 0, VN 4, mode 3");
        let ok = encode_reply(2, &sent[40..48], 1_795_482_000_010, 1_795_482_000_011);
        let r = parse_reply(&ok, &sent).unwrap();
        assert_eq!(r.stratum, 2);
        assert_eq!(r.originate, from_ntp(&sent[40..48]));
        assert_eq!(parse_reply(&ok[..40], &sent), Err(SntpError::Short(40)));
        let mut kiss = ok;
        kiss[1] = 0;
        assert_eq!(parse_reply(&kiss, &sent), Err(SntpError::Unsynchronised));
        let other = request(1);
        assert_eq!(parse_reply(&ok, &other), Err(SntpError::Mismatch));
        let mut client = ok;
        client[0] = 0x23;
        assert_eq!(parse_reply(&client, &sent), Err(SntpError::NotServer(3)));
    }

    #[test]
    fn the_verdict() {
        let good = judge(
            0,
            Some(("ntp.example".into(), Ok((12, 3)))),
            Some(true),
            1000,
        );
        assert!(good.synchronised && good.problem.is_none());
        let far = judge(
            0,
            Some(("ntp.example".into(), Ok((-5000, 3)))),
            Some(true),
            1000,
        );
        assert!(!far.synchronised && far.problem.unwrap().contains("-5000"));
        let down = judge(
            0,
            Some(("ntp.example".into(), Err("timeout".into()))),
            None,
            1000,
        );
        assert!(!down.synchronised);
        let kernel_only = judge(0, None, Some(true), 1000);
        assert!(kernel_only.synchronised && kernel_only.source == "kernel");
        let unknown = judge(0, None, None, 1000);
        assert!(!unknown.synchronised && unknown.problem.is_some());
        let kernel_lost = judge(0, Some(("h".into(), Ok((1, 1)))), Some(false), 1000);
        assert!(!kernel_lost.synchronised);
    }
}
