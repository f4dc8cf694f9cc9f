//! What the smp-tasks examples share: every job notes the CPU it runs on, and [`run`]
//! compares that with the CPU the attribute placed its task on, and checks that no
//! deadline was missed. Prints one line per task and a verdict the boot tests read
//! (runner/tests/smp.rs).

use core::sync::atomic::{AtomicU64, Ordering};
use unikernel::prelude::*;
use unikernel::sched::this_cpu;

const MOST_TASKS: usize = 8;

/// Per task (by the index its job passes), the set of CPUs its jobs ran on.
static RAN_ON: [AtomicU64; MOST_TASKS] = [const { AtomicU64::new(0) }; MOST_TASKS];
/// Per task, the jobs that started.
static STARTED: [AtomicU64; MOST_TASKS] = [const { AtomicU64::new(0) }; MOST_TASKS];

/// One job of task `task`: notes its CPU, then works for `work` (well below its `wcet`,
/// so that a miss would be the scheduler's, not the job's).
pub fn job(task: usize, work: Duration) {
    RAN_ON[task].fetch_or(1 << this_cpu(), Ordering::Relaxed);
    STARTED[task].fetch_add(1, Ordering::Relaxed);
    let start = Instant::now();
    while start.elapsed() < work {
        core::hint::spin_loop();
    }
}

/// Lets the tasks run for `seconds`, then checks each: its jobs ran on its CPU only
/// (`names[i]` is the task whose job passes `i`), and none missed its deadline.
pub fn run(sched: Sched, placement: &str, names: &[&str], seconds: u64) -> ExitCode {
    println!("cpus: {}, placement: {placement}", sched.cpus());
    sched.run_for(Duration::from_secs(seconds));
    let mut failed = 0;
    for task in sched.task_stats() {
        let Some(index) = names.iter().position(|name| *name == task.name) else {
            println!("FAIL: task `{}` has no index", task.name);
            return ExitCode::FAILURE;
        };
        let ran_on = RAN_ON[index].load(Ordering::Relaxed);
        let started = STARTED[index].load(Ordering::Relaxed);
        let cpus: alloc::vec::Vec<u32> = (0..64).filter(|cpu| ran_on & (1 << cpu) != 0).collect();
        println!(
            "task {} on CPU {}: {} jobs ran on CPUs {:?}, {} misses, release jitter p99 {} us max {} us",
            task.name,
            task.cpu,
            started,
            cpus,
            task.misses,
            task.jitter.p99.as_micros(),
            task.jitter.max.as_micros(),
        );
        if ran_on != 1 << task.cpu || started == 0 || task.jobs == 0 || task.misses != 0 {
            failed += 1;
        }
    }
    print!("{}", sched.report());
    if failed > 0 {
        println!("FAIL: {failed} tasks ran elsewhere, not at all, or missed deadlines");
        return ExitCode::FAILURE;
    }
    println!("tasks: every job on its task's CPU, no deadline missed");
    ExitCode::SUCCESS
}
