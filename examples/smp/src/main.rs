//! Several CPUs: a parallel sum with one part per CPU, jobs pinned to each CPU that record
//! where they ran, and every CPU incrementing one counter under the scheduler's `Mutex`.
//! Each part checks its result and prints one line the boot tests read
//! (runner/tests/smp.rs). The VM may have fewer CPUs than declared: the app then runs on
//! those it has (`sched.cpus()`).
//!
//! `--bench N` instead sums 1..=N (default 200 million), once split over every CPU and
//! once on CPU 0 alone, and prints both times and the speed-up (benches/rt.sh).
//!
//! `--overflow` instead overflows the stack of a job on the last CPU: the guard page below
//! it turns that into a fault report that names the CPU.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;
use unikernel::prelude::*;
use unikernel::sched::Mutex;

const CPUS: usize = 4;
/// Numbers 1..=TERMS are summed.
const TERMS: u64 = 4_000_000;
const INCREMENTS: u64 = 20_000;

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

/// Sums `from..=to` one number at a time (`black_box` keeps the compiler from using the
/// closed form): work whose time grows with its size.
fn sum(from: u64, to: u64) -> u64 {
    (from..=to).fold(0, |total, i| total + core::hint::black_box(i))
}

/// Sums 1..=terms split in `parts` parts, part k on CPU k % cpus. Returns the total.
fn parallel_sum(sched: Sched, terms: u64, parts: usize, on_cpus: usize) -> u64 {
    let chunk = terms / parts as u64;
    let jobs: Vec<_> = (0..parts)
        .map(|part| {
            let from = part as u64 * chunk + 1;
            let to = if part + 1 == parts {
                terms
            } else {
                from + chunk - 1
            };
            sched
                .spawn_on(part % on_cpus, move || sum(from, to))
                .expect("a running CPU")
        })
        .collect();
    jobs.into_iter().map(|job| job.join()).sum()
}

fn bench(sched: Sched, terms: u64) -> ExitCode {
    let cpus = sched.cpus();
    let start = Instant::now();
    let spread = parallel_sum(sched, terms, cpus, cpus);
    let on_all = start.elapsed();
    let start = Instant::now();
    let alone = parallel_sum(sched, terms, cpus, 1);
    let on_one = start.elapsed();
    if spread != terms * (terms + 1) / 2 || alone != spread {
        println!("FAIL: sums {spread} and {alone}");
        return ExitCode::FAILURE;
    }
    println!(
        "compute: sum of 1..={terms}: {} us on 1 CPU, {} us on {cpus} CPUs: speed-up {:.2}",
        on_one.as_micros(),
        on_all.as_micros(),
        on_one.as_micros() as f64 / on_all.as_micros().max(1) as f64
    );
    ExitCode::SUCCESS
}

#[unikernel(console, heap = "1 MiB", args, sched(cpus = 4))]
fn main(args: Args, sched: Sched) -> ExitCode {
    let cpus = sched.cpus();
    println!(
        "cpus: {cpus} of {CPUS} declared, main on CPU {}",
        sched.this_cpu()
    );
    let words: Vec<_> = args.iter().collect();
    if let Some(at) = words.iter().position(|arg| *arg == "--bench") {
        let terms = words
            .get(at + 1)
            .and_then(|n| n.parse().ok())
            .unwrap_or(200_000_000);
        return bench(sched, terms);
    }
    if args.iter().any(|arg| arg == "--overflow") {
        let deep = sched
            .spawn_on(cpus - 1, || recurse(1_000_000))
            .expect("a running CPU");
        println!("recursed: {}", deep.join());
        return ExitCode::FAILURE;
    }
    if sched.spawn_on(cpus, || ()).is_ok() {
        println!("FAIL: CPU {cpus} accepted a job");
        return ExitCode::FAILURE;
    }

    // A parallel sum: CPU k sums its slice of 1..=TERMS and says where it ran.
    let chunk = TERMS / cpus as u64;
    let parts: Vec<_> = (0..cpus)
        .map(|cpu| {
            let from = cpu as u64 * chunk + 1;
            let to = if cpu + 1 == cpus {
                TERMS
            } else {
                from + chunk - 1
            };
            let me = sched;
            sched
                .spawn_on(cpu, move || ((from..=to).sum::<u64>(), me.this_cpu()))
                .expect("a running CPU")
        })
        .collect();
    let mut total = 0;
    for (cpu, part) in parts.into_iter().enumerate() {
        let (sum, ran_on) = part.join();
        if ran_on != cpu || sum == 0 {
            println!("FAIL: part {cpu} ran on CPU {ran_on} (sum {sum})");
            return ExitCode::FAILURE;
        }
        total += sum;
    }
    if total != TERMS * (TERMS + 1) / 2 {
        println!("FAIL: sum {total}");
        return ExitCode::FAILURE;
    }
    println!("sum: {total} from {cpus} CPUs, each part on its own CPU");

    // Pinned jobs never run elsewhere: 8 jobs per CPU each record their CPU.
    let pinned: Vec<_> = (0..cpus * 8)
        .map(|i| {
            let me = sched;
            (
                i % cpus,
                sched
                    .spawn_on(i % cpus, move || me.this_cpu())
                    .expect("a running CPU"),
            )
        })
        .collect();
    for (wanted, job) in pinned {
        let ran_on = job.join();
        if ran_on != wanted {
            println!("FAIL: a job pinned to CPU {wanted} ran on CPU {ran_on}");
            return ExitCode::FAILURE;
        }
    }
    println!("pinned: {} jobs, each on its CPU", cpus * 8);

    // Contention: every CPU adds 1 INCREMENTS times under the Mutex.
    let adders: Vec<_> = (0..cpus)
        .map(|cpu| {
            sched
                .spawn_on(cpu, || {
                    for _ in 0..INCREMENTS {
                        *COUNTER.lock() += 1;
                    }
                })
                .expect("a running CPU")
        })
        .collect();
    adders.into_iter().for_each(|adder| adder.join());
    let counted = *COUNTER.lock();
    if counted != cpus as u64 * INCREMENTS {
        println!(
            "FAIL: the counter is {counted}, not {}",
            cpus as u64 * INCREMENTS
        );
        return ExitCode::FAILURE;
    }
    println!("mutex: {counted} increments from {cpus} CPUs, none lost");
    ExitCode::SUCCESS
}
