use unikernel::prelude::*;

#[unikernel(sched = edf, task(control, period = "1 ms", wcet = "200 us", deadline = "2 ms"))]
fn main() {}
