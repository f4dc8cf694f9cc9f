//! Periodic tasks under rate-monotonic (here deadline-monotonic: `control` has a deadline
//! shorter than its period) priorities, panicking on a deadline miss; the set passes the
//! response-time analysis. Task functions are `fn()` items next to `main`.

// On the host nothing calls the boot code: the expansion must still not make the app's
// items (task functions) look unused.
#![deny(unused)]

// The entry is in a module so that the case's binary runs a `main` of its own: the one the
// attribute generates for a host build says that apps run in a VM, and fails.
mod app {
    use unikernel::prelude::*;

    #[unikernel(
        console,
        sched = rm(on_miss = panic),
        task(control, period = "1 ms", wcet = "200 us", deadline = "800 us"),
        task(filter, period = "5 ms", wcet = "1 ms"),
        task(report, period = "100 ms", wcet = "5 ms"),
    )]
    fn main(_sched: unikernel::Sched) {}

    fn control() {}

    fn filter() {}

    fn report() {}
}

fn main() {}
