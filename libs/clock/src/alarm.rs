//! The one alarm: a deadline at which the timer interrupt calls the scheduler's handler.
//!
//! A VMM delivers timer interrupts late, so the hardware is programmed `ADVANCE` ahead of
//! the deadline and the interrupt waits out the rest on the TSC (see the crate's
//! documentation). Each CPU has its own alarm (its own local APIC timer), changed only
//! with interrupts disabled, by that CPU. The latency histograms are the boot CPU's.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use core::time::Duration;

use unikernel_arch::acpi::MAX_CPUS;
use unikernel_arch::interrupts;

use crate::histogram::{self, Histogram};
use crate::instant::{Instant, scale, tsc, tsc_of};

/// The most the timer is programmed ahead of a deadline.
pub const MAX_ADVANCE_NS: u64 = 150_000;

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

/// What a scheduler gives the clock so that alarms and sleeps go through it.
#[derive(Clone, Copy, Debug)]
pub struct Hooks {
    /// Called in the timer interrupt when the alarm's deadline is reached.
    pub on_alarm: fn(),
    /// Tells, while the timer interrupt waits out its advance before the deadline due at an
    /// instant, which alarm will follow: the timer is programmed for it during that wait,
    /// off the path from the deadline to `on_alarm` (under QEMU TCG programming the LAPIC
    /// timer costs 10 to 40 us).
    pub predict: fn(Instant) -> Option<Instant>,
    /// What `Clock::sleep_until` does instead of halting the CPU: block the calling thread.
    pub sleep_until: fn(Instant),
}

/// `deadline` and `programmed` when no alarm is set. Zero, so that the table of alarms
/// is in .bss, not in the image: the TSC values stored are at least 1 (`tsc_at`).
const NONE: u64 = 0;

/// The TSC value of `instant`, never [`NONE`].
fn tsc_at(instant: Instant) -> u64 {
    tsc_of(instant).max(1)
}

/// One CPU's alarm: each CPU has its own local APIC timer and its own deadlines (the
/// scheduler of CPU k sets CPU k's), so no CPU takes another's lock or line to set one.
struct Alarm {
    /// The deadline asked for, as a TSC value; `NONE` when no alarm is set.
    deadline: AtomicU64,
    /// The deadline as asked for, in ns since boot (`deadline` is its TSC value, rounded).
    deadline_ns: AtomicU64,
    /// When the hardware was programmed to fire, as a TSC value.
    programmed: AtomicU64,
    /// How far ahead of a deadline the hardware is programmed, in TSC ticks.
    advance: AtomicU64,
}

static ALARMS: [Alarm; MAX_CPUS] = [const {
    Alarm {
        deadline: AtomicU64::new(NONE),
        deadline_ns: AtomicU64::new(0),
        programmed: AtomicU64::new(NONE),
        advance: AtomicU64::new(0),
    }
}; MAX_CPUS];

/// The alarm of the CPU this runs on.
fn this() -> &'static Alarm {
    &ALARMS[unikernel_arch::smp::this_cpu()]
}

/// The advance a CPU starts with, in TSC ticks (the kernel flag's, or 0 to adapt from).
pub(crate) static ADVANCE: AtomicU64 = AtomicU64::new(0);
/// Whether the advance adapts to the latency seen (not when the kernel flag fixes it).
pub(crate) static ADAPTIVE: AtomicBool = AtomicBool::new(true);
/// Interrupts that came too early and were re-armed ([`TimerStats::rearmed`]).
static REARMED: AtomicU64 = AtomicU64::new(0);
/// From the programmed instant to the interrupt handler ([`TimerStats::latency`]), on
/// the boot CPU.
static LATENCY: spin::Mutex<Histogram> = spin::Mutex::new(Histogram::new());
/// From the deadline to the call of the alarm handler ([`TimerStats::lateness`]), on the
/// boot CPU.
static LATENESS: spin::Mutex<Histogram> = spin::Mutex::new(Histogram::new());
/// The scheduler's hooks, once it handed them over; set once.
static HOOKS: spin::Once<Hooks> = spin::Once::new();

/// Hands alarms and sleeps to a scheduler. Only the first call has an effect.
pub(crate) fn set_hooks(hooks: Hooks) {
    HOOKS.call_once(|| hooks);
}

/// Blocks until `deadline`: the scheduler's sleep where one took over, else the CPU halts
/// until the timer interrupt.
pub(crate) fn sleep_until(deadline: Instant) {
    if let Some(hooks) = HOOKS.get() {
        return (hooks.sleep_until)(deadline);
    }
    while Instant::now() < deadline {
        set_alarm(Some(deadline));
        interrupts::enable_and_wait();
    }
}

pub(crate) fn stats() -> TimerStats {
    TimerStats {
        latency: interrupts::without(|| LATENCY.lock().summary()),
        lateness: interrupts::without(|| LATENESS.lock().summary()),
        advance: Duration::from_nanos(scale().to_ns(this().advance.load(Ordering::Relaxed))),
        rearmed: REARMED.load(Ordering::Relaxed),
    }
}

pub(crate) fn reset_stats() {
    interrupts::without(|| {
        LATENCY.lock().clear();
        LATENESS.lock().clear();
    });
    REARMED.store(0, Ordering::Relaxed);
}

/// Sets the alarm of the CPU this runs on: its timer interrupt comes at `deadline` (or
/// at once if it has passed); `None` cancels it, and then no timer interrupt comes at all.
pub fn set_alarm(deadline: Option<Instant>) {
    interrupts::without(|| {
        let alarm = this();
        match deadline {
            None => {
                alarm.deadline.store(NONE, Ordering::Relaxed);
                alarm.programmed.store(NONE, Ordering::Relaxed);
                #[cfg(target_os = "none")]
                crate::event::disarm();
            }
            Some(deadline) => {
                let at = tsc_at(deadline);
                let fire = at
                    .saturating_sub(alarm.advance.load(Ordering::Relaxed))
                    .max(1);
                // Programmed already (by the prediction in `on_timer`)?
                if alarm.deadline.load(Ordering::Relaxed) == at
                    && alarm.programmed.load(Ordering::Relaxed) == fire
                {
                    return;
                }
                alarm.deadline.store(at, Ordering::Relaxed);
                alarm.deadline_ns.store(deadline.0, Ordering::Relaxed);
                program(alarm, fire);
            }
        }
    });
}

/// The deadline of the alarm of the CPU this runs on, if one is set.
pub fn alarm() -> Option<Instant> {
    let alarm = this();
    let at = alarm.deadline_ns.load(Ordering::Relaxed);
    (alarm.deadline.load(Ordering::Relaxed) != NONE).then_some(Instant(at))
}

/// Starts the alarm of an AP: the advance the boot CPU started with (the kernel flag's,
/// or 0 to adapt from).
pub(crate) fn init_this_cpu() {
    this()
        .advance
        .store(ADVANCE.load(Ordering::Relaxed), Ordering::Relaxed);
}

/// Programs this CPU's hardware to interrupt at TSC value `at`.
fn program(alarm: &Alarm, at: u64) {
    let at = at.max(1);
    alarm.programmed.store(at, Ordering::Relaxed);
    #[cfg(target_os = "none")]
    crate::event::arm(at);
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

/// The timer interrupt, on the CPU whose timer fired.
pub(crate) fn on_timer() {
    let now = tsc();
    let cpu = unikernel_arch::smp::this_cpu();
    let alarm = &ALARMS[cpu];
    let deadline = alarm.deadline.load(Ordering::Relaxed);
    if deadline == NONE {
        return; // cancelled after it was programmed
    }
    let programmed = alarm.programmed.load(Ordering::Relaxed);
    let advance = alarm.advance.load(Ordering::Relaxed);
    let scale = scale();
    if now >= programmed {
        let latency = now - programmed;
        if cpu == 0 {
            LATENCY.lock().record(scale.to_ns(latency));
        }
        if ADAPTIVE.load(Ordering::Relaxed) {
            let up = scale.to_ticks(2_000);
            let max = scale.to_ticks(MAX_ADVANCE_NS);
            alarm
                .advance
                .store(adapt_advance(advance, latency, up, max), Ordering::Relaxed);
        }
    }
    // Early: wait out a short rest on the TSC, re-arm for a long one.
    let spin_limit = advance + scale.to_ticks(10_000);
    if now < deadline && deadline - now > spin_limit {
        REARMED.fetch_add(1, Ordering::Relaxed);
        return program(alarm, deadline.saturating_sub(advance));
    }
    fire(alarm, cpu == 0, deadline);
}

/// Runs the alarm due at TSC value `deadline` (less than the advance away, or passed):
/// programs the next alarm, waits out the rest on the TSC, calls the handler.
/// Interrupts must be disabled.
fn fire(alarm: &Alarm, boot_cpu: bool, deadline: u64) {
    if tsc() < deadline {
        // Meanwhile, program the alarm that will follow this one.
        let due = Instant(alarm.deadline_ns.load(Ordering::Relaxed));
        let next = HOOKS
            .get()
            .and_then(|hooks| (hooks.predict)(due))
            .filter(|&next| next > due);
        let advance = alarm.advance.load(Ordering::Relaxed);
        if let Some(next) = next {
            program(alarm, tsc_at(next).saturating_sub(advance));
        }
        while tsc() < deadline {
            core::hint::spin_loop();
        }
        match next {
            Some(next) => {
                alarm.deadline.store(tsc_at(next), Ordering::Relaxed);
                alarm.deadline_ns.store(next.0, Ordering::Relaxed);
            }
            None => {
                alarm.deadline.store(NONE, Ordering::Relaxed);
                alarm.programmed.store(NONE, Ordering::Relaxed);
            }
        }
    } else {
        alarm.deadline.store(NONE, Ordering::Relaxed);
        alarm.programmed.store(NONE, Ordering::Relaxed);
    }
    if boot_cpu {
        LATENESS
            .lock()
            .record(scale().to_ns(tsc().saturating_sub(deadline)));
    }
    if let Some(hooks) = HOOKS.get() {
        (hooks.on_alarm)();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
