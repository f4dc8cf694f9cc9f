use unikernel::prelude::*;

#[unikernel(console, heap)]
fn main() {}
