use unikernel::prelude::*;

#[unikernel(console, sched = fixed(on_miss = panic))]
fn main() {}
