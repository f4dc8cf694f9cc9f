use unikernel::prelude::*;

// The network's own address as the app's, its broadcast address as the gateway's.
#[unikernel(heap = "1 MiB", net(ipv4 = "10.0.2.0/24", gateway = "10.0.2.255"))]
fn main(net: Net) {}
