//! What the stack needs from the rest of the kernel: a clock and a way to wait for the
//! device's interrupt (whose routing `init` takes as an argument). The facade implements it
//! on the handles of the subsystems the app declared; the stack never reaches for them
//! itself.

use core::time::Duration;

/// The kernel services the network stack runs on.
pub trait Platform: Sync {
    /// Monotonic time since boot.
    fn now(&self) -> Duration;

    /// Waits until an interrupt arrives or `deadline` (time since boot) passes, whichever
    /// comes first; may return early. Used when no scheduler registered its blocking hook
    /// with `unikernel_arch::wait` (with one, only the calling thread blocks). Called with
    /// interrupts disabled, so that an interrupt after the caller's last look at the device
    /// still ends the wait (x86's `sti; hlt`).
    fn wait(&self, deadline: Option<Duration>);
}
