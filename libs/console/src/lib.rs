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

/// Whether the command line set the levels (`unikernel.log=...`): then every crate logs
/// at what it says, the quiet ones included.
static LEVEL_FROM_CMDLINE: AtomicBool = AtomicBool::new(false);

/// Crates whose `info` and lower records are routine to them and noise to the app (the
/// virtio driver's `negotiated_features` on every boot): shown only when the command line
/// asks for that level.
const QUIET_CRATES: &[&str] = &["virtio_drivers"];

/// Whether a record of `level` from `target` is shown under `max`.
fn shown(level: log::Level, target: &str, max: LevelFilter, level_from_cmdline: bool) -> bool {
    let quiet = !level_from_cmdline
        && level > log::Level::Warn
        && QUIET_CRATES.iter().any(|name| {
            target
                .strip_prefix(name)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
        });
    level <= max && !quiet
}

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
                LEVEL_FROM_CMDLINE.store(true, Ordering::Relaxed);
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
        let target = metadata.target();
        shown(
            metadata.level(),
            target,
            levels().level_for(target),
            LEVEL_FROM_CMDLINE.load(Ordering::Relaxed),
        )
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
    use super::*;
    use log::Level;
    use std::string::ToString;

    #[test]
    fn uptime_is_seconds_and_microseconds() {
        assert_eq!(Uptime(Some(1_042_117)).to_string(), "    1.042117");
        assert_eq!(Uptime(Some(7)).to_string(), "    0.000007");
        assert_eq!(Uptime(None).to_string(), "    ?.??????");
    }

    #[test]
    fn the_virtio_drivers_routine_records_are_quiet_unless_the_command_line_asks() {
        let negotiated = "virtio_drivers::device::net::dev_raw";
        assert!(!shown(Level::Info, negotiated, LevelFilter::Info, false));
        assert!(!shown(
            Level::Debug,
            "virtio_drivers",
            LevelFilter::Trace,
            false
        ));
        assert!(shown(Level::Warn, negotiated, LevelFilter::Info, false));
        assert!(shown(Level::Error, negotiated, LevelFilter::Info, false));
        // `unikernel.log=info` asks for it.
        assert!(shown(Level::Info, negotiated, LevelFilter::Info, true));
        assert!(!shown(Level::Debug, negotiated, LevelFilter::Info, true));
    }

    #[test]
    fn other_crates_log_at_the_level() {
        for target in ["unikernel_net", "app", "virtio_drivers_extra"] {
            assert!(
                shown(Level::Info, target, LevelFilter::Info, false),
                "{target}"
            );
            assert!(
                !shown(Level::Debug, target, LevelFilter::Info, false),
                "{target}"
            );
        }
        assert!(!shown(Level::Error, "app", LevelFilter::Off, false));
    }
}
