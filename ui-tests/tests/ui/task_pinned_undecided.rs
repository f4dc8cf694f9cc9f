use unikernel::prelude::*;

// The limit of sched_rm_undecided.rs holds per CPU: pinned together on cpu 0, `lo`'s
// response time would take millions of steps to settle, so the set is rejected as
// undecided. Left free, `lo` would go to cpu 1 instead.
#[unikernel(
    sched = rm(cpus = 2),
    task(hp, period = "1 ms", wcet = "999999 ns", cpu = 0),
    task(lo, period = "3000 s", wcet = "2 ms", cpu = 0),
)]
fn main() {}
