use unikernel::prelude::*;

// `lo` gets 1 ns of every 1 ms: its response time (2000 s) would take two million steps of
// the response-time analysis to reach. Rejected as undecided, not accepted unchecked.
#[unikernel(
    sched = rm,
    task(hp, period = "1 ms", wcet = "999999 ns"),
    task(lo, period = "3000 s", wcet = "2 ms"),
)]
fn main() {}
