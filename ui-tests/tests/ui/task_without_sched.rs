use unikernel::prelude::*;

#[unikernel(console, clock, task(control, period = "1 ms", wcet = "200 us"))]
fn main() {}
