//! Snapshot and restore, in the manner of Firecracker's: a VM paused at an exit is saved as
//! two files in a directory, `memory` (guest memory, byte for byte, zero pages left as
//! holes) and `state.json` (the vCPU, KVM's interrupt controllers, the clock page's
//! address, the request channel's mailbox; small, versioned, checked when read).
//!
//! A restore makes a new KVM VM whose guest memory is `memory` mapped `MAP_PRIVATE`: pages
//! are read from the page cache, shared by every VM restored from the same file, and copied
//! only when a guest writes them. The clock page is rewritten so the guest's wall clock is
//! the host's, and its monotonic clock goes on from where the snapshot left it.
//!
//! A snapshot is untrusted input: every size, address and count is checked before use, and
//! a bad one is an [`Error::Snapshot`] that says which, never a panic.
//!
//! What is saved: general, system and debug registers, x87/SSE (`kvm_fpu`: the CPUID table
//! hides XSAVE, so the guest has no other FPU state), the MSRs in [`SAVED_MSRS`] that KVM
//! has, the MP state and pending events, and, for VMs with KVM's interrupt controllers, the
//! local APIC, both PICs and the I/O APIC. Not saved: virtio devices (a VM with any is
//! refused) and the COM1 registers (a guest of the monitor prints through the console).

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kvm_bindings::{
    KVM_IRQCHIP_IOAPIC, KVM_IRQCHIP_PIC_MASTER, KVM_IRQCHIP_PIC_SLAVE, Msrs, kvm_debugregs,
    kvm_fpu, kvm_irqchip, kvm_lapic_state, kvm_mp_state, kvm_msr_entry, kvm_regs, kvm_sregs,
    kvm_userspace_memory_region, kvm_vcpu_events,
};
use kvm_ioctls::{Kvm, VcpuFd, VmFd};
use serde::{Deserialize, Serialize};
use vm_memory::mmap::MmapRegion;
use vm_memory::{
    Bytes, FileOffset, GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestRegionMmap,
};

use crate::cpu;
use crate::devices::Ports;
use crate::error::{self, Error, Result};
use crate::vm::{FunctionServer, FunctionSlot, MSR_IA32_TSC, Stats, Vm, host_tsc_khz};
use unikernel_abi::hypervisor::{self as abi, ClockPage};

/// The version of the state file; a snapshot of another version is refused.
pub const SNAPSHOT_FORMAT: u32 = 1;
const MAGIC: &str = "unikernel-vmm snapshot";
/// The state file's name in a snapshot directory.
pub const STATE_FILE: &str = "state.json";
/// The memory file's name in a snapshot directory.
pub const MEMORY_FILE: &str = "memory";
/// A state file is a few KiB; anything much larger is not one.
const STATE_MAX: u64 = 1 << 20;
const PAGE: usize = 4096;

/// The MSRs a snapshot carries, those KVM has: the TSC, SYSENTER, the SYSCALL family,
/// the kernel GS base, TSC_AUX, PAT, MISC_ENABLE and the TSC deadline.
pub const SAVED_MSRS: &[u32] = &[
    MSR_IA32_TSC,
    0x174,
    0x175,
    0x176,
    0x1a0,
    0x277,
    0x6e0,
    0xc000_0081,
    0xc000_0082,
    0xc000_0083,
    0xc000_0084,
    0xc000_0102,
    0xc000_0103,
];

/// The x87 and SSE state (`kvm_fpu`, which kvm-bindings does not serialise).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FpuState {
    pub fpr: [[u8; 16]; 8],
    pub fcw: u16,
    pub fsw: u16,
    pub ftwx: u8,
    pub last_opcode: u16,
    pub last_ip: u64,
    pub last_dp: u64,
    pub xmm: [[u8; 16]; 16],
    pub mxcsr: u32,
}

impl From<&kvm_fpu> for FpuState {
    fn from(fpu: &kvm_fpu) -> Self {
        FpuState {
            fpr: fpu.fpr,
            fcw: fpu.fcw,
            fsw: fpu.fsw,
            ftwx: fpu.ftwx,
            last_opcode: fpu.last_opcode,
            last_ip: fpu.last_ip,
            last_dp: fpu.last_dp,
            xmm: fpu.xmm,
            mxcsr: fpu.mxcsr,
        }
    }
}

impl From<&FpuState> for kvm_fpu {
    fn from(fpu: &FpuState) -> Self {
        kvm_fpu {
            fpr: fpu.fpr,
            fcw: fpu.fcw,
            fsw: fpu.fsw,
            ftwx: fpu.ftwx,
            last_opcode: fpu.last_opcode,
            last_ip: fpu.last_ip,
            last_dp: fpu.last_dp,
            xmm: fpu.xmm,
            mxcsr: fpu.mxcsr,
            ..Default::default()
        }
    }
}

/// Everything of a VM but its memory.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VmState {
    pub magic: String,
    pub format: u32,
    /// Guest memory in bytes (the memory file's length).
    pub memory_size: u64,
    /// KVM's TSC frequency where the snapshot was taken; a host with another is refused.
    pub tsc_khz: u32,
    /// KVM's interrupt controllers exist (and their state is below).
    pub interrupts: bool,
    /// The monitor's CPUID feature bits beyond console and clock (the request channel).
    pub features: u32,
    pub regs: kvm_regs,
    pub sregs: kvm_sregs,
    pub fpu: FpuState,
    pub msrs: Vec<kvm_msr_entry>,
    pub mp_state: kvm_mp_state,
    pub vcpu_events: kvm_vcpu_events,
    pub debug_regs: kvm_debugregs,
    pub lapic: Option<kvm_lapic_state>,
    /// PIC master, PIC slave, I/O APIC, when `interrupts`.
    pub irqchips: Vec<kvm_irqchip>,
    /// The guest's clock page, if it registered one.
    pub clock_page: Option<u64>,
    /// The guest's monotonic nanoseconds when the snapshot was taken.
    pub guest_ns: u64,
    /// The request channel's mailbox, when the guest waits at the channel.
    pub mailbox: Option<u64>,
}

/// A snapshot read back and checked, ready to restore any number of times.
#[derive(Debug)]
pub struct Snapshot {
    pub state: VmState,
    memory: File,
}

impl Vm {
    /// Saves this VM, stopped at an exit, into `dir` (which must exist): see the module's
    /// documentation. `mailbox` is the request channel's mailbox when the guest waits on
    /// it. The VM can go on running afterwards.
    pub fn snapshot(&mut self, dir: &Path, mailbox: Option<u64>) -> Result<()> {
        let fail = |what: &str| {
            let what = what.to_string();
            move |err: kvm_ioctls::Error| Error::Snapshot(format!("{what}: {err}"))
        };
        if !self.devices.is_empty() {
            return Err(Error::Snapshot(
                "a VM with virtio devices cannot be snapshotted".into(),
            ));
        }
        if self.cpus > 1 {
            return Err(Error::Snapshot(format!(
                "a VM with {} vCPUs cannot be snapshotted: a snapshot saves one vCPU",
                self.cpus
            )));
        }
        // Finish the instruction of the last exit (its port write), as Firecracker does,
        // so the saved registers point past it: an immediate-exit KVM_RUN completes it
        // and returns at once.
        self.vcpu.set_kvm_immediate_exit(1);
        let completed = self.vcpu.run().map(|_| ());
        self.vcpu.set_kvm_immediate_exit(0);
        match completed {
            Err(err) if err.errno() != libc::EINTR => {
                return Err(Error::Snapshot(format!(
                    "completing the last exit failed: {err}"
                )));
            }
            _ => {}
        }
        let guest_ns = self.created.elapsed().as_nanos() as u64;
        let msrs = read_msrs(&self.vcpu)?;
        let (lapic, irqchips) = if self.interrupts {
            let lapic = self.vcpu.get_lapic().map_err(fail("KVM_GET_LAPIC"))?;
            let mut chips = Vec::new();
            for chip_id in [
                KVM_IRQCHIP_PIC_MASTER,
                KVM_IRQCHIP_PIC_SLAVE,
                KVM_IRQCHIP_IOAPIC,
            ] {
                let mut chip = kvm_irqchip {
                    chip_id,
                    ..Default::default()
                };
                self._vm
                    .get_irqchip(&mut chip)
                    .map_err(fail("KVM_GET_IRQCHIP"))?;
                chips.push(chip);
            }
            (Some(lapic), chips)
        } else {
            (None, Vec::new())
        };
        let state = VmState {
            magic: MAGIC.into(),
            format: SNAPSHOT_FORMAT,
            memory_size: self.mem.last_addr().0 + 1,
            tsc_khz: self.tsc_khz,
            interrupts: self.interrupts,
            features: if self.function.is_some() {
                unikernel_abi::function::FEATURE_FUNCTION
            } else {
                0
            },
            regs: self.vcpu.get_regs().map_err(fail("KVM_GET_REGS"))?,
            sregs: self.vcpu.get_sregs().map_err(fail("KVM_GET_SREGS"))?,
            fpu: FpuState::from(&self.vcpu.get_fpu().map_err(fail("KVM_GET_FPU"))?),
            msrs,
            mp_state: self.vcpu.get_mp_state().map_err(fail("KVM_GET_MP_STATE"))?,
            vcpu_events: self
                .vcpu
                .get_vcpu_events()
                .map_err(fail("KVM_GET_VCPU_EVENTS"))?,
            debug_regs: self
                .vcpu
                .get_debug_regs()
                .map_err(fail("KVM_GET_DEBUGREGS"))?,
            lapic,
            irqchips,
            clock_page: self.clock_page,
            guest_ns,
            mailbox,
        };
        let io = |what: &str, err: std::io::Error| Error::Snapshot(format!("{what}: {err}"));
        let memory = File::create(dir.join(MEMORY_FILE)).map_err(|e| io("creating memory", e))?;
        memory
            .set_len(state.memory_size)
            .map_err(|e| io("sizing memory", e))?;
        // Chunks through a buffer, each non-zero page written at its offset: the zero
        // pages stay holes, which read as zeros and take no page cache.
        let mut chunk = vec![0u8; 2 << 20];
        let mut offset = 0u64;
        while offset < state.memory_size {
            let len = chunk.len().min((state.memory_size - offset) as usize);
            self.mem
                .read_slice(&mut chunk[..len], GuestAddress(offset))
                .map_err(|e| Error::Snapshot(format!("reading guest memory: {e}")))?;
            for (index, page) in chunk[..len].chunks(PAGE).enumerate() {
                if page.iter().any(|&byte| byte != 0) {
                    memory
                        .write_all_at(page, offset + (index * PAGE) as u64)
                        .map_err(|e| io("writing memory", e))?;
                }
            }
            offset += len as u64;
        }
        let json = serde_json::to_vec(&state)
            .map_err(|e| Error::Snapshot(format!("encoding the state: {e}")))?;
        std::fs::write(dir.join(STATE_FILE), json).map_err(|e| io("writing the state", e))?;
        Ok(())
    }
}

/// Reads the MSRs of [`SAVED_MSRS`] KVM has (KVM_GET_MSRS stops at the first it lacks;
/// that one is skipped).
fn read_msrs(vcpu: &VcpuFd) -> Result<Vec<kvm_msr_entry>> {
    let mut saved = Vec::new();
    let mut rest = SAVED_MSRS;
    while !rest.is_empty() {
        let entries: Vec<kvm_msr_entry> = rest
            .iter()
            .map(|&index| kvm_msr_entry {
                index,
                ..Default::default()
            })
            .collect();
        let mut msrs = Msrs::from_entries(&entries)
            .map_err(|err| Error::Snapshot(format!("building an MSR list: {err:?}")))?;
        let read = vcpu
            .get_msrs(&mut msrs)
            .map_err(|err| Error::Snapshot(format!("KVM_GET_MSRS: {err}")))?;
        saved.extend_from_slice(&msrs.as_slice()[..read.min(rest.len())]);
        rest = rest.get(read + 1..).unwrap_or(&[]);
    }
    Ok(saved)
}

impl Snapshot {
    /// Reads and checks the snapshot in `dir`, for this host.
    pub fn load(dir: &Path) -> Result<Snapshot> {
        let bad = |what: String| Error::Snapshot(format!("{}: {what}", dir.display()));
        let mut json = Vec::new();
        File::open(dir.join(STATE_FILE))
            .map_err(|e| bad(format!("opening {STATE_FILE}: {e}")))?
            .take(STATE_MAX + 1)
            .read_to_end(&mut json)
            .map_err(|e| bad(format!("reading {STATE_FILE}: {e}")))?;
        if json.len() as u64 > STATE_MAX {
            return Err(bad(format!(
                "{STATE_FILE} is larger than {STATE_MAX} bytes"
            )));
        }
        let state: VmState = serde_json::from_slice(&json)
            .map_err(|e| bad(format!("{STATE_FILE} is not a snapshot's state: {e}")))?;
        let memory = File::open(dir.join(MEMORY_FILE))
            .map_err(|e| bad(format!("opening {MEMORY_FILE}: {e}")))?;
        let length = memory
            .metadata()
            .map_err(|e| bad(format!("reading {MEMORY_FILE}'s size: {e}")))?
            .len();
        let host_khz = {
            let kvm = crate::open_kvm()?;
            let vm = kvm.create_vm().map_err(error::kvm("KVM_CREATE_VM"))?;
            let vcpu = vm.create_vcpu(0).map_err(error::kvm("KVM_CREATE_VCPU"))?;
            host_tsc_khz(&vcpu)?
        };
        validate(&state, length, host_khz).map_err(bad)?;
        Ok(Snapshot { state, memory })
    }

    /// Guest memory in bytes.
    pub fn memory_size(&self) -> u64 {
        self.state.memory_size
    }
}

/// The checks of [`Snapshot::load`], on the parsed state, the memory file's length and
/// this host's TSC frequency.
pub fn validate(state: &VmState, memory_length: u64, host_khz: u32) -> Result<(), String> {
    if state.magic != MAGIC {
        return Err(format!(
            "not a snapshot of this monitor ({:?})",
            state.magic
        ));
    }
    if state.format != SNAPSHOT_FORMAT {
        return Err(format!(
            "snapshot format {} (this monitor reads {SNAPSHOT_FORMAT})",
            state.format
        ));
    }
    let size = state.memory_size;
    if !(2 << 20..=1 << 40).contains(&size) || !size.is_multiple_of(PAGE as u64) {
        return Err(format!(
            "a memory size of {size} bytes (2 MiB to 1 TiB, whole pages)"
        ));
    }
    if memory_length != size {
        return Err(format!(
            "the memory file has {memory_length} bytes, the state says {size}"
        ));
    }
    if state.tsc_khz != host_khz {
        return Err(format!(
            "taken with a TSC of {} kHz, this host's is {host_khz} kHz",
            state.tsc_khz
        ));
    }
    if state.msrs.len() > SAVED_MSRS.len()
        || state
            .msrs
            .iter()
            .any(|msr| !SAVED_MSRS.contains(&msr.index))
    {
        return Err("MSRs the monitor does not save".into());
    }
    let chips_expected = if state.interrupts { 3 } else { 0 };
    if state.irqchips.len() != chips_expected || state.lapic.is_some() != state.interrupts {
        return Err("interrupt controller state that does not match the VM".into());
    }
    let wanted = [
        KVM_IRQCHIP_PIC_MASTER,
        KVM_IRQCHIP_PIC_SLAVE,
        KVM_IRQCHIP_IOAPIC,
    ];
    if state
        .irqchips
        .iter()
        .zip(wanted)
        .any(|(chip, id)| chip.chip_id != id)
    {
        return Err("interrupt controllers out of order".into());
    }
    let inside = |address: u64, len: u64| address.checked_add(len).is_some_and(|end| end <= size);
    if let Some(page) = state.clock_page
        && (!page.is_multiple_of(8) || !inside(page, 48))
    {
        return Err(format!("a clock page at {page:#x}, outside guest memory"));
    }
    if let Some(mailbox) = state.mailbox
        && !inside(mailbox, unikernel_abi::function::MAILBOX_SIZE as u64)
    {
        return Err(format!("a mailbox at {mailbox:#x}, outside guest memory"));
    }
    if state.features & !unikernel_abi::function::FEATURE_FUNCTION != 0 {
        return Err(format!("unknown features {:#x}", state.features));
    }
    Ok(())
}

/// A KVM VM and its vCPU, made ahead of a restore (the part of a restore that does not
/// depend on the snapshot's contents), and, for a pool of one snapshot, its memory
/// already mapped and given to KVM.
#[derive(Debug)]
pub struct Prepared {
    // Field order is drop order: the vCPU and the VM go before the memory KVM maps.
    vcpu: VcpuFd,
    vm: VmFd,
    memory: Option<(Arc<Snapshot>, GuestMemoryMmap)>,
}

impl Prepared {
    /// A VM with one vCPU, and KVM's interrupt controllers when `interrupts`.
    pub fn new(kvm: &Kvm, interrupts: bool) -> Result<Prepared> {
        let vm = kvm.create_vm().map_err(error::kvm("KVM_CREATE_VM"))?;
        if interrupts {
            vm.create_irq_chip()
                .map_err(error::kvm("KVM_CREATE_IRQCHIP"))?;
        }
        let vcpu = vm.create_vcpu(0).map_err(error::kvm("KVM_CREATE_VCPU"))?;
        Ok(Prepared {
            vcpu,
            vm,
            memory: None,
        })
    }

    /// A VM for a restore of `snapshot`, its memory mapped from the snapshot's file.
    pub fn for_snapshot(kvm: &Kvm, snapshot: &Arc<Snapshot>) -> Result<Prepared> {
        let mut prepared = Prepared::new(kvm, snapshot.state.interrupts)?;
        let memory = map_memory(&prepared.vm, snapshot)?;
        prepared.memory = Some((Arc::clone(snapshot), memory));
        Ok(prepared)
    }
}

/// Maps `snapshot`'s memory file private (copy-on-write) and gives it to `vm` as its RAM.
fn map_memory(vm: &VmFd, snapshot: &Snapshot) -> Result<GuestMemoryMmap> {
    let state = &snapshot.state;
    let map_error = |detail: String| Error::MapMemory {
        mib: (state.memory_size >> 20) as u32,
        detail,
    };
    let file = snapshot
        .memory
        .try_clone()
        .map_err(|e| map_error(e.to_string()))?;
    // Private: the guest's writes go to its own copies, never to the file.
    let region = MmapRegion::build(
        Some(FileOffset::new(file, 0)),
        state.memory_size as usize,
        libc::PROT_READ | libc::PROT_WRITE,
        libc::MAP_PRIVATE | libc::MAP_NORESERVE,
    )
    .map_err(|e| map_error(e.to_string()))?;
    let region = GuestRegionMmap::new(region, GuestAddress(0))
        .ok_or_else(|| map_error("the region overflows".into()))?;
    let mem = GuestMemoryMmap::from_regions(vec![region]).map_err(|e| map_error(e.to_string()))?;
    let host = mem
        .get_host_address(GuestAddress(0))
        .map_err(|e| map_error(e.to_string()))?;
    let region = kvm_userspace_memory_region {
        slot: 0,
        flags: 0,
        guest_phys_addr: 0,
        memory_size: state.memory_size,
        userspace_addr: host as u64,
    };
    // SAFETY: `host` is the start of a mapping of `memory_size` bytes owned by `mem`, which
    // the caller keeps beside the VM and drops after its file descriptor (the field order
    // of `Prepared` and `Vm`); nothing else is mapped into the VM there.
    unsafe { vm.set_user_memory_region(region) }
        .map_err(error::kvm("KVM_SET_USER_MEMORY_REGION"))?;
    Ok(mem)
}

/// Prepared VMs for restores of one snapshot: [`Pool::take`] hands one out (or makes one
/// when none is ready), [`Pool::refill`] makes them ahead, off the request's path.
#[derive(Debug)]
pub struct Pool {
    kvm: Kvm,
    interrupts: bool,
    /// The snapshot whose memory each prepared VM maps ahead, if any.
    snapshot: Option<Arc<Snapshot>>,
    capacity: usize,
    ready: Mutex<Vec<Prepared>>,
}

impl Pool {
    /// An empty pool that [`Pool::refill`] fills to `capacity`.
    pub fn new(interrupts: bool, capacity: usize) -> Result<Pool> {
        Ok(Pool {
            kvm: crate::open_kvm()?,
            interrupts,
            snapshot: None,
            capacity,
            ready: Mutex::new(Vec::with_capacity(capacity)),
        })
    }

    /// An empty pool of VMs for `snapshot`, each with the snapshot's memory mapped ahead.
    pub fn for_snapshot(snapshot: Arc<Snapshot>, capacity: usize) -> Result<Pool> {
        Ok(Pool {
            interrupts: snapshot.state.interrupts,
            snapshot: Some(snapshot),
            ..Pool::new(false, capacity)?
        })
    }

    fn prepare(&self) -> Result<Prepared> {
        match &self.snapshot {
            Some(snapshot) => Prepared::for_snapshot(&self.kvm, snapshot),
            None => Prepared::new(&self.kvm, self.interrupts),
        }
    }

    fn ready(&self) -> std::sync::MutexGuard<'_, Vec<Prepared>> {
        self.ready.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A prepared VM: one made ahead, or a new one.
    pub fn take(&self) -> Result<Prepared> {
        let ready = self.ready().pop();
        match ready {
            Some(prepared) => Ok(prepared),
            None => self.prepare(),
        }
    }

    /// Prepares VMs until `capacity` are ready.
    pub fn refill(&self) -> Result<()> {
        while self.ready().len() < self.capacity {
            let prepared = self.prepare()?;
            self.ready().push(prepared);
        }
        Ok(())
    }

    /// How many are ready now.
    pub fn len(&self) -> usize {
        self.ready().len()
    }

    /// Whether none is ready.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every prepared VM (scale to zero).
    pub fn clear(&self) {
        self.ready().clear();
    }
}

impl Vm {
    /// A VM restored from `snapshot` in `prepared` (made with the snapshot's interrupt
    /// controllers, see [`Pool`]), serving the request channel with `server` if the
    /// snapshot's guest uses it.
    pub fn restore(
        snapshot: &Snapshot,
        prepared: Prepared,
        server: Option<FunctionServer>,
    ) -> Result<Vm> {
        let created = Instant::now();
        let state = &snapshot.state;
        let fail = |what: &'static str| {
            move |err: kvm_ioctls::Error| Error::Snapshot(format!("restoring, {what}: {err}"))
        };
        let Prepared { vcpu, vm, memory } = prepared;
        let mem = match memory {
            Some((from, mem)) if std::ptr::eq(Arc::as_ptr(&from), snapshot) => mem,
            Some(_) => {
                return Err(Error::Snapshot("a VM prepared for another snapshot".into()));
            }
            None => map_memory(&vm, snapshot)?,
        };

        // In Firecracker's order: CPUID, MSRs, registers, FPU, debug registers, then the
        // local APIC (after the system registers' APIC base), MP state and events.
        vcpu.set_cpuid2(&cpu::cpuid_with(state.tsc_khz, state.features)?)
            .map_err(fail("KVM_SET_CPUID2"))?;
        let msrs = Msrs::from_entries(&state.msrs)
            .map_err(|err| Error::Snapshot(format!("building an MSR list: {err:?}")))?;
        let written = vcpu.set_msrs(&msrs).map_err(fail("KVM_SET_MSRS"))?;
        if written != state.msrs.len() {
            return Err(Error::Snapshot(format!(
                "KVM took {written} of the snapshot's {} MSRs",
                state.msrs.len()
            )));
        }
        vcpu.set_sregs(&state.sregs)
            .map_err(fail("KVM_SET_SREGS"))?;
        vcpu.set_regs(&state.regs).map_err(fail("KVM_SET_REGS"))?;
        vcpu.set_fpu(&kvm_fpu::from(&state.fpu))
            .map_err(fail("KVM_SET_FPU"))?;
        vcpu.set_debug_regs(&state.debug_regs)
            .map_err(fail("KVM_SET_DEBUGREGS"))?;
        if let Some(lapic) = &state.lapic {
            vcpu.set_lapic(lapic).map_err(fail("KVM_SET_LAPIC"))?;
        }
        for chip in &state.irqchips {
            vm.set_irqchip(chip).map_err(fail("KVM_SET_IRQCHIP"))?;
        }
        vcpu.set_mp_state(state.mp_state)
            .map_err(fail("KVM_SET_MP_STATE"))?;
        vcpu.set_vcpu_events(&state.vcpu_events)
            .map_err(fail("KVM_SET_VCPU_EVENTS"))?;

        // The guest's monotonic clock goes on from the snapshot; its zero moves so the
        // wall clock is the host's now.
        let since_zero = Duration::from_nanos(state.guest_ns);
        let created_wall = SystemTime::now()
            .checked_sub(since_zero)
            .unwrap_or(UNIX_EPOCH);
        if let Some(address) = state.clock_page {
            let tsc = state
                .msrs
                .iter()
                .find(|msr| msr.index == MSR_IA32_TSC)
                .map(|msr| msr.data)
                .ok_or_else(|| Error::Snapshot("a clock page but no saved TSC".into()))?;
            let tsc_hz = u64::from(state.tsc_khz) * 1000;
            let (mul, shift) = abi::scale(tsc_hz);
            let page = ClockPage {
                version: 0,
                flags: abi::CLOCK_TSC_STABLE,
                tsc_timestamp: tsc,
                system_ns: state.guest_ns,
                wall_ns_at_zero: created_wall
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(0),
                tsc_hz,
                tsc_to_ns_mul: mul,
                tsc_shift: shift,
                reserved: [0; 3],
            };
            mem.write_slice(&page.to_bytes(), GuestAddress(address))
                .map_err(|e| Error::Snapshot(format!("rewriting the clock page: {e}")))?;
        }
        let function = match server {
            Some(server) if state.features & unikernel_abi::function::FEATURE_FUNCTION != 0 => {
                Some(FunctionSlot(server))
            }
            _ => None,
        };
        Ok(Vm {
            vcpu,
            _vm: vm,
            mem,
            ports: Ports::default(),
            created: created.checked_sub(since_zero).unwrap_or(created),
            created_wall,
            tsc_khz: state.tsc_khz,
            interrupts: state.interrupts,
            clock_page: state.clock_page,
            console: Vec::new(),
            debug_stop: false,
            devices: Arc::from([]),
            function,
            cpus: 1,
            application_processors: Vec::new(),
            stats: Stats {
                setup: created.elapsed(),
                ..Stats::default()
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> VmState {
        VmState {
            magic: MAGIC.into(),
            format: SNAPSHOT_FORMAT,
            memory_size: 64 << 20,
            tsc_khz: 2_000_000,
            interrupts: false,
            features: 0,
            regs: kvm_regs::default(),
            sregs: kvm_sregs::default(),
            fpu: FpuState::from(&kvm_fpu::default()),
            msrs: vec![kvm_msr_entry {
                index: MSR_IA32_TSC,
                data: 5,
                ..Default::default()
            }],
            mp_state: kvm_mp_state::default(),
            vcpu_events: kvm_vcpu_events::default(),
            debug_regs: kvm_debugregs::default(),
            lapic: None,
            irqchips: Vec::new(),
            clock_page: Some(0x5000),
            guest_ns: 1,
            mailbox: Some(0x6000),
        }
    }

    #[test]
    fn a_good_state_passes_and_survives_json() {
        let state = state();
        assert_eq!(validate(&state, 64 << 20, 2_000_000), Ok(()));
        let json = serde_json::to_vec(&state).unwrap();
        let back: VmState = serde_json::from_slice(&json).unwrap();
        assert_eq!(back.msrs[0].data, 5);
        assert_eq!(back.fpu, state.fpu);
        assert_eq!(validate(&back, 64 << 20, 2_000_000), Ok(()));
    }

    #[test]
    fn bad_states_are_refused_with_the_reason() {
        let check = |edit: &dyn Fn(&mut VmState), length: u64, needle: &str| {
            let mut bad = state();
            edit(&mut bad);
            let err = validate(&bad, length, 2_000_000).unwrap_err();
            assert!(err.contains(needle), "{err:?} lacks {needle:?}");
        };
        check(&|s| s.format = 2, 64 << 20, "format 2");
        check(&|s| s.magic = "x".into(), 64 << 20, "not a snapshot");
        check(&|_| {}, 32 << 20, "the memory file has");
        check(&|s| s.memory_size = u64::MAX, u64::MAX, "memory size");
        check(&|s| s.tsc_khz = 1, 64 << 20, "TSC");
        check(&|s| s.mailbox = Some(u64::MAX - 8), 64 << 20, "mailbox");
        check(
            &|s| s.clock_page = Some((64 << 20) - 8),
            64 << 20,
            "clock page",
        );
        check(&|s| s.msrs[0].index = 0xc000_0080, 64 << 20, "MSRs");
        check(&|s| s.interrupts = true, 64 << 20, "interrupt controller");
        check(&|s| s.features = 1 << 9, 64 << 20, "features");
    }

    #[test]
    fn a_truncated_state_file_is_an_error_not_a_panic() {
        let json = serde_json::to_vec(&state()).unwrap();
        for cut in [0, 1, json.len() / 2, json.len() - 1] {
            assert!(serde_json::from_slice::<VmState>(&json[..cut]).is_err());
        }
    }
}
