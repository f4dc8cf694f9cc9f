use unikernel::prelude::*;

#[unikernel(heap = "6 KiB")]
fn main() {}
