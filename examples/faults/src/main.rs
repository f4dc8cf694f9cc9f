//! Misbehaves on request, so the boot tests can check that every kind of failure is
//! reported with its cause and a non-zero exit status.
//!
//! `runner run faults -- <what>` with `<what>` one of: `panic`, `deep-panic` (three calls
//! below `main`, for backtraces), `null`, `write-code`, `exec-data`, `overflow`,
//! `exit <code>`, `alloc-fail`, `log` (a line at each level, from two modules), `spin`
//! (runs without end, for a debugger's interrupt).
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;
use unikernel::prelude::*;

#[unikernel(console, heap = "64 KiB", args)]
fn main(args: Args) -> ExitCode {
    let what = args.first().map(|arg| arg.as_str()).unwrap_or("");
    println!("faults: {what}");
    match what {
        "panic" => panic!("the app gave up"),
        "deep-panic" => println!("parsed {}", parse_config(core::hint::black_box("x"))),
        "null" => {
            let null = core::hint::black_box(core::ptr::null::<u64>());
            // SAFETY: none; this reads address 0 on purpose to test the page-fault report.
            let value = unsafe { core::ptr::read_volatile(null) };
            println!("read {value} from address 0");
        }
        "write-code" => {
            let code = core::hint::black_box(recurse as *const () as *mut u8);
            // SAFETY: none; this writes into the kernel's code on purpose to test W^X.
            unsafe { core::ptr::write_volatile(code, 0xc3) };
            println!("wrote into the kernel's code");
        }
        "exec-data" => {
            static RET: [u8; 1] = [0xc3];
            let data = core::hint::black_box(RET.as_ptr());
            // SAFETY: none; this jumps into read-only data on purpose to test W^X.
            let function: fn() = unsafe { core::mem::transmute(data) };
            function();
            println!("executed read-only data");
        }
        "overflow" => println!("depth {}", recurse(core::hint::black_box(1))),
        "exit" => {
            let code = args.get(1).and_then(|code| code.parse().ok()).unwrap_or(1);
            return ExitCode::from(code);
        }
        "log" => {
            log::error!("an error");
            log::info!("some information");
            log::debug!("a debugging detail");
            log::debug!(target: "faults::parser", "a detail of the parser");
            log::trace!(target: "faults::parser", "a trace of the parser");
        }
        "spin" => spin(),
        "alloc-fail" => {
            let big: Vec<u8> = Vec::with_capacity(1 << 20);
            println!("allocated {}", big.capacity());
        }
        other => {
            println!("unknown fault `{other}`");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

/// The outermost of three calls that end in a panic, each kept a frame of its own.
#[inline(never)]
fn parse_config(text: &str) -> usize {
    validate(text) + 1
}

#[inline(never)]
fn validate(text: &str) -> usize {
    check_length(text) * 2
}

#[inline(never)]
fn check_length(text: &str) -> usize {
    let length = core::hint::black_box(text.len());
    if length < 8 {
        panic!("the configuration is {length} bytes long, too short");
    }
    length
}

/// Counts without end: a running guest that only a debugger or the timeout stops.
#[inline(never)]
fn spin() -> ! {
    let mut count = 0u64;
    loop {
        count = core::hint::black_box(count).wrapping_add(1);
    }
}

/// Recurses without end, with a frame large enough to reach the guard page quickly.
#[allow(unconditional_recursion)]
fn recurse(depth: u64) -> u64 {
    let frame = core::hint::black_box([depth; 64]);
    recurse(depth + 1) + frame[depth as usize % 64]
}
