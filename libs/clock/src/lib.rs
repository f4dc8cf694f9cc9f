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
//! [`alarm`](mod@alarm): the one deadline and the interrupt that meets it; this file:
//! [`init`], which finds the TSC's frequency and sets up the event timer, and the
//! [`Clock`] handle.
#![no_std]
// Host builds (unit tests) compile the hardware paths out; what only they use is unused there.
#![cfg_attr(not(target_os = "none"), allow(dead_code))]

pub mod alarm;
pub mod histogram;
pub mod instant;
pub mod kvmclock;
pub mod pit;
pub mod rtc;
pub mod scale;
pub mod wall;

use core::fmt;
use core::sync::atomic::Ordering;
pub use core::time::Duration;

pub use alarm::{Hooks, MAX_ADVANCE_NS, TimerStats, alarm, set_alarm};
pub use instant::Instant;
pub use wall::{WallTime, civil_from_days};

use alarm::{ADAPTIVE, ADVANCE};
use instant::{BASE_TSC, READY, now_ns, scale};
use scale::Scale;

/// Where the TSC frequency came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrequencySource {
    Kvmclock,
    /// CPUID leaf 0x15, the crystal ratio.
    CpuidCrystal,
    /// CPUID leaf 0x40000010, the hypervisor's timing leaf.
    HypervisorLeaf,
    /// CPUID leaf 0x16, the processor's base frequency.
    CpuidBase,
    /// Measured against the PIT, in this long.
    Pit {
        took: Duration,
    },
}

impl fmt::Display for FrequencySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Kvmclock => f.write_str("kvmclock"),
            Self::CpuidCrystal => f.write_str("CPUID leaf 0x15"),
            Self::HypervisorLeaf => f.write_str("CPUID leaf 0x40000010"),
            Self::CpuidBase => f.write_str("CPUID leaf 0x16"),
            Self::Pit { took } => write!(f, "the PIT, measured in {took:?}"),
        }
    }
}

/// What raises the one-shot timer interrupt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventTimer {
    /// The local APIC timer in TSC-deadline mode.
    TscDeadline,
    /// The local APIC timer in one-shot mode, counting at this rate.
    LapicOneShot { hz: u64 },
    /// The PIT in mode 0, on IRQ 0.
    Pit,
}

impl fmt::Display for EventTimer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TscDeadline => f.write_str("LAPIC timer, TSC-deadline mode"),
            Self::LapicOneShot { hz } => {
                write!(f, "LAPIC timer, one-shot mode at {} kHz", hz / 1000)
            }
            Self::Pit => f.write_str("PIT, mode 0"),
        }
    }
}

/// Why the timer could not start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerError {
    /// Nothing reports the TSC's frequency and there is no PIT to measure it against.
    NoFrequency,
    /// The timer's interrupt could not be registered.
    Irq(unikernel_irq::IrqError),
}

impl fmt::Display for TimerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoFrequency => f.write_str(
                "the TSC frequency is unknown: no kvmclock, no CPUID leaf 0x15/0x16 and no PIT to measure it",
            ),
            Self::Irq(error) => write!(f, "the timer interrupt: {error}"),
        }
    }
}

/// Where the TSC's frequency came from; set once by `init`.
static SOURCE: spin::Once<FrequencySource> = spin::Once::new();
/// What raises the timer interrupt; set once by `init`.
static EVENT: spin::Once<EventTimer> = spin::Once::new();
/// For the LAPIC timer in one-shot mode: LAPIC counts per TSC tick, as a scale from TSC
/// ticks (in "ns"); set once by `init`.
static LAPIC_PER_TSC: spin::Once<Scale> = spin::Once::new();
/// For the PIT: PIT counts per TSC tick, as a scale from TSC ticks; set once by `init`.
static PIT_PER_TSC: spin::Once<Scale> = spin::Once::new();

/// The kernel flag `unikernel.<key>=<value>`, before any `--`.
fn flag<'a>(cmdline: &'a str, key: &str) -> Option<&'a str> {
    cmdline
        .split_ascii_whitespace()
        .take_while(|word| *word != "--")
        .find_map(|word| {
            word.strip_prefix("unikernel.")?
                .strip_prefix(key)?
                .strip_prefix('=')
        })
}

/// The handle `main` takes for time.
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
        *SOURCE.get().unwrap_or(&FrequencySource::CpuidBase)
    }

    /// What raises the timer interrupt.
    pub fn event_timer(&self) -> EventTimer {
        *EVENT.get().unwrap_or(&EventTimer::Pit)
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
    if let Some(advance) = flag(cmdline, "timer_advance").and_then(|v| v.parse::<u64>().ok()) {
        ADAPTIVE.store(false, Ordering::Relaxed);
        // Converted once the scale is known, below.
        ADVANCE.store(advance, Ordering::Relaxed);
    }
    #[cfg(target_os = "none")]
    target::init(*irq, flag(cmdline, "timer"))?;
    #[cfg(not(target_os = "none"))]
    {
        let _ = irq;
        instant::SCALE.call_once(|| Scale::from_hz(1_000_000_000));
    }
    if !ADAPTIVE.load(Ordering::Relaxed) {
        let ns = ADVANCE.load(Ordering::Relaxed).min(MAX_ADVANCE_NS);
        ADVANCE.store(scale().to_ticks(ns), Ordering::Relaxed);
    }
    READY.store(true, Ordering::Release);
    Ok(Clock(()))
}

#[cfg(target_os = "none")]
mod target {
    use super::*;
    use crate::alarm::on_timer;
    use crate::instant::{SCALE, tsc};
    use core::arch::x86_64::__cpuid;
    use unikernel_irq::lapic;

    /// The frequency CPUID reports, and which leaf said so.
    fn cpuid_frequency() -> Option<(u64, FrequencySource)> {
        let max_leaf = __cpuid(0).eax;
        if max_leaf >= 0x15 {
            let leaf = __cpuid(0x15);
            if leaf.eax != 0 && leaf.ebx != 0 && leaf.ecx != 0 {
                let hz = u64::from(leaf.ecx) * u64::from(leaf.ebx) / u64::from(leaf.eax);
                return Some((hz, FrequencySource::CpuidCrystal));
            }
        }
        let hypervisor = __cpuid(1).ecx & (1 << 31) != 0;
        if hypervisor && __cpuid(0x4000_0000).eax >= 0x4000_0010 {
            let khz = __cpuid(0x4000_0010).eax;
            if khz != 0 {
                return Some((u64::from(khz) * 1000, FrequencySource::HypervisorLeaf));
            }
        }
        if max_leaf >= 0x16 {
            let mhz = __cpuid(0x16).eax & 0xffff;
            if mhz != 0 {
                return Some((u64::from(mhz) * 1_000_000, FrequencySource::CpuidBase));
            }
        }
        None
    }

    fn lapic_current() -> u32 {
        lapic::read(lapic::reg::TIMER_CURRENT)
    }

    /// Starts the LAPIC timer counting down from the top, masked, to measure its rate.
    fn lapic_free_run() {
        lapic::write(lapic::reg::TIMER_DIVIDE, lapic::DIVIDE_BY_1);
        lapic::write(lapic::reg::LVT_TIMER, lapic::LVT_MASKED);
        lapic::write(lapic::reg::TIMER_INITIAL, u32::MAX);
    }

    pub(super) fn init(irq: unikernel_irq::Irq, forced: Option<&str>) -> Result<(), TimerError> {
        let apic = matches!(irq.controller(), unikernel_irq::Controller::Apic { .. });
        let deadline_mode = apic && __cpuid(1).ecx & (1 << 24) != 0;
        let event = match forced {
            Some("pit") => EventTimer::Pit,
            Some("oneshot") if apic => EventTimer::LapicOneShot { hz: 0 },
            Some("deadline") if deadline_mode => EventTimer::TscDeadline,
            _ if deadline_mode => EventTimer::TscDeadline,
            _ if apic => EventTimer::LapicOneShot { hz: 0 },
            _ => EventTimer::Pit,
        };
        let one_shot = matches!(event, EventTimer::LapicOneShot { .. });

        // The TSC's frequency (and, measured alongside, the LAPIC timer's rate).
        let mut lapic_hz = None;
        let (tsc_hz, source) = if kvmclock::present() {
            let info = kvmclock::enable();
            let scale = Scale::from_pvclock(info.tsc_to_system_mul, info.tsc_shift);
            SCALE.call_once(|| scale);
            (scale.hz(), FrequencySource::Kvmclock)
        } else if let Some(found) = cpuid_frequency() {
            found
        } else {
            if one_shot {
                lapic_free_run();
            }
            let extra = one_shot.then_some(lapic_current as fn() -> u32);
            // A few ticks first, so that a binary translator (QEMU TCG) has translated
            // the code before it is timed; then 600 PIT ticks: 503 us, plus at most one
            // tick waiting for the first edge. Each end is off by at most one loop
            // iteration (a fraction of a microsecond), so the frequency is known to within
            // about 0.05%.
            pit::measure(2, 100_000_000, extra).ok_or(TimerError::NoFrequency)?;
            let measured = pit::measure(600, 100_000_000, extra).ok_or(TimerError::NoFrequency)?;
            let hz = pit::tsc_hz(measured.tsc, measured.pit);
            lapic_hz = measured.extra.map(|counts| {
                (u128::from(counts) * u128::from(hz) / u128::from(measured.tsc)) as u64
            });
            unikernel_arch::timeline::mark("pit-calibration");
            let took = Duration::from_nanos(Scale::from_hz(hz).to_ns(measured.took));
            (hz, FrequencySource::Pit { took })
        };
        SCALE.call_once(|| Scale::from_hz(tsc_hz));
        SOURCE.call_once(|| source);
        let tsc_scale = scale();

        // The PIT starts out periodic; stop it so that it costs the VMM nothing.
        pit::stop();
        let event = match event {
            EventTimer::LapicOneShot { .. } => {
                let hz = match lapic_hz {
                    Some(hz) => hz,
                    None => {
                        // 50 us against the TSC.
                        lapic_free_run();
                        let (c0, t0) = (lapic_current(), tsc());
                        while tsc() - t0 < tsc_scale.to_ticks(50_000) {}
                        let (c1, t1) = (lapic_current(), tsc());
                        (u128::from(c0 - c1) * u128::from(tsc_hz) / u128::from(t1 - t0)) as u64
                    }
                };
                // LAPIC counts per TSC tick, as a "scale" from TSC ticks; 1% low, more than
                // the rate's measurement error, so that the count runs out early (and the
                // interrupt handler waits out the rest) rather than late.
                let counts_per_s = hz - hz / 100;
                LAPIC_PER_TSC.call_once(|| {
                    Scale::from_hz(
                        ((u128::from(tsc_hz) * 1_000_000_000) / u128::from(counts_per_s)) as u64,
                    )
                });
                EventTimer::LapicOneShot { hz }
            }
            other => other,
        };
        PIT_PER_TSC.call_once(|| {
            Scale::from_hz(
                ((u128::from(tsc_hz) * u128::from(pit::HZ_DEN) * 1_000_000_000)
                    / u128::from(pit::HZ_NUM)) as u64,
            )
        });
        EVENT.call_once(|| event);

        match event {
            EventTimer::Pit => {
                irq.register(unikernel_irq::Line::Isa(0), on_timer)
                    .map_err(TimerError::Irq)?;
            }
            EventTimer::TscDeadline => {
                let vector = irq.register_local(on_timer).map_err(TimerError::Irq)?;
                lapic::write(
                    lapic::reg::LVT_TIMER,
                    u32::from(vector) | lapic::TIMER_TSC_DEADLINE,
                );
            }
            EventTimer::LapicOneShot { .. } => {
                let vector = irq.register_local(on_timer).map_err(TimerError::Irq)?;
                lapic::write(lapic::reg::TIMER_INITIAL, 0);
                lapic::write(lapic::reg::TIMER_DIVIDE, lapic::DIVIDE_BY_1);
                lapic::write(
                    lapic::reg::LVT_TIMER,
                    u32::from(vector) | lapic::TIMER_ONE_SHOT,
                );
            }
        }
        Ok(())
    }

    /// Programs the event timer to interrupt at TSC value `at` (at once if it has passed).
    pub(super) fn arm(at: u64) {
        match EVENT.get() {
            Some(EventTimer::TscDeadline) => lapic::set_tsc_deadline(at.max(1)),
            Some(EventTimer::LapicOneShot { .. }) => {
                let ticks = at.saturating_sub(tsc());
                let counts = LAPIC_PER_TSC.get().map_or(ticks, |s| s.to_ns(ticks));
                lapic::write(
                    lapic::reg::TIMER_INITIAL,
                    counts.clamp(1, u64::from(u32::MAX)) as u32,
                );
            }
            Some(EventTimer::Pit) => {
                let ticks = at.saturating_sub(tsc());
                let counts = PIT_PER_TSC.get().map_or(ticks, |s| s.to_ns(ticks));
                pit::arm(counts.clamp(1, 0xffff) as u16);
            }
            None => {}
        }
    }

    pub(super) fn disarm() {
        match EVENT.get() {
            Some(EventTimer::TscDeadline) => lapic::set_tsc_deadline(0),
            Some(EventTimer::LapicOneShot { .. }) => lapic::write(lapic::reg::TIMER_INITIAL, 0),
            // Mode 0 fires once at most; the handler ignores it with no deadline set.
            Some(EventTimer::Pit) | None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_flags() {
        let cmdline = "unikernel.timer=pit unikernel.timer_advance=0 -- unikernel.timer=x";
        assert_eq!(flag(cmdline, "timer"), Some("pit"));
        assert_eq!(flag(cmdline, "timer_advance"), Some("0"));
        assert_eq!(flag("unikernel.timers=1", "timer"), None);
    }
}
