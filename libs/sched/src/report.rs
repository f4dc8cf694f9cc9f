//! What the app can read about its real-time tasks, and the report table.

use core::fmt;
use unikernel_clock::Duration;
use unikernel_clock::histogram::{Short, Summary};

/// One task's figures since boot (or since `Sched::reset_stats`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskStats {
    pub name: &'static str,
    /// The CPU the task runs on.
    pub cpu: usize,
    pub period: Duration,
    pub deadline: Duration,
    pub wcet: Duration,
    /// The rate/deadline-monotonic priority the macro computed (0 = most urgent).
    pub priority: u32,
    /// Jobs finished.
    pub jobs: u64,
    /// Jobs that missed their deadline.
    pub misses: u64,
    /// The most jobs released and not finished at once (1 = never behind).
    pub max_backlog: u64,
    /// Release jitter: from a job's release time to its start.
    pub jitter: Summary,
    /// Response time: from a job's release time to its end.
    pub response: Summary,
    /// Execution time: the CPU time a job used, interrupt handlers that ran meanwhile
    /// included.
    pub execution: Summary,
    /// Jobs whose execution time exceeded the declared `wcet`.
    pub overruns: u64,
}

/// The report of every task: `println!("{}", sched.report())`.
pub struct Report<I>(pub(crate) I);

impl<I> fmt::Debug for Report<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Report")
    }
}

impl<I: Iterator<Item = TaskStats> + Clone> fmt::Display for Report<I> {
    /// One line per task: its period and declared worst case; jobs, deadline misses and
    /// jobs that ran longer than their worst case; release jitter (p50, p99, max);
    /// response time (min, p50, p99, max); execution time (p50, max).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<12} {:>8} {:>8} | {:>6} {:>6} {:>5} | {:>26} | {:>35} | {:>17}",
            "task",
            "period",
            "wcet",
            "jobs",
            "misses",
            "over",
            "release jitter",
            "response time",
            "execution"
        )?;
        writeln!(
            f,
            "{:<12} {:>8} {:>8} | {:>6} {:>6} {:>5} | {:>8} {:>8} {:>8} | {:>8} {:>8} {:>8} {:>8} | {:>8} {:>8}",
            "", "", "", "", "", "", "p50", "p99", "max", "min", "p50", "p99", "max", "p50", "max"
        )?;
        for task in self.0.clone() {
            writeln!(
                f,
                "{:<12} {:>8} {:>8} | {:>6} {:>6} {:>5} | {:>8} {:>8} {:>8} | {:>8} {:>8} {:>8} {:>8} | {:>8} {:>8}",
                task.name,
                Short(task.period),
                Short(task.wcet),
                task.jobs,
                task.misses,
                task.overruns,
                Short(task.jitter.p50),
                Short(task.jitter.p99),
                Short(task.jitter.max),
                Short(task.response.min),
                Short(task.response.p50),
                Short(task.response.p99),
                Short(task.response.max),
                Short(task.execution.p50),
                Short(task.execution.max),
            )?;
        }
        Ok(())
    }
}

/// Counters of the scheduler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SchedStats {
    pub policy: crate::Policy,
    /// Context switches since boot.
    pub switches: u64,
    /// Switches that took the CPU from a thread or job that could have gone on.
    pub preemptions: u64,
    /// Time with nothing to run (the CPU halted), since boot or the last reset.
    pub idle: Duration,
    /// Time since boot or the last reset.
    pub elapsed: Duration,
    /// Threads that exist, `main` and the task threads included (not the idle context).
    pub threads: usize,
    pub tasks: usize,
}
