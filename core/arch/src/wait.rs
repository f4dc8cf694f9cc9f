//! Waiting for a device without knowing who waits: the hook a scheduler registers so that
//! a driver's blocking call blocks only the calling thread, not the CPU.
//!
//! A driver (the network) calls [`block`] where it would halt until its interrupt, [`wake`]
//! from that interrupt's handler (or when it made progress another waiter may need), and
//! [`relax`] in a polling loop. Without a scheduler (an image that declares none, so
//! nothing registers), `block` returns `false` and the driver halts the CPU itself; `wake`
//! does nothing and `relax` is a spin-loop hint. With one, the calling thread blocks until
//! the next `wake` or the deadline and the other threads run meanwhile. The driver never
//! links the scheduler: the scheduler registers itself here at its init.

use core::time::Duration;

/// What a scheduler provides. Every function may be called with interrupts disabled.
#[derive(Clone, Copy, Debug)]
pub struct Blocker {
    /// Blocks the running thread until the next `wake` or until `deadline` (the kernel
    /// clock's time since boot) passes; may return early. Called with interrupts disabled,
    /// so that a wake-up after the caller's last look at its device is not lost; returns
    /// with them disabled.
    pub block: fn(deadline: Option<Duration>),
    /// Makes every thread blocked in `block` ready. Callable from an interrupt handler;
    /// elsewhere it may switch to a more urgent thread it woke, so the caller must not
    /// hold a lock another thread may take.
    pub wake: fn(),
    /// Lets other ready threads run (a polling loop's pause).
    pub relax: fn(),
}

static BLOCKER: spin::Once<Blocker> = spin::Once::new();

/// Registers the scheduler's hooks. Only the first call has an effect.
pub fn set_blocker(blocker: Blocker) {
    BLOCKER.call_once(|| blocker);
}

/// Whether a scheduler registered its hooks (so [`block`] blocks a thread).
pub fn scheduled() -> bool {
    BLOCKER.get().is_some()
}

/// Blocks the running thread until [`wake`] or `deadline`, and returns `true`; returns
/// `false` at once when no scheduler is registered (the caller halts the CPU instead).
/// Call with interrupts disabled; returns with them disabled.
pub fn block(deadline: Option<Duration>) -> bool {
    match BLOCKER.get() {
        Some(blocker) => {
            (blocker.block)(deadline);
            true
        }
        None => false,
    }
}

/// Wakes every thread blocked in [`block`] (nothing without a scheduler).
pub fn wake() {
    if let Some(blocker) = BLOCKER.get() {
        (blocker.wake)();
    }
}

/// A pause in a polling loop: other threads run, or the CPU is told it spins.
pub fn relax() {
    match BLOCKER.get() {
        Some(blocker) => (blocker.relax)(),
        None => core::hint::spin_loop(),
    }
}
