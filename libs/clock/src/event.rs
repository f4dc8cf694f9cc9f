//! The event timer: where the TSC's frequency comes from (kvmclock, CPUID, or a measurement
//! against the PIT) and what raises the timer interrupt (the LAPIC timer in TSC-deadline or
//! one-shot mode, or the PIT), chosen and set up by `init`, then armed for each alarm.

use core::fmt;
use core::time::Duration;

use crate::scale::Scale;
#[cfg(target_os = "none")]
use crate::{
    instant::{SCALE, scale, tsc},
    kvmclock, pit,
};
#[cfg(target_os = "none")]
use core::arch::x86_64::__cpuid;
#[cfg(target_os = "none")]
use unikernel_irq::lapic;

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
pub(crate) static SOURCE: spin::Once<FrequencySource> = spin::Once::new();
/// What raises the timer interrupt; set once by `init`.
pub(crate) static EVENT: spin::Once<EventTimer> = spin::Once::new();
/// For the LAPIC timer in one-shot mode: LAPIC counts per TSC tick, as a scale from TSC
/// ticks (in "ns"); set once by `init`.
static LAPIC_PER_TSC: spin::Once<Scale> = spin::Once::new();
/// The vector of the local APIC timer (0: the PIT raises the timer interrupt); set once by
/// `init`, read by each AP to program its own timer.
static LAPIC_TIMER_VECTOR: core::sync::atomic::AtomicU8 = core::sync::atomic::AtomicU8::new(0);
/// For the PIT: PIT counts per TSC tick, as a scale from TSC ticks; set once by `init`.
static PIT_PER_TSC: spin::Once<Scale> = spin::Once::new();

#[cfg(target_os = "none")]

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

#[cfg(target_os = "none")]
fn lapic_current() -> u32 {
    lapic::read(lapic::reg::TIMER_CURRENT)
}

#[cfg(target_os = "none")]
/// Starts the LAPIC timer counting down from the top, masked, to measure its rate.
fn lapic_free_run() {
    lapic::write(lapic::reg::TIMER_DIVIDE, lapic::DIVIDE_BY_1);
    lapic::write(lapic::reg::LVT_TIMER, lapic::LVT_MASKED);
    lapic::write(lapic::reg::TIMER_INITIAL, u32::MAX);
}

#[cfg(target_os = "none")]
pub(crate) fn init(
    irq: unikernel_irq::Irq,
    forced: Option<&str>,
    on_timer: fn(),
) -> Result<(), TimerError> {
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
        lapic_hz = measured
            .extra
            .map(|counts| (u128::from(counts) * u128::from(hz) / u128::from(measured.tsc)) as u64);
        unikernel_arch::timeline::mark("pit-calibration");
        let took = Duration::from_nanos(Scale::from_hz(hz).to_ns(measured.took));
        (hz, FrequencySource::Pit { took })
    };
    SCALE.call_once(|| Scale::from_hz(tsc_hz));
    SOURCE.call_once(|| source);
    unikernel_arch::timeline::set_tsc_hz(tsc_hz);
    let tsc_scale = scale();

    // The PIT starts out periodic; stop it so that it costs the VMM nothing.
    pit::stop();
    let event = match event {
        EventTimer::LapicOneShot { .. } => {
            let hz = match lapic_hz {
                Some(hz) if hz > 0 => hz,
                _ => {
                    // 50 us against the TSC; on a host busy enough that the VMM's clock did
                    // not move in that time, longer (up to 12.8 ms) rather than a rate of 0.
                    let mut window_ns = 50_000;
                    loop {
                        lapic_free_run();
                        let (c0, t0) = (lapic_current(), tsc());
                        while tsc() - t0 < tsc_scale.to_ticks(window_ns) {}
                        let (c1, t1) = (lapic_current(), tsc());
                        let counts = c0.wrapping_sub(c1);
                        if counts > 0 || window_ns >= 12_800_000 {
                            break (u128::from(counts) * u128::from(tsc_hz)
                                / u128::from((t1 - t0).max(1)))
                                as u64;
                        }
                        window_ns *= 4;
                    }
                }
            };
            if hz < 100 {
                return Err(TimerError::NoFrequency);
            }
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
        EventTimer::TscDeadline | EventTimer::LapicOneShot { .. } => {
            let vector = irq.register_local(on_timer).map_err(TimerError::Irq)?;
            LAPIC_TIMER_VECTOR.store(vector, core::sync::atomic::Ordering::Release);
            program_local_timer(event, vector);
        }
    }
    Ok(())
}

#[cfg(target_os = "none")]
/// Sets up the local APIC timer of the CPU this runs on to raise `vector`.
fn program_local_timer(event: EventTimer, vector: u8) {
    match event {
        EventTimer::TscDeadline => lapic::write(
            lapic::reg::LVT_TIMER,
            u32::from(vector) | lapic::TIMER_TSC_DEADLINE,
        ),
        EventTimer::LapicOneShot { .. } => {
            lapic::write(lapic::reg::TIMER_INITIAL, 0);
            lapic::write(lapic::reg::TIMER_DIVIDE, lapic::DIVIDE_BY_1);
            lapic::write(
                lapic::reg::LVT_TIMER,
                u32::from(vector) | lapic::TIMER_ONE_SHOT,
            );
        }
        EventTimer::Pit => {}
    }
}

/// Gives the AP this runs on a timer of its own: its local APIC timer, in the boot CPU's
/// mode and on its vector (the rate measured on the boot CPU holds for every CPU of the
/// VM). Returns false where the timer is the PIT, which only the boot CPU has.
pub fn init_this_cpu() -> bool {
    let vector = LAPIC_TIMER_VECTOR.load(core::sync::atomic::Ordering::Acquire);
    let Some(&event) = EVENT.get().filter(|_| vector != 0) else {
        return false;
    };
    #[cfg(target_os = "none")]
    program_local_timer(event, vector);
    #[cfg(not(target_os = "none"))]
    let _ = event;
    crate::alarm::init_this_cpu();
    true
}

#[cfg(target_os = "none")]
/// Programs the event timer to interrupt at TSC value `at` (at once if it has passed).
pub(crate) fn arm(at: u64) {
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
        // The PIT is CPU 0's alone: an AP has no timer then (no task is placed on one,
        // and a sleep there does not end by itself).
        Some(EventTimer::Pit) if unikernel_arch::smp::this_cpu() != 0 => {}
        Some(EventTimer::Pit) => {
            let ticks = at.saturating_sub(tsc());
            let counts = PIT_PER_TSC.get().map_or(ticks, |s| s.to_ns(ticks));
            pit::arm(counts.clamp(1, 0xffff) as u16);
        }
        None => {}
    }
}

#[cfg(target_os = "none")]
pub(crate) fn disarm() {
    match EVENT.get() {
        Some(EventTimer::TscDeadline) => lapic::set_tsc_deadline(0),
        Some(EventTimer::LapicOneShot { .. }) => lapic::write(lapic::reg::TIMER_INITIAL, 0),
        // Mode 0 fires once at most; the handler ignores it with no deadline set.
        Some(EventTimer::Pit) | None => {}
    }
}
