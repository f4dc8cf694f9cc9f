//! Periodic real-time tasks: releases, jobs, deadline checks and statistics.
//!
//! Task `i` releases job `k` at `start + k * period`; the job is due `deadline` later. The
//! task's thread runs its jobs one after the other, each to completion. The one-shot timer
//! is set for the next release and for the deadline of the oldest unfinished job, so a
//! miss is seen when it happens, not when the late job ends (a job that ends late before
//! the check ran is counted at its end). A job released while earlier ones are unfinished
//! waits for them (the backlog is counted).

use crate::rank::Rank;
use crate::state::{self, State};
use crate::{OnMiss, Policy, TaskSpec};
use unikernel_clock::histogram::Histogram;
use unikernel_clock::{Duration, Instant};

/// What is measured of one task.
pub(crate) struct Measured {
    pub jobs: u64,
    pub misses: u64,
    pub max_backlog: u64,
    /// From a job's release to its start.
    pub jitter: Histogram,
    /// From a job's release to its end.
    pub response: Histogram,
    /// The CPU time a job used (interrupt handlers that ran meanwhile included).
    pub execution: Histogram,
    /// Jobs that used more CPU time than the declared worst case.
    pub overruns: u64,
}

impl Measured {
    pub const fn new() -> Self {
        Self {
            jobs: 0,
            misses: 0,
            max_backlog: 0,
            jitter: Histogram::new(),
            response: Histogram::new(),
            execution: Histogram::new(),
            overruns: 0,
        }
    }
}

pub(crate) struct Task {
    pub spec: TaskSpec,
    pub thread: usize,
    pub start: Instant,
    /// Jobs released so far.
    pub released: u64,
    /// Jobs finished so far.
    pub completed: u64,
    /// Jobs before this one have been checked for a missed deadline.
    pub checked: u64,
    /// The thread waits for the next release.
    pub waiting: bool,
    /// The job that is running (started, not ended), if any.
    pub running: Option<u64>,
    pub measured: Measured,
    /// Misses counted since boot (for the log's rate limit; `measured` may be reset).
    pub misses_total: u64,
}

impl Task {
    pub fn new(spec: TaskSpec, thread: usize, start: Instant) -> Task {
        Task {
            spec,
            thread,
            start,
            released: 0,
            completed: 0,
            checked: 0,
            waiting: false,
            running: None,
            measured: Measured::new(),
            misses_total: 0,
        }
    }

    pub fn release_of(&self, job: u64) -> Instant {
        Instant::from_nanos_since_boot(
            self.start
                .as_nanos_since_boot()
                .saturating_add(job.saturating_mul(self.spec.period_ns)),
        )
    }

    pub fn deadline_of(&self, job: u64) -> Instant {
        Instant::from_nanos_since_boot(
            self.release_of(job)
                .as_nanos_since_boot()
                .saturating_add(self.spec.deadline_ns),
        )
    }

    /// The rank of the task's current job.
    pub fn rank(&self, policy: Policy) -> Rank {
        match policy {
            Policy::Edf => Rank::deadline(self.deadline_of(self.completed).as_nanos_since_boot()),
            _ => Rank::task_priority(self.spec.priority),
        }
    }

    /// The next instant the task needs the timer: its next release, or the deadline of
    /// its oldest unfinished, unchecked job.
    pub fn next_event(&self) -> Instant {
        let release = self.release_of(self.released);
        let unchecked = self.checked.max(self.completed);
        if unchecked < self.released {
            release.min(self.deadline_of(unchecked))
        } else {
            release
        }
    }

    /// [`Task::next_event`] once everything due at `at` has been handled.
    pub fn next_event_after(&self, at: Instant) -> Instant {
        let mut released = self.released;
        while self.release_of(released) <= at {
            released += 1;
        }
        let mut unchecked = self.checked.max(self.completed);
        while unchecked < released && self.deadline_of(unchecked) <= at {
            unchecked += 1;
        }
        let release = self.release_of(released);
        if unchecked < released {
            release.min(self.deadline_of(unchecked))
        } else {
            release
        }
    }

    fn record_miss(&mut self, job: u64) {
        self.checked = self.checked.max(job + 1);
        self.measured.misses += 1;
        self.misses_total += 1;
    }
}

/// Releases the jobs that are due and checks the deadlines that have passed.
pub(crate) fn on_time(state: &mut State, now: Instant) {
    // Misses first of the jobs that are running, then of those waiting behind them: when
    // one job overruns, the one to name is the one that ran on (and under `on_miss =
    // panic` only the first is named).
    for running_first in [true, false] {
        for index in 0..state.tasks.len() {
            let task = &state.tasks[index];
            let mut job = task.checked.max(task.completed);
            let mut released = task.released;
            while task.release_of(released) <= now {
                released += 1;
            }
            while job < released && state.tasks[index].deadline_of(job) <= now {
                if (state.tasks[index].running == Some(job)) == running_first {
                    state.tasks[index].record_miss(job);
                    report_miss(state.on_miss, &state.tasks[index], job, now, false);
                } else if !running_first {
                    break;
                }
                job += 1;
            }
        }
    }
    for index in 0..state.tasks.len() {
        let task = &mut state.tasks[index];
        while task.release_of(task.released) <= now {
            task.released += 1;
        }
        let backlog = task.released - task.completed;
        task.measured.max_backlog = task.measured.max_backlog.max(backlog);
        if task.waiting && task.released > task.completed {
            task.waiting = false;
            let thread = task.thread;
            state.wake(thread);
        }
    }
}

/// Logs a miss (the first, second, fourth, eighth... of each task, so that an overloaded
/// system does not drown in messages) or panics, as the attribute's `on_miss` says.
fn report_miss(on_miss: OnMiss, task: &Task, job: u64, now: Instant, ended: bool) {
    let release = task.release_of(job);
    let late = now - task.deadline_of(job);
    let what = if ended {
        "ended"
    } else if task.running == Some(job) {
        "was still running"
    } else {
        "had not started"
    };
    match on_miss {
        OnMiss::Panic => panic!(
            "task `{}` missed a deadline: job {job}, released {:?} after boot, {what} {:?} past its deadline of {:?}",
            task.spec.name,
            Duration::from_nanos(release.as_nanos_since_boot()),
            late,
            Duration::from_nanos(task.spec.deadline_ns),
        ),
        OnMiss::Log if task.misses_total.is_power_of_two() => log::warn!(
            "task `{}` missed a deadline (miss {} so far): job {job} {what} {:?} past its deadline of {:?}",
            task.spec.name,
            task.misses_total,
            late,
            Duration::from_nanos(task.spec.deadline_ns),
        ),
        OnMiss::Log => {}
    }
}

/// The body of task `index`'s thread: its jobs, one after the other, forever.
pub(crate) fn run(index: usize) -> ! {
    loop {
        state::block_with(
            |state, _| {
                let task = &mut state.tasks[index];
                task.waiting = task.released == task.completed;
                task.waiting
            },
            None,
        );
        let (job, release, spec) = state::with(|state| {
            let task = &state.tasks[index];
            (task.completed, task.release_of(task.completed), task.spec)
        });
        state::with(|state| state.tasks[index].running = Some(job));
        let start = Instant::now();
        let cpu = state::cpu_time();
        (spec.job)();
        let execution = (state::cpu_time() - cpu).as_nanos() as u64;
        let end = Instant::now();
        state::with(|state| {
            let on_miss = state.on_miss;
            let task = &mut state.tasks[index];
            task.measured.jobs += 1;
            task.measured
                .jitter
                .record((start - release).as_nanos() as u64);
            task.measured
                .response
                .record((end - release).as_nanos() as u64);
            task.measured.execution.record(execution);
            if execution > task.spec.wcet_ns {
                task.measured.overruns += 1;
            }
            if end > task.deadline_of(job) && task.checked <= job {
                task.record_miss(job);
                report_miss(on_miss, task, job, end, true);
            }
            task.running = None;
            task.completed = job + 1;
            task.checked = task.checked.max(task.completed);
            state.program_alarm();
        });
        // Under EDF the next job's later deadline may let another task go first.
        state::reschedule();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nop() {}

    fn task(period_ms: u64, deadline_ms: u64) -> Task {
        let spec = TaskSpec {
            name: "t",
            job: nop,
            period_ns: period_ms * 1_000_000,
            deadline_ns: deadline_ms * 1_000_000,
            wcet_ns: 1_000_000,
            priority: 0,
            cpu: 0,
        };
        Task::new(spec, 2, Instant::from_nanos_since_boot(1_000_000))
    }

    fn ms(ms: u64) -> Instant {
        Instant::from_nanos_since_boot(ms * 1_000_000)
    }

    #[test]
    fn releases_and_deadlines_are_periodic() {
        let t = task(10, 5);
        assert_eq!(t.release_of(0), ms(1));
        assert_eq!(t.release_of(3), ms(31));
        assert_eq!(t.deadline_of(3), ms(36));
        // Nothing released yet: the first release is next.
        assert_eq!(t.next_event(), ms(1));
    }

    #[test]
    fn the_timer_is_set_for_the_deadline_of_an_unfinished_job() {
        let mut t = task(10, 5);
        t.released = 1;
        // Job 0 runs: its deadline (6 ms) comes before the next release (11 ms).
        assert_eq!(t.next_event(), ms(6));
        t.completed = 1;
        t.checked = 1;
        assert_eq!(t.next_event(), ms(11));
    }

    #[test]
    fn the_prediction_is_what_follows_handling_an_instant() {
        let mut t = task(10, 10);
        t.released = 1;
        t.completed = 1;
        t.checked = 1;
        // At 11 ms job 1 is released; then its deadline and job 2's release are at 21 ms.
        assert_eq!(t.next_event_after(ms(11)), ms(21));
        // With job 1 unfinished at 21 ms, its deadline passes then: next is 31 ms.
        assert_eq!(t.next_event_after(ms(21)), ms(31));
    }

    #[test]
    fn edf_ranks_by_the_current_jobs_deadline() {
        let mut early = task(4, 4);
        let mut late = task(11, 11);
        early.completed = 2; // job 2 due at 1 + 8 + 4 = 13 ms
        late.completed = 0; // job 0 due at 12 ms
        assert!(late.rank(Policy::Edf) < early.rank(Policy::Edf));
        early.spec.priority = 0;
        late.spec.priority = 1;
        assert!(early.rank(Policy::Rm) < late.rank(Policy::Rm));
    }
}
