//! How the interface gets its IPv4 address: fixed in the attribute
//! (`net(ipv4 = "10.0.2.15/24", gateway = "10.0.2.2")`) or leased by DHCP (`net(dhcp)`).
//!
//! The macro checks what the app wrote at compile time and passes typed values; the parsers
//! here are for addresses that arrive at run time (command lines, configuration).

use core::fmt;
use core::net::Ipv4Addr;
use core::str::FromStr;

/// An IPv4 address with its prefix length: `10.0.2.15/24`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ipv4Cidr {
    pub address: Ipv4Addr,
    pub prefix_len: u8,
}

impl Ipv4Cidr {
    /// `address/prefix_len`; `None` when the prefix is longer than 32 bits.
    pub const fn new(address: Ipv4Addr, prefix_len: u8) -> Option<Self> {
        if prefix_len > 32 {
            None
        } else {
            Some(Self {
                address,
                prefix_len,
            })
        }
    }

    /// Whether `other` is on this network.
    pub fn contains(&self, other: Ipv4Addr) -> bool {
        let mask = u32::MAX
            .checked_shl(32 - u32::from(self.prefix_len))
            .unwrap_or(0);
        u32::from(self.address) & mask == u32::from(other) & mask
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix_len)
    }
}

/// Why an address was not understood.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddrError {
    /// Not four dot-separated numbers from 0 to 255.
    NotAnAddress,
    /// No `/<prefix length>` after the address.
    MissingPrefix,
    /// A prefix length that is not a number from 0 to 32.
    BadPrefix,
}

impl fmt::Display for AddrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotAnAddress => "expected an IPv4 address such as `10.0.2.15`",
            Self::MissingPrefix => {
                "expected an address with its prefix length, such as `10.0.2.15/24`"
            }
            Self::BadPrefix => "the prefix length must be a number from 0 to 32",
        })
    }
}

impl FromStr for Ipv4Cidr {
    type Err = AddrError;

    fn from_str(text: &str) -> Result<Self, AddrError> {
        let (address, prefix) = text
            .trim()
            .split_once('/')
            .ok_or(AddrError::MissingPrefix)?;
        let address = address.parse().map_err(|_| AddrError::NotAnAddress)?;
        let prefix_len = prefix.parse().map_err(|_| AddrError::BadPrefix)?;
        Self::new(address, prefix_len).ok_or(AddrError::BadPrefix)
    }
}

/// The interface's configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Config {
    /// A fixed address and, for traffic beyond its network, a gateway.
    Static {
        cidr: Ipv4Cidr,
        gateway: Option<Ipv4Addr>,
    },
    /// An address leased from a DHCP server (QEMU's user-mode network has one).
    Dhcp,
}

/// Why a configuration is not usable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// The gateway is not on the interface's network.
    GatewayOffNetwork { cidr: Ipv4Cidr, gateway: Ipv4Addr },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::GatewayOffNetwork { cidr, gateway } => {
                write!(f, "the gateway {gateway} is not on the network {cidr}")
            }
        }
    }
}

impl Config {
    /// Checks that a static configuration is consistent.
    pub fn check(&self) -> Result<(), ConfigError> {
        match *self {
            Self::Static {
                cidr,
                gateway: Some(gateway),
            } if !cidr.contains(gateway) => Err(ConfigError::GatewayOffNetwork { cidr, gateway }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;

    #[test]
    fn parses_an_address_with_its_prefix() {
        let cidr: Ipv4Cidr = "10.0.2.15/24".parse().unwrap();
        assert_eq!(cidr.address, Ipv4Addr::new(10, 0, 2, 15));
        assert_eq!(cidr.prefix_len, 24);
        assert_eq!(std::format!("{cidr}"), "10.0.2.15/24");
    }

    #[test]
    fn rejects_malformed_addresses() {
        assert_eq!(
            "10.0.2.15".parse::<Ipv4Cidr>(),
            Err(AddrError::MissingPrefix)
        );
        assert_eq!(
            "10.0.2/24".parse::<Ipv4Cidr>(),
            Err(AddrError::NotAnAddress)
        );
        assert_eq!(
            "10.0.2.256/24".parse::<Ipv4Cidr>(),
            Err(AddrError::NotAnAddress)
        );
        assert_eq!(
            "10.0.2.15/33".parse::<Ipv4Cidr>(),
            Err(AddrError::BadPrefix)
        );
        assert_eq!("10.0.2.15/x".parse::<Ipv4Cidr>(), Err(AddrError::BadPrefix));
    }

    #[test]
    fn network_membership_follows_the_prefix() {
        let cidr: Ipv4Cidr = "10.0.2.15/24".parse().unwrap();
        assert!(cidr.contains(Ipv4Addr::new(10, 0, 2, 2)));
        assert!(!cidr.contains(Ipv4Addr::new(10, 0, 3, 2)));
        let all: Ipv4Cidr = "10.0.2.15/0".parse().unwrap();
        assert!(all.contains(Ipv4Addr::new(192, 168, 1, 1)));
        let host: Ipv4Cidr = "10.0.2.15/32".parse().unwrap();
        assert!(!host.contains(Ipv4Addr::new(10, 0, 2, 16)));
    }

    #[test]
    fn a_gateway_off_the_network_is_an_error() {
        let cidr: Ipv4Cidr = "10.0.2.15/24".parse().unwrap();
        let ok = Config::Static {
            cidr,
            gateway: Some(Ipv4Addr::new(10, 0, 2, 2)),
        };
        assert_eq!(ok.check(), Ok(()));
        let bad = Config::Static {
            cidr,
            gateway: Some(Ipv4Addr::new(192, 168, 0, 1)),
        };
        assert!(bad.check().is_err());
        assert_eq!(Config::Dhcp.check(), Ok(()));
    }
}
