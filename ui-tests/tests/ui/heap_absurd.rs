use unikernel::prelude::*;

#[unikernel(heap = "1 TiB")]
fn main() {}
