use unikernel::prelude::*;

#[unikernel(heap = "1 MiB", net(ipv4 = "10.0.2.15/24", gateway = "10.0.2.15"))]
fn main(net: Net) {}
