//! Cooperative threads: two threads interleave at their yields, a sleep is measured, a
//! producer and a consumer share a channel, four threads share a mutex, results come back
//! through `join`, and a yield ping-pong measures the cost of a context switch.
//!
//! `--sleeps N` sleeps 50 ms N times (default 5), printing a line before and after each,
//! so that the host can time them against its own clock (runner/tests/rt.rs,
//! benches/sleep.sh). `--quick`
//! makes the mutex and context-switch parts short (for KVM emulated in software).
//! `--overflow` first runs a thread that overflows its 16 KiB stack: the guard page below
//! it turns that into a report of a stack overflow.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use unikernel::prelude::*;
use unikernel::sched::{self, Channel, Mutex};

static ORDER: Mutex<Vec<String>> = Mutex::new(Vec::new());
static NUMBERS: Channel<u32, 4> = Channel::new();
static COUNTER: Mutex<u64> = Mutex::new(0);

/// Uses 512 bytes of stack per level.
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let frame = [depth; 64];
    core::hint::black_box(&frame);
    if depth == 0 {
        0
    } else {
        recurse(depth - 1) + frame[1]
    }
}

#[unikernel(console, heap = "1 MiB", args, sched = coop)]
fn main(args: Args, clock: Clock, sched: Sched, irq: Irq) -> ExitCode {
    println!(
        "policy: {:?}; timer: {}, TSC {} MHz from {}; interrupts: {}",
        sched.policy(),
        clock.event_timer(),
        clock.tsc_hz() / 1_000_000,
        clock.frequency_source(),
        irq.controller(),
    );
    match clock.wall() {
        Some(now) => println!("wall clock: {now}"),
        None => println!("wall clock: unknown (no kvmclock, no RTC)"),
    }
    let quick = args.iter().any(|arg| arg == "--quick");
    if args.iter().any(|arg| arg == "--overflow") {
        let deep = sched
            .thread()
            .name("deep")
            .stack_size(16 * 1024)
            .spawn(|| recurse(1_000_000))
            .expect("a thread");
        println!("recursed: {}", deep.join());
    }

    // Interleaving: neither thread runs before main blocks in `join`; then each runs to its
    // next yield.
    let workers: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|name| {
            sched.spawn(move || {
                for i in 0..3 {
                    ORDER.lock().push(alloc::format!("{name}{i}"));
                    sched::yield_now();
                }
                name.len()
            })
        })
        .collect();
    let lengths: usize = workers.into_iter().map(|worker| worker.join()).sum();
    println!("interleave: {} (joined {lengths})", ORDER.lock().join(" "));

    // Sleep, as the guest measures it.
    let sleeps: u32 = args
        .value_of("sleeps")
        .and_then(|n| n.parse().ok())
        .unwrap_or(5);
    for i in 0..sleeps {
        println!("sleep {i}: begin");
        let start = clock.now();
        sched.sleep(Duration::from_millis(50));
        println!("sleep {i}: end after {} us", start.elapsed().as_micros());
    }

    // A producer and a consumer on a channel of 4: the producer blocks when it is full.
    let producer = sched.spawn(|| {
        for n in 1..=100 {
            NUMBERS.send(n);
        }
    });
    let sum: u32 = (0..100).map(|_| NUMBERS.recv()).sum();
    producer.join();
    println!("channel: sum {sum}");

    // Four threads add to one counter under a mutex, yielding while they hold it.
    let adds = if quick { 10 } else { 1000 };
    let adders: Vec<_> = (0..4)
        .map(|_| {
            sched.spawn(move || {
                for _ in 0..adds {
                    let mut counter = COUNTER.lock();
                    let value = *counter;
                    sched::yield_now();
                    *counter = value + 1;
                }
            })
        })
        .collect();
    adders.into_iter().for_each(|adder| adder.join());
    println!("mutex: counter {}", *COUNTER.lock());

    // Context switch cost: two threads yield to each other.
    let rounds = if quick { 100 } else { 20_000 };
    let start = clock.now();
    let partner = sched.spawn(move || {
        for _ in 0..rounds {
            sched::yield_now();
        }
    });
    for _ in 0..rounds {
        sched::yield_now();
    }
    partner.join();
    let per_switch = start.elapsed() / (2 * rounds);
    println!(
        "context switch (yield to yield): {} ns",
        per_switch.as_nanos()
    );
    println!("{:?}", sched.stats());
    ExitCode::SUCCESS
}
