//! Duration strings: `"1 ms"`, `"200 us"`, `"200 µs"`, `"5ms"`, `"2 s"`, `"750 ns"`.
//!
//! A duration is a whole decimal number (digits may be grouped with `_`: `"7_000_000 ns"`),
//! optional spaces, and a unit: `ns`, `us` (also `µs`,
//! with either the micro sign or the Greek mu), `ms` or `s`. Other spellings (`sec`, `msec`,
//! `MS`) are rejected with a hint naming the unit they most likely meant. Fractions are
//! rejected with the same duration in a smaller unit as a hint (`"1.5 ms"` -> `1500 us`), so
//! that what the app wrote is exactly what the analysis and the kernel use. Zero and range
//! checks belong to the caller; values are nanoseconds in a `u64` (about 584 years).

use crate::hint;

const UNITS: &[(&str, u64)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000), // U+00B5 MICRO SIGN
    ("μs", 1_000), // U+03BC GREEK SMALL LETTER MU
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
];

/// The units listed in messages.
pub const LISTED_UNITS: &[&str] = &["ns", "us", "ms", "s"];

/// Why a string is not a duration.
#[derive(Debug, PartialEq, Eq)]
pub enum DurationError {
    /// Not a number followed by a unit.
    NotADuration,
    /// A number without a unit.
    MissingUnit,
    /// An unknown unit, with the unit it most likely meant.
    UnknownUnit {
        unit: String,
        near: Option<&'static str>,
    },
    /// A fraction, with the same duration as a whole number of a smaller unit, if any.
    Fraction { whole: Option<String> },
    /// More than `u64::MAX` nanoseconds.
    Overflow,
}

/// Parses a duration string into nanoseconds.
pub fn parse(text: &str) -> Result<u64, DurationError> {
    let text = text.trim();
    let number_len = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(number_len);
    let number = number.replace('_', "");
    let unit = unit.trim_start();
    if number.is_empty() || !number.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(DurationError::NotADuration);
    }
    if unit.is_empty() {
        return Err(DurationError::MissingUnit);
    }
    let multiplier = unit_ns(unit)?;
    match number.split_once('.') {
        None => digits(&number)?
            .checked_mul(multiplier.into())
            .and_then(|ns| u64::try_from(ns).ok())
            .ok_or(DurationError::Overflow),
        Some((whole, fraction)) => {
            if fraction.contains('.') || fraction.is_empty() {
                return Err(DurationError::NotADuration);
            }
            // whole.fraction * multiplier, exact or not at all.
            let scale = u32::try_from(fraction.len())
                .ok()
                .and_then(|len| 10u128.checked_pow(len))
                .ok_or(DurationError::Overflow)?;
            let scaled = digits(whole)?
                .checked_mul(scale)
                .and_then(|n| n.checked_add(digits(fraction).ok()?))
                .and_then(|n| n.checked_mul(multiplier.into()))
                .ok_or(DurationError::Overflow)?;
            let whole = (scaled % scale == 0)
                .then(|| u64::try_from(scaled / scale).ok())
                .flatten()
                .map(format);
            Err(DurationError::Fraction { whole })
        }
    }
}

fn digits(number: &str) -> Result<u128, DurationError> {
    if number.is_empty() {
        return Ok(0);
    }
    number.parse::<u128>().map_err(|_| DurationError::Overflow)
}

fn unit_ns(unit: &str) -> Result<u64, DurationError> {
    if let Some(&(_, ns)) = UNITS.iter().find(|(name, _)| *name == unit) {
        return Ok(ns);
    }
    let alias = match unit.to_lowercase().as_str() {
        "nsec" | "nsecs" | "nanosecond" | "nanoseconds" => Some("ns"),
        "usec" | "usecs" | "microsecond" | "microseconds" => Some("us"),
        "msec" | "msecs" | "millisecond" | "milliseconds" => Some("ms"),
        "sec" | "secs" | "second" | "seconds" => Some("s"),
        "ns" => Some("ns"),
        "us" | "µs" | "μs" => Some("us"),
        "ms" => Some("ms"),
        _ => None,
    };
    let near = alias.or_else(|| hint::closest(unit, LISTED_UNITS.iter().copied()));
    Err(DurationError::UnknownUnit {
        unit: unit.to_owned(),
        near,
    })
}

/// `ns` in the largest unit that divides it: `1 ms`, `200 us`, `1500 us`, `3 ns`.
pub fn format(ns: impl Into<u128>) -> String {
    let ns: u128 = ns.into();
    let (name, size) = [("s", 1_000_000_000), ("ms", 1_000_000), ("us", 1_000)]
        .into_iter()
        .find(|&(_, size)| ns != 0 && ns.is_multiple_of(size))
        .unwrap_or(("ns", 1));
    format!("{} {name}", ns / size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_durations() {
        assert_eq!(parse("1 ms"), Ok(1_000_000));
        assert_eq!(parse("200 us"), Ok(200_000));
        assert_eq!(parse("200 µs"), Ok(200_000));
        assert_eq!(parse("200 μs"), Ok(200_000));
        assert_eq!(parse("5ms"), Ok(5_000_000));
        assert_eq!(parse("  2   s "), Ok(2_000_000_000));
        assert_eq!(parse("750 ns"), Ok(750));
        assert_eq!(parse("1_000 us"), Ok(1_000_000));
        assert_eq!(parse("0 ms"), Ok(0));
    }

    #[test]
    fn not_durations() {
        assert_eq!(parse("soon"), Err(DurationError::NotADuration));
        assert_eq!(parse(""), Err(DurationError::NotADuration));
        assert_eq!(parse("ms"), Err(DurationError::NotADuration));
        assert_eq!(parse("-1 ms"), Err(DurationError::NotADuration));
        assert_eq!(parse(".5 ms"), Err(DurationError::NotADuration));
        assert_eq!(parse("1.2.3 ms"), Err(DurationError::NotADuration));
        assert_eq!(parse("1000"), Err(DurationError::MissingUnit));
    }

    #[test]
    fn unit_hints() {
        let near = |text| match parse(text) {
            Err(DurationError::UnknownUnit { near, .. }) => near,
            other => panic!("{text}: {other:?}"),
        };
        assert_eq!(near("1 sec"), Some("s"));
        assert_eq!(near("1 msec"), Some("ms"));
        assert_eq!(near("1 usec"), Some("us"));
        assert_eq!(near("1 MS"), Some("ms"));
        assert_eq!(near("1 Us"), Some("us"));
        assert_eq!(near("1 seconds"), Some("s"));
        assert_eq!(near("1 mss"), Some("ms"));
        assert_eq!(near("1 fortnight"), None);
    }

    #[test]
    fn fractions_and_overflow() {
        let whole = |text| match parse(text) {
            Err(DurationError::Fraction { whole }) => whole,
            other => panic!("{text}: {other:?}"),
        };
        assert_eq!(whole("1.5 ms").as_deref(), Some("1500 us"));
        assert_eq!(whole("0.25 s").as_deref(), Some("250 ms"));
        assert_eq!(whole("2.0 ms").as_deref(), Some("2 ms"));
        assert_eq!(whole("1.5 ns"), None);
        assert_eq!(parse("18446744074 s"), Err(DurationError::Overflow));
        assert_eq!(parse("18446744073 s"), Ok(18_446_744_073_000_000_000));
        assert_eq!(
            parse("999999999999999999999999999999999999999999 ns"),
            Err(DurationError::Overflow)
        );
    }

    #[test]
    fn formatting() {
        assert_eq!(format(1_000_000u64), "1 ms");
        assert_eq!(format(200_000u64), "200 us");
        assert_eq!(format(1_500_000u64), "1500 us");
        assert_eq!(format(3u64), "3 ns");
        assert_eq!(format(2_000_000_000u64), "2 s");
        assert_eq!(format(0u64), "0 ns");
    }
}
