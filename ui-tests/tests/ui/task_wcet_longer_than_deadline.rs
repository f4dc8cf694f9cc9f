use unikernel::prelude::*;

#[unikernel(sched = rm, task(control, period = "1 ms", wcet = "300 us", deadline = "250 us"))]
fn main() {}
