use unikernel::prelude::*;

#[unikernel(console, heap = "1 MiB", net(ipv4 = "10.0.2.15/24", gateway = "192.168.1.1"))]
fn main(net: Net) {}
