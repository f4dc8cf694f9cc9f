//! The runner's own virtual machine monitor: boots our PVH images straight on KVM, in the
//! runner's process, in a few milliseconds (QEMU takes tens), with a few MiB of host memory
//! per VM. Built on the rust-vmm crates Firecracker and Cloud Hypervisor use: kvm-ioctls and
//! kvm-bindings (the VM and vCPU), vm-memory (guest memory), linux-loader (the ELF and the
//! PVH start info); in the spirit of Solo5's hvt.
//!
//! What the guest gets:
//! - memory from guest-physical 0, the size asked for, with an E820 map (RAM below
//!   0x9fc00, the legacy hole reserved, RAM from 1 MiB) in a PVH `hvm_start_info` (version
//!   1) at 0x6000, and the command line at 0x20000;
//! - one vCPU in 32-bit protected mode per the PVH ABI: CS/DS flat, paging off, interrupts
//!   off, EBX = the start info, EIP = the PVH note's entry;
//! - a short CPUID table (KVM's own values for a few leaves, trimmed) with the monitor's
//!   leaves at 0x4000_0000 (signature `UnikernelVMM`, features, TSC kHz);
//! - devices on I/O ports only ([`devices`]): the exit port 0xf4 (a write of `S` ends the
//!   VM with status `S`, as isa-debug-exit does for QEMU), a paravirtual console (one exit
//!   per write of any length), a clock page the guest reads without exits, a minimal COM1
//!   for guests that do not know the monitor, and the i8042 reset.
//!   The guest side is `core/arch/src/hypervisor.rs`; [`abi`] mirrors its numbers.
//!
//! There is no interrupt controller: a guest that halts cannot be woken, and the monitor
//! then sleeps (a halted VM costs no CPU) until it is stopped. A triple fault, a KVM
//! internal error or an exit the monitor does not handle stops the guest with one
//! paragraph that says what happened and shows the registers.

pub mod abi;
pub mod control;
pub mod cpu;
pub mod devices;
pub mod image;
pub mod report;
pub mod vm;

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use control::Control;
pub use image::Image;
pub use report::FaultKind;
pub use vm::{Stats, Vm, VmConfig, VmExit, open_kvm};

use crate::error::{Error, Result};

/// Which VMM boots an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Vmm {
    /// QEMU: every machine model and accelerator, the compatible default.
    #[default]
    Qemu,
    /// The runner's own KVM monitor: PVH images on KVM, for speed and density.
    Monitor,
}

impl FromStr for Vmm {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "qemu" => Ok(Vmm::Qemu),
            "monitor" => Ok(Vmm::Monitor),
            _ => Err(Error::new(format!("--vmm {s}: expected qemu or monitor"))),
        }
    }
}

impl fmt::Display for Vmm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Vmm::Qemu => "qemu",
            Vmm::Monitor => "monitor",
        })
    }
}

/// How one boot on the monitor went.
#[derive(Debug, Clone)]
pub struct Run {
    pub exit: VmExit,
    /// Whether the timeout stopped it.
    pub timed_out: bool,
    pub stats: Stats,
    /// Dropping the VM (KVM tears it down).
    pub teardown: Duration,
    /// Where a halted guest sat, when it did before the timeout.
    pub halted: Option<(bool, u64)>,
}

/// Boots `kernel` once with `config`, sending its output to `output`, and stops it after
/// `timeout`. `Err` means the VM could not be created (no KVM, not a PVH image, too little
/// memory); everything that happens once it runs is in the [`Run`].
pub fn boot(
    kernel: &Path,
    config: &VmConfig,
    timeout: Duration,
    output: &mut dyn FnMut(&[u8]),
) -> Result<Run> {
    let start = Instant::now();
    let image = Image::open(kernel)?;
    let kvm = open_kvm()?;
    control::install_kick_handler();
    let mut vm = Vm::new(&kvm, &image, config)?;
    let control = Arc::new(Control::new());
    let watchdog = {
        let control = Arc::clone(&control);
        let thread = control::current_thread();
        let deadline = start + timeout;
        std::thread::Builder::new()
            .name("monitor-watchdog".into())
            .stack_size(64 * 1024)
            .spawn(move || {
                if !control.wait_finished(deadline) {
                    control.stop_and_kick(thread);
                }
            })
            .map_err(|err| Error::new(format!("cannot start the watchdog thread: {err}")))?
    };
    let mut exit = vm.run(&control, output);
    let mut halted = None;
    if let VmExit::Halted { interrupts, rip } = exit {
        // Nothing can wake it: sleep until the timeout stops it.
        halted = Some((interrupts, rip));
        control.park();
        exit = VmExit::Stopped;
    }
    control.finish();
    let _ = watchdog.join();
    let timed_out = exit == VmExit::Stopped;
    let stats = vm.stats.clone();
    let teardown_start = Instant::now();
    drop(vm);
    Ok(Run {
        exit,
        timed_out,
        stats,
        teardown: teardown_start.elapsed(),
        halted,
    })
}

impl Stats {
    /// One line for `--stats`.
    pub fn line(&self, teardown: Duration) -> String {
        format!(
            "monitor: setup {:.2} ms, guest {:.2} ms (first KVM_RUN to exit), teardown {:.2} ms; {} exits: {} console writes ({} bytes), {} COM1 bytes, {} unclaimed port accesses",
            self.setup.as_secs_f64() * 1e3,
            self.guest.as_secs_f64() * 1e3,
            teardown.as_secs_f64() * 1e3,
            self.exits,
            self.console_writes,
            self.console_bytes,
            self.serial_bytes,
            self.unclaimed_ports
        )
    }

    /// Parses the numbers back out of [`Stats::line`]: `(setup, guest, teardown)` in ms.
    pub fn parse_line(line: &str) -> Option<(f64, f64, f64)> {
        let rest = line.split("monitor: setup ").nth(1)?;
        let number = |text: &str, after: &str| -> Option<f64> {
            let start = text.find(after)? + after.len();
            text[start..].split_whitespace().next()?.parse().ok()
        };
        let setup: f64 = rest.split_whitespace().next()?.parse().ok()?;
        Some((setup, number(rest, "guest ")?, number(rest, "teardown ")?))
    }
}
