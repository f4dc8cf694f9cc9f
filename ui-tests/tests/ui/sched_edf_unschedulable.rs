use unikernel::prelude::*;

#[unikernel(
    console,
    sched = edf,
    task(control, period = "1 ms", wcet = "400 us"),
    task(filter, period = "2 ms", wcet = "900 us"),
    task(report, period = "100 ms", wcet = "30 ms"),
)]
fn main() {}
