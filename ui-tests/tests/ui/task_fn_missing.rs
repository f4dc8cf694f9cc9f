use unikernel::prelude::*;

#[unikernel(
    sched = edf,
    task(control, period = "1 ms", wcet = "200 us"),
    task(reprot, period = "100 ms", wcet = "5 ms"),
)]
fn main() {}

fn control() {}

fn report() {}
