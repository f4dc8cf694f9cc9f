use unikernel::prelude::*;

#[unikernel(heap = "1 MiB", net(ipv4 = "127.0.0.2/8"))]
fn main(net: Net) {}
