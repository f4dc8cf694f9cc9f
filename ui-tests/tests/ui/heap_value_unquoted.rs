use unikernel::prelude::*;

#[unikernel(console, heap = 1 MiB)]
fn main() {}
