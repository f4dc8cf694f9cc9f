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
    let level = KernelFlags::parse(cmdline).parsed("log").unwrap_or(level);
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
        metadata.level() <= log::max_level()
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
