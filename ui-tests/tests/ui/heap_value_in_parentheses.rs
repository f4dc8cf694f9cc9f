use unikernel::prelude::*;

#[unikernel(heap(1 MiB))]
fn main() {}
