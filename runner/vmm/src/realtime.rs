//! Real-time scheduling of a VM's host threads (the runner's `--realtime PRIO`).
//!
//! A guest's timer reaches it through host threads: under QEMU TCG the main loop runs the
//! expired timer and wakes the vCPU thread; on the monitor KVM's hrtimer wakes the vCPU
//! thread. At the default policy (SCHED_OTHER) either waits behind whatever else the host
//! runs, up to a scheduler slice (about 1 ms on this kernel) when a busy vCPU thread shares
//! its CPU. Real-time VMs run their vCPU threads at SCHED_FIFO instead, and the emulator
//! threads one priority above them, so that the thread that delivers a timer is never
//! queued behind a vCPU that spins. The host's RT throttling (`kernel.sched_rt_runtime_us`,
//! 95% by default) still leaves the rest of the host its share.

use std::ops::RangeInclusive;

/// The SCHED_FIFO priorities `--realtime` takes: 99 stays with the kernel's own threads,
/// and the emulator threads run one above the vCPUs.
pub const PRIORITIES: RangeInclusive<u8> = 1..=98;

/// Puts thread `tid` (0: the calling thread) under SCHED_FIFO at `priority`. Threads it
/// starts afterwards inherit the policy.
pub fn set_fifo(tid: u32, priority: u8) -> std::io::Result<()> {
    let tid =
        libc::pid_t::try_from(tid).map_err(|_| std::io::Error::from_raw_os_error(libc::ESRCH))?;
    let param = libc::sched_param {
        sched_priority: i32::from(priority),
    };
    // SAFETY: sched_setscheduler only reads `param`, which outlives the call; a wrong
    // `tid` is an error (ESRCH), not undefined behaviour.
    let status = unsafe { libc::sched_setscheduler(tid, libc::SCHED_FIFO, &param) };
    if status == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// One sentence for a refused [`set_fifo`]: what `--realtime` needs.
pub fn refusal(priority: u8, err: &std::io::Error) -> String {
    match err.raw_os_error() {
        Some(libc::EPERM) => {
            format!("--realtime {priority} needs root or CAP_SYS_NICE: the host refused SCHED_FIFO")
        }
        _ => format!("--realtime {priority}: SCHED_FIFO refused: {err}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_absent_thread_is_an_error() {
        // pid_max is at most 2^22: this thread id cannot exist.
        let err = set_fifo(u32::MAX >> 1, 1).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ESRCH));
        assert!(refusal(5, &std::io::Error::from_raw_os_error(libc::EPERM)).contains("root"));
    }
}
