//! Size strings: `"512 B"`, `"64 KiB"`, `"1 MiB"`, `"4MiB"`, `"1 GiB"`.
//!
//! Binary units only: `B`, `KiB`, `MiB`, `GiB`, `TiB`. Decimal units (`KB`, `MB`, `GB`,
//! `TB`), one-letter ones (`K`, `M`, `G`) and other spellings (`mib`) are rejected with a
//! hint naming the binary unit, rather than silently read as one or the other: `"1 MB"`
//! would be 1,000,000 bytes to some readers and 1,048,576 to others. Fractions are
//! rejected with the equivalent whole size as a hint (`"1.5 MiB"` -> `1536 KiB`).

use crate::quantity::{QuantityError, Units};

const UNITS: &[(&str, u64)] = &[
    ("B", 1),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("TiB", 1 << 40),
];

/// Sizes in bytes. (A TiB is accepted, but it is never a useful size here, so messages
/// and `format` leave it out.)
pub const SIZE: Units = Units {
    noun: "size",
    base: "bytes",
    accepted: UNITS,
    formatting: &[
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
        ("B", 1),
    ],
    listed: &["B", "KiB", "MiB", "GiB"],
    hint_candidates: &["B", "KiB", "MiB", "GiB", "TiB"],
    alias: |unit| match unit.to_ascii_lowercase().as_str() {
        "k" | "kb" => Some("KiB"),
        "m" | "mb" => Some("MiB"),
        "g" | "gb" => Some("GiB"),
        "t" | "tb" => Some("TiB"),
        "byte" | "bytes" => Some("B"),
        _ => None,
    },
};

/// Parses a size string into bytes.
pub fn parse(text: &str) -> Result<u64, QuantityError> {
    SIZE.parse(text)
}

/// `bytes` in the largest unit that divides it: `8 KiB`, `1 MiB`, `100 B`.
pub fn format(bytes: u64) -> String {
    SIZE.format(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_sizes() {
        assert_eq!(parse("512 B"), Ok(512));
        assert_eq!(parse("64 KiB"), Ok(64 << 10));
        assert_eq!(parse("1 MiB"), Ok(1 << 20));
        assert_eq!(parse("4MiB"), Ok(4 << 20));
        assert_eq!(parse("  4   MiB "), Ok(4 << 20));
        assert_eq!(parse("1 GiB"), Ok(1 << 30));
        assert_eq!(parse("1 TiB"), Ok(1 << 40));
        assert_eq!(parse("0 KiB"), Ok(0));
    }

    #[test]
    fn not_sizes() {
        assert_eq!(parse("lots"), Err(QuantityError::NotAQuantity));
        assert_eq!(parse(""), Err(QuantityError::NotAQuantity));
        assert_eq!(parse("MiB"), Err(QuantityError::NotAQuantity));
        assert_eq!(parse("-1 MiB"), Err(QuantityError::NotAQuantity));
        assert_eq!(parse(".5 MiB"), Err(QuantityError::NotAQuantity));
        assert_eq!(parse("1.2.3 MiB"), Err(QuantityError::NotAQuantity));
        assert_eq!(parse("1. MiB"), Err(QuantityError::NotAQuantity));
        assert_eq!(parse("1048576"), Err(QuantityError::MissingUnit));
    }

    #[test]
    fn unit_hints() {
        let near = |text| match parse(text) {
            Err(QuantityError::UnknownUnit { near, .. }) => near,
            other => panic!("{text}: {other:?}"),
        };
        assert_eq!(near("1 MB"), Some("MiB"));
        assert_eq!(near("1 KB"), Some("KiB"));
        assert_eq!(near("1 kb"), Some("KiB"));
        assert_eq!(near("1 GB"), Some("GiB"));
        assert_eq!(near("1 M"), Some("MiB"));
        assert_eq!(near("1 mib"), Some("MiB"));
        assert_eq!(near("1 Mib"), Some("MiB"));
        assert_eq!(near("1 MiBs"), Some("MiB"));
        assert_eq!(near("64 bytes"), Some("B"));
        assert_eq!(near("1 parsec"), None);
    }

    #[test]
    fn fractions_and_overflow() {
        let whole = |text| match parse(text) {
            Err(QuantityError::Fraction { whole }) => whole,
            other => panic!("{text}: {other:?}"),
        };
        assert_eq!(whole("1.5 MiB").as_deref(), Some("1536 KiB"));
        assert_eq!(whole("0.25 GiB").as_deref(), Some("256 MiB"));
        assert_eq!(whole("1.5 B"), None);
        assert_eq!(
            parse("99999999999999999999 GiB"),
            Err(QuantityError::Overflow)
        );
        assert_eq!(parse("17179869184 GiB"), Err(QuantityError::Overflow));
        assert_eq!(
            parse("999999999999999999999999999999999999999999 B"),
            Err(QuantityError::Overflow)
        );
    }

    #[test]
    fn other_radixes_are_not_sizes_but_say_which_size_they_mean() {
        let radix = |text| match parse(text) {
            Err(QuantityError::Radix { value }) => value,
            other => panic!("{text}: {other:?}"),
        };
        assert_eq!(radix("0x1000"), Some(4096));
        assert_eq!(radix("0X10_0000"), Some(1 << 20));
        assert_eq!(radix("0x10 KiB"), Some(16 << 10));
        assert_eq!(radix("0o10"), Some(8));
        assert_eq!(radix("0b1000"), Some(8));
        assert_eq!(radix("0x10 parsec"), None);
        assert_eq!(radix("0xffffffffffffffffff"), None);
        assert_eq!(
            SIZE.message(
                QuantityError::Radix { value: Some(4096) },
                "0x1000",
                "1 MiB",
                String::new
            ),
            "`\"0x1000\"` is not a decimal number; sizes are written in decimal with a unit: write `\"4 KiB\"`"
        );
        // Decimal sizes that merely start with 0 are still sizes.
        assert_eq!(parse("0 KiB"), Ok(0));
        assert_eq!(parse("01 KiB"), Ok(1024));
        assert_eq!(parse("0B"), Ok(0));
    }

    #[test]
    fn formatting() {
        assert_eq!(format(8 << 10), "8 KiB");
        assert_eq!(format(1 << 20), "1 MiB");
        assert_eq!(format(1536 << 10), "1536 KiB");
        assert_eq!(format(64 << 30), "64 GiB");
        assert_eq!(format(1 << 40), "1024 GiB");
        assert_eq!(format(100), "100 B");
        assert_eq!(format(0), "0 B");
    }
}
