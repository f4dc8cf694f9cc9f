//! The kinds of value the attribute takes (sizes, names, addresses, flags), how their text
//! is checked, and how a checked value is written into the expansion.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote};

use crate::{hint, size};

/// How a value (or an option's value) is written.
#[derive(Debug)]
pub enum Kind {
    /// A size string such as `"1 MiB"`, passed as a `usize` count of bytes.
    Size {
        /// The smallest accepted size, in bytes.
        min: u64,
        /// The largest accepted size, in bytes.
        max: u64,
        /// Sizes must be a multiple of this many bytes.
        multiple_of: u64,
    },
    /// One name of a fixed set (`edf`, or `"edf"`), passed as
    /// `::unikernel::__private::<ty>::<variant>`.
    OneOf {
        ty: &'static str,
        /// `(written, variant)` pairs.
        values: &'static [(&'static str, &'static str)],
    },
    /// An IPv4 address with its prefix length in a string, `"10.0.2.15/24"`: an
    /// `Ipv4Cidr`. Not written: absent (its default is the empty string).
    Ipv4Cidr {
        /// A typical value, for messages.
        example: &'static str,
    },
    /// An IPv4 address in a string, `"10.0.2.2"`: an `Ipv4Address`. Not written: absent.
    Ipv4Address {
        /// A typical value, for messages.
        example: &'static str,
    },
    /// An option written bare (`net(dhcp)`), on when written (its default is `"false"`).
    Flag,
    /// A whole number written bare (`cpus = 2`), passed as a `u16`.
    Count {
        /// The smallest accepted number.
        min: u16,
        /// The largest accepted number.
        max: u16,
    },
}

/// A checked value, ready to be generated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A number of bytes: `1048576usize`.
    Bytes(u64),
    /// `::unikernel::__private::<ty>::<variant>`.
    Variant {
        ty: &'static str,
        variant: &'static str,
    },
    /// `Ipv4Cidr::new(Ipv4Address::new(a, b, c, d), prefix)`.
    Ipv4Cidr { octets: [u8; 4], prefix: u8 },
    /// `Ipv4Address::new(a, b, c, d)`.
    Ipv4Address([u8; 4]),
    /// An address that was not written.
    Absent,
    /// A flag: on when written.
    Bool(bool),
    /// A whole number: `2u16`.
    Count(u16),
}

impl Kind {
    /// `text` as the app writes it: `"1 MiB"` for a size, `edf` for a name.
    pub fn written(&self, text: &str) -> String {
        match self {
            Kind::Ipv4Cidr { example } | Kind::Ipv4Address { example } if text.is_empty() => {
                format!("\"{example}\"")
            }
            Kind::Size { .. } | Kind::Ipv4Cidr { .. } | Kind::Ipv4Address { .. } => {
                format!("\"{text}\"")
            }
            Kind::OneOf { .. } | Kind::Flag | Kind::Count { .. } => text.to_owned(),
        }
    }

    /// The names of a one-of kind, as written (empty for other kinds).
    pub fn names(&self) -> Vec<&'static str> {
        match self {
            Kind::OneOf { values, .. } => values.iter().map(|(written, _)| *written).collect(),
            _ => Vec::new(),
        }
    }
}

/// Checks the text of a value of `kind` for `subject` (a subsystem, `is_subsystem`, or an
/// option), and returns the message of the error if it is not valid.
pub fn check_text(
    text: &str,
    kind: &Kind,
    subject: &str,
    is_subsystem: bool,
) -> Result<Value, String> {
    match kind {
        Kind::Size {
            min,
            max,
            multiple_of,
        } => check_size(text, subject, is_subsystem, (*min, *max, *multiple_of)),
        Kind::Ipv4Cidr { .. } | Kind::Ipv4Address { .. } if text.is_empty() => Ok(Value::Absent),
        Kind::Ipv4Cidr { .. } => parse_ipv4(text, true, subject),
        Kind::Ipv4Address { .. } => parse_ipv4(text, false, subject),
        Kind::Flag => match text {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(format!("`{subject}` is on or off")),
        },
        Kind::Count { min, max } => text
            .trim()
            .parse::<u16>()
            .ok()
            .filter(|count| (min..=max).contains(&count))
            .map(Value::Count)
            .ok_or_else(|| {
                format!("`{subject}` is a whole number from {min} to {max}, not `{text}`")
            }),
        Kind::OneOf { ty, values } => values
            .iter()
            .find(|(written, _)| *written == text)
            .map(|(_, variant)| Value::Variant { ty, variant })
            .ok_or_else(|| {
                format!(
                    "unknown value `{text}` for `{subject}`{}",
                    hint::suffix(text, &kind.names())
                )
            }),
    }
}

fn check_size(
    text: &str,
    subject: &str,
    is_subsystem: bool,
    (min, max, multiple_of): (u64, u64, u64),
) -> Result<Value, String> {
    let range = format!(
        "expected between {} and {}",
        size::format(min),
        size::format(max)
    );
    let bytes = size::parse(text).map_err(|error| {
        size::SIZE.message(error, text, "1 MiB", || {
            format!("`{subject}` size is out of range; {range}")
        })
    })?;
    if bytes == 0 {
        let remove = if is_subsystem {
            format!(", or remove `{subject}` to run without it")
        } else {
            String::new()
        };
        return Err(format!("`{subject}` size is zero; {range}{remove}"));
    }
    if bytes < min || bytes > max {
        return Err(format!(
            "`{subject}` size `{}` is out of range; {range}",
            text.trim()
        ));
    }
    if !bytes.is_multiple_of(multiple_of) {
        let up = bytes.div_ceil(multiple_of) * multiple_of;
        return Err(format!(
            "`{subject}` size `{}` is not a multiple of {}; use `\"{}\"`",
            text.trim(),
            size::format(multiple_of),
            size::format(up)
        ));
    }
    Ok(Value::Bytes(bytes))
}

/// `a.b.c.d` or, with `prefix`, `a.b.c.d/len`.
fn parse_ipv4(text: &str, prefix: bool, subject: &str) -> Result<Value, String> {
    let text = text.trim();
    let (address, length) = match (prefix, text.split_once('/')) {
        (true, Some((address, length))) => (address, Some(length)),
        (true, None) => {
            return Err(format!(
                "`{subject}` needs the prefix length after the address: `\"{text}/24\"`"
            ));
        }
        (false, Some((address, _))) => {
            return Err(format!(
                "`{subject}` is an address without a prefix length: `\"{address}\"`"
            ));
        }
        (false, None) => (text, None),
    };
    let octets = address
        .parse::<std::net::Ipv4Addr>()
        .map_err(|_| {
            format!("`\"{address}\"` is not an IPv4 address; write four numbers from 0 to 255, such as `\"10.0.2.15\"`")
        })?
        .octets();
    match length {
        None => Ok(Value::Ipv4Address(octets)),
        Some(length) => {
            let prefix = length
                .parse::<u8>()
                .ok()
                .filter(|&length| (1..=32).contains(&length))
                .ok_or_else(|| {
                    format!(
                        "prefix length `/{length}` of `{subject}` is out of range; expected 1 to 32"
                    )
                })?;
            Ok(Value::Ipv4Cidr { octets, prefix })
        }
    }
}

/// Whether `address` lies in the network `octets/prefix`.
pub fn within(address: [u8; 4], octets: [u8; 4], prefix: u8) -> bool {
    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
    u32::from_be_bytes(address) & mask == u32::from_be_bytes(octets) & mask
}

fn address_tokens(octets: &[u8; 4]) -> TokenStream {
    let octets = octets.map(proc_macro2::Literal::u8_unsuffixed);
    quote!(::unikernel::__private::Ipv4Address::new(#(#octets),*))
}

impl ToTokens for Value {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        tokens.extend(match self {
            Value::Bytes(bytes) => {
                let literal = syn::LitInt::new(&format!("{bytes}usize"), Span::call_site());
                quote!(#literal)
            }
            Value::Variant { ty, variant } => {
                let ty = quote::format_ident!("{}", ty);
                let variant = quote::format_ident!("{}", variant);
                quote!(::unikernel::__private::#ty::#variant)
            }
            Value::Ipv4Cidr { octets, prefix } => {
                let address = address_tokens(octets);
                let prefix = proc_macro2::Literal::u8_unsuffixed(*prefix);
                quote!(::unikernel::__private::Ipv4Cidr::new(#address, #prefix))
            }
            Value::Ipv4Address(octets) => address_tokens(octets),
            Value::Absent => quote!(::core::option::Option::None),
            Value::Bool(on) => quote!(#on),
            Value::Count(count) => {
                let literal = proc_macro2::Literal::u16_suffixed(*count);
                quote!(#literal)
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_with_and_without_prefix() {
        let cidr = Kind::Ipv4Cidr { example: "" };
        let address = Kind::Ipv4Address { example: "" };
        assert_eq!(
            check_text("10.0.2.15/24", &cidr, "ipv4", false),
            Ok(Value::Ipv4Cidr {
                octets: [10, 0, 2, 15],
                prefix: 24
            })
        );
        assert_eq!(
            check_text(" 10.0.2.2 ", &address, "gateway", false),
            Ok(Value::Ipv4Address([10, 0, 2, 2]))
        );
        assert_eq!(check_text("", &cidr, "ipv4", false), Ok(Value::Absent));
        assert!(check_text("10.0.2.15", &cidr, "ipv4", false).is_err());
        assert!(check_text("10.0.2.15/33", &cidr, "ipv4", false).is_err());
        assert!(check_text("10.0.2.2/24", &address, "gateway", false).is_err());
    }

    #[test]
    fn counts_are_whole_numbers_in_range() {
        let cpus = Kind::Count { min: 1, max: 64 };
        assert_eq!(check_text("2", &cpus, "cpus", false), Ok(Value::Count(2)));
        assert_eq!(
            check_text("0", &cpus, "cpus", false),
            Err("`cpus` is a whole number from 1 to 64, not `0`".to_owned())
        );
        assert!(check_text("65", &cpus, "cpus", false).is_err());
        assert!(check_text("two", &cpus, "cpus", false).is_err());
        assert_eq!(Value::Count(2).to_token_stream().to_string(), "2u16");
    }

    #[test]
    fn networks_follow_the_prefix() {
        assert!(within([10, 0, 2, 2], [10, 0, 2, 15], 24));
        assert!(!within([10, 0, 3, 2], [10, 0, 2, 15], 24));
        assert!(!within([192, 168, 0, 1], [10, 0, 2, 15], 1));
        assert!(within([127, 0, 0, 1], [10, 0, 2, 15], 1));
        assert!(!within([10, 0, 2, 16], [10, 0, 2, 15], 32));
    }

    #[test]
    fn values_become_tokens_under_the_facade() {
        let cidr = Value::Ipv4Cidr {
            octets: [10, 0, 2, 15],
            prefix: 24,
        };
        assert_eq!(
            cidr.to_token_stream().to_string(),
            ":: unikernel :: __private :: Ipv4Cidr :: new (:: unikernel :: __private :: Ipv4Address :: new (10 , 0 , 2 , 15) , 24)"
        );
        assert_eq!(
            Value::Bytes(4096).to_token_stream().to_string(),
            "4096usize"
        );
    }
}
