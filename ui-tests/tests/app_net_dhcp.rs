//! `net(dhcp)`: the address is leased at boot.

#![deny(unused)]

use unikernel::prelude::*;

#[unikernel(heap = "1 MiB", net(dhcp))]
fn main(net: Net) {
    let _ = net.ipv4();
}

#[test]
fn compiles() {}
