//! Misbehaves toward the host tool on request, for runner/tests/hostile.rs:
//!
//! - `flood <MiB>`: prints that many MiB as fast as it can, in 64 KiB lines, then exits 0;
//! - `halt`: prints `halting`, then halts with interrupts masked, for good;
//! - `reset`: prints `resetting`, then triple-faults (the CPU's reset);
//! - nothing: prints 64 MiB, then exits 0 (an idle halt under `unikernel.idle`, which is
//!   how `cargo uk density` boots it).
#![no_std]
#![no_main]

use unikernel::prelude::*;
use x86_64::VirtAddr;
use x86_64::structures::DescriptorTablePointer;

/// One line of output: 64 KiB of `x` ending in a newline.
static LINE: [u8; 64 * 1024] = {
    let mut line = [b'x'; 64 * 1024];
    line[64 * 1024 - 1] = b'\n';
    line
};

#[unikernel(console, heap = "64 KiB", args)]
fn main(args: Args) -> ExitCode {
    match args.first().map(|arg| arg.as_str()) {
        what @ (Some("flood") | None) => {
            let mib: u32 = match what {
                None => 64,
                Some(_) => args.get(1).and_then(|n| n.parse().ok()).unwrap_or(1),
            };
            let line = core::str::from_utf8(&LINE).unwrap_or("x\n");
            for _ in 0..mib * 16 {
                print!("{line}");
            }
            println!("flood: done");
        }
        Some("halt") => {
            println!("halting");
            loop {
                x86_64::instructions::interrupts::disable();
                x86_64::instructions::hlt();
            }
        }
        Some("reset") => {
            println!("resetting");
            // An empty IDT: the breakpoint cannot be delivered, nor the #GP and the double
            // fault that follow, so the CPU shuts down (a triple fault), which QEMU with
            // -no-reboot and the monitor report as a reset.
            let empty = DescriptorTablePointer {
                limit: 0,
                base: VirtAddr::zero(),
            };
            // SAFETY: none needed beyond the intent: this makes every exception fatal,
            // which is what this mode is for.
            unsafe { x86_64::instructions::tables::lidt(&empty) };
            x86_64::instructions::interrupts::int3();
            loop {
                x86_64::instructions::hlt();
            }
        }
        _ => {
            println!("usage: flood <MiB> | halt | reset");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
