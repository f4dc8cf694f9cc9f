//! The task set and the trace shared by rt-edf and rt-rm: the same two tasks, whose jobs
//! run in a different order under EDF and under rate-monotonic priorities.
//!
//! `y`: period 4 ms, 0.9 ms of work (1 ms declared). `x`: period 11 ms, 6.3 ms of work
//! (7 ms declared; U = 0.89, and rate-monotonic response-time analysis gives `x` 10 ms of
//! its 11). Both release together every hyperperiod of 44 ms. 8 ms into one, `y`'s third
//! job is released with its deadline 12 ms in, while `x`'s first job, due 11 ms in, still
//! has over half a millisecond to do:
//! - EDF runs `x` on (its deadline is earlier): `x`'s job ends before `y`'s starts;
//! - RM runs `y` first (its period is shorter): `y`'s job ends before `x`'s does.
//!
//! The app checks each hyperperiod after the first (in the first, QEMU's binary
//! translator meets the code and slows it) and prints how many showed which order. The
//! work is measured in each job's CPU time, which includes any time the VMM's host thread
//! was descheduled (the guest cannot tell it from work): such a stall inside `x`'s job can
//! end it early and flip that hyperperiod. A stall shows as a jump in the CPU time between
//! two turns of the busy loop, which take a few microseconds at most otherwise; hyperperiods
//! whose deciding `x` job saw one are left out of the count.
//!
//! runner/tests/rt.rs boots it under `-icount`, where guest time is counted in instructions
//! and no host stall shows: there every hyperperiod counts and shows the policy's order.

use core::sync::atomic::{AtomicU32, Ordering};
use unikernel::prelude::*;
use unikernel::sched::{self, Mutex};

const HYPERPERIODS: u32 = 5;
const Y_JOBS_PER_HYPERPERIOD: u32 = 44 / 4;
const X_JOBS_PER_HYPERPERIOD: u32 = 44 / 11;

/// Job starts and ends, in order: task, job, start (true) or end.
pub struct Trace {
    events: [(char, u32, bool); 256],
    len: usize,
}

pub static TRACE: Mutex<Trace> = Mutex::new(Trace {
    events: [(' ', 0, false); 256],
    len: 0,
});

impl Trace {
    fn position(&self, event: (char, u32, bool)) -> Option<usize> {
        self.events[..self.len].iter().position(|&e| e == event)
    }
}

fn record(task: char, job: u32, start: bool) {
    let mut trace = TRACE.lock();
    if trace.len < trace.events.len() {
        let len = trace.len;
        trace.events[len] = (task, job, start);
        trace.len += 1;
    }
}

/// A jump in CPU time between two turns of the busy loop this large is a host stall. (The
/// timer's interrupt handler, whose time counts too, spins up to about 150 us; a stall
/// must be over half a millisecond to flip the order.)
const STALL: Duration = Duration::from_micros(500);

/// Busy for `duration` of the job's own CPU time (preemption does not count). Returns
/// whether a host stall ate into it.
fn work(duration: Duration) -> bool {
    let start = sched::cpu_time();
    let (mut last, mut stalled) = (start, false);
    loop {
        let now = sched::cpu_time();
        stalled |= now - last > STALL;
        last = now;
        if now - start >= duration {
            return stalled;
        }
        core::hint::spin_loop();
    }
}

/// Bit `j`: a host stall ate into `x`'s job `j`.
static X_STALLED: AtomicU32 = AtomicU32::new(0);

static X_JOBS: AtomicU32 = AtomicU32::new(0);
static Y_JOBS: AtomicU32 = AtomicU32::new(0);

pub fn x() {
    let job = X_JOBS.fetch_add(1, Ordering::Relaxed);
    record('x', job, true);
    if work(Duration::from_micros(6_300)) && job < 32 {
        X_STALLED.fetch_or(1 << job, Ordering::Relaxed);
    }
    record('x', job, false);
}

pub fn y() {
    let job = Y_JOBS.fetch_add(1, Ordering::Relaxed);
    record('y', job, true);
    work(Duration::from_micros(900));
    record('y', job, false);
}

/// Runs the set for five hyperperiods and prints which order each undisturbed one showed
/// (`order: EDF in 4 of 4 hyperperiods, RM in 0, 0 left out for host stalls`) and the
/// events of the second (`y11+` is the start of `y`'s job 11, `y11-` its end).
pub fn run(sched: Sched) -> ExitCode {
    sched.run_for(Duration::from_millis(44 * u64::from(HYPERPERIODS)));
    let trace = TRACE.lock();
    let (mut edf, mut rm, mut counted) = (0, 0, 0);
    let stalled = X_STALLED.load(Ordering::Relaxed);
    for h in 1..HYPERPERIODS {
        let x = X_JOBS_PER_HYPERPERIOD * h;
        if stalled & (1 << x) != 0 {
            continue;
        }
        counted += 1;
        let y = Y_JOBS_PER_HYPERPERIOD * h + 2;
        let x_end = trace.position(('x', x, false));
        let y_start = trace.position(('y', y, true));
        let y_end = trace.position(('y', y, false));
        if let (Some(x_end), Some(y_start), Some(y_end)) = (x_end, y_start, y_end) {
            edf += u32::from(x_end < y_start);
            rm += u32::from(y_end < x_end);
        }
    }
    println!(
        "order: EDF in {edf} of {counted} hyperperiods, RM in {rm}, {} left out for host stalls",
        HYPERPERIODS - 1 - counted
    );
    print!("second hyperperiod:");
    for &(task, job, start) in &trace.events[..trace.len] {
        let first = match task {
            'x' => X_JOBS_PER_HYPERPERIOD,
            _ => Y_JOBS_PER_HYPERPERIOD,
        };
        if (first..first + first).contains(&job) {
            print!(" {task}{job}{}", if start { '+' } else { '-' });
        }
    }
    println!();
    println!("{}", sched.report());
    ExitCode::SUCCESS
}
