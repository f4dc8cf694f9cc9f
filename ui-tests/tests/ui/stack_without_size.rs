use unikernel::prelude::*;

#[unikernel(console, stack)]
fn main() {}
