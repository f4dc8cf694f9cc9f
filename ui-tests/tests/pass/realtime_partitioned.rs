//! Periodic tasks on two CPUs: `report` pinned to cpu 1, the others placed by the macro
//! (first-fit decreasing: `control` on cpu 0, `filter` beside `report` on cpu 1, as 40% +
//! 65% would not fit cpu 0). `main` prints the placement the attribute chose.

// On the host nothing calls the boot code: the expansion must still not make the app's
// items (task functions) look unused.
#![deny(unused)]

// The entry is in a module so that the case's binary runs a `main` of its own: the one the
// attribute generates for a host build says that apps run in a VM, and fails.
mod app {
    use unikernel::prelude::*;

    #[unikernel(
        console,
        sched = edf(cpus = 2),
        task(control, period = "1 ms", wcet = "400 us"),
        task(filter, period = "2 ms", wcet = "1300 us"),
        task(report, period = "100 ms", wcet = "30 ms", cpu = 1),
    )]
    fn main(_sched: unikernel::Sched) {
        unikernel::println!("tasks: {TASK_PLACEMENT}");
    }

    fn control() {}

    fn filter() {}

    fn report() {}
}

fn main() {}
