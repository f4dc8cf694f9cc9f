use unikernel::prelude::*;

#[unikernel(sched = edf, task(control, period = "1 ms", wcet = "2 ms"))]
fn main() {}
