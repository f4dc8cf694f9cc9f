//! Quantities written as strings: a whole decimal number (digits may be grouped with `_`),
//! optional spaces and a unit, as in `"1 MiB"` or `"200 us"`. Sizes and durations are two
//! tables of units ([`crate::size`], [`crate::duration`]) over this one parser.
//!
//! Near-miss units are rejected with a hint naming the unit they most likely meant, and
//! fractions with the same quantity in a smaller unit (`"1.5 ms"` -> `1500 us`), so that
//! what the app wrote is exactly what the kernel uses. Range checks belong to the caller.

use crate::hint;

/// One kind of quantity: its units and how messages speak of it.
#[derive(Debug)]
pub struct Units {
    /// "size", "duration".
    pub noun: &'static str,
    /// What the numbers count: "bytes", "nanoseconds".
    pub base: &'static str,
    /// Every accepted unit and its value in the base unit.
    pub accepted: &'static [(&'static str, u64)],
    /// The units `format` uses, largest first; the last one must be the base unit.
    pub formatting: &'static [(&'static str, u64)],
    /// The units listed in messages.
    pub listed: &'static [&'static str],
    /// The units a near miss is matched against by spelling.
    pub hint_candidates: &'static [&'static str],
    /// Other spellings and the unit they mean (`"msec"` -> `"ms"`, `"MB"` -> `"MiB"`).
    pub alias: fn(&str) -> Option<&'static str>,
}

/// Why a string is not a quantity.
#[derive(Debug, PartialEq, Eq)]
pub enum QuantityError {
    /// Not a number followed by a unit.
    NotAQuantity,
    /// A number without a unit.
    MissingUnit,
    /// An unknown unit, with the unit it most likely meant.
    UnknownUnit {
        unit: String,
        near: Option<&'static str>,
    },
    /// A fraction, with the same quantity as a whole number of a smaller unit, if any.
    Fraction { whole: Option<String> },
    /// More than `u64::MAX` of the base unit.
    Overflow,
    /// A hexadecimal, octal or binary number (`0x1000`), with the quantity it means in
    /// the base unit when it has no unit or a known one.
    Radix { value: Option<u64> },
}

impl Units {
    /// Parses `text` into a count of the base unit.
    pub fn parse(&self, text: &str) -> Result<u64, QuantityError> {
        let text = text.trim();
        if let Some(error) = self.radix(text) {
            return Err(error);
        }
        let number_len = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_'))
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(number_len);
        let number = number.replace('_', "");
        let unit = unit.trim_start();
        if number.is_empty() || !number.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(QuantityError::NotAQuantity);
        }
        if unit.is_empty() {
            return Err(QuantityError::MissingUnit);
        }
        let multiplier = self.unit(unit)?;
        match number.split_once('.') {
            None => digits(&number)?
                .checked_mul(multiplier.into())
                .and_then(|value| u64::try_from(value).ok())
                .ok_or(QuantityError::Overflow),
            Some((whole, fraction)) => {
                if fraction.contains('.') || fraction.is_empty() {
                    return Err(QuantityError::NotAQuantity);
                }
                // whole.fraction * multiplier, exact or not at all.
                let scale = u32::try_from(fraction.len())
                    .ok()
                    .and_then(|len| 10u128.checked_pow(len))
                    .ok_or(QuantityError::Overflow)?;
                let scaled = digits(whole)?
                    .checked_mul(scale)
                    .and_then(|n| n.checked_add(digits(fraction).ok()?))
                    .and_then(|n| n.checked_mul(multiplier.into()))
                    .ok_or(QuantityError::Overflow)?;
                let whole = (scaled % scale == 0)
                    .then(|| u64::try_from(scaled / scale).ok())
                    .flatten()
                    .map(|value| self.format(value));
                Err(QuantityError::Fraction { whole })
            }
        }
    }

    /// `0x1000`, `0o7`, `0b1`, with or without a unit.
    fn radix(&self, text: &str) -> Option<QuantityError> {
        let radix = match text.get(..2)?.to_ascii_lowercase().as_str() {
            "0x" => 16,
            "0o" => 8,
            "0b" => 2,
            _ => return None,
        };
        let rest = &text[2..];
        let digits_len = rest
            .find(|c: char| !(c.is_digit(radix) || c == '_'))
            .unwrap_or(rest.len());
        let (digits, unit) = rest.split_at(digits_len);
        if digits.is_empty() {
            // `0B`: zero bytes.
            return None;
        }
        let unit = unit.trim_start();
        let multiplier = if unit.is_empty() {
            Some(1)
        } else {
            self.unit(unit).ok()
        };
        let value = u64::from_str_radix(&digits.replace('_', ""), radix)
            .ok()
            .zip(multiplier)
            .and_then(|(number, multiplier)| number.checked_mul(multiplier));
        Some(QuantityError::Radix { value })
    }

    fn unit(&self, unit: &str) -> Result<u64, QuantityError> {
        if let Some(&(_, value)) = self.accepted.iter().find(|(name, _)| *name == unit) {
            return Ok(value);
        }
        let near = (self.alias)(unit)
            .or_else(|| hint::closest(unit, self.hint_candidates.iter().copied()));
        Err(QuantityError::UnknownUnit {
            unit: unit.to_owned(),
            near,
        })
    }

    /// `value` in the largest unit that divides it: `1 MiB`, `1500 us`, `0 B`.
    pub fn format(&self, value: impl Into<u128>) -> String {
        let value: u128 = value.into();
        let (name, size) = self
            .formatting
            .iter()
            .find(|&&(_, size)| value != 0 && value.is_multiple_of(u128::from(size)))
            .unwrap_or(&self.formatting[self.formatting.len() - 1]);
        format!("{} {name}", value / u128::from(*size))
    }

    /// The message for `error` on `text`, except for an overflow, whose bound the caller
    /// words. `example` is a valid quantity to show (`"1 MiB"`).
    pub fn message(
        &self,
        error: QuantityError,
        text: &str,
        example: &str,
        overflow: impl FnOnce() -> String,
    ) -> String {
        let noun = self.noun;
        match error {
            QuantityError::NotAQuantity => format!(
                "`\"{text}\"` is not a {noun}; write a whole number and a unit, such as `\"{example}\"`"
            ),
            QuantityError::MissingUnit => format!(
                "{noun} `\"{text}\"` has no unit; expected one of: {}",
                hint::list(self.listed)
            ),
            QuantityError::UnknownUnit { unit, near } => format!(
                "unknown {noun} unit `{unit}`{}",
                match near {
                    Some(near) => format!("; did you mean `{near}`?"),
                    None => format!("; expected one of: {}", hint::list(self.listed)),
                }
            ),
            QuantityError::Fraction { whole: Some(whole) } => {
                format!("{noun}s are whole numbers; write `\"{whole}\"`")
            }
            QuantityError::Fraction { whole: None } => {
                format!("{noun}s are whole numbers of {}", self.base)
            }
            QuantityError::Overflow => overflow(),
            QuantityError::Radix { value: Some(value) } => format!(
                "`\"{text}\"` is not a decimal number; {noun}s are written in decimal with a \
                 unit: write `\"{}\"`",
                self.format(value)
            ),
            QuantityError::Radix { value: None } => format!(
                "`\"{text}\"` is not a decimal number; {noun}s are written in decimal with a \
                 unit, such as `\"{example}\"`"
            ),
        }
    }
}

fn digits(number: &str) -> Result<u128, QuantityError> {
    if number.is_empty() {
        return Ok(0);
    }
    number.parse::<u128>().map_err(|_| QuantityError::Overflow)
}
