//! A task overruns: its sixth job works 30 ms against a 20 ms deadline. The miss is seen
//! at the deadline (the job is still running), logged and counted, and the job that ran
//! longer than its declared worst case is counted as an overrun.
#![no_std]
#![no_main]

mod jobs;

use jobs::{overrunner, steady};
use unikernel::prelude::*;

#[unikernel(
    console,
    sched = edf(on_miss = log),
    task(steady, period = "10 ms", wcet = "2 ms"),
    task(overrunner, period = "20 ms", wcet = "2 ms"),
)]
fn main(sched: Sched) -> ExitCode {
    sched.run_for(Duration::from_millis(300));
    println!("{}", sched.report());
    for task in sched.task_stats() {
        println!(
            "{}: {} jobs, {} missed, {} over their worst case",
            task.name, task.jobs, task.misses, task.overruns
        );
    }
    ExitCode::SUCCESS
}
