//! Who may talk to the transfer server: peers (address or network plus TSIG key) and
//! the backend's NOTIFY sources.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use crate::dns::tsig::TsigKey;

/// A peer's address as written in `spec.outgoing.peers[].address`.
///
/// - `192.0.2.1` or `2001:db8::1`: that host; NOTIFY and SOA checks go to port 53.
/// - `192.0.2.1:5353` or `[2001:db8::1]:5353`: that host; NOTIFY and SOA checks go to
///   that port. The port is not part of the authorisation: transfer clients use
///   ephemeral source ports.
/// - `192.0.2.0/24` or `2001:db8::/48`: any host of that network may transfer; there
///   is no single host to NOTIFY or check, so such a peer gets neither.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PeerAddress {
    /// Network address (host bits cleared for a CIDR).
    pub ip: IpAddr,
    /// Prefix length: 32/128 for a single host.
    pub prefix: u8,
    /// Port for NOTIFY and SOA checks (`ip:port` form).
    pub port: Option<u16>,
}

/// Why an address text is not a [`PeerAddress`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid peer address {text:?}: expected IP, IP:port or CIDR")]
pub struct PeerAddressError {
    /// The text given.
    pub text: String,
}

fn full_prefix(ip: IpAddr) -> u8 {
    if ip.is_ipv4() { 32 } else { 128 }
}

fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let m = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(prefix))
            };
            IpAddr::from((bits & m).to_be_bytes())
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let m = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(prefix))
            };
            IpAddr::from((bits & m).to_be_bytes())
        }
    }
}

/// IPv4-mapped IPv6 sources (dual-stack sockets) compare as the IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

impl PeerAddress {
    /// A single host.
    pub fn host(ip: IpAddr) -> Self {
        Self {
            ip,
            prefix: full_prefix(ip),
            port: None,
        }
    }

    /// Whether `source` may speak as this peer.
    pub fn contains(&self, source: IpAddr) -> bool {
        let source = canonical(source);
        source.is_ipv4() == self.ip.is_ipv4() && mask(source, self.prefix) == self.ip
    }

    /// Where NOTIFYs and SOA checks go: the host at its port (53 by default); `None` for
    /// a network.
    pub fn target(&self) -> Option<SocketAddr> {
        (self.prefix == full_prefix(self.ip))
            .then(|| SocketAddr::new(self.ip, self.port.unwrap_or(53)))
    }
}

impl FromStr for PeerAddress {
    type Err = PeerAddressError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = || PeerAddressError {
            text: text.to_string(),
        };
        let t = text.trim();
        if let Some((ip, prefix)) = t.split_once('/') {
            let ip: IpAddr = ip.parse().map_err(|_| err())?;
            let prefix: u8 = prefix.parse().map_err(|_| err())?;
            if prefix > full_prefix(ip) {
                return Err(err());
            }
            return Ok(Self {
                ip: mask(ip, prefix),
                prefix,
                port: None,
            });
        }
        if let Ok(ip) = t.parse::<IpAddr>() {
            return Ok(Self::host(ip));
        }
        let sock: SocketAddr = t.parse().map_err(|_| err())?;
        Ok(Self {
            port: Some(sock.port()),
            ..Self::host(sock.ip())
        })
    }
}

impl std::fmt::Display for PeerAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.target(), self.port) {
            (Some(t), Some(_)) => write!(f, "{t}"),
            (Some(t), None) => write!(f, "{}", t.ip()),
            (None, _) => write!(f, "{}/{}", self.ip, self.prefix),
        }
    }
}

impl TryFrom<String> for PeerAddress {
    type Error = PeerAddressError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<PeerAddress> for String {
    fn from(a: PeerAddress) -> String {
        a.to_string()
    }
}

/// One secondary allowed to transfer a zone.
#[derive(Clone, Debug)]
pub struct PeerAuth {
    /// The peer's name (`spec.outgoing.peers[].name`), used in status and metrics.
    pub name: String,
    /// Where it may transfer from (and where it is NOTIFYed).
    pub address: PeerAddress,
    /// The key its requests must be signed with.
    pub key: TsigKey,
}

/// Who may NOTIFY the transfer server that a zone changed on the backend: a request
/// from one of `addresses` (signed or not) or signed with one of `keys` is accepted.
#[derive(Clone, Debug, Default)]
pub struct NotifySources {
    /// Source addresses trusted without a signature.
    pub addresses: Vec<PeerAddress>,
    /// Keys whose valid signature is trusted from anywhere.
    pub keys: Vec<TsigKey>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_forms() {
        let host: PeerAddress = "192.0.2.7".parse().unwrap();
        assert!(host.contains("192.0.2.7".parse().unwrap()));
        assert!(!host.contains("192.0.2.8".parse().unwrap()));
        assert_eq!(host.target(), Some("192.0.2.7:53".parse().unwrap()));

        let with_port: PeerAddress = "127.0.0.1:5300".parse().unwrap();
        assert!(with_port.contains("127.0.0.1".parse().unwrap()));
        assert!(with_port.contains("::ffff:127.0.0.1".parse().unwrap()));
        assert_eq!(with_port.target(), Some("127.0.0.1:5300".parse().unwrap()));
        assert_eq!(with_port.to_string(), "127.0.0.1:5300");

        let net: PeerAddress = "198.51.100.77/24".parse().unwrap();
        assert_eq!(net.to_string(), "198.51.100.0/24");
        assert!(net.contains("198.51.100.200".parse().unwrap()));
        assert!(!net.contains("198.51.101.1".parse().unwrap()));
        assert_eq!(net.target(), None);

        let v6: PeerAddress = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains("2001:db8:ffff::1".parse().unwrap()));
        assert!(!v6.contains("192.0.2.1".parse().unwrap()));

        for bad in ["", "example.com", "10.0.0.0/33", "1.2.3.4:99999", "::1/129"] {
            assert!(bad.parse::<PeerAddress>().is_err(), "{bad}");
        }
    }
}
