//! `sched` without `timer`: neither `timer` nor `irq` (which `timer` needs) takes a value, so
//! by the dependency policy (`macros/src/registry.rs`) both are added for `sched`, in boot
//! order `irq`, `timer`, `sched`; `main` may take their handles. The expansion is in
//! `macros/tests/snapshots/sched_adds_timer_and_irq.rs`.

// On the host nothing calls the boot code: the expansion must still not make the app's
// items (task functions) look unused.
#![deny(unused)]

use unikernel::prelude::*;

#[unikernel(console, sched)]
fn main(_sched: unikernel::Sched, _clock: unikernel::Clock, _irq: unikernel::Irq) {}

#[test]
fn compiles() {}
