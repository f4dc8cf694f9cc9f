//! The wall-clock time: kvmclock's (to the nanosecond) where the VMM offers it, else the
//! CMOS RTC's (to the second), read once and carried forward on the monotonic clock.

use core::fmt;

#[cfg(target_os = "none")]
use crate::event::{FrequencySource, SOURCE};
use crate::instant::now_ns;
#[cfg(target_os = "none")]
use crate::{kvmclock, rtc};

/// The wall-clock time at the first reading (ns since the Unix epoch, or `None` where no
/// source has one) and the monotonic time of that reading (ns since boot).
static WALL_OFFSET: spin::Once<(Option<u64>, u64)> = spin::Once::new();

/// The wall-clock time someone who knows it better set ([`set`]), and the monotonic time
/// then; wins over [`WALL_OFFSET`].
static WALL_SET: spin::Mutex<Option<(u64, u64)>> = spin::Mutex::new(None);

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

/// Sets the wall-clock time to `time` now: a function image restored from a snapshot
/// learns it from the host with each request (its own reading would be the snapshot's).
pub(crate) fn set(time: WallTime) {
    let at = now_ns();
    unikernel_arch::interrupts::without(|| *WALL_SET.lock() = Some((time.unix_ns, at)));
}

/// The wall-clock time now, read from the hardware at the first call, or as last [`set`].
pub(crate) fn now() -> Option<WallTime> {
    if let Some((unix_ns, at)) = unikernel_arch::interrupts::without(|| *WALL_SET.lock()) {
        return Some(WallTime {
            unix_ns: unix_ns + (now_ns() - at),
        });
    }
    let (unix_ns, at) = *WALL_OFFSET.call_once(|| {
        let at = now_ns();
        #[cfg(target_os = "none")]
        let unix_ns =
            if *SOURCE.get().unwrap_or(&FrequencySource::CpuidBase) == FrequencySource::Kvmclock {
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

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::format;

    /// A set time wins over the hardware's (none on the host) and is carried forward.
    #[test]
    fn a_set_wall_clock_is_the_wall_clock() {
        let time = WallTime {
            unix_ns: 1_790_000_000_123_000_000,
        };
        set(time);
        let now = now().expect("a wall clock once set");
        assert!(
            now >= time && now.unix_ns - time.unix_ns < 1_000_000_000,
            "{now}"
        );
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
            assert_eq!(crate::rtc::days_from_civil(y, m, d), days);
        }
    }
}
