use unikernel::prelude::*;

#[unikernel(heap = 4096)]
fn main() {}
