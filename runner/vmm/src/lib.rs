//! The project's own virtual machine monitor: boots our PVH images straight on KVM, in the
//! calling process (the runner's `--vmm monitor`, its benchmarks and `density`), in a few milliseconds (QEMU takes tens), with a few MiB of host memory
//! per VM. Built on the rust-vmm crates Firecracker and Cloud Hypervisor use: kvm-ioctls and
//! kvm-bindings (the VM and vCPU), vm-memory (guest memory), linux-loader (the ELF and the
//! PVH start info); in the spirit of Solo5's hvt.
//!
//! What the guest gets:
//! - memory from guest-physical 0, the size asked for, with an E820 map (RAM below
//!   0x9fc00, the legacy hole reserved, RAM from 1 MiB) in a PVH `hvm_start_info` (version
//!   1) at 0x6000, and the command line at 0x20000;
//! - CPU 0 in 32-bit protected mode per the PVH ABI: CS/DS flat, paging off, interrupts
//!   off, EBX = the start info, EIP = the PVH note's entry; for an image on several CPUs
//!   (its manifest's `cpus=N`, or [`VmConfig::cpus`]) the others waiting in KVM's local
//!   APIC for INIT and SIPI, each run by a thread of its own (from the start: its KVM_RUN
//!   sleeps in the kernel until the guest's INIT-SIPI-SIPI),
//!   and ACPI tables ([`acpi`]: RSDP, XSDT, MADT) that list them;
//! - a short CPUID table (KVM's own values for a few leaves, trimmed) with the monitor's
//!   leaves at 0x4000_0000 (signature `UnikernelVMM`, features, TSC kHz);
//! - devices on I/O ports (`devices.rs`): the exit port 0xf4 (a write of `S` ends the
//!   VM with status `S`, as isa-debug-exit does for QEMU), a paravirtual console (one exit
//!   per write of any length), a clock page the guest reads without exits, a minimal COM1
//!   for guests that do not know the monitor, and the i8042 reset.
//!   The numbers and layouts are in the `unikernel-abi` crate, shared with the guest
//!   (`core/arch/src/hypervisor.rs` is the guest side);
//! - KVM's in-kernel interrupt controllers (local APIC, I/O APIC, PIC) for images whose
//!   manifest note lists `irq` or that run on several CPUs; images without either get
//!   none;
//! - when [`VmConfig`] asks for them, virtio devices on virtio-mmio ([`virtio`]): a
//!   virtio-net on a tap device or on passt, one virtio-blk per disk file, announced on
//!   the command line as QEMU microvm does (`virtio_mmio.device=512@0xfeb00000:5`), with
//!   queue notifications on ioeventfds, interrupts on irqfds and the device work on a
//!   thread of their own; and an initrd at the top of memory, listed as the start info's
//!   one module. A device-less VM has none of this (no thread, no eventfd).
//!
//! For function images (`cargo uk serve`): the request channel's host end ([`Vm::call`],
//! [`Channel`]), and snapshot and restore ([`snapshot`]): a VM saved at its first wait and
//! restored into VMs prepared ahead ([`Pool`]), its memory mapped copy-on-write from the
//! snapshot file.
//!
//! A guest that halts with nothing to wake it (HLT reaches the monitor only for a VM
//! without KVM's interrupt controllers, so nothing can ever wake it) ends its [`boot`] at
//! once as [`VmExit::Halted`]; `density` keeps such VMs as its idle ones, asleep at no CPU
//! cost until it stops them. A triple fault, a KVM internal error or an exit the monitor
//! does not handle stops the guest with one paragraph that says what happened and shows
//! the registers.
//!
//! Where to start reading: [`boot`] (one VM, start to end), then [`Vm::run`] (the exit
//! loop), [`image`] (loading) and [`elf`] (the one ELF reader of the host tools, which the
//! runner uses too).

pub mod acpi;
mod channel;
pub mod control;
mod cpu;
mod devices;
pub mod elf;
mod error;
pub mod gdb;
pub mod image;
pub mod realtime;
mod report;
pub mod sandbox;
pub mod snapshot;
pub mod virtio;
mod vm;

use std::path::Path;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

pub use channel::{CallError, Channel, Reply};
pub use control::Control;
pub use error::{Error, Result};
pub use image::Image;
/// The handle of `/dev/kvm` that [`open_kvm`] returns and [`Vm::new`] takes.
pub use kvm_ioctls::Kvm;
pub use report::FaultKind;
pub use snapshot::{Pool, Prepared, Snapshot};
pub use unikernel_abi::hypervisor as abi;
pub use vm::{
    ApplicationProcessor, Exchange, FunctionServer, MAX_CPUS, NetBackend, Stats, Vm, VmConfig,
    VmExit, open_kvm,
};
/// Guest memory, as [`FunctionServer`]s see it (read and write it with `vm_memory::Bytes`).
pub use vm_memory;

/// The host's time-stamp counter, for the runner's timeline; `None` off x86_64.
pub fn host_tsc() -> Option<u64> {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: RDTSC reads a counter; it has no memory effects and every x86_64 CPU has it.
    return Some(unsafe { core::arch::x86_64::_rdtsc() });
    #[cfg(not(target_arch = "x86_64"))]
    None
}

/// How one boot on the monitor went.
#[derive(Debug, Clone)]
pub struct Run {
    pub exit: VmExit,
    /// Whether the timeout stopped it.
    pub timed_out: bool,
    /// Times and counters, with the teardown.
    pub stats: Stats,
    /// Where a halted guest sat (interrupts enabled, rip), when it halted for good.
    pub halted: Option<(bool, u64)>,
    /// Devices the guest broke (or whose back end went away), one sentence each.
    pub device_failures: Vec<String>,
}

/// Boots `kernel` once with `config`, sending its output to `output` (which returns
/// `false` to stop the guest), and stops it after `timeout`. `Err` means the VM could not
/// be created (no KVM, not a PVH image, too little memory); everything that happens once
/// it runs is in the [`Run`].
///
/// Each vCPU runs on a thread of its own. The first to end (an exit status, a reset, a
/// fault, its output closed) ends the VM: the others are stopped and joined before this
/// returns, as all are at the timeout.
pub fn boot(
    kernel: &Path,
    config: &VmConfig,
    timeout: Duration,
    output: &mut dyn FnMut(&[u8]) -> bool,
) -> Result<Run> {
    let start = Instant::now();
    let image = Image::open(kernel)?;
    let kvm = open_kvm()?;
    control::install_kick_handler();
    let mut vm = Vm::new(&kvm, &image, config)?;
    drop(kvm);
    // The image is in guest memory now; its bytes (the whole ELF, debug info and all) and
    // what reading it freed are given back to the host.
    drop(image);
    return_free_heap();
    // The devices' thread, if any: stopped when dropped, after the vCPUs'.
    let devices = vm.start_devices()?;
    let application_processors = vm.take_application_processors();
    let (output_tx, output_rx) = mpsc::sync_channel::<Vec<u8>>(16);
    let (ended_tx, ended_rx) = mpsc::channel::<usize>();
    let channels = VcpuChannels {
        output: output_tx,
        ended: ended_tx,
    };
    // The APs first: each sleeps in KVM_RUN until the guest starts it.
    let mut aps = Vec::new();
    for ap in application_processors {
        let index = ap.index;
        match VcpuThread::spawn(
            index,
            ap,
            ApplicationProcessor::run,
            &channels,
            config.realtime,
        ) {
            Ok(thread) => aps.push(thread),
            Err(err) => {
                stop_all(&aps);
                return Err(err);
            }
        }
    }
    let boot_cpu = match VcpuThread::spawn(0, vm, Vm::run, &channels, config.realtime) {
        Ok(thread) => thread,
        Err(err) => {
            stop_all(&aps);
            return Err(err);
        }
    };
    drop(channels);
    let stops: Vec<_> = std::iter::once(boot_cpu.stop_handle())
        .chain(aps.iter().map(VcpuThread::stop_handle))
        .collect();
    // Stops every vCPU at the deadline or once one has ended; says which ended first.
    let watchdog = std::thread::Builder::new()
        .name("monitor-watchdog".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            // Unconfined it still stops the guest: the filter is defence in depth.
            let _ = sandbox::confine_watchdog_thread();
            let left = (start + timeout).saturating_duration_since(Instant::now());
            let first = ended_rx.recv_timeout(left).ok();
            for (control, thread) in &stops {
                control.stop_and_kick(*thread);
            }
            first
        });
    let watchdog = match watchdog {
        Ok(watchdog) => watchdog,
        Err(err) => {
            stop_all(&aps);
            stop_all(std::slice::from_ref(&boot_cpu));
            return Err(Error::Watchdog(err));
        }
    };
    for chunk in output_rx.iter() {
        if !output(&chunk) {
            // The reader is gone: dropping the channel stops the guest at its next output.
            break;
        }
    }
    drop(output_rx);
    let joined = boot_cpu.join();
    let joined_aps: Vec<_> = aps.into_iter().map(VcpuThread::join).collect();
    let first = watchdog.join().map_err(|_| Error::VcpuPanicked)?;
    let (mut vm, boot_exit) = joined?;
    let mut exits = vec![boot_exit];
    for joined in joined_aps {
        let (ap, exit) = joined?;
        vm.add_stats(&ap.stats);
        exits.push(exit);
    }
    // The VM's exit is that of the first vCPU to end; at the deadline all were stopped.
    let timed_out = first.is_none();
    let exit = exits.swap_remove(first.unwrap_or(0));
    // Nothing can wake it: reported now rather than at the timeout.
    let halted = match exit {
        VmExit::Halted { interrupts, rip } => Some((interrupts, rip)),
        _ => None,
    };
    drop(devices);
    let device_failures = vm.device_failures();
    let mut stats = vm.stats.clone();
    let teardown_start = Instant::now();
    drop(vm);
    stats.teardown = teardown_start.elapsed();
    Ok(Run {
        exit,
        timed_out,
        stats,
        halted,
        device_failures,
    })
}

/// What every vCPU thread of a [`boot`] sends: its output, and its index when its loop
/// returns.
struct VcpuChannels {
    output: mpsc::SyncSender<Vec<u8>>,
    ended: mpsc::Sender<usize>,
}

/// How a vCPU thread runs its CPU: [`Vm::run`] or [`ApplicationProcessor::run`].
type RunVcpu<T> = fn(&mut T, &Control, &mut dyn FnMut(&[u8]) -> bool) -> VmExit;

/// A vCPU running on a thread of its own: the thread, its [`Control`] and its id to kick.
struct VcpuThread<T> {
    handle: std::thread::JoinHandle<Result<(T, VmExit)>>,
    control: Arc<Control>,
    thread: libc::pthread_t,
}

impl<T: Send + 'static> VcpuThread<T> {
    /// Starts `cpu` (CPU `index`: the [`Vm`] for 0, an [`ApplicationProcessor`] above) on
    /// a confined thread that runs it with `run`, under SCHED_FIFO at `realtime` if set.
    fn spawn(
        index: usize,
        mut cpu: T,
        run: RunVcpu<T>,
        channels: &VcpuChannels,
        realtime: Option<u8>,
    ) -> Result<Self> {
        let control = Arc::new(Control::new());
        let (thread_tx, thread_rx) = mpsc::channel();
        let handle = {
            let control = Arc::clone(&control);
            let output = channels.output.clone();
            let ended = channels.ended.clone();
            std::thread::Builder::new()
                .name(format!("vcpu{index}"))
                .spawn(move || -> Result<(T, VmExit)> {
                    let _ = thread_tx.send(control::current_thread());
                    // As root still: the filter and the privilege drop come after.
                    let realtime = realtime.map_or(Ok(()), |priority| {
                        realtime::set_fifo(0, priority)
                            .map_err(|err| Error::Realtime(realtime::refusal(priority, &err)))
                    });
                    let exit = realtime
                        .and_then(|()| sandbox::confine_vcpu_thread())
                        .map(|()| {
                            run(&mut cpu, &control, &mut |bytes| {
                                output.send(bytes.to_vec()).is_ok()
                            })
                        });
                    control.finish();
                    let _ = ended.send(index);
                    exit.map(|exit| (cpu, exit))
                })
                .map_err(Error::VcpuThread)?
        };
        let thread = thread_rx.recv().map_err(|_| Error::VcpuPanicked)?;
        Ok(VcpuThread {
            handle,
            control,
            thread,
        })
    }

    fn stop_handle(&self) -> (Arc<Control>, libc::pthread_t) {
        (Arc::clone(&self.control), self.thread)
    }

    fn join(self) -> Result<(T, VmExit)> {
        self.handle.join().map_err(|_| Error::VcpuPanicked)?
    }
}

/// Stops the vCPU threads (on a failed start), and waits for each.
fn stop_all<T: Send + 'static>(threads: &[VcpuThread<T>]) {
    for thread in threads {
        thread.control.stop_and_kick(thread.thread);
    }
}

/// Gives the pages of freed heap memory back to the kernel. glibc keeps them otherwise: a
/// freed buffer of a few MiB (a read image) raises its mmap threshold, so the next such
/// buffer comes from the heap and, freed, stays resident below live data, for the life of
/// the VM (3.7 MiB of an http VM's 9.2 MiB of anonymous memory on the monitor).
fn return_free_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages of glibc's own heap to the kernel (with
    // madvise); it touches no memory in use and has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}

impl Stats {
    /// One line for `--stats`.
    pub fn line(&self) -> String {
        format!(
            "monitor: setup {:.2} ms, guest {:.2} ms (first KVM_RUN to exit), teardown {:.2} ms; {} exits: {} console writes ({} bytes), {} COM1 bytes, {} unclaimed port accesses",
            self.setup.as_secs_f64() * 1e3,
            self.guest.as_secs_f64() * 1e3,
            self.teardown.as_secs_f64() * 1e3,
            self.exits,
            self.console_writes,
            self.console_bytes,
            self.serial_bytes,
            self.unclaimed_ports
        )
    }
}
