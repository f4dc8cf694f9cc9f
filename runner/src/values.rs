//! Value parsers and defaults shared by the command-line definitions (`cli` and the
//! `clap::Args` structs of `density`).

use std::ffi::OsString;
use std::time::Duration;

use clap::{Args, FromArgMatches};

/// The longest `--timeout`, `--time-limit` or `--hold`: a year.
const MAX_SECS: f64 = 365.0 * 24.0 * 3600.0;

/// A number of seconds: positive, finite, at most a year (so a deadline cannot overflow).
pub(crate) fn parse_secs(text: &str) -> std::result::Result<Duration, String> {
    let secs: f64 = text
        .parse()
        .map_err(|_| "expected a number of seconds".to_string())?;
    if !(secs.is_finite() && secs > 0.0) {
        return Err("expected a positive number of seconds".into());
    }
    if secs > MAX_SECS {
        return Err(format!("expected at most {MAX_SECS:.0} seconds (a year)"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// A positive whole number.
pub(crate) fn positive(text: &str) -> std::result::Result<usize, String> {
    text.parse::<usize>()
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| "expected a positive whole number".to_string())
}

/// What an `Args` struct holds when no option is given.
pub(crate) fn defaults<T: Args + FromArgMatches>() -> T {
    let command = T::augment_args(clap::Command::new("defaults").no_binary_name(true));
    let matches = command
        .try_get_matches_from(std::iter::empty::<OsString>())
        .expect("every option has a default");
    T::from_arg_matches(&matches).expect("the defaults parse")
}
