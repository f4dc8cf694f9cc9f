//! The `console` subsystem: the serial port as the app's standard output, `print!` and
//! `println!`, and the backend of the `log` crate.
#![no_std]
#![forbid(unsafe_code)]

use core::fmt;
use core::sync::atomic::{AtomicBool, Ordering};
use log::{LevelFilter, Log, Metadata, Record};
use unikernel_arch::cmdline::KernelFlags;
use unikernel_arch::serial;

static READY: AtomicBool = AtomicBool::new(false);
/// Whether the command line chose the level (`unikernel.log=<level>`): then every crate
/// logs at it, the quiet ones included.
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
/// The kernel flag `unikernel.log=<level>` on the command line overrides `level`.
pub fn init(level: LevelFilter, cmdline: &str) -> Console {
    serial::init();
    let from_cmdline = KernelFlags::parse(cmdline).parsed("log");
    LEVEL_FROM_CMDLINE.store(from_cmdline.is_some(), Ordering::Relaxed);
    let level = from_cmdline.unwrap_or(level);
    // Only the first console installs the logger; the kernel starts one.
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(level);
    }
    READY.store(true, Ordering::Release);
    Console(())
}

struct Logger;
static LOGGER: Logger = Logger;

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        shown(
            metadata.level(),
            metadata.target(),
            log::max_level(),
            LEVEL_FROM_CMDLINE.load(Ordering::Relaxed),
        )
    }

    fn log(&self, record: &Record<'_>) {
        if self.enabled(record.metadata()) {
            serial::print(format_args!(
                "[{:<5} {}] {}\n",
                record.level(),
                record.target(),
                record.args()
            ));
        }
    }

    fn flush(&self) {}
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
    use super::*;
    use log::Level;

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
