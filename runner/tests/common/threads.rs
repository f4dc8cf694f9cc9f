//! The host threads of a VM and their scheduling policies, for the `--realtime` tests
//! (`rt.rs`, `monitor_smp.rs`), which include it with `#[path = "common/threads.rs"]`.

use std::time::{Duration, Instant};

/// `policy` of SCHED_FIFO in /proc's `stat`.
pub const SCHED_FIFO: u32 = 1;

/// The threads of process `pid`: name, scheduling policy (1: SCHED_FIFO) and real-time
/// priority, from /proc (fields 41 and 40 of `stat`, after the name in parentheses).
pub fn thread_policies(pid: u32) -> Vec<(String, u32, u32)> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|task| {
            let comm = std::fs::read_to_string(task.path().join("comm")).ok()?;
            let stat = std::fs::read_to_string(task.path().join("stat")).ok()?;
            let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
            let number = |field: usize| fields.get(field - 3)?.parse().ok();
            Some((comm.trim_end().to_owned(), number(41)?, number(40)?))
        })
        .collect()
}

/// Polls `threads` every 10 ms until `done` holds for what it returns, or 20 s pass.
pub fn watch(
    threads: impl Fn() -> Vec<(String, u32, u32)>,
    done: impl Fn(&[(String, u32, u32)]) -> bool,
) -> Vec<(String, u32, u32)> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let seen = threads();
        if done(&seen) || Instant::now() > deadline {
            return seen;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
