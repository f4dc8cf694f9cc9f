//! The local APIC: in x2APIC mode (registers are MSRs) where CPUID reports it, else in
//! xAPIC mode (registers in a 4 KiB MMIO page, 0xfee00000 by default). Also the LAPIC
//! timer, which the `clock` subsystem drives.

/// A local APIC register, by its offset in the xAPIC page. Only the architectural
/// registers in [`reg`] exist as values, so `read` and `write` stay inside the page (and
/// inside the x2APIC MSR range) whatever the caller passes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Register(u32);

impl Register {
    /// The register's offset in the xAPIC page.
    pub const fn offset(self) -> u32 {
        self.0
    }
}

/// The registers the kernel uses; the x2APIC MSR of each is `0x800 + offset / 16`.
pub mod reg {
    use super::Register;

    pub const ID: Register = Register(0x20);
    pub const VERSION: Register = Register(0x30);
    pub const TASK_PRIORITY: Register = Register(0x80);
    pub const EOI: Register = Register(0xb0);
    pub const SPURIOUS: Register = Register(0xf0);
    pub const ERROR_STATUS: Register = Register(0x280);
    pub const INTERRUPT_COMMAND_LOW: Register = Register(0x300);
    pub const INTERRUPT_COMMAND_HIGH: Register = Register(0x310);
    pub const LVT_TIMER: Register = Register(0x320);
    pub const LVT_LINT0: Register = Register(0x350);
    pub const LVT_LINT1: Register = Register(0x360);
    pub const LVT_ERROR: Register = Register(0x370);
    pub const TIMER_INITIAL: Register = Register(0x380);
    pub const TIMER_CURRENT: Register = Register(0x390);
    pub const TIMER_DIVIDE: Register = Register(0x3e0);
}

/// LVT bits.
pub const LVT_MASKED: u32 = 1 << 16;
pub const LVT_NMI: u32 = 0b100 << 8;
pub const LVT_EXTINT: u32 = 0b111 << 8;
pub const TIMER_ONE_SHOT: u32 = 0b00 << 17;
pub const TIMER_TSC_DEADLINE: u32 = 0b10 << 17;
/// The spurious-interrupt vector register's "APIC software enable" bit.
pub const SOFTWARE_ENABLE: u32 = 1 << 8;
/// TIMER_DIVIDE value for "divide by 1".
pub const DIVIDE_BY_1: u32 = 0b1011;

/// Interrupt command: the "self" destination shorthand.
pub const ICR_SELF: u32 = 0b01 << 18;
/// The ICR's delivery-status bit (xAPIC): set while the IPI is being sent.
pub const ICR_PENDING: u32 = 1 << 12;
/// The x2APIC self-IPI register.
pub const MSR_SELF_IPI: u32 = 0x83f;

pub const MSR_APIC_BASE: u32 = 0x1b;
pub const MSR_TSC_DEADLINE: u32 = 0x6e0;
const APIC_BASE_ENABLE: u64 = 1 << 11;
const APIC_BASE_X2APIC: u64 = 1 << 10;
const APIC_BASE_ADDRESS: u64 = 0x000f_ffff_ffff_f000;

/// How the local APIC's registers are reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Registers are MSRs 0x800 to 0x8ff.
    X2Apic,
    /// Registers are memory-mapped at this (identity-mapped) address.
    XApic { base: u64 },
}

/// The x2APIC MSR of a register.
pub fn x2apic_msr(register: Register) -> u32 {
    0x800 + (register.0 >> 4)
}

/// The APIC base address in IA32_APIC_BASE.
pub fn base_address(apic_base_msr: u64) -> u64 {
    apic_base_msr & APIC_BASE_ADDRESS
}

/// The IA32_APIC_BASE value that enables the APIC, in x2APIC mode if asked.
pub fn enabled_base(apic_base_msr: u64, x2apic: bool) -> u64 {
    let value = apic_base_msr | APIC_BASE_ENABLE;
    if x2apic {
        value | APIC_BASE_X2APIC
    } else {
        value
    }
}

#[cfg(target_os = "none")]
pub use target::*;

#[cfg(target_os = "none")]
mod target {
    use super::*;
    use core::sync::atomic::{AtomicU8, AtomicU64, Ordering};
    use x86_64::registers::model_specific::Msr;

    const NONE: u8 = 0;
    const X2APIC: u8 = 1;
    const XAPIC: u8 = 2;
    static MODE: AtomicU8 = AtomicU8::new(NONE);
    static BASE: AtomicU64 = AtomicU64::new(0);

    /// Reads a model-specific register.
    ///
    /// # Safety
    /// `msr` exists on this CPU and reading it has no side effect the caller did not
    /// account for (some MSRs change state when read).
    unsafe fn read_msr(msr: u32) -> u64 {
        // SAFETY: forwarded to the caller.
        unsafe { Msr::new(msr).read() }
    }

    /// Writes a model-specific register.
    ///
    /// # Safety
    /// `msr` exists on this CPU and writing `value` to it cannot break memory safety
    /// (MSRs can redirect memory accesses, system calls and more).
    unsafe fn write_msr(msr: u32, value: u64) {
        // SAFETY: forwarded to the caller.
        unsafe { Msr::new(msr).write(value) }
    }

    /// The mode the APIC was put in, once [`enable`] ran.
    pub fn mode() -> Option<Mode> {
        match MODE.load(Ordering::Relaxed) {
            X2APIC => Some(Mode::X2Apic),
            XAPIC => Some(Mode::XApic {
                base: BASE.load(Ordering::Relaxed),
            }),
            _ => None,
        }
    }

    /// Reads a local APIC register. 0 before [`enable`].
    pub fn read(register: Register) -> u32 {
        match MODE.load(Ordering::Relaxed) {
            // SAFETY: in x2APIC mode a register of `reg` is an MSR; reading one has no side
            // effect (one that x2APIC lacks or that is write-only, like the EOI, raises a
            // general protection fault, which is reported, and touches nothing).
            X2APIC => unsafe { read_msr(x2apic_msr(register)) as u32 },
            XAPIC => {
                let addr = BASE.load(Ordering::Relaxed) + u64::from(register.offset());
                // SAFETY: `enable` mapped the APIC page uncached at BASE; `register` is one
                // of the architectural registers inside it (a `Register` is only made in
                // `reg`); reads of them have no side effects on memory.
                unsafe { core::ptr::read_volatile(addr as *const u32) }
            }
            _ => 0,
        }
    }

    /// Writes a local APIC register. Ignored before [`enable`].
    pub fn write(register: Register, value: u32) {
        match MODE.load(Ordering::Relaxed) {
            // SAFETY: in x2APIC mode a register of `reg` is an MSR (one x2APIC lacks, like
            // the ICR's high half, faults as in `read`); APIC registers configure interrupt
            // delivery and do not touch memory.
            X2APIC => unsafe { write_msr(x2apic_msr(register), u64::from(value)) },
            XAPIC => {
                let addr = BASE.load(Ordering::Relaxed) + u64::from(register.offset());
                // SAFETY: as in `read`; writes configure interrupt delivery only.
                unsafe { core::ptr::write_volatile(addr as *mut u32, value) }
            }
            _ => {}
        }
    }

    /// Enables the local APIC (in x2APIC mode if `x2apic`), mapping its page in xAPIC
    /// mode. Returns the mode.
    ///
    /// Call it only where CPUID reports an APIC (and x2APIC, for `x2apic`): elsewhere the
    /// CPU refuses the MSR accesses with a general protection fault, which the kernel
    /// reports and exits on.
    /// Enables this AP's local APIC in the mode the boot CPU chose ([`enable`] ran there
    /// first: the xAPIC page is mapped, the mode known).
    pub fn enable_this_cpu() {
        let x2apic = match MODE.load(Ordering::Relaxed) {
            X2APIC => true,
            XAPIC => false,
            _ => return,
        };
        // SAFETY: as in `enable`: the boot CPU has the same APIC (and x2APIC) support.
        unsafe {
            let msr = read_msr(MSR_APIC_BASE);
            write_msr(MSR_APIC_BASE, enabled_base(msr, x2apic));
        }
    }

    pub fn enable(x2apic: bool) -> Result<Mode, unikernel_arch::memory::MemoryError> {
        // SAFETY: IA32_APIC_BASE exists on every CPU with an APIC (else the read faults,
        // see above); reading it has no side effect.
        let msr = unsafe { read_msr(MSR_APIC_BASE) };
        let base = base_address(msr);
        if !x2apic {
            unikernel_arch::device::map(base, 4096)?;
            BASE.store(base, Ordering::Relaxed);
        }
        // SAFETY: IA32_APIC_BASE exists (it was just read); setting the enable bit, and the x2APIC bit where CPUID reports x2APIC,
        // is the architectural way to turn it on. The base address is kept.
        unsafe { write_msr(MSR_APIC_BASE, enabled_base(msr, x2apic)) };
        MODE.store(if x2apic { X2APIC } else { XAPIC }, Ordering::Relaxed);
        Ok(mode().expect("just set"))
    }

    /// Signals the end of the interrupt being handled.
    pub fn end_of_interrupt() {
        write(reg::EOI, 0);
    }

    /// This CPU's APIC ID.
    pub fn id() -> u32 {
        match MODE.load(Ordering::Relaxed) {
            X2APIC => read(reg::ID),
            _ => read(reg::ID) >> 24,
        }
    }

    /// Sends `vector` to this CPU (a self-IPI).
    ///
    /// # Panics
    /// If `vector` is a CPU exception's (below 32): its entry stub would read a frame the
    /// CPU did not push.
    pub fn self_interrupt(vector: u8) {
        assert!(
            vector >= unikernel_arch::interrupts::FIRST_VECTOR,
            "vector {vector} is a CPU exception"
        );
        match MODE.load(Ordering::Relaxed) {
            // SAFETY: in x2APIC mode the self-IPI MSR exists; writing it only raises
            // `vector` on this CPU.
            X2APIC => unsafe { write_msr(MSR_SELF_IPI, u64::from(vector)) },
            XAPIC => {
                while read(reg::INTERRUPT_COMMAND_LOW) & ICR_PENDING != 0 {
                    core::hint::spin_loop();
                }
                write(reg::INTERRUPT_COMMAND_HIGH, 0);
                write(reg::INTERRUPT_COMMAND_LOW, ICR_SELF | u32::from(vector));
            }
            _ => {}
        }
    }

    /// Sends an inter-processor interrupt: `command` (the low word of the interrupt
    /// command: vector, delivery mode, level) to the local APIC with ID `apic_id`, and
    /// waits until it is accepted (xAPIC; an x2APIC write is accepted at once).
    pub fn send_ipi(apic_id: u32, command: u32) {
        match MODE.load(Ordering::Relaxed) {
            // SAFETY: in x2APIC mode the interrupt command register is MSR 0x830 (one
            // 64-bit write, destination in the high half); it only sends an interrupt.
            X2APIC => unsafe {
                write_msr(
                    x2apic_msr(reg::INTERRUPT_COMMAND_LOW),
                    u64::from(apic_id) << 32 | u64::from(command),
                )
            },
            XAPIC => {
                write(reg::INTERRUPT_COMMAND_HIGH, apic_id << 24);
                write(reg::INTERRUPT_COMMAND_LOW, command);
                while read(reg::INTERRUPT_COMMAND_LOW) & ICR_PENDING != 0 {
                    core::hint::spin_loop();
                }
            }
            _ => {}
        }
    }

    /// Arms the TSC-deadline timer: the interrupt fires once the TSC reaches `tsc`
    /// (at once if it has). 0 disarms it. Use it once the timer is in TSC-deadline mode,
    /// which needs CPUID's report: elsewhere the write faults (reported, and the kernel exits).
    pub fn set_tsc_deadline(tsc: u64) {
        // SAFETY: IA32_TSC_DEADLINE only schedules an interrupt; where it does not exist
        // the write faults, which is reported, and touches nothing.
        unsafe { write_msr(MSR_TSC_DEADLINE, tsc) }
    }
}
