//! The paragraph the monitor writes when it has to stop a guest: what happened, where, and
//! the guest's registers, in one block of plain text.

use kvm_bindings::{kvm_regs, kvm_sregs};

/// Why the monitor stopped a guest that did not exit by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// KVM_EXIT_SHUTDOWN: a triple fault (or a shutdown the guest asked for).
    TripleFault,
    /// KVM_EXIT_INTERNAL_ERROR: KVM could not go on (e.g. an instruction its emulator
    /// does not know).
    InternalError,
    /// KVM_EXIT_FAIL_ENTRY: the hardware refused to enter the guest.
    EntryFailed,
    /// An exit the monitor does not handle (MMIO without a device, an unexpected reason).
    Unhandled,
    /// A request of the guest the monitor cannot honour (a console write outside its memory).
    BadRequest,
}

impl FaultKind {
    /// The exit status for it: [`RESET`](unikernel_abi::status::RESET) for a triple fault
    /// (as a QEMU guest reset), [`VMM_FAILED`](unikernel_abi::status::VMM_FAILED) for the
    /// rest (the VMM could not run the guest).
    pub fn exit_code(self) -> u8 {
        match self {
            FaultKind::TripleFault => unikernel_abi::status::RESET,
            _ => unikernel_abi::status::VMM_FAILED,
        }
    }
}

/// The CPU mode `sregs` describe, in words.
pub fn mode(sregs: &kvm_sregs) -> &'static str {
    const LMA: u64 = 1 << 10;
    if sregs.cr0 & 1 == 0 {
        "real mode"
    } else if sregs.efer & LMA != 0 {
        if sregs.cs.l == 1 {
            "64-bit mode"
        } else {
            "compatibility mode"
        }
    } else if sregs.cr0 & (1 << 31) != 0 {
        "32-bit protected mode, paging on"
    } else {
        "32-bit protected mode, paging off"
    }
}

/// One paragraph: `what` (a sentence without its full stop), then the registers; `cpu`
/// names the vCPU it happened on in a VM with several.
pub fn paragraph(
    what: &str,
    cpu: Option<usize>,
    regs: Option<&kvm_regs>,
    sregs: Option<&kvm_sregs>,
) -> String {
    let (on, vcpu) = match cpu {
        Some(cpu) => (format!("on CPU {cpu}: "), format!("CPU {cpu}")),
        None => (String::new(), "The vCPU".to_string()),
    };
    let mut out = format!("the monitor stopped the guest: {on}{what}.");
    match (regs, sregs) {
        (Some(r), Some(s)) => {
            out.push_str(&format!(
                " {vcpu} was at rip {:#x} in {} (cpl {}), rsp {:#x}, rflags {:#x}; rax {:#x}, rbx {:#x}, rcx {:#x}, rdx {:#x}, rsi {:#x}, rdi {:#x}, rbp {:#x}, r8 {:#x}, r9 {:#x}, r10 {:#x}, r11 {:#x}, r12 {:#x}, r13 {:#x}, r14 {:#x}, r15 {:#x}; cr0 {:#x}, cr2 {:#x}, cr3 {:#x}, cr4 {:#x}, efer {:#x}; cs {:#x}, ss {:#x}, ds {:#x}; gdt {:#x}+{:#x}, idt {:#x}+{:#x}.",
                r.rip,
                mode(s),
                s.cs.selector & 3,
                r.rsp,
                r.rflags,
                r.rax,
                r.rbx,
                r.rcx,
                r.rdx,
                r.rsi,
                r.rdi,
                r.rbp,
                r.r8,
                r.r9,
                r.r10,
                r.r11,
                r.r12,
                r.r13,
                r.r14,
                r.r15,
                s.cr0,
                s.cr2,
                s.cr3,
                s.cr4,
                s.efer,
                s.cs.selector,
                s.ss.selector,
                s.ds.selector,
                s.gdt.base,
                s.gdt.limit,
                s.idt.base,
                s.idt.limit,
            ));
        }
        _ => out.push_str(" Its registers could not be read."),
    }
    out
}

/// The name of a KVM internal-error suberror.
pub fn internal_error_name(suberror: u32) -> &'static str {
    match suberror {
        1 => "KVM's instruction emulator failed (an instruction it does not implement?)",
        2 => "an exception while delivering another one (simultaneous exceptions)",
        3 => "an event could not be delivered",
        4 => "an unexpected exit from the hardware",
        _ => "an internal error of an unknown kind",
    }
}
