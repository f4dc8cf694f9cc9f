//! `net`'s options and their rules: a static address (`ipv4`, with an optional `gateway` on
//! its network) or `dhcp`, one of the two; and the `NetConfig` its init call takes.

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
    if let (Some(span), Value::Ipv4Address(address), &Value::Ipv4Cidr { octets, prefix }) =
        (gateway, net.value("gateway"), net.value("ipv4"))
        && !within(*address, octets, prefix)
    {
        let [a, b, c, d] = octets;
        errors.push(syn::Error::new(
            span,
            format!(
                "`gateway` of `net` is not on the network of `ipv4` ({a}.{b}.{c}.{d}/{prefix})"
            ),
        ));
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
