use unikernel::prelude::*;

// Utilisation 83.3%, but both first jobs need 4 ms of processor time by t = 3 ms.
#[unikernel(
    sched = edf,
    task(a, period = "4 ms", wcet = "2 ms", deadline = "2 ms"),
    task(b, period = "6 ms", wcet = "2 ms", deadline = "3 ms"),
)]
fn main() {}
