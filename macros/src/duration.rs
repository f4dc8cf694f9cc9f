//! Duration strings: `"1 ms"`, `"200 us"`, `"200 µs"`, `"5ms"`, `"2 s"`, `"750 ns"`.
//!
//! Units `ns`, `us` (also `µs`, with either the micro sign or the Greek mu), `ms` and `s`.
//! Other spellings (`sec`, `msec`, `MS`) are rejected with a hint naming the unit they most
//! likely meant, fractions with the same duration in a smaller unit (`"1.5 ms"` ->
//! `1500 us`). Values are nanoseconds in a `u64` (about 584 years).

use crate::quantity::{QuantityError, Units};

/// Durations in nanoseconds.
pub const DURATION: Units = Units {
    noun: "duration",
    base: "nanoseconds",
    accepted: &[
        ("ns", 1),
        ("us", 1_000),
        ("µs", 1_000), // U+00B5 MICRO SIGN
        ("μs", 1_000), // U+03BC GREEK SMALL LETTER MU
        ("ms", 1_000_000),
        ("s", 1_000_000_000),
    ],
    formatting: &[
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
        ("us", 1_000),
        ("ns", 1),
    ],
    listed: &["ns", "us", "ms", "s"],
    hint_candidates: &["ns", "us", "ms", "s"],
    alias: |unit| match unit.to_lowercase().as_str() {
        "nsec" | "nsecs" | "nanosecond" | "nanoseconds" | "ns" => Some("ns"),
        "usec" | "usecs" | "microsecond" | "microseconds" | "us" | "µs" | "μs" => Some("us"),
        "msec" | "msecs" | "millisecond" | "milliseconds" | "ms" => Some("ms"),
        "sec" | "secs" | "second" | "seconds" => Some("s"),
        _ => None,
    },
};

/// Parses a duration string into nanoseconds.
pub fn parse(text: &str) -> Result<u64, QuantityError> {
    DURATION.parse(text)
}

/// `ns` in the largest unit that divides it: `1 ms`, `200 us`, `1500 us`, `3 ns`.
pub fn format(ns: impl Into<u128>) -> String {
    DURATION.format(ns)
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
        assert_eq!(parse("soon"), Err(QuantityError::NotAQuantity));
        assert_eq!(parse(""), Err(QuantityError::NotAQuantity));
        assert_eq!(parse("ms"), Err(QuantityError::NotAQuantity));
        assert_eq!(parse("-1 ms"), Err(QuantityError::NotAQuantity));
        assert_eq!(parse(".5 ms"), Err(QuantityError::NotAQuantity));
        assert_eq!(parse("1.2.3 ms"), Err(QuantityError::NotAQuantity));
        assert_eq!(parse("1000"), Err(QuantityError::MissingUnit));
    }

    #[test]
    fn unit_hints() {
        let near = |text| match parse(text) {
            Err(QuantityError::UnknownUnit { near, .. }) => near,
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
            Err(QuantityError::Fraction { whole }) => whole,
            other => panic!("{text}: {other:?}"),
        };
        assert_eq!(whole("1.5 ms").as_deref(), Some("1500 us"));
        assert_eq!(whole("0.25 s").as_deref(), Some("250 ms"));
        assert_eq!(whole("2.0 ms").as_deref(), Some("2 ms"));
        assert_eq!(whole("1.5 ns"), None);
        assert_eq!(parse("18446744074 s"), Err(QuantityError::Overflow));
        assert_eq!(parse("18446744073 s"), Ok(18_446_744_073_000_000_000));
        assert_eq!(
            parse("999999999999999999999999999999999999999999 ns"),
            Err(QuantityError::Overflow)
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
