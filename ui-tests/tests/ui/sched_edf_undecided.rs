use unikernel::prelude::*;

// Utilisation 1 - 5e-8: 1.5 million deadlines up to b's, and the quick test (QPA) would move
// down one job of `a` per step. Too costly to decide at compile time: rejected, not accepted
// unchecked.
#[unikernel(
    sched = edf,
    task(a, period = "10 ms", wcet = "9999999 ns"),
    task(b, period = "20000 s", wcet = "1 ms", deadline = "15000 s"),
)]
fn main() {}
