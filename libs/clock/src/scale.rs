//! Converting TSC ticks to nanoseconds and back with one multiplication and a shift
//! (the form of kvmclock's `tsc_to_system_mul` and `tsc_shift`), no division on the clock
//! read path.

/// `ns = ticks * to_ns >> shift`, `ticks = ns * to_ticks >> 32`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scale {
    to_ns: u64,
    shift: u32,
    to_ticks: u64,
    hz: u64,
}

const NS_PER_S: u128 = 1_000_000_000;

impl Scale {
    /// The scale of a counter ticking `hz` times a second (at least 1 MHz).
    pub fn from_hz(hz: u64) -> Scale {
        let hz = hz.max(1_000_000);
        Scale {
            to_ns: ((NS_PER_S << 32) / u128::from(hz)) as u64,
            shift: 32,
            to_ticks: ((u128::from(hz) << 32) / NS_PER_S) as u64,
            hz,
        }
    }

    /// The scale kvmclock gives: `ns = (ticks << tsc_shift) * mul >> 32` (a negative shift
    /// shifts right).
    pub fn from_pvclock(mul: u32, tsc_shift: i8) -> Scale {
        let (to_ns, shift) = if tsc_shift >= 0 {
            (u64::from(mul) << tsc_shift, 32)
        } else {
            (u64::from(mul), 32 + u32::from(tsc_shift.unsigned_abs()))
        };
        let hz = ((NS_PER_S << shift) / u128::from(to_ns.max(1))) as u64;
        Scale {
            to_ns,
            shift,
            to_ticks: ((u128::from(hz) << 32) / NS_PER_S) as u64,
            hz,
        }
    }

    /// Ticks per second.
    pub fn hz(&self) -> u64 {
        self.hz
    }

    pub fn to_ns(&self, ticks: u64) -> u64 {
        ((u128::from(ticks) * u128::from(self.to_ns)) >> self.shift) as u64
    }

    pub fn to_ticks(&self, ns: u64) -> u64 {
        ((u128::from(ns) * u128::from(self.to_ticks)) >> 32) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_at_common_frequencies() {
        for hz in [
            1_000_000_000u64,
            2_596_130_000,
            3_000_000_000,
            1_193_182 * 1000,
        ] {
            let scale = Scale::from_hz(hz);
            assert_eq!(scale.hz(), hz);
            assert!(scale.to_ns(hz).abs_diff(1_000_000_000) <= 1);
            let ticks = scale.to_ticks(1_000_000);
            assert!(ticks.abs_diff(hz / 1000) <= 1, "{hz}: {ticks}");
            // Ten minutes of ticks convert within a microsecond.
            let ten_min = hz * 600;
            assert!(scale.to_ns(ten_min).abs_diff(600_000_000_000) < 1_000);
        }
    }

    #[test]
    fn pvclock_scale_matches_its_definition() {
        // A 2.5 GHz TSC as KVM describes it: mul = 2^32 * 10^9 / (2.5e9 * 2^shift).
        let scale = Scale::from_pvclock(3_435_973_836, -1);
        assert!(scale.hz().abs_diff(2_500_000_000) < 2, "{}", scale.hz());
        assert!(scale.to_ns(2_500_000_000).abs_diff(1_000_000_000) < 2);
        let scale = Scale::from_pvclock(2_147_483_648, 1);
        assert_eq!(scale.hz(), 1_000_000_000);
        assert_eq!(scale.to_ns(12345), 12345);
    }
}
