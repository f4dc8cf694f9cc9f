//! What the stack needs from the rest of the kernel: a clock and a way to wait for the
//! device's interrupt (whose routing `init` takes as an argument). The facade fills these
//! in from the handles of the subsystems the app declared; the stack never reaches for
//! them itself.

use core::time::Duration;

/// The kernel services the network stack runs on.
#[derive(Clone, Copy, Debug)]
pub struct Platform {
    /// Monotonic time since boot.
    pub now: fn() -> Duration,
    /// Waits until an interrupt arrives or `deadline` (time since boot) passes, whichever
    /// comes first; may return early. Used when no scheduler registered its blocking hook
    /// with `unikernel_arch::wait` (with one, only the calling thread blocks). Called with
    /// interrupts disabled, so that an interrupt after the caller's last look at the device
    /// still ends the wait (x86's `sti; hlt`).
    pub wait: fn(deadline: Option<Duration>),
}
