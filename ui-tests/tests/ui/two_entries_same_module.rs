use unikernel::prelude::*;

#[unikernel(console)]
fn main() {}

#[unikernel(console, heap = "1 MiB")]
fn main() {}
