use unikernel::prelude::*;

#[unikernel(console, stack = "1001 KiB")]
fn main() {}
