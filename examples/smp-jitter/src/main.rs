//! The release jitter of a 1 kHz task while the other CPU is busy, for benches/rt.sh:
//! `tick` runs on CPU 0 and `tick1` on CPU 1; `--busy 1` (the default) spins a thread on
//! CPU 1 and reports `tick`, `--busy 0` spins one on CPU 0 and reports `tick1`;
//! `--seconds S` (default 10). The spinning thread has `main`'s priority, below every
//! task. A separate image from examples/smp so that the tasks do not slow that one's
//! boot tests (under a software-emulated KVM a 1 kHz task alone takes most of the CPU).
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use unikernel::prelude::*;
use unikernel::sched::Builder;

static TICKS: [AtomicU64; 2] = [const { AtomicU64::new(0) }; 2];
static STOP: AtomicBool = AtomicBool::new(false);

/// The 1 kHz task on CPU 0.
fn tick() {
    TICKS[0].fetch_add(1, Ordering::Relaxed);
}

/// The 1 kHz task on CPU 1.
fn tick1() {
    TICKS[1].fetch_add(1, Ordering::Relaxed);
}

fn jitter(sched: Sched, busy_cpu: usize, seconds: u64) -> ExitCode {
    let measured_cpu = 1 - busy_cpu;
    let busy = (sched.cpus() > 1).then(|| {
        Builder::new()
            .name("busy")
            .cpu(busy_cpu)
            // `main`'s: slices with it, so that `main` wakes on time to measure.
            .priority(255)
            .spawn(|| {
                let mut spins = 0u64;
                while !STOP.load(Ordering::Relaxed) {
                    spins = core::hint::black_box(spins + 1);
                }
                spins
            })
            .expect("the busy CPU runs")
    });
    sched.run_for(Duration::from_millis(200));
    sched.reset_stats();
    let window = Instant::now();
    sched.run_for(Duration::from_secs(seconds));
    let name = ["tick", "tick1"][measured_cpu];
    let task = sched.task(name).expect("the task");
    let window = window.elapsed();
    STOP.store(true, Ordering::Relaxed);
    println!(
        "jitter: {name} on CPU {}, CPU {busy_cpu} {}: {} jobs, release jitter p50 {} ns p99 {} ns max {} ns, misses {}, in {} ms",
        task.cpu,
        if busy.is_some() { "busy" } else { "absent" },
        task.jobs,
        task.jitter.p50.as_nanos(),
        task.jitter.p99.as_nanos(),
        task.jitter.max.as_nanos(),
        task.misses,
        window.as_millis()
    );
    if let Some(busy) = busy {
        busy.join();
    }
    ExitCode::SUCCESS
}

#[unikernel(
    console,
    heap = "64 KiB",
    args,
    sched = edf(cpus = 2),
    task(tick, period = "1 ms", wcet = "50 us", cpu = 0),
    task(tick1, period = "1 ms", wcet = "50 us", cpu = 1)
)]
fn main(args: Args, sched: Sched) -> ExitCode {
    let seconds = args
        .value_of("seconds")
        .and_then(|value| value.parse().ok())
        .unwrap_or(10);
    let busy_cpu = match args.value_of("busy") {
        Some("0") => 0,
        _ => 1,
    };
    jitter(sched, busy_cpu, seconds)
}
