use unikernel::prelude::*;

#[unikernel(
    sched = edf,
    task(a, period = "1.5 ms", wcet = "200 usec"),
    task(b, period = "0 ms", wcet = "5"),
    task(c, period = 10, wcet = "soon"),
    task(d, period = "99999999999 s", wcet = "2.5 ns"),
)]
fn main() {}
