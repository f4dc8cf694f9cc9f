//! Three periodic real-time tasks under EDF, checked for schedulability at compile time,
//! then a report of each task's release jitter, response time and deadline misses.
//!
//! `cargo run -p rt-periodic -- --seconds 10` (default 3). The figures leave out a warm-up
//! (`--warmup-ms`, default 200): the first jobs run while QEMU's binary translator first
//! meets the code and while the timer's advance adapts to the VMM's interrupt latency.
//! `--load 0` makes the jobs of `telemetry` and `logger` return at once (default 100, in
//! percent of their work), to see the 1 kHz task nearly alone.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU32, Ordering};
use unikernel::clock::Short;
use unikernel::prelude::*;

/// The share of their work the `telemetry` and `logger` jobs do, in percent.
static LOAD: AtomicU32 = AtomicU32::new(100);

#[unikernel(
    console,
    heap = "64 KiB",
    args,
    sched = edf,
    task(control, period = "1 ms", wcet = "100 us"),
    task(telemetry, period = "10 ms", wcet = "1 ms"),
    task(logger, period = "100 ms", deadline = "50 ms", wcet = "5 ms"),
)]
fn main(args: Args, clock: Clock, sched: Sched) -> ExitCode {
    let number = |name: &str, default: u64| {
        args.value_of(name)
            .and_then(|value| value.parse().ok())
            .unwrap_or(default)
    };
    let seconds = number("seconds", 3);
    let warmup = Duration::from_millis(number("warmup-ms", 200));
    LOAD.store(number("load", 100) as u32, Ordering::Relaxed);
    println!(
        "rt-periodic: {:?} policy, {} tasks, timer: {}, TSC {} MHz from {}",
        sched.policy(),
        sched.task_stats().count(),
        clock.event_timer(),
        clock.tsc_hz() / 1_000_000,
        clock.frequency_source(),
    );
    sched.run_for(warmup);
    sched.reset_stats();
    clock.reset_timer_stats();
    println!("running for {seconds} s after a {warmup:?} warm-up");
    sched.run_for(Duration::from_secs(seconds));

    println!("{}", sched.report());
    let timer = clock.timer_stats();
    println!(
        "timer interrupt latency (raw, before the advance): min {} p50 {} p99 {} max {} over {} interrupts; advance now {}",
        Short(timer.latency.min),
        Short(timer.latency.p50),
        Short(timer.latency.p99),
        Short(timer.latency.max),
        timer.latency.count,
        Short(timer.advance),
    );
    println!(
        "timer lateness (deadline to alarm handler): p50 {} p99 {} max {}; re-armed {}",
        Short(timer.lateness.p50),
        Short(timer.lateness.p99),
        Short(timer.lateness.max),
        timer.rearmed
    );
    let stats = sched.stats();
    let busy = stats.elapsed.saturating_sub(stats.idle);
    println!(
        "context switches {}, preemptions {}, CPU busy {}.{}%",
        stats.switches,
        stats.preemptions,
        busy.as_nanos() * 100 / stats.elapsed.as_nanos().max(1),
        busy.as_nanos() * 1000 / stats.elapsed.as_nanos().max(1) % 10,
    );
    let misses: u64 = sched.task_stats().map(|task| task.misses).sum();
    println!("deadline misses: {misses}");
    ExitCode::SUCCESS
}

/// Busy for `duration`: a stand-in for real work.
fn work(duration: Duration) {
    let end = Instant::now() + duration;
    while Instant::now() < end {
        core::hint::spin_loop();
    }
}

/// The 1 kHz control loop.
fn control() {
    work(Duration::from_micros(20));
}

fn telemetry() {
    work(Duration::from_micros(
        3 * u64::from(LOAD.load(Ordering::Relaxed)),
    ));
}

fn logger() {
    work(Duration::from_micros(
        20 * u64::from(LOAD.load(Ordering::Relaxed)),
    ));
}
