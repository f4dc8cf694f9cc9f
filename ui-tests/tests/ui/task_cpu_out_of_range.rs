use unikernel::prelude::*;

// Two CPUs are cpu 0 and cpu 1.
#[unikernel(
    sched = rm(cpus = 2),
    task(control, period = "1 ms", wcet = "200 us"),
    task(report, period = "100 ms", wcet = "5 ms", cpu = 2),
)]
fn main() {}
