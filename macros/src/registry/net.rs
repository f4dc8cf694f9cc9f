//! `net`'s options and their rules: a static address (`ipv4`, with an optional `gateway` on
//! its network) or `dhcp`, one of the two; and the `NetConfig` its init call takes.
//!
//! Addresses that cannot work are errors: a host address (`ipv4`'s or the gateway's) that
//! is its network's own address (all host bits 0) or broadcast address (all 1), or a
//! loopback, multicast, `0.0.0.0/8` or `240.0.0.0/4` address, a gateway
//! that is the app's own address, a gateway off the network. A `/31` is a point-to-point
//! link (RFC 3021): both of its addresses are hosts, it has no network or broadcast
//! address. A `/32` leaves no other host on the network, not even a gateway: an error.

use proc_macro2::TokenStream;
use quote::quote;

use super::spec::{Declared, OptionSpec};
use crate::value::{Kind, Value, within};

pub const OPTIONS: &[OptionSpec] = &[
    OptionSpec {
        key: "ipv4",
        default: "",
        kind: Kind::Ipv4Cidr {
            example: "10.0.2.15/24",
        },
        applies_to: None,
    },
    OptionSpec {
        key: "gateway",
        default: "",
        kind: Kind::Ipv4Address {
            example: "10.0.2.2",
        },
        applies_to: None,
    },
    OptionSpec {
        key: "dhcp",
        default: "false",
        kind: Kind::Flag,
        applies_to: None,
    },
];

/// `ipv4` or `dhcp`, not both; `gateway` only with `ipv4`, and on its network.
pub fn validate(net: &Declared) -> Vec<syn::Error> {
    let mut errors = Vec::new();
    let (ipv4, gateway, dhcp) = (net.span("ipv4"), net.span("gateway"), net.span("dhcp"));
    if ipv4.is_none() && dhcp.is_none() {
        errors.push(syn::Error::new(
            net.name,
            "`net` needs `ipv4` or `dhcp`: write `net(ipv4 = \"10.0.2.15/24\")` or `net(dhcp)`",
        ));
    }
    if let Some(span) = gateway
        && ipv4.is_none()
        && dhcp.is_none()
    {
        errors.push(syn::Error::new(
            span,
            "option `gateway` of `net` needs `ipv4` too",
        ));
    }
    if let (Some(span), &Value::Ipv4Cidr { octets, prefix }) = (ipv4, net.value("ipv4")) {
        if prefix == 32 {
            errors.push(syn::Error::new(
                span,
                format!(
                    "`ipv4` of `net` is a `/32`, a network of one address: no other host, not \
                     even a gateway, is reachable; write the network's prefix, such as \
                     `\"{}/24\"` (a point-to-point link is a `/31`)",
                    dotted(octets)
                ),
            ));
        } else if let Some(problem) = not_a_host(octets, octets, prefix) {
            errors.push(syn::Error::new(span, format!("`ipv4` of `net`: {problem}")));
        }
    }
    if let (Some(span), Value::Ipv4Address(address), &Value::Ipv4Cidr { octets, prefix }) =
        (gateway, net.value("gateway"), net.value("ipv4"))
        && prefix < 32
    {
        let network = format!("{}/{prefix}", dotted(network(octets, prefix)));
        if !within(*address, octets, prefix) {
            errors.push(syn::Error::new(
                span,
                format!(
                    "`gateway` of `net` is not on the network of `ipv4` ({}/{prefix})",
                    dotted(octets)
                ),
            ));
        } else if *address == octets {
            let (first, last) = hosts(octets, prefix);
            let other = if first == octets { last } else { first };
            errors.push(syn::Error::new(
                span,
                format!(
                    "`gateway` of `net` is the app's own address (`ipv4`); the gateway is \
                     another host on {network}, such as `\"{}\"`",
                    dotted(other)
                ),
            ));
        } else if let Some(problem) = not_a_host(*address, octets, prefix) {
            errors.push(syn::Error::new(
                span,
                format!("`gateway` of `net`: {problem}"),
            ));
        }
    }
    if dhcp.is_some() {
        for (key, span) in [("ipv4", ipv4), ("gateway", gateway)] {
            if let Some(span) = span {
                errors.push(syn::Error::new(
                    span,
                    format!("`net` takes `{key}` or `dhcp`, not both; remove one"),
                ));
            }
        }
    }
    errors
}

/// Why `address` cannot be a host's on the network `octets/prefix` (prefix below 32): it
/// is the network's own address or its broadcast address.
fn not_a_host(address: [u8; 4], octets: [u8; 4], prefix: u8) -> Option<String> {
    let ip = std::net::Ipv4Addr::from(address);
    let special = if ip.is_broadcast() {
        Some("the limited broadcast address")
    } else if ip.is_loopback() {
        Some("a loopback address (127.0.0.0/8), which never leaves a host")
    } else if ip.is_multicast() {
        Some("a multicast address (224.0.0.0/4)")
    } else if address[0] == 0 {
        Some("in 0.0.0.0/8, which stands for \"this host\"")
    } else if address[0] >= 240 {
        Some("in 240.0.0.0/4, which is reserved")
    } else {
        None
    };
    if let Some(special) = special {
        return Some(format!(
            "{} is {special}, not a host's address on a network",
            dotted(address)
        ));
    }
    if prefix >= 31 {
        return None;
    }
    let what = if address == network(octets, prefix) {
        "network address"
    } else if address == broadcast(octets, prefix) {
        "broadcast address"
    } else {
        return None;
    };
    let (first, last) = hosts(octets, prefix);
    Some(format!(
        "{} is the {what} of {}/{prefix}, not a host's; the hosts are {} to {}",
        dotted(address),
        dotted(network(octets, prefix)),
        dotted(first),
        dotted(last)
    ))
}

fn mask(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn network(octets: [u8; 4], prefix: u8) -> [u8; 4] {
    (u32::from_be_bytes(octets) & mask(prefix)).to_be_bytes()
}

fn broadcast(octets: [u8; 4], prefix: u8) -> [u8; 4] {
    (u32::from_be_bytes(octets) | !mask(prefix)).to_be_bytes()
}

/// The first and last host address of the network (both addresses of a `/31`).
fn hosts(octets: [u8; 4], prefix: u8) -> ([u8; 4], [u8; 4]) {
    let (network, broadcast) = (network(octets, prefix), broadcast(octets, prefix));
    if prefix >= 31 {
        return (network, broadcast);
    }
    let step = |address: [u8; 4], by: i64| {
        let value = i64::from(u32::from_be_bytes(address)) + by;
        u32::try_from(value).unwrap_or_default().to_be_bytes()
    };
    (step(network, 1), step(broadcast, -1))
}

fn dotted([a, b, c, d]: [u8; 4]) -> String {
    format!("{a}.{b}.{c}.{d}")
}

/// `NetConfig::Dhcp`, or `NetConfig::Static { cidr, gateway }` from the checked options.
pub fn config(net: &Declared) -> TokenStream {
    let config = quote!(::unikernel::__private::NetConfig);
    match (net.value("dhcp"), net.value("ipv4")) {
        (Value::Bool(true), _) | (_, Value::Absent) => quote!(#config::Dhcp),
        (_, cidr) => {
            let gateway = match net.value("gateway") {
                Value::Absent => quote!(::core::option::Option::None),
                address => quote!(::core::option::Option::Some(#address)),
            };
            quote!(#config::Static { cidr: #cidr, gateway: #gateway })
        }
    }
}
