//! The `timer` subsystem: a monotonic clock, the wall-clock time, `sleep`, and one-shot
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
#![no_std]
// Host builds (unit tests) compile the hardware paths out; what only they use is unused there.
#![cfg_attr(not(target_os = "none"), allow(dead_code))]
// Only the drivers of the clock hardware touch it; the clock logic needs no unsafe.
#![deny(unsafe_code)]

pub mod histogram;
#[allow(unsafe_code)]
pub mod kvmclock;
#[allow(unsafe_code)]
pub mod pit;
#[allow(unsafe_code)]
pub mod rtc;
pub mod scale;

use core::fmt;
use core::ops::{Add, AddAssign, Sub, SubAssign};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
pub use core::time::Duration;

use histogram::Histogram;
use scale::Scale;
use unikernel_arch::cmdline::KernelFlags;
use unikernel_arch::interrupts;

/// The most the timer is programmed ahead of a deadline.
pub const MAX_ADVANCE_NS: u64 = 150_000;

/// A point in time: nanoseconds since the kernel's first instruction. Monotonic.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(u64);

impl Instant {
    /// The kernel's first instruction.
    pub const BOOT: Instant = Instant(0);

    /// Now. Before the clock is initialised, [`Instant::BOOT`].
    pub fn now() -> Instant {
        Instant(now_ns())
    }

    /// The instant `ns` nanoseconds after boot.
    pub const fn from_nanos_since_boot(ns: u64) -> Instant {
        Instant(ns)
    }

    pub const fn as_nanos_since_boot(self) -> u64 {
        self.0
    }

    /// Time since `earlier`; zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }

    /// Time since `earlier`; zero if `earlier` is later (as `std` does since 1.60).
    pub fn duration_since(self, earlier: Instant) -> Duration {
        self.saturating_duration_since(earlier)
    }

    /// Time since this instant.
    pub fn elapsed(self) -> Duration {
        Instant::now().saturating_duration_since(self)
    }

    pub fn checked_add(self, duration: Duration) -> Option<Instant> {
        u64::try_from(duration.as_nanos())
            .ok()
            .and_then(|ns| self.0.checked_add(ns))
            .map(Instant)
    }

    pub fn checked_sub(self, duration: Duration) -> Option<Instant> {
        u64::try_from(duration.as_nanos())
            .ok()
            .and_then(|ns| self.0.checked_sub(ns))
            .map(Instant)
    }
}

impl fmt::Debug for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Instant({:?} since boot)", Duration::from_nanos(self.0))
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    /// # Panics
    /// On overflow (after 584 years of uptime).
    fn add(self, duration: Duration) -> Instant {
        self.checked_add(duration)
            .expect("overflow when adding a duration to an instant")
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, duration: Duration) {
        *self = *self + duration;
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;
    fn sub(self, duration: Duration) -> Instant {
        self.checked_sub(duration)
            .expect("overflow when subtracting a duration from an instant")
    }
}

impl SubAssign<Duration> for Instant {
    fn sub_assign(&mut self, duration: Duration) {
        *self = *self - duration;
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    fn sub(self, earlier: Instant) -> Duration {
        self.saturating_duration_since(earlier)
    }
}

/// The wall-clock time: nanoseconds since 1970-01-01 00:00:00 UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WallTime {
    pub unix_ns: u64,
}

impl WallTime {
    pub fn unix_seconds(self) -> u64 {
        self.unix_ns / 1_000_000_000
    }
}

impl fmt::Display for WallTime {
    /// ISO 8601: `2026-11-26T21:44:12.345Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seconds = self.unix_seconds();
        let (days, rest) = (seconds / 86_400, seconds % 86_400);
        let (year, month, day) = civil_from_days(days as i64);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
            rest / 3600,
            rest / 60 % 60,
            rest % 60,
            self.unix_ns / 1_000_000 % 1000
        )
    }
}

/// The date of a day counted from 1970-01-01 (Howard Hinnant's algorithm).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

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
    /// The `irq` subsystem is not initialised.
    NoIrq,
    /// Nothing reports the TSC's frequency and there is no PIT to measure it against.
    NoFrequency,
    /// The timer's interrupt could not be registered.
    Irq(unikernel_irq::IrqError),
}

impl fmt::Display for TimerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoIrq => f.write_str("the timer needs the irq subsystem, initialised first"),
            Self::NoFrequency => f.write_str(
                "the TSC frequency is unknown: no kvmclock, no CPUID leaf 0x15/0x16 and no PIT to measure it",
            ),
            Self::Irq(error) => write!(f, "the timer interrupt: {error}"),
        }
    }
}

/// Raw timer interrupt latency and the advance in use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimerStats {
    /// From the instant the timer was programmed to fire to the interrupt handler's first
    /// TSC read.
    pub latency: histogram::Summary,
    /// From a deadline to the alarm handler's call: what is left of the latency once the
    /// advance has been waited out.
    pub lateness: histogram::Summary,
    /// How far ahead of a deadline the timer is programmed now.
    pub advance: Duration,
    /// Interrupts that came before the deadline minus the advance and were re-armed (a
    /// one-shot count that ran short, or a deadline beyond the timer's range).
    pub rearmed: u64,
}

// ---------------------------------------------------------------------------------------
// State. Written by `init` before interrupts can reach the timer; afterwards the alarm
// state is only changed with interrupts disabled, on the one CPU.

static READY: AtomicBool = AtomicBool::new(false);
static BASE_TSC: AtomicU64 = AtomicU64::new(0);
static SCALE: spin::Once<Scale> = spin::Once::new();
static SOURCE: spin::Once<FrequencySource> = spin::Once::new();
static EVENT: spin::Once<EventTimer> = spin::Once::new();
/// For one-shot mode: LAPIC counts per TSC tick, as a scale from TSC ticks (in "ns").
static LAPIC_PER_TSC: spin::Once<Scale> = spin::Once::new();
static PIT_PER_TSC: spin::Once<Scale> = spin::Once::new();

const NONE: u64 = u64::MAX;
/// The deadline asked for, as a TSC value; NONE when no alarm is set.
static DEADLINE: AtomicU64 = AtomicU64::new(NONE);
/// The deadline as asked for, in ns since boot (DEADLINE is its TSC value, rounded).
static DEADLINE_NS: AtomicU64 = AtomicU64::new(NONE);
/// When the hardware was programmed to fire, as a TSC value.
static PROGRAMMED: AtomicU64 = AtomicU64::new(NONE);
/// The advance in TSC ticks, and whether it adapts.
static ADVANCE: AtomicU64 = AtomicU64::new(0);
static ADAPTIVE: AtomicBool = AtomicBool::new(true);
static REARMED: AtomicU64 = AtomicU64::new(0);
static LATENCY: spin::Mutex<Histogram> = spin::Mutex::new(Histogram::new());
static LATENESS: spin::Mutex<Histogram> = spin::Mutex::new(Histogram::new());
/// Called (in the timer interrupt) when the alarm's deadline is reached.
static HANDLER: spin::Once<fn()> = spin::Once::new();
/// Tells what the alarm after the one due at an instant will be (the scheduler's).
static PREDICTOR: spin::Once<fn(Instant) -> Option<Instant>> = spin::Once::new();
/// Blocks the calling thread until an instant (the scheduler's), for `Clock::sleep`.
static SLEEPER: spin::Once<fn(Instant)> = spin::Once::new();
static WALL_OFFSET: spin::Once<(Option<u64>, u64)> = spin::Once::new();

fn tsc() -> u64 {
    unikernel_arch::timeline::tsc()
}

fn scale() -> Scale {
    *SCALE.get().unwrap_or(&Scale::from_hz(1_000_000_000))
}

fn now_ns() -> u64 {
    if !READY.load(Ordering::Relaxed) {
        return 0;
    }
    scale().to_ns(tsc().saturating_sub(BASE_TSC.load(Ordering::Relaxed)))
}

fn tsc_of(instant: Instant) -> u64 {
    BASE_TSC.load(Ordering::Relaxed) + scale().to_ticks(instant.0)
}

/// The handle `main` takes for time.
#[derive(Clone, Copy, Debug)]
pub struct Clock(());

/// The handle, once [`init`] ran.
pub fn handle() -> Option<Clock> {
    READY.load(Ordering::Acquire).then_some(Clock(()))
}

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
        let (unix_ns, at) = *WALL_OFFSET.call_once(|| {
            let at = now_ns();
            #[cfg(target_os = "none")]
            let unix_ns = if *SOURCE.get().unwrap_or(&FrequencySource::CpuidBase)
                == FrequencySource::Kvmclock
            {
                Some(kvmclock::wall_ns())
            } else {
                rtc::read().map(|date| date.unix_seconds() * 1_000_000_000)
            };
            #[cfg(not(target_os = "none"))]
            let unix_ns = None;
            (unix_ns, at)
        });
        unix_ns.map(|unix_ns| WallTime {
            unix_ns: unix_ns + (now_ns() - at),
        })
    }

    /// Blocks for `duration`: the calling thread sleeps where there is a scheduler, else
    /// the CPU halts until the timer interrupt.
    pub fn sleep(&self, duration: Duration) {
        self.sleep_until(Instant::now() + duration);
    }

    /// Blocks until `deadline`.
    pub fn sleep_until(&self, deadline: Instant) {
        if let Some(sleeper) = SLEEPER.get() {
            return sleeper(deadline);
        }
        while Instant::now() < deadline {
            set_alarm(Some(deadline));
            interrupts::enable_and_wait();
        }
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
        TimerStats {
            latency: interrupts::without(|| LATENCY.lock().summary()),
            lateness: interrupts::without(|| LATENESS.lock().summary()),
            advance: Duration::from_nanos(scale().to_ns(ADVANCE.load(Ordering::Relaxed))),
            rearmed: REARMED.load(Ordering::Relaxed),
        }
    }

    /// Forgets the latency figures (to measure a steady state after a warm-up).
    pub fn reset_timer_stats(&self) {
        interrupts::without(|| {
            LATENCY.lock().clear();
            LATENESS.lock().clear();
        });
        REARMED.store(0, Ordering::Relaxed);
    }
}

/// Sets the function the timer interrupt calls when the alarm's deadline is reached (the
/// scheduler's). Only the first call has an effect.
pub fn set_alarm_handler(handler: fn()) {
    HANDLER.call_once(|| handler);
}

/// Sets the function that tells, while the timer interrupt waits out its advance before a
/// deadline, which alarm will follow: the timer is then programmed for it during that
/// wait, off the path from the deadline to the handler (under QEMU TCG programming the
/// LAPIC timer costs 10 to 40 us). Only the first call has an effect.
pub fn set_alarm_predictor(predictor: fn(Instant) -> Option<Instant>) {
    PREDICTOR.call_once(|| predictor);
}

/// Sets what `Clock::sleep` does instead of halting (the scheduler's: block the thread).
/// Only the first call has an effect.
pub fn set_sleeper(sleeper: fn(Instant)) {
    SLEEPER.call_once(|| sleeper);
}

/// Sets the one alarm: the timer interrupt comes at `deadline` (or at once if it has
/// passed); `None` cancels it, and then no timer interrupt comes at all.
pub fn set_alarm(deadline: Option<Instant>) {
    interrupts::without(|| match deadline {
        None => {
            DEADLINE.store(NONE, Ordering::Relaxed);
            PROGRAMMED.store(NONE, Ordering::Relaxed);
            #[cfg(target_os = "none")]
            target::disarm();
        }
        Some(deadline) => {
            let at = tsc_of(deadline);
            let fire = at.saturating_sub(ADVANCE.load(Ordering::Relaxed));
            // Programmed already (by the prediction in `on_timer`)?
            if DEADLINE.load(Ordering::Relaxed) == at && PROGRAMMED.load(Ordering::Relaxed) == fire
            {
                return;
            }
            DEADLINE.store(at, Ordering::Relaxed);
            DEADLINE_NS.store(deadline.0, Ordering::Relaxed);
            program(fire);
        }
    });
}

/// The deadline of the alarm, if one is set.
pub fn alarm() -> Option<Instant> {
    let at = DEADLINE_NS.load(Ordering::Relaxed);
    (DEADLINE.load(Ordering::Relaxed) != NONE).then_some(Instant(at))
}

/// Programs the hardware to interrupt at TSC value `at`.
fn program(at: u64) {
    PROGRAMMED.store(at, Ordering::Relaxed);
    #[cfg(target_os = "none")]
    target::arm(at);
}

/// The adaptive advance: a streaming estimate of the 99.5th percentile of the latency
/// (up by `up` when a sample is above it, down by up/199 when below, so that it settles
/// where one sample in 200 is above), clamped to `max`. Each release that comes later than
/// the advance is late by the difference, so this quantile bounds the release jitter's
/// 99th percentile; the price is the CPU time the handler spins, advance minus latency.
fn adapt_advance(advance: u64, latency: u64, up: u64, max: u64) -> u64 {
    if latency > advance {
        (advance + up.min(latency - advance)).min(max)
    } else {
        advance.saturating_sub((up / 199).max(1))
    }
}

/// The timer interrupt.
fn on_timer() {
    let now = tsc();
    let deadline = DEADLINE.load(Ordering::Relaxed);
    if deadline == NONE {
        return; // cancelled after it was programmed
    }
    let programmed = PROGRAMMED.load(Ordering::Relaxed);
    let advance = ADVANCE.load(Ordering::Relaxed);
    let scale = scale();
    if now >= programmed {
        let latency = now - programmed;
        LATENCY.lock().record(scale.to_ns(latency));
        if ADAPTIVE.load(Ordering::Relaxed) {
            let up = scale.to_ticks(2_000);
            let max = scale.to_ticks(MAX_ADVANCE_NS);
            ADVANCE.store(adapt_advance(advance, latency, up, max), Ordering::Relaxed);
        }
    }
    // Early: wait out a short rest on the TSC, re-arm for a long one.
    let spin_limit = advance + scale.to_ticks(10_000);
    if now < deadline && deadline - now > spin_limit {
        REARMED.fetch_add(1, Ordering::Relaxed);
        return program(deadline.saturating_sub(advance));
    }
    fire(deadline);
}

/// Runs the alarm due at TSC value `deadline` (less than the advance away, or passed):
/// programs the next alarm, waits out the rest on the TSC, calls the handler.
/// Interrupts must be disabled.
fn fire(deadline: u64) {
    if tsc() < deadline {
        // Meanwhile, program the alarm that will follow this one.
        let due = Instant(DEADLINE_NS.load(Ordering::Relaxed));
        let next = PREDICTOR
            .get()
            .and_then(|predict| predict(due))
            .filter(|&next| next > due);
        let advance = ADVANCE.load(Ordering::Relaxed);
        if let Some(next) = next {
            program(tsc_of(next).saturating_sub(advance));
        }
        while tsc() < deadline {
            core::hint::spin_loop();
        }
        match next {
            Some(next) => {
                DEADLINE.store(tsc_of(next), Ordering::Relaxed);
                DEADLINE_NS.store(next.0, Ordering::Relaxed);
            }
            None => {
                DEADLINE.store(NONE, Ordering::Relaxed);
                PROGRAMMED.store(NONE, Ordering::Relaxed);
            }
        }
    } else {
        DEADLINE.store(NONE, Ordering::Relaxed);
        PROGRAMMED.store(NONE, Ordering::Relaxed);
    }
    LATENESS
        .lock()
        .record(scale().to_ns(tsc().saturating_sub(deadline)));
    if let Some(handler) = HANDLER.get() {
        handler();
    }
}

/// Starts the clock and the one-shot timer. `irq` must be initialised.
pub fn init(cmdline: &str) -> Result<Clock, TimerError> {
    let irq = unikernel_irq::handle().ok_or(TimerError::NoIrq)?;
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
    target::init(irq, flags.value("timer"))?;
    #[cfg(not(target_os = "none"))]
    {
        let _ = irq;
        SCALE.call_once(|| Scale::from_hz(1_000_000_000));
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
    extern crate std;
    use std::format;

    #[test]
    fn instants_and_durations() {
        let a = Instant::from_nanos_since_boot(1_000);
        let b = a + Duration::from_micros(5);
        assert_eq!(b.as_nanos_since_boot(), 6_000);
        assert_eq!(b - a, Duration::from_micros(5));
        assert_eq!(a - b, Duration::ZERO);
        assert_eq!(a.checked_sub(Duration::from_micros(2)), None);
        assert_eq!(b - Duration::from_nanos(6_000), Instant::BOOT);
        assert!(a < b);
    }

    #[test]
    fn wall_time_prints_as_iso_8601() {
        let t = WallTime {
            unix_ns: 1_709_210_096_123_000_000,
        };
        assert_eq!(format!("{t}"), "2024-02-29T12:34:56.123Z");
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        for days in [0i64, 59, 365, 11_016, 19_782, 30_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(rtc::days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn advance_tracks_a_high_percentile() {
        // Latencies of 40 us, one in fifty of them 80 us: the advance settles between.
        let (up, max) = (2_000, 150_000);
        let mut advance = 0;
        for i in 0..20_000u64 {
            let latency = if i % 50 == 0 { 80_000 } else { 40_000 };
            advance = adapt_advance(advance, latency, up, max);
        }
        assert!((40_000..=80_000).contains(&advance), "{advance}");
        // A one-off spike does not stick.
        let spiked = adapt_advance(advance, 10_000_000, up, max);
        assert!(spiked <= advance + up);
        assert_eq!(adapt_advance(max, 10 * max, up, max), max);
    }
}
