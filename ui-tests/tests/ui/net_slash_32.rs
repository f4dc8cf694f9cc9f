use unikernel::prelude::*;

#[unikernel(heap = "1 MiB", net(ipv4 = "10.0.2.15/32"))]
fn main(net: Net) {}
