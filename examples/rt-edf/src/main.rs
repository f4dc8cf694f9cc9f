//! Earliest deadline first, observably: see order.rs. Prints `order: ...`.
#![no_std]
#![no_main]

mod order;

use order::{x, y};
use unikernel::prelude::*;

#[unikernel(
    console,
    sched = edf,
    task(y, period = "4 ms", wcet = "1 ms"),
    task(x, period = "11 ms", wcet = "7 ms"),
)]
fn main(sched: Sched) -> ExitCode {
    order::run(sched)
}
