//! Interrupt vectors 32 to 255: entry stubs, one dispatcher, and the interrupt flag.
//!
//! The arch layer knows nothing of interrupt controllers: [`install`] points every vector
//! from 32 up at one Rust function (the `irq` driver's), which finds the handler, counts
//! what has none and acknowledges the controller. After it returns, the hook set with
//! [`set_after_interrupt`] runs (the scheduler's: it may switch to a thread the interrupt
//! woke). Both run with interrupts disabled, on the interrupted code's stack.
//!
//! Until `install` runs, these vectors have no gate and an interrupt on one of them is
//! reported as a general protection fault naming the IDT entry.

use crate::acpi::MAX_CPUS;
use core::sync::atomic::{AtomicU32, Ordering};

/// The first vector that is not a CPU exception.
pub const FIRST_VECTOR: u8 = 32;

/// Called with the vector of each interrupt.
pub type Dispatch = fn(vector: u8);

static DISPATCH: spin::Once<Dispatch> = spin::Once::new();
static AFTER_INTERRUPT: spin::Once<fn()> = spin::Once::new();
/// How many interrupt handlers are running on each CPU (0 or 1: handlers run with
/// interrupts off).
static DEPTH: [AtomicU32; MAX_CPUS] = [const { AtomicU32::new(0) }; MAX_CPUS];

/// Points vectors 32 to 255 at `dispatch`. Interrupts stay disabled; call [`enable`] once
/// the controllers are set up. Only the first call has an effect.
pub fn install(dispatch: Dispatch) {
    let mut first = false;
    DISPATCH.call_once(|| {
        first = true;
        dispatch
    });
    #[cfg(target_os = "none")]
    if first {
        target::install_gates();
    }
    #[cfg(not(target_os = "none"))]
    let _ = first;
}

/// Sets the hook that runs after every interrupt's handler, once the controller has been
/// acknowledged. Only the first call has an effect.
pub fn set_after_interrupt(hook: fn()) {
    AFTER_INTERRUPT.call_once(|| hook);
}

/// Whether the caller runs inside an interrupt handler (not in the after-interrupt hook).
pub fn in_handler() -> bool {
    DEPTH[crate::smp::this_cpu()].load(Ordering::Relaxed) != 0
}

/// Called by `interrupt_common` in interrupts.s.
#[cfg(target_os = "none")]
extern "C" fn dispatch(frame: &mut crate::fault::TrapFrame) {
    let vector = frame.vector as u8;
    // Each CPU runs its own scheduler: the hook works on the threads of the CPU it runs on.
    let depth = &DEPTH[crate::smp::this_cpu()];
    depth.fetch_add(1, Ordering::Relaxed);
    if let Some(dispatch) = DISPATCH.get() {
        dispatch(vector);
    }
    depth.fetch_sub(1, Ordering::Relaxed);
    if let Some(after) = AFTER_INTERRUPT.get() {
        after();
    }
}

/// Enables interrupts.
pub fn enable() {
    #[cfg(target_os = "none")]
    x86_64::instructions::interrupts::enable();
}

/// Disables interrupts.
pub fn disable() {
    #[cfg(target_os = "none")]
    x86_64::instructions::interrupts::disable();
}

/// Whether interrupts are enabled.
pub fn are_enabled() -> bool {
    #[cfg(target_os = "none")]
    return x86_64::instructions::interrupts::are_enabled();
    #[cfg(not(target_os = "none"))]
    false
}

/// Runs `f` with interrupts disabled, then restores the interrupt flag as it was.
pub fn without<R>(f: impl FnOnce() -> R) -> R {
    let were_enabled = are_enabled();
    disable();
    let result = f();
    if were_enabled {
        enable();
    }
    result
}

/// Enables interrupts and halts until the next one, atomically: an interrupt that arrives
/// between the two instructions still ends the halt (`sti` takes effect after `hlt`
/// starts). Returns with interrupts enabled.
pub fn enable_and_wait() {
    #[cfg(target_os = "none")]
    x86_64::instructions::interrupts::enable_and_hlt();
}

#[cfg(target_os = "none")]
mod target {
    core::arch::global_asm!(
        include_str!("interrupts.s"),
        include_str!("trap.s"),
        HANDLER = sym super::dispatch,
    );

    unsafe extern "C" {
        /// The first of the 224 16-byte stubs of interrupts.s.
        static unikernel_interrupt_stubs: u8;
    }

    /// Points the IDT gates of vectors 32..=255 at their stubs.
    pub(super) fn install_gates() {
        let first = &raw const unikernel_interrupt_stubs as u64;
        crate::interrupts::without(|| {
            for vector in usize::from(super::FIRST_VECTOR)..256 {
                let stub = first + 16 * (vector - usize::from(super::FIRST_VECTOR)) as u64;
                // SAFETY: `stub` is the entry stub of `vector` in interrupts.s (16 bytes
                // each), and interrupts are disabled here.
                unsafe { crate::cpu::set_interrupt_gate(vector, stub) };
            }
        });
    }
}
