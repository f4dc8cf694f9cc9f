//! The jobs shared by rt-overrun and rt-overrun-panic: `steady` keeps within its declared
//! worst case; `overrunner` declares 2 ms but its sixth job works 30 ms, past its 20 ms
//! deadline.

use core::sync::atomic::{AtomicU32, Ordering};
use unikernel::prelude::*;
use unikernel::sched;

/// Busy for `duration` of the job's own CPU time.
fn work(duration: Duration) {
    let start = sched::cpu_time();
    while sched::cpu_time() - start < duration {
        core::hint::spin_loop();
    }
}

pub fn steady() {
    work(Duration::from_millis(1));
}

static OVERRUNNER_JOBS: AtomicU32 = AtomicU32::new(0);

pub fn overrunner() {
    if OVERRUNNER_JOBS.fetch_add(1, Ordering::Relaxed) == 5 {
        work(Duration::from_millis(30));
    } else {
        work(Duration::from_millis(1));
    }
}
