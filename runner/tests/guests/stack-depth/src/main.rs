//! Recurses `<n>` frames of about 2 KiB each on a 1 MiB main stack: 300 fit (they would
//! overflow the default 256 KiB), 2048 overflow, and the report names the stack's size.
#![no_std]
#![no_main]

use unikernel::prelude::*;

#[unikernel(console, heap = "64 KiB", args, stack = "1 MiB")]
fn main(args: Args) -> ExitCode {
    let kib = args.first().and_then(|arg| arg.parse().ok()).unwrap_or(0);
    let sum = recurse(kib);
    println!("recursed {kib} frames (sum {sum})");
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
