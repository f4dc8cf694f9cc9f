use unikernel::prelude::*;

#[unikernel(console, heap = "1 MiB", net(dhcp, ipv4 = "10.0.2.15/24"))]
fn main(net: Net) {}
