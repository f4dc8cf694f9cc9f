use unikernel::prelude::*;

#[unikernel(
    sched = edf,
    task(control, period = "1 ms", wcet = "200 us"),
    task(control, period = "10 ms", wcet = "1 ms"),
)]
fn main() {}
