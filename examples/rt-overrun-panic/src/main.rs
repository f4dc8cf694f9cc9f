//! rt-overrun with `on_miss = panic`: the first miss ends the VM with the panic's status
//! (101) and a message naming the task.
#![no_std]
#![no_main]

#[path = "../../rt-overrun/src/jobs.rs"]
mod jobs;

use jobs::{overrunner, steady};
use unikernel::prelude::*;

#[unikernel(
    console,
    sched = edf(on_miss = panic),
    task(steady, period = "10 ms", wcet = "2 ms"),
    task(overrunner, period = "20 ms", wcet = "2 ms"),
)]
fn main(sched: Sched) -> ExitCode {
    sched.run_for(Duration::from_millis(300));
    println!("no deadline was missed");
    ExitCode::SUCCESS
}
