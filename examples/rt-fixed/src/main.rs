//! Preemptive fixed priorities: an urgent thread that sleeps preempts a busy one the
//! moment it wakes; two busy threads of equal priority share the CPU in time slices; and
//! priority inheritance keeps a middle-priority thread from delaying an urgent one that
//! waits for a lock held by a background thread.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use unikernel::clock::Short;
use unikernel::prelude::*;
use unikernel::sched::{self, Mutex};

static STOP: AtomicBool = AtomicBool::new(false);
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
    let worst = director(move || {
        let urgent = sched::Builder::new()
            .name("urgent")
            .priority(10)
            .spawn(|| {
                let mut worst = Duration::ZERO;
                let mut next = Instant::now();
                for _ in 0..20 {
                    next += Duration::from_millis(10);
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
                while !STOP.load(Ordering::Relaxed) {
                    core::hint::spin_loop();
                }
            })
            .unwrap();
        let worst = urgent.join();
        busy.join();
        worst
    });
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
    // runs at `high`'s priority until it unlocks, and `high` gets the lock at about 20 ms.
    let start = clock.now();
    let got_lock = director(move || {
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
                start.elapsed()
            });
        let middle = sched::Builder::new()
            .name("middle")
            .priority(100)
            .spawn(move || {
                sched::sleep_until(start + Duration::from_millis(6));
                work(Duration::from_millis(100));
            });
        let got_lock = high.unwrap().join();
        low.unwrap().join();
        middle.unwrap().join();
        got_lock
    });
    println!(
        "priority inheritance: high got the lock after {} (middle works 100 ms)",
        Short(got_lock)
    );
    println!("{:?}", sched.stats());
    ExitCode::SUCCESS
}
