use unikernel::prelude::*;

// Without `cpus`, the app has one CPU: `cpu = 0` is the only one to pin to.
#[unikernel(
    sched = edf,
    task(control, period = "1 ms", wcet = "200 us", cpu = 0),
    task(report, period = "100 ms", wcet = "5 ms", cpu = 1),
)]
fn main() {}
