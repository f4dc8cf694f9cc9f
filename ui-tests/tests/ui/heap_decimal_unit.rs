use unikernel::prelude::*;

#[unikernel(heap = "1 MB")]
fn main() {}
