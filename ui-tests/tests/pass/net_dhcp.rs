//! `net(dhcp)`: the address is leased at boot.

#![deny(unused)]

// The entry is in a module so that the case's binary runs a `main` of its own: the one the
// attribute generates for a host build says that apps run in a VM, and fails.
mod app {
    use unikernel::prelude::*;

    #[unikernel(heap = "1 MiB", net(dhcp))]
    fn main(net: Net) {
        let _ = net.ipv4();
    }
}

fn main() {}
