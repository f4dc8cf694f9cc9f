use unikernel::prelude::*;

#[unikernel(console(log = "verbose"))]
fn main() {}
