//! Recurses `<n>` frames of about 2 KiB each on a 1 MiB main stack: 300 fit (they would
//! overflow the default 256 KiB), 2048 overflow, and the report names the stack's size.
//! A thread recurses too, so that switches to and from the chosen stack are exercised.
#![no_std]
#![no_main]

use unikernel::prelude::*;

#[unikernel(console, heap = "256 KiB", args, sched, stack = "1 MiB")]
fn main(args: Args, sched: Sched) -> ExitCode {
    let depth = args.first().and_then(|arg| arg.parse().ok()).unwrap_or(0);
    let thread = sched.spawn(|| recurse(8));
    unikernel::sched::yield_now();
    let sum = recurse(depth);
    println!("recursed {depth} frames (sum {sum})");
    println!("the thread's sum: {}", thread.join());
    ExitCode::SUCCESS
}

/// One frame of about 2 KiB per level (the array and its copy through `black_box`).
fn recurse(depth: u64) -> u64 {
    let frame = core::hint::black_box([depth; 128]);
    if depth == 0 {
        return 0;
    }
    recurse(depth - 1) + frame[depth as usize % 128]
}
