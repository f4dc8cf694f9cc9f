//! Exit statuses: what the kernel writes to the exit port, and what the runner adds when
//! the guest could not report one. An app's own statuses are 0 to [`APP_MAX`]; everything
//! above is the system's, so that a status is never mistaken for another.

/// `main` returned success.
pub const SUCCESS: u8 = 0;
/// The highest status `main` may return; the kernel reports a higher one as
/// [`OUT_OF_RANGE`].
pub const APP_MAX: u8 = 100;
/// The kernel panicked.
pub const PANIC: u8 = 101;
/// A CPU exception the kernel cannot recover from.
pub const EXCEPTION: u8 = 102;
/// Boot failed before `main` (bad boot information, not enough memory, ...).
pub const BOOT_ERROR: u8 = 103;
/// `main` returned a status above [`APP_MAX`] (the kernel prints which).
pub const OUT_OF_RANGE: u8 = 104;

/// (runner) The guest halted for good: interrupts masked (or no interrupt source), so
/// nothing can ever wake it; the monitor reports it at once instead of at the timeout.
pub const HALTED: u8 = 123;
/// (runner) The guest did not exit in time and was stopped, as `timeout(1)` reports.
pub const TIMEOUT: u8 = 124;
/// (runner) The guest reset without reporting a status (a triple fault under the monitor).
pub const RESET: u8 = 125;
/// (runner) The VMM failed: QEMU exited by itself, or the monitor had to stop the guest.
pub const VMM_FAILED: u8 = 126;

/// The highest status the guest can report through QEMU's isa-debug-exit, which exits with
/// `(status << 1) | 1` in a byte.
pub const GUEST_MAX: u8 = 127;

/// Whether the guest's kernel (not the app, not the runner) reports `status`.
pub const fn is_kernel(status: u8) -> bool {
    matches!(status, PANIC | EXCEPTION | BOOT_ERROR | OUT_OF_RANGE)
}

/// What a status means, for messages; `None` for an app's own statuses.
pub const fn meaning(status: u8) -> Option<&'static str> {
    match status {
        PANIC => Some("it panicked"),
        EXCEPTION => Some("a CPU exception"),
        BOOT_ERROR => Some("an error during boot"),
        OUT_OF_RANGE => Some("main returned a status outside 0-100"),
        HALTED => Some("the guest halted for good"),
        TIMEOUT => Some("the guest did not exit in time"),
        RESET => Some("the guest reset without reporting a status"),
        VMM_FAILED => Some("the VMM failed"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_statuses_fit_the_exit_port_and_have_meanings() {
        for status in [
            PANIC,
            EXCEPTION,
            BOOT_ERROR,
            OUT_OF_RANGE,
            HALTED,
            TIMEOUT,
            RESET,
            VMM_FAILED,
        ] {
            assert!(status <= GUEST_MAX);
            assert!(status > APP_MAX, "{status} is in the app's range");
            assert!(meaning(status).is_some(), "{status}");
        }
        for status in 0..=APP_MAX {
            assert!(!is_kernel(status) && meaning(status).is_none(), "{status}");
        }
        assert!(is_kernel(OUT_OF_RANGE) && !is_kernel(TIMEOUT));
        assert_eq!(meaning(SUCCESS), None);
        assert_eq!(meaning(7), None);
    }
}
