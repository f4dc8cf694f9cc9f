use unikernel::prelude::*;

#[unikernel(heap = "0x1000")]
fn main() {}
