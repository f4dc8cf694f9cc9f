//! Interrupt handlers: one registered for a local vector runs for each self-IPI raised on
//! it; an interrupt on a vector with no handler is reported and counted, not ignored.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU32, Ordering};
use unikernel::prelude::*;

static RAN: AtomicU32 = AtomicU32::new(0);

/// Waits (a bounded while) for `done`: a self-IPI may arrive some instructions later
/// (under KVM it is delivered asynchronously).
fn wait_for(done: impl Fn() -> bool) {
    for _ in 0..10_000_000 {
        if done() {
            return;
        }
        core::hint::spin_loop();
    }
}

fn handler() {
    RAN.fetch_add(1, Ordering::Relaxed);
}

#[unikernel(console, irq)]
fn main(irq: Irq) -> ExitCode {
    println!("controller: {}", irq.controller());
    let vector = match irq.register_local(handler) {
        Ok(vector) => vector,
        Err(error) => {
            println!("no local vector: {error}");
            return ExitCode::FAILURE;
        }
    };
    for n in 1..=3 {
        irq.raise(vector).expect("a local APIC");
        wait_for(|| RAN.load(Ordering::Relaxed) == n);
    }
    println!(
        "handler on vector {vector:#04x} ran {} times (counted {})",
        RAN.load(Ordering::Relaxed),
        irq.count(vector)
    );
    // Nothing is registered on 0x99.
    for n in 1..=2 {
        irq.raise(0x99).expect("a local APIC");
        wait_for(|| irq.stats().unexpected == n);
    }
    let stats = irq.stats();
    println!(
        "unexpected interrupts: {}, spurious: {}, APIC errors: {}",
        stats.unexpected, stats.spurious, stats.apic_errors
    );
    println!("raise(3): {:?}", irq.raise(3));
    ExitCode::SUCCESS
}
