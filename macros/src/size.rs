//! Size strings: `"512 B"`, `"64 KiB"`, `"1 MiB"`, `"4MiB"`, `"1 GiB"`.
//!
//! A size is a whole decimal number, optional spaces, and a binary unit: `B`, `KiB`, `MiB`,
//! `GiB` or `TiB`. Decimal units (`KB`, `MB`, `GB`, `TB`), one-letter ones (`K`, `M`, `G`)
//! and other spellings (`mib`) are rejected with a hint naming the binary unit, rather than
//! silently read as one or the other: `"1 MB"` would be 1,000,000 bytes to some readers and
//! 1,048,576 to others. Fractions are rejected with the equivalent whole size as a hint
//! (`"1.5 MiB"` -> `1536 KiB`). Range checks belong to the caller.

use crate::hint;

const UNITS: &[(&str, u64)] = &[
    ("B", 1),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("TiB", 1 << 40),
];

/// The units listed in messages (a TiB is accepted, but it is never a useful size here).
pub const LISTED_UNITS: &[&str] = &["B", "KiB", "MiB", "GiB"];

/// Why a string is not a size.
#[derive(Debug, PartialEq, Eq)]
pub enum SizeError {
    /// Not a number followed by a unit.
    NotASize,
    /// A number without a unit.
    MissingUnit,
    /// An unknown unit, with the binary unit it most likely meant.
    UnknownUnit {
        unit: String,
        near: Option<&'static str>,
    },
    /// A fraction, with the same size written as a whole number if there is one.
    Fraction { whole: Option<String> },
    /// More than `u64::MAX` bytes.
    Overflow,
}

/// Parses a size string into bytes.
pub fn parse(text: &str) -> Result<u64, SizeError> {
    let text = text.trim();
    let number_len = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(number_len);
    let unit = unit.trim_start();
    if number.is_empty() || !number.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(SizeError::NotASize);
    }
    if unit.is_empty() {
        return Err(SizeError::MissingUnit);
    }
    let multiplier = unit_bytes(unit)?;
    match number.split_once('.') {
        None => digits(number)?
            .checked_mul(multiplier.into())
            .and_then(|bytes| u64::try_from(bytes).ok())
            .ok_or(SizeError::Overflow),
        Some((whole, fraction)) => {
            if fraction.contains('.') || fraction.is_empty() {
                return Err(SizeError::NotASize);
            }
            // whole.fraction * multiplier, exact or not at all.
            let scale = 10u128
                .checked_pow(u32::try_from(fraction.len()).map_err(|_| SizeError::Overflow)?)
                .ok_or(SizeError::Overflow)?;
            let scaled = digits(whole)?
                .checked_mul(scale)
                .and_then(|n| n.checked_add(digits(fraction).ok()?))
                .and_then(|n| n.checked_mul(multiplier.into()))
                .ok_or(SizeError::Overflow)?;
            let whole = (scaled % scale == 0)
                .then(|| u64::try_from(scaled / scale).ok())
                .flatten()
                .map(format);
            Err(SizeError::Fraction { whole })
        }
    }
}

fn digits(number: &str) -> Result<u128, SizeError> {
    if number.is_empty() {
        return Ok(0);
    }
    number.parse::<u128>().map_err(|_| SizeError::Overflow)
}

fn unit_bytes(unit: &str) -> Result<u64, SizeError> {
    if let Some(&(_, bytes)) = UNITS.iter().find(|(name, _)| *name == unit) {
        return Ok(bytes);
    }
    let decimal = match unit.to_ascii_lowercase().as_str() {
        "k" | "kb" => Some("KiB"),
        "m" | "mb" => Some("MiB"),
        "g" | "gb" => Some("GiB"),
        "t" | "tb" => Some("TiB"),
        "byte" | "bytes" => Some("B"),
        _ => None,
    };
    let near = decimal.or_else(|| hint::closest(unit, UNITS.iter().map(|(name, _)| *name)));
    Err(SizeError::UnknownUnit {
        unit: unit.to_owned(),
        near,
    })
}

/// `bytes` in the largest unit that divides it: `8 KiB`, `1 MiB`, `100 B`.
pub fn format(bytes: u64) -> String {
    let (name, size) = UNITS[..UNITS.len() - 1]
        .iter()
        .rev()
        .find(|(_, size)| bytes.is_multiple_of(*size) && bytes != 0)
        .unwrap_or(&UNITS[0]);
    format!("{} {name}", bytes / size)
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
        assert_eq!(parse("lots"), Err(SizeError::NotASize));
        assert_eq!(parse(""), Err(SizeError::NotASize));
        assert_eq!(parse("MiB"), Err(SizeError::NotASize));
        assert_eq!(parse("-1 MiB"), Err(SizeError::NotASize));
        assert_eq!(parse(".5 MiB"), Err(SizeError::NotASize));
        assert_eq!(parse("1.2.3 MiB"), Err(SizeError::NotASize));
        assert_eq!(parse("1. MiB"), Err(SizeError::NotASize));
        assert_eq!(parse("1048576"), Err(SizeError::MissingUnit));
    }

    #[test]
    fn unit_hints() {
        let near = |text| match parse(text) {
            Err(SizeError::UnknownUnit { near, .. }) => near,
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
            Err(SizeError::Fraction { whole }) => whole,
            other => panic!("{text}: {other:?}"),
        };
        assert_eq!(whole("1.5 MiB").as_deref(), Some("1536 KiB"));
        assert_eq!(whole("0.25 GiB").as_deref(), Some("256 MiB"));
        assert_eq!(whole("1.5 B"), None);
        assert_eq!(parse("99999999999999999999 GiB"), Err(SizeError::Overflow));
        assert_eq!(parse("17179869184 GiB"), Err(SizeError::Overflow));
        assert_eq!(
            parse("999999999999999999999999999999999999999999 B"),
            Err(SizeError::Overflow)
        );
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
