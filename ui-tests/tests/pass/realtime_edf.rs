//! Periodic tasks under EDF at 97.1% utilisation (RM would reject this set: see
//! `ui/sched_rm_unschedulable_edf_would_accept.rs`), durations in every accepted spelling,
//! and the policy written as a string, which is accepted too.

// On the host nothing calls the boot code: the expansion must still not make the app's
// items (task functions) look unused.
#![deny(unused)]

// The entry is in a module so that the case's binary runs a `main` of its own: the one the
// attribute generates for a host build says that apps run in a VM, and fails.
mod app {
    use unikernel::prelude::*;

    #[unikernel(
        sched = "edf",
        task(fast, period = "5ms", wcet = "2000 µs"),
        task(slow, period = "7_000_000 ns", wcet = "4 ms", deadline = "7 ms")
    )]
    fn main() {}

    fn fast() {}

    fn slow() {}
}

fn main() {}
