//! How `main`'s result becomes the VM's exit status.

use core::fmt;

pub use unikernel_arch::exit::status;

/// The status an app ends with; the host command that booted it exits with the same.
///
/// An app's statuses are 0 to 100 ([`status::APP_MAX`]): the kernel uses 101 (panic),
/// 102 (CPU exception), 103 (boot error) and 104, the runner 124 to 126. `#[unikernel]`
/// rejects `ExitCode::from(<literal above 100>)` in `main`; a higher status computed at
/// run time is printed and reported as 104 ([`status::OUT_OF_RANGE`]), so that it is
/// never mistaken for the system's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ExitCode(u8);

impl ExitCode {
    pub const SUCCESS: Self = Self(0);
    pub const FAILURE: Self = Self(1);

    pub const fn to_u8(self) -> u8 {
        self.0
    }
}

impl From<u8> for ExitCode {
    /// `code` as is; above 100, the VM's exit reports it as 104 (see [`ExitCode`]).
    fn from(code: u8) -> Self {
        Self(code)
    }
}

/// The status the VM ends with for `code`, and the line that explains a replaced one.
fn reported(code: u8) -> (u8, Option<OutOfRange>) {
    if code <= status::APP_MAX {
        (code, None)
    } else {
        (status::OUT_OF_RANGE, Some(OutOfRange(code)))
    }
}

/// `main` returned a status outside the app's range.
struct OutOfRange(u8);

impl fmt::Display for OutOfRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "main returned status {}, outside 0-{}: reported as status {}",
            self.0,
            status::APP_MAX,
            status::OUT_OF_RANGE
        )
    }
}

/// What `main` may return: `()`, `ExitCode` or `Result<(), E>` with a printable error.
#[diagnostic::on_unimplemented(
    message = "`#[unikernel]` main cannot return `{Self}`",
    note = "`main` may return `()`, `ExitCode`, `Result<(), E>` with `E: Debug`, or `!`"
)]
pub trait Termination {
    fn report(self) -> ExitCode;
}

impl Termination for () {
    fn report(self) -> ExitCode {
        ExitCode::SUCCESS
    }
}

impl Termination for ExitCode {
    fn report(self) -> ExitCode {
        self
    }
}

impl<T: Termination, E: fmt::Debug> Termination for Result<T, E> {
    fn report(self) -> ExitCode {
        match self {
            Ok(value) => value.report(),
            Err(error) => {
                unikernel_arch::serial::print(format_args!("Error: {error:?}\n"));
                ExitCode::FAILURE
            }
        }
    }
}

/// Ends the VM with `code`, printing the boot timeline first when the kernel flag
/// `unikernel.timeline` asks for it.
pub fn exit(code: ExitCode) -> ! {
    if unikernel_arch::boot::info().has_flag("timeline") {
        crate::timeline::print();
    }
    let (status, replaced) = reported(code.0);
    if let Some(replaced) = replaced {
        unikernel_arch::serial::print(format_args!("{replaced}\n"));
    }
    unikernel_arch::exit::exit(status)
}

/// Ends boot with a report of what went wrong (status 103).
pub fn boot_error(reason: fmt::Arguments<'_>) -> ! {
    unikernel_arch::serial::print(format_args!("boot error: {reason}\n"));
    unikernel_arch::exit::exit(status::BOOT_ERROR)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::ToString;

    #[test]
    fn the_apps_statuses_pass_unchanged() {
        for code in 0..=status::APP_MAX {
            assert_eq!(reported(ExitCode::from(code).to_u8()).0, code);
            assert!(reported(code).1.is_none());
        }
    }

    #[test]
    fn a_status_above_100_is_reported_as_out_of_range_never_as_the_systems() {
        for code in (status::APP_MAX + 1)..=u8::MAX {
            let (status, replaced) = reported(ExitCode::from(code).to_u8());
            assert_eq!(status, status::OUT_OF_RANGE, "{code}");
            assert_eq!(
                replaced.unwrap().to_string(),
                std::format!("main returned status {code}, outside 0-100: reported as status 104")
            );
        }
    }
}
