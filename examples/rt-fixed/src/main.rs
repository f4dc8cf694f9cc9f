//! Preemptive fixed priorities: an urgent thread that sleeps preempts a busy one the
//! moment it wakes; two busy threads of equal priority share the CPU in time slices; and
//! priority inheritance keeps a middle-priority thread from delaying an urgent one that
//! waits for a lock held by a background thread.
//!
//! Each part prints what happened in which order (checked by runner/tests/rt.rs) and then
//! how long it took (a figure for benches/rt.sh, not a check: a busy host stretches it).
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use unikernel::clock::Short;
use unikernel::prelude::*;
use unikernel::sched::{self, Mutex};

static STOP: AtomicBool = AtomicBool::new(false);
/// Set by the busy thread once it spins.
static BUSY_SPINNING: AtomicBool = AtomicBool::new(false);
/// Set by `middle` once it has woken and runs.
static MIDDLE_RAN: AtomicBool = AtomicBool::new(false);
/// How often the urgent thread wakes while the busy one spins.
const WAKES: u32 = 20;
static SPINS: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];
static LOCK: Mutex<()> = Mutex::new(());

/// Runs `f` in a thread of priority 1 and waits for it.
fn director<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    sched::Builder::new()
        .name("director")
        .priority(1)
        .spawn(f)
        .unwrap()
        .join()
}

/// Busy for `duration` of the calling thread's own CPU time.
fn work(duration: Duration) {
    let start = sched::cpu_time();
    while sched::cpu_time() - start < duration {
        core::hint::spin_loop();
    }
}

#[unikernel(console, heap = "1 MiB", sched = fixed)]
fn main(clock: Clock, sched: Sched) -> ExitCode {
    println!("policy: {:?}", sched.policy());

    // Main runs at the lowest priority, so a thread it spawns runs at once; each part is
    // therefore started by a director thread more urgent than the threads it starts.

    // 1. Preemption: a background thread never yields; an urgent one wakes every 10 ms.
    // Each wake takes the CPU from the busy thread; without preemption the first would
    // never come.
    let preemptions_before = sched.stats().preemptions;
    let worst = director(move || {
        let urgent = sched::Builder::new()
            .name("urgent")
            .priority(10)
            .spawn(|| {
                while !BUSY_SPINNING.load(Ordering::Relaxed) {
                    sched::sleep(Duration::from_millis(1));
                }
                let mut worst = Duration::ZERO;
                for _ in 0..WAKES {
                    // From now, not from the last deadline: a host stall that makes one wake
                    // late must not turn the next sleep into none (every wake preempts).
                    let next = Instant::now() + Duration::from_millis(10);
                    sched::sleep_until(next);
                    worst = worst.max(Instant::now() - next);
                }
                STOP.store(true, Ordering::Relaxed);
                worst
            })
            .unwrap();
        let busy = sched::Builder::new()
            .name("busy")
            .priority(200)
            .spawn(|| {
                BUSY_SPINNING.store(true, Ordering::Relaxed);
                while !STOP.load(Ordering::Relaxed) {
                    core::hint::spin_loop();
                }
            })
            .unwrap();
        let worst = urgent.join();
        busy.join();
        worst
    });
    let preemptions = sched.stats().preemptions - preemptions_before;
    println!(
        "preemption: the urgent thread woke {WAKES} times while the busy thread spun \
         ({preemptions} preemptions)"
    );
    println!(
        "preemption: the urgent thread woke at most {} late",
        Short(worst)
    );

    // 2. Time slices: two busy threads of equal priority both make progress.
    STOP.store(false, Ordering::Relaxed);
    director(|| {
        let spinners: [_; 2] = core::array::from_fn(|i| {
            sched::Builder::new()
                .priority(100)
                .spawn(move || {
                    while !STOP.load(Ordering::Relaxed) {
                        SPINS[i].fetch_add(1, Ordering::Relaxed);
                    }
                })
                .unwrap()
        });
        sched::sleep(Duration::from_millis(100));
        STOP.store(true, Ordering::Relaxed);
        for spinner in spinners {
            spinner.join();
        }
    });
    let [a, b] = [0, 1].map(|i| SPINS[i].load(Ordering::Relaxed));
    println!(
        "time slices: both equal threads ran: {} (spins {a} and {b})",
        a > 0 && b > 0
    );

    // 3. Priority inheritance: `low` holds the lock for 20 ms of work; `high` wants it at
    // 5 ms; `middle` becomes ready at 6 ms and would run 100 ms. With inheritance `low`
    // runs at `high`'s priority until it unlocks, and `high` gets the lock (at about
    // 20 ms) before `middle` runs at all; without, `middle` would run first, and `high`
    // would wait about 120 ms. The order holds however late the timers fire.
    let start = clock.now();
    let (got_lock, before_middle) = director(move || {
        let low = sched::Builder::new().name("low").priority(200).spawn(|| {
            let _guard = LOCK.lock();
            work(Duration::from_millis(20));
        });
        let high = sched::Builder::new()
            .name("high")
            .priority(10)
            .spawn(move || {
                sched::sleep_until(start + Duration::from_millis(5));
                let _guard = LOCK.lock();
                (start.elapsed(), !MIDDLE_RAN.load(Ordering::Relaxed))
            });
        let middle = sched::Builder::new()
            .name("middle")
            .priority(100)
            .spawn(move || {
                sched::sleep_until(start + Duration::from_millis(6));
                MIDDLE_RAN.store(true, Ordering::Relaxed);
                work(Duration::from_millis(100));
            });
        let got_lock = high.unwrap().join();
        low.unwrap().join();
        middle.unwrap().join();
        got_lock
    });
    println!("priority inheritance: high got the lock before middle ran: {before_middle}");
    println!(
        "priority inheritance: high got the lock after {} (middle works 100 ms)",
        Short(got_lock)
    );
    println!("{:?}", sched.stats());
    ExitCode::SUCCESS
}
