//! `sched` without `clock`: neither `clock` nor `irq` (which `clock` needs) takes a value, so
//! by the dependency policy (`macros/src/registry/mod.rs`) both are added for `sched`, in
//! boot order `irq`, `clock`, `sched`; `main` may take their handles. The expansion is in
//! `macros/tests/snapshots/sched_adds_clock_and_irq.snap`.

// On the host nothing calls the boot code: the expansion must still not make the app's
// items (task functions) look unused.
#![deny(unused)]

// The entry is in a module so that the case's binary runs a `main` of its own: the one the
// attribute generates for a host build says that apps run in a VM, and fails.
mod app {
    use unikernel::prelude::*;

    #[unikernel(console, sched)]
    fn main(_sched: unikernel::Sched, _clock: unikernel::Clock, _irq: unikernel::Irq) {}
}

fn main() {}
