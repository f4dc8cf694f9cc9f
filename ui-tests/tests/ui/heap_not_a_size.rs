use unikernel::prelude::*;

#[unikernel(heap = "lots")]
fn main() {}
