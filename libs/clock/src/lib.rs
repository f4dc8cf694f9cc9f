//! The `clock` subsystem: a monotonic clock, the wall-clock time, `sleep`, and one-shot
//! deadlines for the scheduler. Tickless: the timer interrupts only when something is due.
//!
//! # The clock
//!
//! Time is the TSC, converted to nanoseconds since the kernel's first instruction with one
//! multiplication ([`scale`]). Its frequency comes, in this order, from
//! - kvmclock (KVM; also the wall-clock time),
//! - CPUID leaf 0x15 (crystal ratio), the hypervisor leaf 0x40000010 (VMware, the
//!   project's monitor) or leaf 0x16 (base frequency),
//! - else a measurement against the PIT that takes under 1 ms (QEMU TCG); the boot
//!   timeline shows it as the stage `pit-calibration`.
//!
//! # The one-shot timer
//!
//! The local APIC timer in TSC-deadline mode where CPUID reports it (KVM), else in
//! one-shot mode with its rate measured against the TSC (QEMU TCG), else the PIT in mode 0
//! on IRQ 0 (machines with only the 8259 PIC). The kernel flag `unikernel.timer=deadline`,
//! `=oneshot` or `=pit` forces one.
//!
//! A VMM delivers timer interrupts late: under QEMU TCG on the project's machine by
//! 30 to 60 us. Like KVM's `lapic_timer_advance_ns`, the timer is programmed that much
//! ahead of the deadline and the interrupt handler waits out the rest on the TSC, so the
//! deadline is met to within a microsecond or so of TSC reads. The advance adapts to the
//! latency seen (it tracks its 99.5th percentile) up to [`MAX_ADVANCE_NS`]; the kernel flag
//! `unikernel.timer_advance=<ns>` fixes it (0 turns it off). [`Clock::timer_stats`]
//! reports the raw interrupt latency and what is left of it. While it waits, the handler
//! programs the alarm after this one (the scheduler predicts it), so that reprogramming
//! the timer, which costs 10 to 40 us under QEMU TCG, is off the path from a deadline to
//! the work it releases.
//!
//! # Where to read
//!
//! [`instant`]: monotonic time; [`wall`]: the date and time of day;
//! [`alarm`](mod@alarm): the one deadline and the interrupt that meets it;
//! [`event`]: the TSC's frequency and the hardware that raises the timer interrupt; this
//! file: [`init`], which starts them in order, and the [`Clock`] handle.
#![no_std]
// Host builds (unit tests) compile the hardware paths out; what only they use is unused there.
#![cfg_attr(not(target_os = "none"), allow(dead_code))]
// Only the drivers of the clock hardware touch it; the clock logic needs no unsafe.
#![deny(unsafe_code)]

pub mod alarm;
pub mod event;
pub mod histogram;
pub mod instant;
#[allow(unsafe_code)]
pub mod kvmclock;
#[allow(unsafe_code)]
pub mod pit;
#[allow(unsafe_code)]
pub mod rtc;
pub mod scale;
pub mod wall;

use core::sync::atomic::Ordering;
pub use core::time::Duration;

pub use alarm::{Hooks, MAX_ADVANCE_NS, TimerStats, alarm, set_alarm};
pub use event::{EventTimer, FrequencySource, TimerError, init_this_cpu};
pub use instant::Instant;
pub use wall::{WallTime, civil_from_days};

use alarm::{ADAPTIVE, ADVANCE};
use instant::{BASE_TSC, READY, now_ns, scale};
use unikernel_arch::cmdline::KernelFlags;

/// The handle `main` takes for time.
#[derive(Clone, Copy, Debug)]
pub struct Clock(());

impl Clock {
    pub fn now(&self) -> Instant {
        Instant::now()
    }

    /// Time since the kernel's first instruction.
    pub fn since_boot(&self) -> Duration {
        Duration::from_nanos(now_ns())
    }

    /// The wall-clock time: from kvmclock (to the nanosecond) where there is one, else
    /// from the CMOS RTC (to the second), read at the first call; `None` where neither is.
    pub fn wall(&self) -> Option<WallTime> {
        wall::now()
    }

    /// Sets the wall-clock time to `time` (carried forward on the monotonic clock from now
    /// on): for a VM restored from a snapshot, whose own reading would be the snapshot's.
    pub fn set_wall(&self, time: WallTime) {
        wall::set(time)
    }

    /// Blocks for `duration`: the calling thread sleeps where there is a scheduler, else
    /// the CPU halts until the timer interrupt.
    pub fn sleep(&self, duration: Duration) {
        self.sleep_until(Instant::now() + duration);
    }

    /// Blocks until `deadline`.
    pub fn sleep_until(&self, deadline: Instant) {
        alarm::sleep_until(deadline);
    }

    /// The TSC frequency in Hz.
    pub fn tsc_hz(&self) -> u64 {
        scale().hz()
    }

    /// Where the TSC frequency came from.
    pub fn frequency_source(&self) -> FrequencySource {
        *event::SOURCE.get().unwrap_or(&FrequencySource::CpuidBase)
    }

    /// What raises the timer interrupt.
    pub fn event_timer(&self) -> EventTimer {
        *event::EVENT.get().unwrap_or(&EventTimer::Pit)
    }

    /// The raw latency of timer interrupts and the advance in use.
    pub fn timer_stats(&self) -> TimerStats {
        alarm::stats()
    }

    /// Forgets the latency figures (to measure a steady state after a warm-up).
    pub fn reset_timer_stats(&self) {
        alarm::reset_stats();
    }

    /// Hands the alarm and `sleep` to a scheduler: the timer interrupt calls
    /// `hooks.on_alarm` at the deadline, and `sleep` blocks the calling thread instead of
    /// halting the CPU. Only the first call has an effect.
    pub fn set_hooks(&self, hooks: Hooks) {
        alarm::set_hooks(hooks);
    }
}

/// Starts the clock and the one-shot timer, whose interrupt `irq` routes.
pub fn init(irq: &unikernel_irq::Irq, cmdline: &str) -> Result<Clock, TimerError> {
    let base = unikernel_arch::timeline::marks()
        .next()
        .map_or(0, |entry| entry.tsc);
    BASE_TSC.store(base, Ordering::Relaxed);
    let flags = KernelFlags::parse(cmdline);
    if let Some(advance) = flags.parsed::<u64>("timer_advance") {
        ADAPTIVE.store(false, Ordering::Relaxed);
        // Converted once the scale is known, below.
        ADVANCE.store(advance, Ordering::Relaxed);
    }
    #[cfg(target_os = "none")]
    event::init(*irq, flags.value("timer"), alarm::on_timer)?;
    #[cfg(not(target_os = "none"))]
    {
        let _ = irq;
        instant::SCALE.call_once(|| scale::Scale::from_hz(1_000_000_000));
    }
    if !ADAPTIVE.load(Ordering::Relaxed) {
        let ns = ADVANCE.load(Ordering::Relaxed).min(MAX_ADVANCE_NS);
        ADVANCE.store(scale().to_ticks(ns), Ordering::Relaxed);
    }
    alarm::init_this_cpu();
    READY.store(true, Ordering::Release);
    Ok(Clock(()))
}
