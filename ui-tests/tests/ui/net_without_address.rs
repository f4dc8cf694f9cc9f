use unikernel::prelude::*;

#[unikernel(console, heap = "1 MiB", net)]
fn main(net: Net) {}
