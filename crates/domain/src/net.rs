//! Which address a request came from when reverse proxies stand in front of mamori: the
//! `X-Forwarded-For` header is believed only as far as trusted proxies wrote it. A client can
//! put anything in the header itself, so it is read from the right (the hop nearest mamori),
//! and the first address not sent by a trusted proxy is the client.

use std::net::IpAddr;
use std::str::FromStr;

/// An address range (`10.0.0.0/8`, `fd00::/8`) or one address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            format!("「{s}」はアドレスでもアドレス範囲でもありません（例: 10.0.0.5, 10.0.0.0/24）")
        };
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let addr = addr.to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
            None => max,
        };
        Ok(Cidr { addr, prefix })
    }
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        let (a, b, bits) = match (self.addr, ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => (
                u128::from(u32::from(a)) << 96,
                u128::from(u32::from(b)) << 96,
                self.prefix,
            ),
            (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), self.prefix),
            _ => return false,
        };
        let mask = if bits == 0 {
            0
        } else {
            u128::MAX << (128 - u32::from(bits))
        };
        a & mask == b & mask
    }
}

/// Parses a comma-separated list of addresses and ranges (an empty list trusts no proxy).
pub fn parse_list(s: &str) -> Result<Vec<Cidr>, String> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::parse)
        .collect()
}

/// The client's address and, when it came through trusted proxies, the proxy that connected
/// to mamori. `forwarded_for` holds the `X-Forwarded-For` header values in order.
pub fn client_address(
    peer: IpAddr,
    forwarded_for: &[&str],
    trusted: &[Cidr],
) -> (IpAddr, Option<IpAddr>) {
    let peer = peer.to_canonical();
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(peer) {
        return (peer, None);
    }
    let mut current = peer;
    let hops = forwarded_for
        .iter()
        .rev()
        .flat_map(|v| v.rsplit(','))
        .map(str::trim);
    for hop in hops {
        if !is_trusted(current) {
            break;
        }
        // A hop a trusted proxy wrote that is not an address: believe nothing further out.
        match hop.parse::<IpAddr>() {
            Ok(ip) => current = ip.to_canonical(),
            Err(_) => break,
        }
    }
    (current, (current != peer).then_some(peer))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ranges() {
        let c: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(c.contains(ip("10.200.1.2")) && !c.contains(ip("11.0.0.1")));
        assert!(c.contains(ip("::ffff:10.0.0.1")), "IPv4-mapped");
        let one: Cidr = "192.168.1.5".parse().unwrap();
        assert!(one.contains(ip("192.168.1.5")) && !one.contains(ip("192.168.1.6")));
        let v6: Cidr = "fd00::/8".parse().unwrap();
        assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("fe80::1")));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("8.8.8.8")) && !all.contains(ip("::1")));
        for bad in ["10.0.0.0/33", "proxy", "10.0.0.0/", "::/129"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
        assert_eq!(parse_list(" 10.0.0.1, fd00::/8 ,").unwrap().len(), 2);
    }

    #[test]
    fn the_header_counts_only_as_far_as_trusted_proxies_wrote_it() {
        let trusted = parse_list("10.0.0.2, 10.0.1.0/24").unwrap();
        // Not through a proxy: the header is the client's own words.
        assert_eq!(
            client_address(ip("203.0.113.9"), &["1.2.3.4"], &trusted),
            (ip("203.0.113.9"), None)
        );
        // Through the proxy: the address it saw.
        assert_eq!(
            client_address(ip("10.0.0.2"), &["198.51.100.7"], &trusted),
            (ip("198.51.100.7"), Some(ip("10.0.0.2")))
        );
        // A forged hop the client put first stays outside: the proxy appended the real one.
        assert_eq!(
            client_address(ip("10.0.0.2"), &["6.6.6.6, 198.51.100.7"], &trusted),
            (ip("198.51.100.7"), Some(ip("10.0.0.2")))
        );
        // Two trusted proxies in a row, over two header lines.
        assert_eq!(
            client_address(ip("10.0.0.2"), &["198.51.100.7", "10.0.1.9"], &trusted),
            (ip("198.51.100.7"), Some(ip("10.0.0.2")))
        );
        // Garbage from the trusted proxy's side: nothing beyond it is believed.
        assert_eq!(
            client_address(ip("10.0.0.2"), &["198.51.100.7, unknown"], &trusted),
            (ip("10.0.0.2"), None)
        );
        // No list: nobody is trusted.
        assert_eq!(
            client_address(ip("10.0.0.2"), &["198.51.100.7"], &[]),
            (ip("10.0.0.2"), None)
        );
    }

    proptest! {
        /// Whatever the header says, a peer that is not a trusted proxy is the client.
        #[test]
        fn an_untrusted_peer_is_never_replaced(a in any::<[u8; 4]>(), header in "\\PC{0,60}") {
            let trusted = parse_list("10.0.0.0/8").unwrap();
            let peer = IpAddr::from([11, a[1], a[2], a[3]]);
            prop_assert_eq!(client_address(peer, &[header.as_str()], &trusted), (peer, None));
        }
    }
}
