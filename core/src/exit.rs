//! How `main`'s result becomes the VM's exit status.

use core::fmt;

pub use unikernel_arch::exit::status;

/// The status an app ends with; the host command that booted it exits with the same.
///
/// Values 0 to 127 reach the host unchanged. The kernel itself uses 101 (panic),
/// 102 (CPU exception) and 103 (boot error).
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
    /// Codes above 127 do not survive QEMU's exit-status encoding and become 127.
    fn from(code: u8) -> Self {
        Self(code.min(127))
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
    unikernel_arch::exit::exit(code.0)
}

/// Ends boot with a report of what went wrong (status 103).
pub fn boot_error(reason: fmt::Arguments<'_>) -> ! {
    unikernel_arch::serial::print(format_args!("boot error: {reason}\n"));
    unikernel_arch::exit::exit(status::BOOT_ERROR)
}
