use unikernel::prelude::*;

#[unikernel(
    sched = edf,
    task(period = "1 ms", wcet = "200 us"),
    task(control, period = "1 ms"),
    task(report, perod = "10 ms", wcet = "1 ms", wcet = "2 ms"),
    task,
)]
fn main() {}
