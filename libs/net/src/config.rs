//! How the interface gets its IPv4 address: fixed in the attribute
//! (`net(ipv4 = "10.0.2.15/24", gateway = "10.0.2.2")`) or leased by DHCP (`net(dhcp)`).
//!
//! The addresses are smoltcp's types. `#[unikernel]` checks what the app wrote at compile
//! time (an address, a prefix length of at most 32, a gateway on the interface's network)
//! and writes the configuration as a constant; the stack takes it as it is.

pub use smoltcp::wire::{Ipv4Address, Ipv4Cidr};

/// The interface's configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Config {
    /// A fixed address and, for traffic beyond its network, a gateway.
    Static {
        cidr: Ipv4Cidr,
        gateway: Option<Ipv4Address>,
    },
    /// An address leased from a DHCP server (QEMU's user-mode network has one).
    Dhcp,
}
