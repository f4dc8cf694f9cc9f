//! The release jitter of a 1 kHz task on CPU 0 while CPU 1 is busy (a job that spins),
//! for benches/rt.sh: `--seconds S` (default 10). A separate image from examples/smp so
//! that the task does not slow that one's boot tests (under a software-emulated KVM a
//! 1 kHz task alone takes most of the CPU).
#![no_std]
#![no_main]

use unikernel::prelude::*;

/// The 1 kHz task: its release jitter is what `--jitter` measures.
fn tick() {
    TICKS.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
}

static TICKS: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

fn jitter(sched: Sched, seconds: u64) -> ExitCode {
    let busy_for = Duration::from_secs(seconds + 1);
    let busy = (sched.cpus() > 1).then(|| {
        sched
            .spawn_on(1, move || {
                let start = Instant::now();
                let mut spins = 0u64;
                while start.elapsed() < busy_for {
                    spins = core::hint::black_box(spins + 1);
                }
                spins
            })
            .expect("CPU 1 runs")
    });
    sched.run_for(Duration::from_millis(200));
    sched.reset_stats();
    sched.run_for(Duration::from_secs(seconds));
    let tick = sched.task("tick").expect("the task");
    println!(
        "jitter: tick on CPU 0, CPU 1 {}: {} jobs, release jitter p50 {} ns p99 {} ns max {} ns, misses {}",
        if busy.is_some() { "busy" } else { "absent" },
        tick.jobs,
        tick.jitter.p50.as_nanos(),
        tick.jitter.p99.as_nanos(),
        tick.jitter.max.as_nanos(),
        tick.misses
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
    task(tick, period = "1 ms", wcet = "50 us")
)]
fn main(args: Args, sched: Sched) -> ExitCode {
    let seconds = args
        .value_of("seconds")
        .and_then(|value| value.parse().ok())
        .unwrap_or(10);
    jitter(sched, seconds)
}
