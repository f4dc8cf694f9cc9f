use unikernel::prelude::*;

#[unikernel(console)]
#[unikernel(heap = "1 MiB")]
fn main() {}
