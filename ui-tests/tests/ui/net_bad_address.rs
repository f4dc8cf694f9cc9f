use unikernel::prelude::*;

#[unikernel(console, heap = "1 MiB", net(ipv4 = "10.0.2.256/24", gateway = "10.0.2.2"))]
fn main(net: Net) {}
