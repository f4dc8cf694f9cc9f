//! What the stack needs from the rest of the kernel: a clock, a way to wait for the device's
//! interrupt, and the routing of that interrupt. The facade fills these in from the
//! subsystems the app declared; the stack never reaches for them itself.

use core::time::Duration;

/// The kernel services the network stack runs on.
#[derive(Clone, Copy, Debug)]
pub struct Platform {
    /// Monotonic time since boot.
    pub now: fn() -> Duration,
    /// Waits until an interrupt arrives or `deadline` (time since boot) passes, whichever
    /// comes first; may return early. Used when no scheduler registered its blocking hook
    /// with `unikernel_arch::wait` (with one, only the calling thread blocks). Called with interrupts disabled, so that an interrupt
    /// after the caller's last look at the device still ends the wait (x86's `sti; hlt`).
    pub wait: fn(deadline: Option<Duration>),
    /// Calls `handler` on every interrupt of `line` (a GSI; edge-triggered, or
    /// level-triggered and active high when `level`), or returns `false` when the kernel
    /// has no interrupt support; the stack then polls the device.
    pub route_irq: fn(line: u32, level: bool, handler: fn()) -> bool,
}
