//! Several CPUs: the per-CPU blocks (GS base), and the start of the application
//! processors (APs) by INIT-SIPI-SIPI through a real-mode trampoline (smp.s).
//!
//! Nothing here runs on a single-CPU boot: [`start`] is called by the scheduler only when
//! the app declares `sched(cpus = N)` with N > 1, and [`this_cpu`] answers 0 from one
//! atomic load until then.

use crate::acpi::MAX_CPUS;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

/// One CPU's block, which its GS base points at. `this` comes first so that `gs:[0]`
/// yields the block's address.
#[repr(C)]
#[derive(Debug)]
pub struct PerCpu {
    this: AtomicU64,
    /// The CPU's index: 0 for the boot CPU, then the APs in MADT order.
    index: AtomicU32,
    apic_id: AtomicU32,
    online: AtomicBool,
}

impl PerCpu {
    const fn new() -> Self {
        Self {
            this: AtomicU64::new(0),
            index: AtomicU32::new(0),
            apic_id: AtomicU32::new(0),
            online: AtomicBool::new(false),
        }
    }
}

static CPUS: [PerCpu; MAX_CPUS] = [const { PerCpu::new() }; MAX_CPUS];
/// Whether GS bases point at per-CPU blocks (set once the boot CPU's is).
static ACTIVE: AtomicBool = AtomicBool::new(false);
/// How many CPUs run (1 until [`start`] brought APs up).
static ONLINE: AtomicU32 = AtomicU32::new(1);

/// The index of the CPU this runs on (0: the boot CPU, also before [`start`]).
pub fn this_cpu() -> usize {
    if !ACTIVE.load(Ordering::Acquire) {
        return 0;
    }
    #[cfg(target_os = "none")]
    {
        let index: u32;
        // SAFETY: with ACTIVE set, every running CPU's GS base points at its block in
        // CPUS (the boot CPU's before ACTIVE was set, each AP's before it runs Rust that
        // could get here); `index` lies at offset 8 of the repr(C) block.
        unsafe {
            core::arch::asm!("mov {0:e}, gs:[8]", out(reg) index, options(nostack, readonly, preserves_flags));
        }
        index as usize
    }
    #[cfg(not(target_os = "none"))]
    0
}

/// How many CPUs run.
pub fn online() -> usize {
    ONLINE.load(Ordering::Acquire) as usize
}

/// The local APIC ID of CPU `index` (what an IPI is addressed to).
pub fn apic_id(index: usize) -> Option<u32> {
    (index < online()).then(|| CPUS[index].apic_id.load(Ordering::Relaxed))
}

/// What starting the APs needs from the drivers above the arch layer.
#[derive(Clone, Copy, Debug)]
pub struct StartPlan {
    /// How many CPUs the app declared (`sched(cpus = N)`).
    pub declared: usize,
    /// The boot CPU's local APIC ID.
    pub boot_apic_id: u32,
    /// Sends an IPI: writes the interrupt command (low word) to `apic_id`'s local APIC and
    /// waits until it is accepted.
    pub send_ipi: fn(apic_id: u32, command: u32),
    /// The TSC's frequency, for the waits of the start-up protocol.
    pub tsc_hz: u64,
    /// What each AP runs once it is up (its LAPIC still to be enabled by it).
    pub ap_main: fn() -> !,
}

/// Why the APs could not be started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmpError {
    Acpi(crate::acpi::AcpiError),
    Memory(crate::memory::MemoryError),
    Stack(crate::context::StackError),
}

impl core::fmt::Display for SmpError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Acpi(error) => write!(f, "{error}"),
            Self::Memory(error) => write!(f, "{error}"),
            Self::Stack(error) => write!(f, "{error}"),
        }
    }
}

#[cfg(target_os = "none")]
pub use target::start;

/// Host builds (unit tests) run on one CPU.
#[cfg(not(target_os = "none"))]
pub fn start(_plan: StartPlan) -> Result<usize, SmpError> {
    Ok(1)
}

#[cfg(target_os = "none")]
mod target {
    use super::*;
    use crate::boot::PhysRead;
    use crate::context::Stack;

    /// The page the trampoline is copied to: below 1 MiB (a SIPI names a page number
    /// 0x01-0xff), in the conventional memory PVH and multiboot loaders leave free once the
    /// boot information is copied (`boot.rs`).
    pub(crate) const TRAMPOLINE: u64 = 0x8000;
    const AP_STACK: usize = 64 * 1024;
    const AP_FAULT_STACK: usize = 16 * 1024;

    /// What the trampoline and `ap_long_mode` read for the AP being started (one at a
    /// time): offsets 0, 8, 16, 24 are used by smp.s.
    #[repr(C)]
    pub(crate) struct ApBoot {
        cr3: AtomicU64,
        efer: AtomicU64,
        stack_top: AtomicU64,
        cpu: AtomicU64,
    }

    pub(crate) static AP_BOOT: ApBoot = ApBoot {
        cr3: AtomicU64::new(0),
        efer: AtomicU64::new(0),
        stack_top: AtomicU64::new(0),
        cpu: AtomicU64::new(0),
    };
    static AP_MAIN: spin::Once<fn() -> !> = spin::Once::new();
    /// The IST stack tops of the AP being started.
    static AP_FAULT_STACKS: spin::Mutex<[u64; 4]> = spin::Mutex::new([0; 4]);

    core::arch::global_asm!(
        include_str!("smp.s"),
        TRAMPOLINE = const TRAMPOLINE,
        AP_BOOT = sym AP_BOOT,
        AP_START = sym ap_start,
    );

    unsafe extern "C" {
        static unikernel_ap_trampoline: u8;
        static unikernel_ap_trampoline_end: u8;
    }

    /// Reads firmware tables at their physical addresses, mapping each page read-only on
    /// first use.
    struct FirmwareMemory {
        /// The last page mapped (scanning the BIOS area reads each page 256 times).
        last: core::cell::Cell<u64>,
    }

    impl FirmwareMemory {
        fn read<T: Copy>(&self, addr: u64) -> T {
            for page in [addr, addr + size_of::<T>() as u64 - 1].map(|a| a & !0xfff) {
                if page != self.last.get() {
                    crate::paging::map_firmware_page(page);
                    self.last.set(page);
                }
            }
            // SAFETY: the page(s) of [addr, addr + size) were just mapped readable at their
            // own addresses; firmware tables are plain memory nothing writes. Unaligned
            // fields are common in ACPI, hence read_unaligned.
            unsafe { core::ptr::read_unaligned(addr as *const T) }
        }
    }

    impl PhysRead for FirmwareMemory {
        fn read_u8(&self, addr: u64) -> u8 {
            self.read(addr)
        }
        fn read_u32(&self, addr: u64) -> u32 {
            self.read(addr)
        }
        fn read_u64(&self, addr: u64) -> u64 {
            self.read(addr)
        }
    }

    fn wait_us(tsc_hz: u64, us: u64, until: impl Fn() -> bool) -> bool {
        let end = crate::timeline::tsc() + tsc_hz / 1_000_000 * us;
        while crate::timeline::tsc() < end {
            if until() {
                return true;
            }
            core::hint::spin_loop();
        }
        until()
    }

    const ICR_INIT: u32 = 0b101 << 8;
    const ICR_STARTUP: u32 = 0b110 << 8;
    const ICR_LEVEL_ASSERT: u32 = 1 << 14;

    /// Starts the APs: min(declared, present) CPUs run afterwards, each on its own stack
    /// (with a guard page), GDT, TSS and fault stacks, with the shared IDT and page tables.
    /// Returns how many CPUs run, the boot CPU included. Fewer CPUs present than declared,
    /// or an AP that does not answer, is said on the console; the boot goes on with those
    /// that run.
    pub fn start(plan: StartPlan) -> Result<usize, SmpError> {
        if plan.declared <= 1 {
            return Ok(1);
        }
        let mut ids = [0u32; MAX_CPUS];
        let firmware = FirmwareMemory {
            last: core::cell::Cell::new(u64::MAX),
        };
        let rsdp =
            crate::acpi::find_rsdp(&firmware, crate::acpi::BIOS_AREA).map_err(SmpError::Acpi)?;
        let present = crate::acpi::cpu_apic_ids(&firmware, rsdp, &mut ids)
            .map_err(SmpError::Acpi)?
            .min(MAX_CPUS);
        if present < plan.declared {
            crate::serial::print(format_args!(
                "smp: the app declares {} CPUs and the VM has {present}: running on {present}\n",
                plan.declared
            ));
        }
        let wanted = plan.declared.min(present);
        AP_MAIN.call_once(|| plan.ap_main);

        // The boot CPU's block, and its GS base.
        let boot = &CPUS[0];
        boot.this
            .store(boot as *const PerCpu as u64, Ordering::Relaxed);
        boot.apic_id.store(plan.boot_apic_id, Ordering::Relaxed);
        boot.online.store(true, Ordering::Relaxed);
        // SAFETY: IA32_GS_BASE exists in long mode; the kernel uses GS for nothing else.
        unsafe { set_gs_base(boot as *const PerCpu as u64) };
        ACTIVE.store(true, Ordering::Release);

        // SAFETY: a copy of the code between the two symbols of smp.s into the trampoline
        // page, mapped writable (and not executable) for the copy and nothing else uses
        // it; then the page becomes read-only and executable.
        unsafe {
            crate::paging::map_trampoline(TRAMPOLINE, true).map_err(SmpError::Memory)?;
            let from = &raw const unikernel_ap_trampoline;
            let len = (&raw const unikernel_ap_trampoline_end).offset_from(from) as usize;
            core::ptr::copy_nonoverlapping(from, TRAMPOLINE as *mut u8, len);
            crate::paging::map_trampoline(TRAMPOLINE, false).map_err(SmpError::Memory)?;
        }
        let (cr3, _) = x86_64::registers::control::Cr3::read_raw();
        AP_BOOT
            .cr3
            .store(cr3.start_address().as_u64(), Ordering::Relaxed);
        let nx = x86_64::registers::model_specific::Efer::read()
            .contains(x86_64::registers::model_specific::EferFlags::NO_EXECUTE_ENABLE);
        AP_BOOT
            .efer
            .store((1 << 8) | if nx { 1 << 11 } else { 0 }, Ordering::Relaxed);

        let mut running = 1;
        for &apic_id in ids[..present].iter().filter(|&&id| id != plan.boot_apic_id) {
            if running == wanted {
                break;
            }
            let cpu = &CPUS[running];
            cpu.this
                .store(cpu as *const PerCpu as u64, Ordering::Relaxed);
            cpu.index.store(running as u32, Ordering::Relaxed);
            cpu.apic_id.store(apic_id, Ordering::Relaxed);
            // The stacks live for good: the CPU runs until the VM ends.
            let stack = Stack::new(AP_STACK, "an AP's boot stack").map_err(SmpError::Stack)?;
            let mut faults = [0; 4];
            for top in &mut faults {
                let fault =
                    Stack::new(AP_FAULT_STACK, "an AP's fault stack").map_err(SmpError::Stack)?;
                *top = fault.range().end;
                core::mem::forget(fault);
            }
            *AP_FAULT_STACKS.lock() = faults;
            AP_BOOT
                .stack_top
                .store(stack.range().end, Ordering::Relaxed);
            core::mem::forget(stack);
            AP_BOOT
                .cpu
                .store(cpu as *const PerCpu as u64, Ordering::Release);

            // INIT, 10 ms, SIPI, 200 us, a second SIPI if the first went unheard (Intel
            // SDM vol. 3, 9.4.4.1).
            let vector = (TRAMPOLINE >> 12) as u32;
            (plan.send_ipi)(apic_id, ICR_INIT | ICR_LEVEL_ASSERT);
            wait_us(plan.tsc_hz, 10_000, || false);
            (plan.send_ipi)(apic_id, ICR_STARTUP | vector);
            let up = || cpu.online.load(Ordering::Acquire);
            if !wait_us(plan.tsc_hz, 200, up) {
                (plan.send_ipi)(apic_id, ICR_STARTUP | vector);
            }
            // A second is generous under TCG; under a software-assisted KVM each of the
            // AP's first instructions is emulated.
            if !wait_us(plan.tsc_hz, 5_000_000, up) {
                crate::serial::print(format_args!(
                    "smp: CPU {running} (APIC ID {apic_id}) did not start; running on {running}\n"
                ));
                break;
            }
            running += 1;
            ONLINE.store(running as u32, Ordering::Release);
        }
        // No AP reads the trampoline any more: each was online (on its own GDT) above.
        crate::paging::unmap_page(TRAMPOLINE).map_err(SmpError::Memory)?;
        Ok(running)
    }

    /// # Safety
    /// The kernel uses GS for the per-CPU block only; `base` is this CPU's block.
    unsafe fn set_gs_base(base: u64) {
        // SAFETY: IA32_GS_BASE exists on every x86_64 CPU; forwarded to the caller.
        unsafe { x86_64::registers::model_specific::Msr::new(0xc000_0101).write(base) };
    }

    /// The first Rust code of an AP, called by `ap_long_mode` in smp.s on the stack
    /// `start` gave it, with interrupts off.
    extern "C" fn ap_start(cpu: &'static PerCpu) -> ! {
        let faults = *AP_FAULT_STACKS.lock();
        // SAFETY: this AP's first Rust code, with interrupts off; its tables are its own
        // (indexed by its CPU index, which only it uses).
        unsafe { crate::cpu::init_ap(cpu.index.load(Ordering::Relaxed) as usize, faults) };
        // SAFETY: `cpu` is this AP's block in CPUS.
        unsafe { set_gs_base(cpu as *const PerCpu as u64) };
        cpu.online.store(true, Ordering::Release);
        let main = AP_MAIN.get().expect("set before any AP starts");
        main()
    }
}
