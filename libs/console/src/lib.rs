//! The `console` subsystem: the serial port as the app's standard output, `print!` and
//! `println!`, and the backend of the `log` crate: each line carries the guest's uptime,
//! and `unikernel.log=` on the command line sets levels per module.
#![no_std]
#![forbid(unsafe_code)]

mod levels;

use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use log::{LevelFilter, Log, Metadata, Record};
use unikernel_arch::cmdline::KernelFlags;
use unikernel_arch::serial;

pub use levels::LogLevels;

static READY: AtomicBool = AtomicBool::new(false);

/// The level of the attribute's `log = "..."`, as `LevelFilter as usize`: the default
/// where `unikernel.log=` names none. The levels themselves are read from the command line
/// at each record, which keeps the console free of a cell to hold them.
static DEFAULT_LEVEL: AtomicUsize = AtomicUsize::new(0);

/// The handle `main` takes for the console: a `fmt::Write` sink on the serial port.
#[derive(Clone, Copy, Debug)]
pub struct Console(());

impl Console {
    /// Writes a string as is.
    pub fn write_str(&self, s: &str) {
        serial::write_bytes(s.as_bytes());
    }
}

impl fmt::Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        Console::write_str(self, s);
        Ok(())
    }
}

/// Configures the serial port and installs the `log` backend at `level`.
/// The kernel flag `unikernel.log=<levels>` on the command line overrides `level`: one
/// level for every module (`debug`), or levels per module with a default
/// (`net=debug,smoltcp=warn,info`; see [`LogLevels`]).
pub fn init(level: LevelFilter, cmdline: &'static str) -> Console {
    serial::init();
    // Only the first console installs the logger; the kernel starts one.
    if log::set_logger(&LOGGER).is_ok() {
        DEFAULT_LEVEL.store(level as usize, Ordering::Relaxed);
        match KernelFlags::parse(cmdline).value("log") {
            // Without the flag (the usual case, on the boot path) there is nothing to parse.
            None => log::set_max_level(level),
            Some(spec) => {
                let levels = LogLevels::new(spec, level);
                log::set_max_level(levels.max());
                if let Some(bad) = levels.invalid().next() {
                    serial::print(format_args!(
                        "unikernel.log: `{bad}` is not `<level>` or `<module>=<level>`; ignored\n"
                    ));
                }
            }
        }
    }
    READY.store(true, Ordering::Release);
    Console(())
}

/// The levels in force: the command line's `unikernel.log=` over the default.
fn levels() -> LogLevels<'static> {
    let default = match DEFAULT_LEVEL.load(Ordering::Relaxed) {
        0 => LevelFilter::Off,
        1 => LevelFilter::Error,
        2 => LevelFilter::Warn,
        3 => LevelFilter::Info,
        4 => LevelFilter::Debug,
        _ => LevelFilter::Trace,
    };
    let cmdline = unikernel_arch::boot::info().cmdline();
    LogLevels::new(
        KernelFlags::parse(cmdline).value("log").unwrap_or(""),
        default,
    )
}

struct Logger;
static LOGGER: Logger = Logger;

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= levels().level_for(metadata.target())
    }

    fn log(&self, record: &Record<'_>) {
        if self.enabled(record.metadata()) {
            serial::print(format_args!(
                "[{} {:<5} {}] {}\n",
                Uptime(unikernel_arch::timeline::uptime_us()),
                record.level(),
                record.target(),
                record.args()
            ));
        }
    }

    fn flush(&self) {}
}

/// Seconds since boot with microseconds, like the kernel log of Linux: `    1.042117`;
/// question marks while the TSC's frequency is not known yet.
struct Uptime(Option<u64>);

impl fmt::Display for Uptime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(us) => write!(f, "{:>5}.{:06}", us / 1_000_000, us % 1_000_000),
            None => f.write_str("    ?.??????"),
        }
    }
}

#[doc(hidden)]
pub fn _print(args: fmt::Arguments<'_>) {
    if !READY.load(Ordering::Acquire) {
        panic!("print! and println! need the console: add `console` to `#[unikernel(...)]`");
    }
    serial::print(args);
}

/// Prints to the console.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::_print(format_args!($($arg)*)) };
}

/// Prints to the console, with a newline.
#[macro_export]
macro_rules! println {
    () => { $crate::_print(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::_print(format_args!("{}\n", format_args!($($arg)*))) };
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::Uptime;
    use std::string::ToString;

    #[test]
    fn uptime_is_seconds_and_microseconds() {
        assert_eq!(Uptime(Some(1_042_117)).to_string(), "    1.042117");
        assert_eq!(Uptime(Some(7)).to_string(), "    0.000007");
        assert_eq!(Uptime(None).to_string(), "    ?.??????");
    }
}
