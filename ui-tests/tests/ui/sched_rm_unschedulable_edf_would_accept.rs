use unikernel::prelude::*;

// Buttazzo, "Rate Monotonic vs. EDF: Judgment Day" (2005), Fig. 1: U = 97.1%.
#[unikernel(
    console,
    sched = rm,
    task(fast, period = "5 ms", wcet = "2 ms"),
    task(slow, period = "7 ms", wcet = "4 ms"),
)]
fn main() {}
