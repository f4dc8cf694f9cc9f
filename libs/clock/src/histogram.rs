//! Fixed-size histograms of durations: constant memory however long the app runs, with
//! the exact minimum and maximum and percentiles within 3% (log-linear buckets: 16 per
//! power of two, values below 32 ns exact), in the manner of HdrHistogram.

use core::fmt;
use core::time::Duration;

/// Sub-buckets per power of two: 2^SUB_BITS.
const SUB_BITS: u32 = 4;
const SUB: u64 = 1 << SUB_BITS;
/// The largest value kept exactly in a bucket of its own: below 2 * SUB.
/// Buckets cover values up to 2^40 ns (about 18 minutes); larger ones land in the last.
const MAX_SHIFT: u32 = 40 - SUB_BITS;
/// The number of buckets.
pub const BUCKETS: usize = (SUB * (MAX_SHIFT as u64 + 2)) as usize;

/// The bucket of `value`.
fn index(value: u64) -> usize {
    if value < 2 * SUB {
        return value as usize;
    }
    let msb = 63 - value.leading_zeros();
    let shift = (msb - SUB_BITS).min(MAX_SHIFT);
    let mantissa = (value >> shift).min(2 * SUB - 1);
    (SUB * u64::from(shift) + mantissa) as usize
}

/// The smallest value in bucket `index`, and the bucket's width.
fn bucket(index: usize) -> (u64, u64) {
    let index = index as u64;
    if index < 2 * SUB {
        return (index, 1);
    }
    let shift = index / SUB - 1;
    let mantissa = index - SUB * shift;
    (mantissa << shift, 1 << shift)
}

/// A histogram of nanosecond values.
#[derive(Clone)]
pub struct Histogram {
    counts: [u32; BUCKETS],
    count: u64,
    sum: u128,
    min: u64,
    max: u64,
}

impl fmt::Debug for Histogram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Histogram")
            .field("summary", &self.summary())
            .finish()
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    pub const fn new() -> Self {
        Self {
            counts: [0; BUCKETS],
            count: 0,
            sum: 0,
            min: u64::MAX,
            max: 0,
        }
    }

    /// Adds one value, in nanoseconds.
    pub fn record(&mut self, ns: u64) {
        let bucket = &mut self.counts[index(ns)];
        *bucket = bucket.saturating_add(1);
        self.count += 1;
        self.sum += u128::from(ns);
        self.min = self.min.min(ns);
        self.max = self.max.max(ns);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// The value below which `per_10k` / 10000 of the values lie (5000: the median, 9900:
    /// the 99th percentile): the middle of the bucket that holds it, clamped to the exact
    /// minimum and maximum. 0 when empty.
    pub fn quantile(&self, per_10k: u32) -> u64 {
        if self.count == 0 {
            return 0;
        }
        // The 1-based rank of the value: ceil(count * q), at least 1.
        let rank = (self.count * u64::from(per_10k.min(10_000)))
            .div_ceil(10_000)
            .clamp(1, self.count);
        let mut seen = 0u64;
        for (i, &n) in self.counts.iter().enumerate() {
            seen += u64::from(n);
            if seen >= rank {
                let (low, width) = bucket(i);
                return (low + width / 2).clamp(self.min, self.max);
            }
        }
        self.max
    }

    /// Count, minimum, median, 99th percentile, maximum and mean.
    pub fn summary(&self) -> Summary {
        let empty = self.count == 0;
        let ns = |value: u64| Duration::from_nanos(value);
        Summary {
            count: self.count,
            min: ns(if empty { 0 } else { self.min }),
            p50: ns(self.quantile(5_000)),
            p99: ns(self.quantile(9_900)),
            max: ns(self.max),
            mean: ns(if empty {
                0
            } else {
                (self.sum / u128::from(self.count)) as u64
            }),
        }
    }

    /// Forgets every value.
    pub fn clear(&mut self) {
        *self = Self::new();
    }
}

/// The figures of a histogram.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub count: u64,
    pub min: Duration,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub mean: Duration,
}

/// A duration in the unit that suits it: `850 ns`, `12.3 us`, `4.56 ms`, `1.20 s`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Short(pub Duration);

impl fmt::Display for Short {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ns = self.0.as_nanos();
        let (scale, unit) = match ns {
            0..1_000 => return pad(f, format_args!("{ns} ns")),
            1_000..1_000_000 => (1_000, "us"),
            1_000_000..1_000_000_000 => (1_000_000, "ms"),
            _ => (1_000_000_000, "s"),
        };
        let whole = ns / scale;
        // Three significant digits.
        let (decimals, div) = match whole {
            0..10 => (2, scale / 100),
            10..100 => (1, scale / 10),
            _ => (0, scale),
        };
        let value = (ns + div / 2) / div;
        let pow = 10u128.pow(decimals);
        if decimals == 0 {
            pad(f, format_args!("{value} {unit}"))
        } else {
            pad(
                f,
                format_args!(
                    "{}.{:0width$} {unit}",
                    value / pow,
                    value % pow,
                    width = decimals as usize
                ),
            )
        }
    }
}

/// Writes `args` honouring the formatter's width (right-aligned by default).
fn pad(f: &mut fmt::Formatter<'_>, args: fmt::Arguments<'_>) -> fmt::Result {
    let mut buffer = [0u8; 32];
    let mut writer = Buffer {
        bytes: &mut buffer,
        len: 0,
    };
    fmt::write(&mut writer, args)?;
    let len = writer.len;
    let text = core::str::from_utf8(&buffer[..len]).map_err(|_| fmt::Error)?;
    f.pad_integral(true, "", text)
}

struct Buffer<'a> {
    bytes: &'a mut [u8],
    len: usize,
}

impl fmt::Write for Buffer<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        if end > self.bytes.len() {
            return Err(fmt::Error);
        }
        self.bytes[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::format;

    #[test]
    fn buckets_are_contiguous_and_cover_their_values() {
        let mut previous = 0;
        for i in 1..BUCKETS {
            let (low, width) = bucket(i);
            let (plow, pwidth) = bucket(i - 1);
            assert_eq!(plow + pwidth, low, "bucket {i}");
            assert_eq!(index(low), i);
            assert_eq!(index(low + width - 1), i);
            assert!(low > previous || i == 0);
            previous = low;
        }
    }

    #[test]
    fn precision_is_within_3_percent() {
        for value in [100u64, 999, 12_345, 1_000_000, 50_000_000, 3_000_000_000] {
            let (low, width) = bucket(index(value));
            let middle = low + width / 2;
            let error = middle.abs_diff(value) as f64 / value as f64;
            assert!(error <= 0.033, "{value}: {middle} ({error})");
        }
    }

    #[test]
    fn quantiles_of_a_uniform_set() {
        let mut h = Histogram::new();
        for ns in 1..=10_000u64 {
            h.record(ns * 1000);
        }
        let s = h.summary();
        assert_eq!(s.count, 10_000);
        assert_eq!(s.min, Duration::from_micros(1));
        assert_eq!(s.max, Duration::from_millis(10));
        let near = |got: Duration, want: u64| {
            let got = got.as_nanos() as f64;
            (got - want as f64).abs() / want as f64 <= 0.035
        };
        assert!(near(s.p50, 5_000_000), "{:?}", s.p50);
        assert!(near(s.p99, 9_900_000), "{:?}", s.p99);
        assert_eq!(s.mean, Duration::from_nanos(5_000_500));
    }

    #[test]
    fn quantiles_stay_within_min_and_max() {
        let mut h = Histogram::new();
        h.record(1_000_003);
        let s = h.summary();
        assert_eq!((s.min, s.p50, s.p99, s.max), (s.min, s.min, s.min, s.min));
        assert_eq!(Histogram::new().summary(), Summary::default());
    }

    #[test]
    fn huge_values_land_in_the_last_bucket() {
        let mut h = Histogram::new();
        h.record(u64::MAX);
        assert_eq!(index(u64::MAX), BUCKETS - 1);
        assert_eq!(h.summary().max, Duration::from_nanos(u64::MAX));
    }

    #[test]
    fn short_durations_read_well() {
        let s = |ns| format!("{}", Short(Duration::from_nanos(ns)));
        assert_eq!(s(850), "850 ns");
        assert_eq!(s(12_345), "12.3 us");
        assert_eq!(s(4_561_000), "4.56 ms");
        assert_eq!(s(1_204_000_000), "1.20 s");
        assert_eq!(s(999_999), "1000 us");
        assert_eq!(
            format!("{:>9}", Short(Duration::from_micros(5))),
            "  5.00 us"
        );
    }
}
