use unikernel::prelude::*;

#[unikernel(console, net(ipv4 = "10.0.2.15/24", gateway = "10.0.2.2"))]
fn main(net: Net) {}
