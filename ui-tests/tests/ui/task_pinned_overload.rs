use unikernel::prelude::*;

// Both pinned to cpu 1 (120%) while cpu 0 runs nothing: pins are kept as written.
#[unikernel(
    sched = edf(cpus = 2),
    task(control, period = "10 ms", wcet = "6 ms", cpu = 1),
    task(filter, period = "10 ms", wcet = "6 ms", cpu = 1),
)]
fn main() {}
