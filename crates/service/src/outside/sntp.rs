//! One SNTP exchange over UDP (RFC 4330); the packet format and the arithmetic are the
//! domain's (`mamori_domain::timesync`).

use std::net::{ToSocketAddrs, UdpSocket};
use std::time::Duration;

use mamori_domain::Millis;
use mamori_domain::timesync;

/// One SNTP exchange with `server` (`host` or `host:port`); `now` is our clock.
pub fn query(
    server: &str,
    timeout: Duration,
    now: &dyn Fn() -> Millis,
) -> std::result::Result<(Millis, Millis), String> {
    let addr = if server.contains(':') {
        server.to_owned()
    } else {
        format!("{server}:123")
    };
    let target = addr
        .to_socket_addrs()
        .map_err(|e| e.to_string())?
        .next()
        .ok_or("名前を解決できません")?;
    let bind = if target.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let sock = UdpSocket::bind(bind).map_err(|e| e.to_string())?;
    sock.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let t1 = now();
    let req = timesync::request(t1);
    sock.send_to(&req, target).map_err(|e| e.to_string())?;
    let mut buf = [0u8; 128];
    let (n, from) = sock.recv_from(&mut buf).map_err(|e| match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => "応答がありません".into(),
        _ => e.to_string(),
    })?;
    let t4 = now();
    if from.ip() != target.ip() {
        return Err("別のアドレスから応答がありました".into());
    }
    let reply = timesync::parse_reply(&buf[..n], &req).map_err(|e| e.to_string())?;
    Ok(timesync::offset_and_delay(
        t1,
        reply.receive,
        reply.transmit,
        t4,
    ))
}
