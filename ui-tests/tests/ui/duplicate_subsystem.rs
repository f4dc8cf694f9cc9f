use unikernel::prelude::*;

#[unikernel(console, heap = "1 MiB", console(log = "debug"))]
fn main() {}
