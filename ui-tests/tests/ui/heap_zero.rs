use unikernel::prelude::*;

#[unikernel(heap = "0 KiB")]
fn main() {}
