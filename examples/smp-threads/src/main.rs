//! Threads on two CPUs under preemptive fixed priorities: threads pinned to CPU 1 never
//! run elsewhere (and their children stay there); a counter under the scheduler's
//! `Mutex` hammered by threads on both CPUs ends exact; a `Channel` between threads on
//! different CPUs delivers everything in order, both ways; and priority inheritance
//! works across CPUs: a holder on CPU 1 runs at the rank of a waiter on CPU 0, ahead of a
//! busy thread of middle priority there. Each part checks itself and prints one line the
//! boot tests read (runner/tests/smp.rs); a wrong result exits non-zero.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use unikernel::prelude::*;
use unikernel::sched::{Builder, Channel, Mutex, SpawnError, cpu_time, this_cpu, yield_now};

const INCREMENTS: u64 = 20_000;
const MESSAGES: u32 = 5_000;

static COUNTER: Mutex<u64> = Mutex::new(0);
static TO_CPU_0: Channel<u32, 8> = Channel::new();
static TO_CPU_1: Channel<u32, 8> = Channel::new();

/// Threads on CPU 1, and threads they spawn without a CPU, run on CPU 1 only.
fn pinned(sched: Sched) -> Result<(), &'static str> {
    let threads: Vec<_> = (0..4)
        .map(|_| {
            Builder::new()
                .cpu(1)
                .spawn(move || {
                    let mut elsewhere = 0;
                    for round in 0..50 {
                        elsewhere += usize::from(this_cpu() != 1);
                        if round % 2 == 0 {
                            yield_now();
                        } else {
                            sched.sleep(Duration::from_micros(200));
                        }
                    }
                    // The placement rule: a thread spawned without a CPU runs on its
                    // spawner's.
                    let child = Builder::new().spawn(this_cpu).expect("a thread slot");
                    elsewhere += usize::from(child.join() != 1);
                    elsewhere
                })
                .expect("CPU 1 runs")
        })
        .collect();
    let elsewhere: usize = threads.into_iter().map(|thread| thread.join()).sum();
    if elsewhere != 0 {
        return Err("a thread pinned to CPU 1 ran elsewhere");
    }
    // `spawn_on(0, ..)` from CPU 1 runs on CPU 0, whatever the spawner's CPU.
    let from_cpu_1 = Builder::new()
        .cpu(1)
        .spawn(move || sched.spawn_on(0, this_cpu).expect("CPU 0 runs").join())
        .expect("CPU 1 runs");
    if from_cpu_1.join() != 0 {
        return Err("`spawn_on(0, ..)` from CPU 1 ran elsewhere than CPU 0");
    }
    match Builder::new().cpu(sched.cpus()).spawn(|| ()) {
        Err(SpawnError::NoSuchCpu { .. }) => Ok(()),
        _ => Err("a thread was spawned onto a CPU that does not run"),
    }
}

/// Two threads on each CPU add 1 INCREMENTS times each under the blocking `Mutex`.
fn contended_mutex() -> Result<u64, &'static str> {
    let adders: Vec<_> = (0..4)
        .map(|i| {
            Builder::new()
                .cpu(i % 2)
                .spawn(|| {
                    for _ in 0..INCREMENTS {
                        *COUNTER.lock() += 1;
                    }
                })
                .expect("a thread slot")
        })
        .collect();
    adders.into_iter().for_each(|adder| adder.join());
    let counted = *COUNTER.lock();
    if counted != 4 * INCREMENTS {
        return Err("increments were lost");
    }
    Ok(counted)
}

/// Sends 0..MESSAGES from `from`'s thread to `to`'s over `channel` (8 places: the sender
/// blocks often); the receiver checks the order.
fn channel_between(channel: &'static Channel<u32, 8>, from: usize, to: usize) -> bool {
    let receiver = Builder::new()
        .cpu(to)
        .spawn(move || (0..MESSAGES).all(|expected| channel.recv() == expected))
        .expect("a thread slot");
    let sender = Builder::new()
        .cpu(from)
        .spawn(move || (0..MESSAGES).for_each(|i| channel.send(i)))
        .expect("a thread slot");
    sender.join();
    receiver.join()
}

static SHARED: Mutex<()> = Mutex::new(());
static LOCKED: AtomicBool = AtomicBool::new(false);
/// The order of the two events the inheritance test compares.
static EVENTS: AtomicU32 = AtomicU32::new(0);
static URGENT_GOT_LOCK: AtomicU32 = AtomicU32::new(0);
static MIDDLE_DONE: AtomicU32 = AtomicU32::new(0);

/// On CPU 1, `low` (priority 200) holds the lock and needs 20 ms of CPU time more, while
/// `middle` (100) spins for 300 ms; on CPU 0, `urgent` (10) wants the lock. With
/// inheritance across CPUs, `low` runs at `urgent`'s rank ahead of `middle`, so `urgent`
/// gets the lock before `middle` is done; without it, only after.
fn inheritance(sched: Sched) -> Result<(), &'static str> {
    let low = Builder::new()
        .name("low")
        .cpu(1)
        .priority(200)
        .spawn(|| {
            let _guard = SHARED.lock();
            LOCKED.store(true, Ordering::Release);
            let until = cpu_time() + Duration::from_millis(20);
            while cpu_time() < until {
                core::hint::spin_loop();
            }
        })
        .expect("a thread slot");
    while !LOCKED.load(Ordering::Acquire) {
        sched.sleep(Duration::from_millis(1));
    }
    let middle = Builder::new()
        .name("middle")
        .cpu(1)
        .priority(100)
        .spawn(|| {
            let start = Instant::now();
            while start.elapsed() < Duration::from_millis(300) {
                core::hint::spin_loop();
            }
            MIDDLE_DONE.store(EVENTS.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
        })
        .expect("a thread slot");
    sched.sleep(Duration::from_millis(10));
    let urgent = Builder::new()
        .name("urgent")
        .cpu(0)
        .priority(10)
        .spawn(|| {
            drop(SHARED.lock());
            URGENT_GOT_LOCK.store(EVENTS.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
        })
        .expect("a thread slot");
    urgent.join();
    low.join();
    middle.join();
    if URGENT_GOT_LOCK.load(Ordering::SeqCst) < MIDDLE_DONE.load(Ordering::SeqCst) {
        Ok(())
    } else {
        Err("the waiter on CPU 0 got the lock only after the middle thread on CPU 1 was done")
    }
}

#[unikernel(console, heap = "1 MiB", sched = fixed(cpus = 2))]
fn main(sched: Sched) -> ExitCode {
    println!("cpus: {}", sched.cpus());
    if sched.cpus() < 2 {
        println!("FAIL: these checks need 2 CPUs");
        return ExitCode::FAILURE;
    }
    if let Err(error) = pinned(sched) {
        println!("FAIL: {error}");
        return ExitCode::FAILURE;
    }
    println!("pinned: 4 threads on CPU 1 and their children ran there only");
    match contended_mutex() {
        Ok(counted) => println!("mutex: {counted} increments from threads on 2 CPUs, none lost"),
        Err(error) => {
            println!("FAIL: {error}: {}", *COUNTER.lock());
            return ExitCode::FAILURE;
        }
    }
    if !channel_between(&TO_CPU_0, 1, 0) || !channel_between(&TO_CPU_1, 0, 1) {
        println!("FAIL: a channel between CPUs lost or reordered a message");
        return ExitCode::FAILURE;
    }
    println!("channel: {MESSAGES} messages each way between CPUs 0 and 1, in order");
    if let Err(error) = inheritance(sched) {
        println!("FAIL: {error}");
        return ExitCode::FAILURE;
    }
    println!("inheritance: the holder on CPU 1 ran at the rank of the waiter on CPU 0");
    ExitCode::SUCCESS
}
