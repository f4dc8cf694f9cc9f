use unikernel::prelude::*;

#[unikernel(console, gpu)]
fn main() {}
