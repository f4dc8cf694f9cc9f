use unikernel::prelude::*;

#[unikernel(sched = coop, task(control, period = "1 ms", wcet = "200 us"))]
fn main() {}
