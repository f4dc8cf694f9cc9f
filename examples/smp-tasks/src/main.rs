//! Periodic tasks on two CPUs under EDF: `report` is pinned to CPU 1, the macro places
//! the others (first-fit decreasing). Each CPU runs its own tasks on its own timer; the
//! app checks that every job ran on its task's CPU and that none missed its deadline
//! (`placed.rs`). examples/smp-tasks-rm does the same on four CPUs under RM. The periods
//! are long and the jobs short (0.5 ms) so that a host busy enough to deschedule QEMU's
//! vCPU threads for tens of milliseconds does not make a boot test miss a deadline.
#![no_std]
#![no_main]

extern crate alloc;

mod placed;

use unikernel::prelude::*;

const NAMES: [&str; 4] = ["sample", "filter", "report", "log"];
const WORK: Duration = Duration::from_micros(500);

fn sample() {
    placed::job(0, WORK);
}
fn filter() {
    placed::job(1, WORK);
}
fn report() {
    placed::job(2, WORK);
}
fn log() {
    placed::job(3, WORK);
}

#[unikernel(
    console,
    heap = "256 KiB",
    sched = edf(cpus = 2),
    task(sample, period = "100 ms", wcet = "60 ms"),
    task(filter, period = "100 ms", wcet = "60 ms"),
    task(report, period = "200 ms", wcet = "40 ms", cpu = 1),
    task(log, period = "250 ms", wcet = "50 ms"),
)]
fn main(sched: Sched) -> ExitCode {
    placed::run(sched, TASK_PLACEMENT, &NAMES, 2)
}
