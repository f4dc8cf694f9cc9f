use unikernel::prelude::*;

// Under RM each CPU runs the exact response-time test, not a utilisation sum: `a` and `b`
// (60% each) take a CPU each, and `c` (37.5%) would keep either below 100% (97.5%) but
// respond in 9 ms, after its 8 ms deadline, behind a job of 3 ms every 5 ms.
#[unikernel(
    sched = rm(cpus = 2),
    task(a, period = "5 ms", wcet = "3 ms"),
    task(b, period = "5 ms", wcet = "3 ms"),
    task(c, period = "8 ms", wcet = "3 ms"),
)]
fn main() {}
