//! Monotonic time: the TSC since the kernel's first instruction, in nanoseconds.
//!
//! Before `init` knows the TSC's frequency every reading is [`Instant::BOOT`]; afterwards
//! a reading is one TSC read, one subtraction and one multiplication ([`Scale`]).

use core::fmt;
use core::ops::{Add, AddAssign, Sub, SubAssign};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use core::time::Duration;

use crate::scale::Scale;

/// Whether `init` has set [`BASE_TSC`] and [`SCALE`]: until then time stands at boot.
pub(crate) static READY: AtomicBool = AtomicBool::new(false);
/// The TSC at the kernel's first instruction (the boot timeline's first mark): instant 0.
pub(crate) static BASE_TSC: AtomicU64 = AtomicU64::new(0);
/// TSC ticks to nanoseconds, from the frequency `init` found; set once.
pub(crate) static SCALE: spin::Once<Scale> = spin::Once::new();

pub(crate) fn tsc() -> u64 {
    unikernel_arch::timeline::tsc()
}

/// The TSC's scale; 1 GHz until `init` knows better.
pub(crate) fn scale() -> Scale {
    *SCALE.get().unwrap_or(&Scale::from_hz(1_000_000_000))
}

pub(crate) fn now_ns() -> u64 {
    if !READY.load(Ordering::Relaxed) {
        return 0;
    }
    scale().to_ns(tsc().saturating_sub(BASE_TSC.load(Ordering::Relaxed)))
}

/// The TSC value at `instant`.
pub(crate) fn tsc_of(instant: Instant) -> u64 {
    BASE_TSC.load(Ordering::Relaxed) + scale().to_ticks(instant.0)
}

/// A point in time: nanoseconds since the kernel's first instruction. Monotonic.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(pub(crate) u64);

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
