use unikernel::prelude::*;

// Three tasks of 60% on two CPUs: 180% of the 200% there is, but any two on one CPU make
// 120%, so no placement exists (Dhall & Liu's example of partitioning's limit).
#[unikernel(
    sched = edf(cpus = 2),
    task(a, period = "10 ms", wcet = "6 ms"),
    task(b, period = "10 ms", wcet = "6 ms"),
    task(c, period = "10 ms", wcet = "6 ms"),
)]
fn main() {}
