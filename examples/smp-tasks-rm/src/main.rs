//! Periodic tasks on four CPUs under RM (deadline-monotonic priorities): `audit` is pinned
//! to CPU 3, the macro places the others. The checks are smp-tasks' (`placed.rs`).
#![no_std]
#![no_main]

extern crate alloc;

#[path = "../../smp-tasks/src/placed.rs"]
mod placed;

use unikernel::prelude::*;

const NAMES: [&str; 5] = ["west", "north", "east", "south", "audit"];
const WORK: Duration = Duration::from_micros(500);

fn west() {
    placed::job(0, WORK);
}
fn north() {
    placed::job(1, WORK);
}
fn east() {
    placed::job(2, WORK);
}
fn south() {
    placed::job(3, WORK);
}
fn audit() {
    placed::job(4, WORK);
}

#[unikernel(
    console,
    heap = "256 KiB",
    sched = rm(cpus = 4),
    task(west, period = "50 ms", wcet = "30 ms"),
    task(north, period = "50 ms", wcet = "30 ms"),
    task(east, period = "100 ms", wcet = "60 ms"),
    task(south, period = "100 ms", wcet = "60 ms"),
    task(audit, period = "200 ms", wcet = "40 ms", cpu = 3),
)]
fn main(sched: Sched) -> ExitCode {
    placed::run(sched, TASK_PLACEMENT, &NAMES, 2)
}
