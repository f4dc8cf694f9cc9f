//! The contract between `#[unikernel]`'s generated code and the kernel. Not a public API:
//! the names here change whenever the macro changes.
//!
//! Generated code calls, in the boot order the macro resolved:
//! `init_console(level)`, `init_heap(&HEAP, size)`, `init_args()`, each followed by
//! `mark("<subsystem>")`, then `mark("main")`, then `exit(Termination::report(main(..)))`.

pub use crate::exit::{Termination, exit};
pub use log::LevelFilter;
pub use unikernel_heap::{Heap, NoHeap};

use crate::{Args, Console};

/// Brings up the serial console and installs it as the `log` backend at `level`.
pub fn init_console(level: LevelFilter) -> Console {
    unikernel_console::init(level, unikernel_arch::boot::info().cmdline())
}

/// Gives `heap` `size` bytes of the VM's memory, mapped read-write and never executable.
pub fn init_heap(heap: &'static Heap, size: usize) {
    match unikernel_arch::memory::allocate(size) {
        Ok(region) => heap.init(region),
        Err(error) => crate::exit::boot_error(format_args!("heap: {error}")),
    }
}

/// Splits the app's part of the kernel command line into arguments.
pub fn init_args() -> Args {
    unikernel_args::Args::parse(unikernel_arch::boot::info().cmdline())
}

/// Sets up the interrupt controllers and enables interrupts.
pub fn init_irq() -> crate::Irq {
    unikernel_irq::init(unikernel_arch::boot::info().cmdline())
}

/// Starts the clock and the one-shot timer (after `init_irq`).
pub fn init_timer() -> crate::Clock {
    match unikernel_time::init(unikernel_arch::boot::info().cmdline()) {
        Ok(clock) => clock,
        Err(error) => crate::exit::boot_error(format_args!("timer: {error}")),
    }
}

/// Records that boot reached `stage` (a subsystem's name, or `main`).
pub fn mark(stage: &'static str) {
    unikernel_arch::timeline::mark(stage);
}

/// The `main` of a host build: apps are kernels and run only inside a VM.
pub fn host_main() -> ! {
    panic!(
        "a #[unikernel] app runs in a VM: build it for x86_64-unknown-none and boot it with `cargo run`"
    )
}
