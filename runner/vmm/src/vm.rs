//! One VM: guest memory, the loaded image, its vCPUs (CPU 0 in the PVH entry state, the
//! others waiting for the guest's start-up IPIs), and the loop that runs each and answers
//! its exits.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kvm_bindings::{Msrs, kvm_msr_entry, kvm_sregs, kvm_userspace_memory_region};
use kvm_ioctls::{Kvm, VcpuExit, VcpuFd, VmFd};
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};

use super::acpi;
use super::control::Control;
use super::cpu;
use super::devices::{Action, Ports};
use super::image::{self, Image};
use super::report::{self, FaultKind};
use super::virtio::{
    self, WriteOutcome,
    worker::{Worker, lock},
};
use crate::error::{self, Error, Result};
use unikernel_abi::hypervisor::{self as abi, ClockPage, ConsoleWrite};

/// The largest console write the monitor copies out in one exit.
const CONSOLE_MAX: u64 = 1 << 20;
pub(crate) const MSR_IA32_TSC: u32 = 0x10;
const RFLAGS_IF: u64 = 1 << 9;

/// What a VM is made of.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VmConfig {
    /// Guest memory in MiB.
    pub memory_mib: u32,
    /// The kernel command line.
    pub cmdline: String,
    /// A virtio-net device on this back end.
    pub net: Option<NetBackend>,
    /// One virtio-blk device per file, in order.
    pub disks: Vec<PathBuf>,
    /// The disks' files are opened with O_DIRECT (no host page cache, as QEMU's
    /// `cache=none`).
    pub disk_direct: bool,
    /// A file placed at the top of guest memory and listed as the PVH start info's one
    /// module (`modlist_paddr`).
    pub initrd: Option<PathBuf>,
    /// vCPUs, when not the image's own count (its manifest's `cpus=N`): fewer (or more)
    /// than the app declares, as QEMU's `-smp`.
    pub cpus: Option<u16>,
    /// Runs the vCPU threads under SCHED_FIFO at this priority (see [`crate::realtime`]).
    pub realtime: Option<u8>,
}

/// The most vCPUs the monitor gives a VM: the most our kernels start.
pub const MAX_CPUS: u16 = 64;

/// Where the network device's frames go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetBackend {
    /// The tap device `ifname` (already made), in the network namespace at `netns`
    /// (`/run/netns/<name>`) or the monitor's own.
    Tap {
        ifname: String,
        netns: Option<PathBuf>,
    },
    /// A unix stream socket of passt (or anything that speaks QEMU's `-netdev stream`:
    /// each frame after its length, 4 bytes big-endian).
    Stream { socket: PathBuf },
}

/// Counters and times of one VM, for `--stats`, the benchmark and density.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Stats {
    /// From the start of [`Vm::new`] until the vCPU is ready to run.
    pub setup: Duration,
    /// From the first KVM_RUN to the exit that ended the run (the guest's share, with the
    /// exits it made).
    pub guest: Duration,
    /// Dropping the VM (KVM tears it down); zero until [`crate::boot`] has done it.
    pub teardown: Duration,
    /// VM exits that came back to the monitor.
    pub exits: u64,
    /// Paravirtual console writes, and the bytes they carried.
    pub console_writes: u64,
    pub console_bytes: u64,
    /// Bytes written to COM1 (one exit each).
    pub serial_bytes: u64,
    /// Accesses to ports without a device.
    pub unclaimed_ports: u64,
}

/// How a run of the vCPU ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VmExit {
    /// The guest wrote this status to the exit port.
    Status(i32),
    /// The guest asked for a reset (i8042 command 0xfe, or a KVM reset event).
    Reset,
    /// The guest halted and nothing can wake it (the monitor raises no interrupts);
    /// `interrupts` tells whether it had them enabled.
    Halted { interrupts: bool, rip: u64 },
    /// Someone asked the vCPU to stop (a timeout, the end of a density run).
    Stopped,
    /// The monitor had to stop the guest.
    Fault { kind: FaultKind, report: String },
}

/// Opens `/dev/kvm`; the error says what to do.
pub fn open_kvm() -> Result<Kvm> {
    Kvm::new().map_err(|err| match err.errno() {
        libc::ENOENT => Error::NoKvm,
        libc::EACCES | libc::EPERM => Error::KvmDenied,
        _ => Error::OpenKvm(err),
    })
}

/// Per-process facts, asked from KVM by the first VM: the TSC frequency and the vCPU's
/// initial system registers.
struct HostFacts {
    tsc_khz: u32,
    sregs: kvm_sregs,
}

static FACTS: OnceLock<HostFacts> = OnceLock::new();

/// KVM's TSC frequency in kHz, asked once per process (0 when KVM does not say).
pub(crate) fn host_tsc_khz(vcpu: &VcpuFd) -> Result<u32> {
    Ok(match FACTS.get() {
        Some(facts) => facts.tsc_khz,
        None => {
            let tsc_khz = vcpu.get_tsc_khz().unwrap_or(0);
            let sregs = vcpu.get_sregs().map_err(error::kvm("KVM_GET_SREGS"))?;
            FACTS.get_or_init(|| HostFacts { tsc_khz, sregs }).tsc_khz
        }
    })
}

/// What the request channel's server wants after an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exchange {
    /// Resume the guest (a request is in its mailbox).
    Resume,
    /// Stop the guest: [`Vm::run`] returns [`VmExit::Stopped`]; a later `run` resumes it.
    Stop,
}

/// Serves the request channel of a function image (`unikernel_abi::function`): called at
/// each exchange with guest memory and the mailbox's guest-physical address; an error
/// ends the run with a fault that says it.
pub type FunctionServer =
    Box<dyn FnMut(&GuestMemoryMmap, u64) -> std::result::Result<Exchange, String> + Send>;

/// A VM ready to run, or running.
#[derive(Debug)]
pub struct Vm {
    // Field order is drop order: the vCPU and the VM go before the memory KVM maps.
    pub(crate) vcpu: VcpuFd,
    pub(crate) _vm: VmFd,
    pub(crate) mem: GuestMemoryMmap,
    pub(crate) ports: Ports,
    pub(crate) created: Instant,
    pub(crate) created_wall: SystemTime,
    pub(crate) tsc_khz: u32,
    /// KVM's interrupt controllers were created for this VM.
    pub(crate) interrupts: bool,
    /// Where the guest registered its clock page, for a snapshot to carry.
    pub(crate) clock_page: Option<u64>,
    pub(crate) console: Vec<u8>,
    /// The last exit was KVM_EXIT_DEBUG (a breakpoint or a single step, for `gdb`); `run`
    /// returned `Stopped` for it.
    pub(crate) debug_stop: bool,
    /// The virtio devices, on MMIO windows.
    pub(crate) devices: Arc<[virtio::Slot]>,
    /// The request channel's server, when the VM offers the channel.
    pub(crate) function: Option<FunctionSlot>,
    /// How many vCPUs the VM has (CPU 0 and the APs).
    pub(crate) cpus: u16,
    /// CPUs 1 and up, until [`Vm::take_application_processors`] hands them out.
    pub(crate) application_processors: Vec<ApplicationProcessor>,
    pub stats: Stats,
}

pub(crate) struct FunctionSlot(pub(crate) FunctionServer);

impl std::fmt::Debug for FunctionSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FunctionServer")
    }
}

impl Vm {
    /// Creates the VM: memory, the image and its start info, CPU 0 at the PVH entry and,
    /// for an image on several CPUs, the others waiting for INIT-SIPI, with ACPI tables that
    /// list them all.
    pub fn new(kvm: &Kvm, image: &Image, config: &VmConfig) -> Result<Vm> {
        let created = Instant::now();
        let created_wall = SystemTime::now();
        let size = u64::from(config.memory_mib) << 20;
        if !(image::HIGH_MEMORY + (1 << 20)..=(1 << 40)).contains(&size) {
            return Err(Error::MemorySize(config.memory_mib));
        }
        let cpus = config.cpus.unwrap_or(image.cpus);
        if !(1..=MAX_CPUS).contains(&cpus) {
            return Err(Error::CpuCount {
                cpus,
                max: MAX_CPUS,
            });
        }
        // The APs wait for the guest's INIT and SIPIs in KVM's local APIC: several CPUs
        // need the interrupt controllers even where the manifest does not list `irq`.
        let interrupts = image.interrupts || cpus > 1;
        let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), size as usize)]).map_err(
            |err| Error::MapMemory {
                mib: config.memory_mib,
                detail: err.to_string(),
            },
        )?;
        let vm = kvm.create_vm().map_err(error::kvm("KVM_CREATE_VM"))?;
        if interrupts {
            // KVM's own local APIC, IOAPIC and PIC: timers and interrupts without a
            // round trip to this process. Created before the vCPUs, as KVM requires.
            vm.create_irq_chip()
                .map_err(error::kvm("KVM_CREATE_IRQCHIP"))?;
        }
        let host = mem
            .get_host_address(GuestAddress(0))
            .map_err(|err| Error::MapMemory {
                mib: config.memory_mib,
                detail: err.to_string(),
            })?;
        let region = kvm_userspace_memory_region {
            slot: 0,
            flags: 0,
            guest_phys_addr: 0,
            memory_size: size,
            userspace_addr: host as u64,
        };
        // SAFETY: `host` is the start of a mapping of `size` bytes owned by `mem`, which the
        // `Vm` keeps and drops after the VM file descriptor (field order), so KVM never
        // uses the range after it is unmapped; nothing else is mapped into the VM there.
        unsafe { vm.set_user_memory_region(region) }
            .map_err(error::kvm("KVM_SET_USER_MEMORY_REGION"))?;

        image.load(&mem, true)?;
        let (devices, announce) = virtio::attach(&vm, &mem, config, interrupts)?;
        let module = match &config.initrd {
            Some(path) => Some(image::load_module(&mem, path, image.end())?),
            None => None,
        };
        // The tables describe the local APICs, which only a VM with KVM's has.
        let rsdp = if interrupts {
            Some(acpi::write(&mem, cpus as u8)?)
        } else {
            None
        };
        let start_info = if announce.is_empty() {
            image::write_start_info_with(&mem, &config.cmdline, module, rsdp)?
        } else {
            // After the app's arguments, as QEMU microvm appends them.
            let cmdline = format!("{} {}", config.cmdline, announce.join(" "));
            image::write_start_info_with(&mem, cmdline.trim_start(), module, rsdp)?
        };
        let devices: Arc<[virtio::Slot]> = devices.into();

        let vcpu = vm.create_vcpu(0).map_err(error::kvm("KVM_CREATE_VCPU"))?;
        let facts = match FACTS.get() {
            Some(facts) => facts,
            None => {
                let tsc_khz = vcpu.get_tsc_khz().unwrap_or(0);
                let sregs = vcpu.get_sregs().map_err(error::kvm("KVM_GET_SREGS"))?;
                FACTS.get_or_init(|| HostFacts { tsc_khz, sregs })
            }
        };
        vcpu.set_cpuid2(&cpu::cpuid(facts.tsc_khz)?)
            .map_err(error::kvm("KVM_SET_CPUID2"))?;
        vcpu.set_sregs(&cpu::pvh_sregs(facts.sregs))
            .map_err(error::kvm("KVM_SET_SREGS"))?;
        vcpu.set_regs(&cpu::pvh_regs(image.entry, start_info))
            .map_err(error::kvm("KVM_SET_REGS"))?;
        // With KVM's local APIC a vCPU other than the boot one starts waiting for INIT
        // (KVM_MP_STATE_UNINITIALIZED): nothing runs there until the guest's
        // INIT-SIPI-SIPI, which sets its registers.
        let application_processors = (1..cpus)
            .map(|index| {
                let vcpu = vm
                    .create_vcpu(u64::from(index))
                    .map_err(error::kvm("KVM_CREATE_VCPU"))?;
                let mut cpuid = cpu::cpuid(facts.tsc_khz)?;
                cpu::set_apic_id(&mut cpuid, index as u8);
                vcpu.set_cpuid2(&cpuid)
                    .map_err(error::kvm("KVM_SET_CPUID2"))?;
                Ok(ApplicationProcessor {
                    vcpu,
                    index: usize::from(index),
                    mem: mem.clone(),
                    devices: Arc::clone(&devices),
                    interrupts,
                    ports: Ports::default(),
                    tsc_khz: facts.tsc_khz,
                    created: (created, created_wall),
                    console: Vec::new(),
                    stats: Stats::default(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Vm {
            vcpu,
            _vm: vm,
            mem,
            ports: Ports::default(),
            created,
            created_wall,
            tsc_khz: facts.tsc_khz,
            interrupts,
            clock_page: None,
            console: Vec::new(),
            debug_stop: false,
            devices,
            function: None,
            cpus,
            application_processors,
            stats: Stats {
                setup: created.elapsed(),
                ..Stats::default()
            },
        })
    }

    /// Offers the guest the request channel of function images (CPUID
    /// `FEATURE_FUNCTION`, the port `FUNCTION_PORT`), served by `server`. Call it before
    /// the first [`run`](Vm::run).
    pub fn serve_function(&mut self, server: FunctionServer) -> Result<()> {
        self.vcpu
            .set_cpuid2(&cpu::cpuid_with(
                self.tsc_khz,
                unikernel_abi::function::FEATURE_FUNCTION,
            )?)
            .map_err(error::kvm("KVM_SET_CPUID2"))?;
        self.function = Some(FunctionSlot(server));
        Ok(())
    }

    /// Runs the vCPU until the guest exits, halts for good, faults or `control` stops it.
    /// Output (console writes and COM1 bytes) goes to `output` as it comes; `output`
    /// returning `false` stops the guest (its reader is gone).
    pub fn run(&mut self, control: &Control, output: &mut dyn FnMut(&[u8]) -> bool) -> VmExit {
        VcpuLoop {
            vcpu: &mut self.vcpu,
            cpu: (self.cpus > 1).then_some(0),
            mem: &self.mem,
            ports: &mut self.ports,
            devices: &self.devices,
            interrupts: self.interrupts,
            tsc_khz: self.tsc_khz,
            created: (self.created, self.created_wall),
            console: &mut self.console,
            stats: &mut self.stats,
            boot: Some(BootCpu {
                clock_page: &mut self.clock_page,
                debug_stop: &mut self.debug_stop,
                function: self.function.as_mut(),
            }),
        }
        .run(control, output)
    }

    /// How many vCPUs the VM has.
    pub fn cpus(&self) -> u16 {
        self.cpus
    }

    /// CPUs 1 and up, each to run on a thread of its own beside [`Vm::run`] (empty for a
    /// VM with one vCPU, and after the first call).
    pub fn take_application_processors(&mut self) -> Vec<ApplicationProcessor> {
        std::mem::take(&mut self.application_processors)
    }

    /// Adds an AP's counters, once it ran, to the VM's.
    pub fn add_stats(&mut self, ap: &Stats) {
        self.stats.exits += ap.exits;
        self.stats.console_writes += ap.console_writes;
        self.stats.console_bytes += ap.console_bytes;
        self.stats.serial_bytes += ap.serial_bytes;
        self.stats.unclaimed_ports += ap.unclaimed_ports;
    }

    /// The vCPU, for the gdb stub (registers, guest debugging).
    pub(crate) fn vcpu(&self) -> &VcpuFd {
        &self.vcpu
    }

    /// Starts the device thread, if the VM has devices; it stops when dropped.
    pub fn start_devices(&self) -> Result<Option<Worker>> {
        if self.devices.is_empty() {
            return Ok(None);
        }
        let attached = self
            .devices
            .iter()
            .map(virtio::Slot::attached)
            .collect::<std::io::Result<Vec<_>>>()
            .and_then(Worker::spawn)
            .map_err(|err| Error::Device(format!("starting the device thread: {err}")))?;
        Ok(Some(attached))
    }

    /// Why devices were marked failed, one sentence each (a guest that broke a rule of
    /// virtio, or a back end that went away).
    pub fn device_failures(&self) -> Vec<String> {
        self.devices
            .iter()
            .filter_map(|slot| {
                let transport = lock(&slot.transport);
                transport.failure().map(|why| {
                    format!(
                        "{} at {:#x} marked failed (DEVICE_NEEDS_RESET): {why}",
                        transport.name(),
                        slot.base
                    )
                })
            })
            .collect()
    }

    /// The state of every device's transport and queues, for a snapshot.
    pub fn save_devices(&self) -> Vec<virtio::TransportState> {
        self.devices
            .iter()
            .map(|slot| lock(&slot.transport).save())
            .collect()
    }

    /// Puts back the devices' state [`Vm::save_devices`] made (of a VM with the same
    /// devices, in the same order), each checked as a guest's own writes would be.
    pub fn restore_devices(&self, states: &[virtio::TransportState]) -> Result<()> {
        if states.len() != self.devices.len() {
            return Err(Error::Device(format!(
                "the snapshot has {} devices, the VM {}",
                states.len(),
                self.devices.len()
            )));
        }
        for (slot, state) in self.devices.iter().zip(states) {
            lock(&slot.transport).restore(state).map_err(|err| {
                Error::Device(format!(
                    "restoring the device at {:#x}: {}",
                    slot.base, err.0
                ))
            })?;
        }
        Ok(())
    }

    /// The guest's memory, for tests and diagnostics.
    pub fn memory(&self) -> &GuestMemoryMmap {
        &self.mem
    }
}

/// What a vCPU loop does after an exit.
enum Next {
    Run,
    /// The run ends with this.
    End(VmExit),
    /// KVM_EXIT_DEBUG (gdb's breakpoint or single step).
    Debug,
    Console(u64),
    Clock(u64),
    Function(u64),
    Halt,
    Internal,
    Fault(FaultKind, String),
}

/// What every vCPU's exits need: the port devices, the virtio windows, the counters and
/// the output. Its [`Exits::classify`] is the one place an exit is decoded, for CPU 0's
/// loop and the APs' alike.
struct Exits<'a> {
    ports: &'a mut Ports,
    devices: &'a [virtio::Slot],
    interrupts: bool,
    /// Whether the request channel is served (on CPU 0 of a function VM only).
    function: bool,
    stats: &'a mut Stats,
    output: &'a mut dyn FnMut(&[u8]) -> bool,
}

impl Exits<'_> {
    fn classify(&mut self, exit: VcpuExit<'_>) -> Next {
        match exit {
            VcpuExit::IoOut(port, data) => match self.ports.write(port, data) {
                Action::None => Next::Run,
                Action::Output(byte) => {
                    self.stats.serial_bytes += 1;
                    if (self.output)(&[byte]) {
                        Next::Run
                    } else {
                        Next::End(VmExit::Stopped)
                    }
                }
                Action::ConsoleWrite(address) => Next::Console(address),
                Action::RegisterClock(address) => Next::Clock(address),
                Action::Function(address) if self.function => Next::Function(address),
                Action::Function(_) => {
                    self.ports.unclaimed += 1;
                    self.ports.first_unclaimed.get_or_insert(abi::FUNCTION_PORT);
                    Next::Run
                }
                Action::Exit(status) => Next::End(VmExit::Status(status)),
                Action::Reset => Next::End(VmExit::Reset),
            },
            VcpuExit::IoIn(port, data) => {
                self.ports.read(port, data);
                Next::Run
            }
            VcpuExit::Hlt => Next::Halt,
            VcpuExit::Shutdown => Next::Fault(
                FaultKind::TripleFault,
                "the guest shut down: a triple fault (an exception while the CPU could not deliver a double fault, e.g. no usable IDT or stack)".into(),
            ),
            VcpuExit::InternalError => Next::Internal,
            VcpuExit::FailEntry(reason, _) => Next::Fault(
                FaultKind::EntryFailed,
                format!("KVM could not enter the guest (hardware entry failure reason {reason:#x})"),
            ),
            VcpuExit::SystemEvent(kind, _)
                if kind == kvm_bindings::KVM_SYSTEM_EVENT_RESET
                    || kind == kvm_bindings::KVM_SYSTEM_EVENT_SHUTDOWN =>
            {
                Next::End(VmExit::Reset)
            }
            VcpuExit::MmioRead(address, data) if device_at(self.devices, address).is_some() => {
                if let Some((slot, offset)) = device_at(self.devices, address) {
                    lock(&slot.transport).read(offset, data);
                }
                Next::Run
            }
            VcpuExit::MmioWrite(address, data) if device_at(self.devices, address).is_some() => {
                if let Some((slot, offset)) = device_at(self.devices, address)
                    && let WriteOutcome::Notify(queue) = lock(&slot.transport).write(offset, data)
                    && let Some(notifier) = slot.notifiers.get(queue)
                {
                    // KVM's ioeventfd takes a queue's notification before it exits;
                    // this is the way should one reach here all the same.
                    let _ = notifier.write(1);
                }
                Next::Run
            }
            // The I/O APIC window past KVM's one I/O APIC: an absent chip, as on a PC
            // (reads all ones, writes go nowhere), so a guest probing for a second I/O
            // APIC finds none.
            VcpuExit::MmioRead(address, data) if self.interrupts && is_absent_ioapic(address) => {
                data.fill(0xff);
                Next::Run
            }
            VcpuExit::MmioWrite(address, _) if self.interrupts && is_absent_ioapic(address) => {
                Next::Run
            }
            VcpuExit::MmioRead(address, data) => Next::Fault(
                FaultKind::Unhandled,
                format!(
                    "a {}-byte MMIO read at {address:#x}, where the monitor has no device{}",
                    data.len(),
                    mmio_hint(address)
                ),
            ),
            VcpuExit::MmioWrite(address, data) => Next::Fault(
                FaultKind::Unhandled,
                format!(
                    "a {}-byte MMIO write at {address:#x}, where the monitor has no device{}",
                    data.len(),
                    mmio_hint(address)
                ),
            ),
            VcpuExit::Intr => Next::Run,
            VcpuExit::Debug(_) => Next::Debug,
            other => Next::Fault(
                FaultKind::Unhandled,
                format!("a VM exit the monitor does not handle ({})", exit_name(&other)),
            ),
        }
    }
}

/// Copies the bytes of the console request at `address` into `console`.
fn console_request(
    mem: &GuestMemoryMmap,
    address: u64,
    console: &mut Vec<u8>,
    stats: &mut Stats,
) -> Result<(), String> {
    let mut request = [0u8; abi::CONSOLE_WRITE_SIZE];
    mem.read_slice(&mut request, GuestAddress(address))
        .map_err(|_| format!("its console request at {address:#x} lies outside its memory"))?;
    let ConsoleWrite { buffer, length } = ConsoleWrite::from_bytes(request);
    if length > CONSOLE_MAX {
        return Err(format!(
            "it asked to print {length} bytes at once (at most {CONSOLE_MAX})"
        ));
    }
    console.resize(length as usize, 0);
    mem.read_slice(console, GuestAddress(buffer)).map_err(|_| {
        format!("its console write of {length} bytes at {buffer:#x} lies outside its memory")
    })?;
    stats.console_writes += 1;
    stats.console_bytes += length;
    Ok(())
}

/// Fills the clock page at `address`: `vcpu`'s TSC now, paired with the host's clocks
/// (`created`: the VM's zero, monotonic and wall).
fn fill_clock_page(
    vcpu: &VcpuFd,
    mem: &GuestMemoryMmap,
    tsc_khz: u32,
    created: (Instant, SystemTime),
    address: u64,
) -> Result<(), String> {
    if !address.is_multiple_of(8) {
        return Err(format!(
            "its clock page at {address:#x} is not 8-byte aligned"
        ));
    }
    if tsc_khz == 0 {
        return Err("it registered a clock page, but KVM does not report the TSC frequency".into());
    }
    let mut msrs = Msrs::from_entries(&[kvm_msr_entry {
        index: MSR_IA32_TSC,
        ..Default::default()
    }])
    .map_err(|err| format!("building an MSR list: {err:?}"))?;
    let read = vcpu
        .get_msrs(&mut msrs)
        .map_err(|err| format!("reading its TSC failed: {err}"))?;
    let now = Instant::now();
    if read != 1 {
        return Err("reading its TSC failed".into());
    }
    let tsc = msrs.as_slice()[0].data;
    let system_ns = now.duration_since(created.0).as_nanos() as u64;
    let wall_ns_at_zero = created
        .1
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let tsc_hz = u64::from(tsc_khz) * 1000;
    let (mul, shift) = abi::scale(tsc_hz);
    let page = ClockPage {
        version: 0,
        flags: abi::CLOCK_TSC_STABLE,
        tsc_timestamp: tsc,
        system_ns,
        wall_ns_at_zero,
        tsc_hz,
        tsc_to_ns_mul: mul,
        tsc_shift: shift,
        reserved: [0; 3],
    };
    mem.write_slice(&page.to_bytes(), GuestAddress(address))
        .map_err(|_| format!("its clock page at {address:#x} lies outside its memory"))
}

fn internal_error(vcpu: &mut VcpuFd) -> String {
    let run = vcpu.get_kvm_run();
    // SAFETY: the exit reason is KVM_EXIT_INTERNAL_ERROR, so `internal` is the member of
    // the union KVM filled; it is plain integers.
    let internal = unsafe { run.__bindgen_anon_1.internal };
    let words = (internal.ndata as usize).min(internal.data.len());
    let data: Vec<String> = internal.data[..words]
        .iter()
        .map(|w| format!("{w:#x}"))
        .collect();
    format!(
        "KVM internal error {}: {}{}",
        internal.suberror,
        report::internal_error_name(internal.suberror),
        if data.is_empty() {
            String::new()
        } else {
            format!(" (data {})", data.join(" "))
        }
    )
}

/// The fault report of `vcpu`, which is CPU `cpu` of a VM with several (`None` with one).
fn fault(
    vcpu: &VcpuFd,
    cpu: Option<usize>,
    kind: FaultKind,
    what: &str,
    exits: u64,
    created: Instant,
) -> VmExit {
    let regs = vcpu.get_regs().ok();
    let sregs = vcpu.get_sregs().ok();
    let what = format!(
        "{what}, after {exits} VM exits and {:.1} ms",
        created.elapsed().as_secs_f64() * 1e3
    );
    VmExit::Fault {
        kind,
        report: report::paragraph(&what, cpu, regs.as_ref(), sregs.as_ref()),
    }
}

/// An application processor (CPU 1 and up of a VM with several): its vCPU, created
/// waiting for INIT and SIPI, and what its exits need, to run on a thread of its own
/// beside CPU 0's [`Vm::run`]. The guest starts it with INIT-SIPI-SIPI through KVM's local
/// APICs; until then its KVM_RUN sleeps in the kernel.
#[derive(Debug)]
pub struct ApplicationProcessor {
    // Declared first: dropped before the memory it runs in.
    vcpu: VcpuFd,
    /// Its CPU index, which is also its local APIC ID.
    pub index: usize,
    mem: GuestMemoryMmap,
    devices: Arc<[virtio::Slot]>,
    interrupts: bool,
    /// Its own copy of the port devices: the exit port and the paravirtual console need
    /// no state, and COM1's registers are the boot CPU's business.
    ports: Ports,
    tsc_khz: u32,
    created: (Instant, SystemTime),
    console: Vec<u8>,
    pub stats: Stats,
}

impl ApplicationProcessor {
    /// Runs the vCPU until the guest exits, faults or `control` stops it (from before
    /// its start-up too); as [`Vm::run`].
    pub fn run(&mut self, control: &Control, output: &mut dyn FnMut(&[u8]) -> bool) -> VmExit {
        VcpuLoop {
            vcpu: &mut self.vcpu,
            cpu: Some(self.index),
            mem: &self.mem,
            ports: &mut self.ports,
            devices: &self.devices,
            interrupts: self.interrupts,
            tsc_khz: self.tsc_khz,
            created: self.created,
            console: &mut self.console,
            stats: &mut self.stats,
            boot: None,
        }
        .run(control, output)
    }
}

/// What only CPU 0's loop answers: the guest's registrations that a snapshot and the gdb
/// stub read back, and the request channel of function images.
struct BootCpu<'a> {
    clock_page: &'a mut Option<u64>,
    debug_stop: &'a mut bool,
    function: Option<&'a mut FunctionSlot>,
}

/// One vCPU's run: the loop of [`Vm::run`] and [`ApplicationProcessor::run`] alike, over
/// the parts of either it needs, so that an exit is handled the same way on every CPU.
struct VcpuLoop<'a> {
    vcpu: &'a mut VcpuFd,
    /// The CPU its fault reports name (`None` in a VM with one).
    cpu: Option<usize>,
    mem: &'a GuestMemoryMmap,
    ports: &'a mut Ports,
    devices: &'a [virtio::Slot],
    interrupts: bool,
    tsc_khz: u32,
    created: (Instant, SystemTime),
    console: &'a mut Vec<u8>,
    stats: &'a mut Stats,
    /// CPU 0's part; `None` on an AP.
    boot: Option<BootCpu<'a>>,
}

impl VcpuLoop<'_> {
    fn run(mut self, control: &Control, output: &mut dyn FnMut(&[u8]) -> bool) -> VmExit {
        let start = Instant::now();
        let exit = self.run_loop(control, output);
        self.stats.guest = start.elapsed();
        self.stats.unclaimed_ports = self.ports.unclaimed;
        exit
    }

    fn run_loop(&mut self, control: &Control, output: &mut dyn FnMut(&[u8]) -> bool) -> VmExit {
        loop {
            if control.stop_or_interrupt_requested() {
                return VmExit::Stopped;
            }
            let next = match self.vcpu.run() {
                Ok(exit) => {
                    self.stats.exits += 1;
                    let mut exits = Exits {
                        ports: &mut *self.ports,
                        devices: self.devices,
                        interrupts: self.interrupts,
                        function: self
                            .boot
                            .as_ref()
                            .is_some_and(|boot| boot.function.is_some()),
                        stats: &mut *self.stats,
                        output,
                    };
                    exits.classify(exit)
                }
                Err(err) if err.errno() == libc::EINTR || err.errno() == libc::EAGAIN => Next::Run,
                Err(err) => Next::Fault(FaultKind::Unhandled, format!("KVM_RUN failed: {err}")),
            };
            let (kind, what) = match next {
                Next::Run => continue,
                Next::End(exit) => return exit,
                // A breakpoint or a single step of the gdb stub, which debugs CPU 0 only.
                Next::Debug => match &mut self.boot {
                    Some(boot) => {
                        *boot.debug_stop = true;
                        return VmExit::Stopped;
                    }
                    None => continue,
                },
                Next::Console(address) => {
                    match console_request(self.mem, address, self.console, self.stats) {
                        Ok(()) if output(self.console) => continue,
                        Ok(()) => return VmExit::Stopped,
                        Err(what) => (FaultKind::BadRequest, what),
                    }
                }
                Next::Clock(address) => {
                    match fill_clock_page(self.vcpu, self.mem, self.tsc_khz, self.created, address)
                    {
                        Ok(()) => {
                            if let Some(boot) = &mut self.boot {
                                *boot.clock_page = Some(address);
                            }
                            continue;
                        }
                        Err(what) => (FaultKind::BadRequest, what),
                    }
                }
                Next::Function(address) => {
                    // `classify` yields it only where the channel is served.
                    let Some(FunctionSlot(server)) = self
                        .boot
                        .as_mut()
                        .and_then(|boot| boot.function.as_deref_mut())
                    else {
                        continue;
                    };
                    match server(self.mem, address) {
                        Ok(Exchange::Resume) => continue,
                        Ok(Exchange::Stop) => return VmExit::Stopped,
                        Err(what) => (FaultKind::BadRequest, what),
                    }
                }
                Next::Halt if self.boot.is_some() => {
                    let regs = self.vcpu.get_regs().unwrap_or_default();
                    return VmExit::Halted {
                        interrupts: regs.rflags & RFLAGS_IF != 0,
                        rip: regs.rip,
                    };
                }
                // KVM's local APIC takes an AP's HLT in the kernel; should one come here,
                // it is a monitor bug to report, not a guest to wait for.
                Next::Halt => (
                    FaultKind::Unhandled,
                    "a HLT exit, which KVM's local APIC should have handled".into(),
                ),
                Next::Internal => (FaultKind::InternalError, internal_error(self.vcpu)),
                Next::Fault(kind, what) => (kind, what),
            };
            return fault(
                self.vcpu,
                self.cpu,
                kind,
                &what,
                self.stats.exits,
                self.created.0,
            );
        }
    }
}

/// The device whose window holds `address`, and the offset in it.
fn device_at(devices: &[virtio::Slot], address: u64) -> Option<(&virtio::Slot, u64)> {
    devices.iter().find_map(|slot| {
        let offset = address.checked_sub(slot.base)?;
        (offset < virtio::MMIO_SIZE).then_some((slot, offset))
    })
}

/// What an MMIO address probably is.
fn mmio_hint(address: u64) -> &'static str {
    match address {
        0xfee0_0000..=0xfee0_0fff => {
            " (the local APIC: an image whose manifest does not list `irq` gets no interrupt controller)"
        }
        0xfec0_0000..=0xfec0_0fff => {
            " (the I/O APIC: an image whose manifest does not list `irq` gets no interrupt controller)"
        }
        _ => "",
    }
}

fn exit_name(exit: &VcpuExit<'_>) -> String {
    match exit {
        VcpuExit::Unknown => "KVM_EXIT_UNKNOWN".into(),
        VcpuExit::Exception => "KVM_EXIT_EXCEPTION".into(),
        VcpuExit::Debug(_) => "KVM_EXIT_DEBUG".into(),
        VcpuExit::SystemEvent(kind, _) => format!("KVM_EXIT_SYSTEM_EVENT type {kind}"),
        VcpuExit::X86Rdmsr(msr) => format!("an RDMSR of MSR {:#x}", msr.index),
        VcpuExit::X86Wrmsr(msr) => format!("a WRMSR of MSR {:#x}", msr.index),
        VcpuExit::Unsupported(reason) => format!("exit reason {reason}"),
        _ => "an exit of another kind".into(),
    }
}

/// Whether `address` is in the I/O APIC window (0xfec00000-0xfecfffff) but not at KVM's
/// in-kernel I/O APIC, whose accesses never reach the monitor.
fn is_absent_ioapic(address: u64) -> bool {
    (0xfec0_1000..0xfed0_0000).contains(&address)
}
