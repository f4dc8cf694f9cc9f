use unikernel::prelude::*;

#[unikernel(console, stack = "4 KiB")]
fn main() {}
