//! The task set of rt-edf under rate-monotonic priorities: the other order. Prints
//! `order: ...`.
#![no_std]
#![no_main]

#[path = "../../rt-edf/src/order.rs"]
mod order;

use order::{x, y};
use unikernel::prelude::*;

#[unikernel(
    console,
    sched = rm,
    task(y, period = "4 ms", wcet = "1 ms"),
    task(x, period = "11 ms", wcet = "7 ms"),
)]
fn main(sched: Sched) -> ExitCode {
    order::run(sched)
}
