use unikernel::prelude::*;

#[unikernel(console, sched = edff)]
fn main() {}
