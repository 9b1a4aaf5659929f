//! Who is asking: the client's address behind trusted reverse proxies, and the key rate limits
//! count it under.
//!
//! Only a peer inside `server.trusted_proxies` may say who the client is. Its `Forwarded`
//! header (RFC 7239, the `for=` parameters) or, without one, its `X-Forwarded-For` lists the
//! hops; they are read from the right, skipping the trusted ones, and the first untrusted hop is
//! the client ("rightmost untrusted"): a client can prepend anything, but it cannot forge what
//! our own proxies appended. IPv6 clients are keyed per /64, the block one subscriber usually
//! holds, so that one household cannot dodge a limit by walking its own addresses.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An address block such as `10.0.0.0/8`, `192.0.2.1` (a single address) or `fd00::/8`;
/// written and read as that text in configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an address block (use 10.0.0.0/8, 192.0.2.1 or fd00::/8)")]
pub struct InvalidCidr(pub String);

impl Cidr {
    pub fn parse(s: &str) -> Result<Cidr, InvalidCidr> {
        let invalid = || InvalidCidr(s.to_owned());
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p.parse::<u8>().map_err(|_| invalid())?)),
            None => (s.trim(), None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| invalid())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return Err(invalid());
        }
        Ok(Cidr { network: mask(addr, prefix), prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        ip.is_ipv4() == self.network.is_ipv4() && mask(ip, self.prefix) == self.network
    }
}

impl TryFrom<String> for Cidr {
    type Error = InvalidCidr;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Cidr::parse(&s)
    }
}

impl From<Cidr> for String {
    fn from(c: Cidr) -> String {
        c.to_string()
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let kept = if prefix == 0 { 0 } else { bits & (u32::MAX << (32 - u32::from(prefix))) };
            IpAddr::V4(Ipv4Addr::from(kept))
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let kept = if prefix == 0 { 0 } else { bits & (u128::MAX << (128 - u32::from(prefix))) };
            IpAddr::V6(Ipv6Addr::from(kept))
        }
    }
}

/// An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`, as dual-stack sockets report) as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The client's address: the peer itself unless it is a trusted proxy, else the rightmost
/// untrusted hop its forwarding header names. A hop that is not an address (`unknown`, an
/// obfuscated identifier) ends the walk at the proxy that reported it.
pub fn client_address(
    peer: IpAddr,
    trusted: &[Cidr],
    forwarded: Option<&str>,
    x_forwarded_for: Option<&str>,
) -> IpAddr {
    let peer = canonical(peer);
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let hops: Vec<&str> = match (forwarded, x_forwarded_for) {
        (Some(f), _) => forwarded_for_values(f),
        (None, Some(x)) => x.split(',').map(str::trim).collect(),
        (None, None) => Vec::new(),
    };
    let mut current = peer;
    for hop in hops.iter().rev() {
        let Some(ip) = parse_hop(hop) else { return current };
        current = canonical(ip);
        if !is_trusted(current) {
            return current;
        }
    }
    current
}

/// The `for=` values of a `Forwarded` header, in order (RFC 7239 §4: elements separated by
/// commas, parameters by semicolons; values may be quoted).
fn forwarded_for_values(header: &str) -> Vec<&str> {
    header
        .split(',')
        .filter_map(|element| {
            element.split(';').find_map(|pair| {
                let (name, value) = pair.trim().split_once('=')?;
                name.trim().eq_ignore_ascii_case("for").then(|| value.trim().trim_matches('"'))
            })
        })
        .collect()
}

/// An address as proxies write it: `192.0.2.1`, `192.0.2.1:4711`, `[2001:db8::1]`,
/// `[2001:db8::1]:4711` or a bare `2001:db8::1`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(rest) = hop.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    let (host, port) = hop.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
}

/// What limits count a client under: its IPv4 address, or the /64 of its IPv6 address.
pub fn limit_key(ip: IpAddr) -> String {
    match canonical(ip) {
        IpAddr::V4(v4) => v4.to_string(),
        v6 => format!("{}/64", mask(v6, 64)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn cidrs(list: &[&str]) -> Vec<Cidr> {
        list.iter().map(|c| Cidr::parse(c).unwrap()).collect()
    }

    #[test]
    fn blocks_parse_and_contain() {
        let c = Cidr::parse("10.1.2.3/8").unwrap();
        assert_eq!(c.to_string(), "10.0.0.0/8");
        assert!(c.contains(ip("10.200.0.1")) && !c.contains(ip("11.0.0.1")) && !c.contains(ip("::1")));
        assert!(Cidr::parse("192.0.2.1").unwrap().contains(ip("::ffff:192.0.2.1")), "mapped addresses count");
        assert!(Cidr::parse("fd00::/8").unwrap().contains(ip("fdab::1")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("203.0.113.9")));
        for bad in ["10.0.0.0/33", "::/129", "example.org", "10.0.0.0/x", ""] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let trusted = cidrs(&["10.0.0.0/8"]);
        let got = client_address(ip("203.0.113.9"), &trusted, Some("for=192.0.2.1"), Some("192.0.2.2"));
        assert_eq!(got, ip("203.0.113.9"));
        assert_eq!(client_address(ip("10.0.0.5"), &[], None, Some("192.0.2.2")), ip("10.0.0.5"), "none trusted");
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let trusted = cidrs(&["10.0.0.0/8", "fd00::/8"]);
        let peer = ip("10.0.0.5");
        // The client prepended a lie; our proxies appended the truth.
        assert_eq!(client_address(peer, &trusted, None, Some("1.1.1.1, 198.51.100.7, 10.0.0.9")), ip("198.51.100.7"));
        let forwarded = r#"for=1.1.1.1, for="[2001:db8::7]:4711";proto=https, for=10.0.0.9"#;
        assert_eq!(client_address(peer, &trusted, Some(forwarded), Some("6.6.6.6")), ip("2001:db8::7"));
        assert_eq!(client_address(peer, &trusted, Some("for=198.51.100.7:1234"), None), ip("198.51.100.7"));
        assert_eq!(client_address(peer, &trusted, None, None), peer, "no header: the proxy itself");
        assert_eq!(client_address(peer, &trusted, None, Some("10.0.0.8")), ip("10.0.0.8"), "all trusted");
        assert_eq!(client_address(peer, &trusted, Some("for=unknown, for=10.0.0.8"), None), ip("10.0.0.8"));
        assert_eq!(client_address(peer, &trusted, None, Some("garbage")), peer);
    }

    #[test]
    fn ipv6_clients_are_keyed_per_64() {
        assert_eq!(limit_key(ip("2001:db8:1:2:aaaa::1")), "2001:db8:1:2::/64");
        assert_eq!(limit_key(ip("2001:db8:1:2:bbbb::9")), limit_key(ip("2001:db8:1:2::")));
        assert_ne!(limit_key(ip("2001:db8:1:3::1")), limit_key(ip("2001:db8:1:2::1")));
        assert_eq!(limit_key(ip("192.0.2.1")), "192.0.2.1");
        assert_eq!(limit_key(ip("::ffff:192.0.2.1")), "192.0.2.1");
    }
}
