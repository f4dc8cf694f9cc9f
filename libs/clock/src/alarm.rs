//! The one alarm: a deadline at which the timer interrupt calls the scheduler's handler.
//!
//! A VMM delivers timer interrupts late, so the hardware is programmed `ADVANCE` ahead of
//! the deadline and the interrupt waits out the rest on the TSC (see the crate's
//! documentation). The state here is changed only with interrupts disabled, on the one CPU.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use core::time::Duration;

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

/// `DEADLINE`, `DEADLINE_NS` and `PROGRAMMED` when no alarm is set.
const NONE: u64 = u64::MAX;
/// The deadline asked for, as a TSC value; `NONE` when no alarm is set.
static DEADLINE: AtomicU64 = AtomicU64::new(NONE);
/// The deadline as asked for, in ns since boot (`DEADLINE` is its TSC value, rounded).
static DEADLINE_NS: AtomicU64 = AtomicU64::new(NONE);
/// When the hardware was programmed to fire, as a TSC value.
static PROGRAMMED: AtomicU64 = AtomicU64::new(NONE);
/// How far ahead of a deadline the hardware is programmed, in TSC ticks.
pub(crate) static ADVANCE: AtomicU64 = AtomicU64::new(0);
/// Whether [`ADVANCE`] adapts to the latency seen (not when the kernel flag fixes it).
pub(crate) static ADAPTIVE: AtomicBool = AtomicBool::new(true);
/// Interrupts that came too early and were re-armed ([`TimerStats::rearmed`]).
static REARMED: AtomicU64 = AtomicU64::new(0);
/// From the programmed instant to the interrupt handler ([`TimerStats::latency`]).
static LATENCY: spin::Mutex<Histogram> = spin::Mutex::new(Histogram::new());
/// From the deadline to the call of the alarm handler ([`TimerStats::lateness`]).
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
        advance: Duration::from_nanos(scale().to_ns(ADVANCE.load(Ordering::Relaxed))),
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

/// Sets the one alarm: the timer interrupt comes at `deadline` (or at once if it has
/// passed); `None` cancels it, and then no timer interrupt comes at all.
pub fn set_alarm(deadline: Option<Instant>) {
    interrupts::without(|| match deadline {
        None => {
            DEADLINE.store(NONE, Ordering::Relaxed);
            PROGRAMMED.store(NONE, Ordering::Relaxed);
            #[cfg(target_os = "none")]
            crate::event::disarm();
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

/// The timer interrupt.
pub(crate) fn on_timer() {
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
        let next = HOOKS
            .get()
            .and_then(|hooks| (hooks.predict)(due))
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
