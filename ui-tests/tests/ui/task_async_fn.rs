use unikernel::prelude::*;

#[unikernel(sched = rm, task(control, period = "1 ms", wcet = "200 us"))]
fn main() {}

async fn control() {}
