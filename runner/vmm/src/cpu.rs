//! The vCPU as the PVH ABI wants it, and the small CPUID table the guest sees.

use std::sync::OnceLock;

use kvm_bindings::{
    CpuId, KVM_CPUID_FLAG_SIGNIFCANT_INDEX, kvm_cpuid_entry2, kvm_regs, kvm_segment, kvm_sregs,
};

use unikernel_abi::hypervisor as abi;

use crate::error::{Error, Result};

/// The leaves the guest gets, with the bits our kernels do not use taken out. A short table
/// is measurably cheaper to hand to KVM than the whole supported list.
const BASIC_LEAVES: [u32; 3] = [0x0, 0x1, 0x7];
const EXTENDED_LEAVES: [u32; 5] = [
    0x8000_0000,
    0x8000_0001,
    0x8000_0007,
    0x8000_0008,
    0x8000_0006,
];

// Leaf 1 ECX bits the guest may see: SSE3, PCLMULQDQ, SSSE3, CX16, SSE4.1, SSE4.2, MOVBE,
// POPCNT, AES, RDRAND; plus the hypervisor bit, set below. Left out: MONITOR, VMX/SVM,
// x2APIC and TSC-deadline (no local APIC without an irqchip), XSAVE/OSXSAVE/AVX (the
// software-assisted KVM here lacks XSAVE), PCID.
const LEAF1_ECX: u32 = (1 << 0)
    | (1 << 1)
    | (1 << 9)
    | (1 << 13)
    | (1 << 19)
    | (1 << 20)
    | (1 << 22)
    | (1 << 23)
    | (1 << 25)
    | (1 << 30);
const HYPERVISOR: u32 = 1 << 31;
// Leaf 1 EDX: everything but the APIC (bit 9: KVM sets it itself while a local APIC is
// enabled, i.e. in a VM with its interrupt controllers), ACPI thermal (22), HTT (28).
const LEAF1_EDX_DROP: u32 = (1 << 9) | (1 << 22) | (1 << 28);
// Leaf 7 EBX: FSGSBASE, BMI1, SMEP, BMI2, ERMS, INVPCID... keep the plain ones.
const LEAF7_EBX: u32 =
    (1 << 0) | (1 << 3) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 18) | (1 << 19) | (1 << 20);

/// The CPUID table of every VM of this process, built once.
///
/// The leaves come from the host's own CPUID instruction, trimmed to what our kernels may
/// use (every bit kept is one KVM virtualises). Asking KVM for its supported list instead
/// (KVM_GET_SUPPORTED_CPUID) cost about 0.3 ms per process here, a tenth of a boot.
pub fn cpuid(tsc_khz: u32) -> Result<CpuId> {
    cpuid_with(tsc_khz, 0)
}

/// [`cpuid`], with `features` added to the monitor's feature leaf (the request channel of
/// a function image, when something serves it).
pub fn cpuid_with(tsc_khz: u32, features: u32) -> Result<CpuId> {
    static TABLE: OnceLock<Vec<kvm_cpuid_entry2>> = OnceLock::new();
    let mut entries = TABLE.get_or_init(|| select(&host_leaves())).clone();
    let mut leaves = hypervisor_leaves(tsc_khz);
    for leaf in &mut leaves {
        if leaf.function == abi::CPUID_FEATURES {
            leaf.eax |= features;
        }
    }
    entries.extend(leaves);
    CpuId::from_entries(&entries).map_err(|err| Error::Cpuid(format!("{err:?}")))
}

/// The host's answers for the leaves the guest may get (sub-leaf 0 each).
fn host_leaves() -> Vec<kvm_cpuid_entry2> {
    use std::arch::x86_64::__cpuid_count;
    let max_basic = __cpuid_count(0, 0).eax;
    let max_extended = __cpuid_count(0x8000_0000, 0).eax;
    BASIC_LEAVES
        .iter()
        .filter(|&&leaf| leaf <= max_basic)
        .chain(EXTENDED_LEAVES.iter().filter(|&&leaf| leaf <= max_extended))
        .map(|&function| {
            let r = __cpuid_count(function, 0);
            kvm_cpuid_entry2 {
                function,
                index: 0,
                flags: if function == 7 {
                    KVM_CPUID_FLAG_SIGNIFCANT_INDEX
                } else {
                    0
                },
                eax: r.eax,
                ebx: r.ebx,
                ecx: r.ecx,
                edx: r.edx,
                ..Default::default()
            }
        })
        .collect()
}

/// Picks and trims the leaves the guest sees.
pub fn select(supported: &[kvm_cpuid_entry2]) -> Vec<kvm_cpuid_entry2> {
    let find = |function: u32| {
        supported
            .iter()
            .find(|e| e.function == function && e.index == 0)
            .copied()
    };
    let mut out = Vec::new();
    let max_basic = BASIC_LEAVES
        .iter()
        .copied()
        .filter(|&leaf| find(leaf).is_some())
        .max()
        .unwrap_or(0);
    for leaf in BASIC_LEAVES {
        let Some(mut entry) = find(leaf) else {
            continue;
        };
        match leaf {
            0 => entry.eax = max_basic,
            1 => {
                entry.ecx = (entry.ecx & LEAF1_ECX) | HYPERVISOR;
                entry.edx &= !LEAF1_EDX_DROP;
                // APIC ID 0 (`set_apic_id` gives the APs theirs); keep the CLFLUSH line
                // size.
                entry.ebx &= 0x0000_ff00;
            }
            7 => {
                entry.eax = 0;
                entry.ebx &= LEAF7_EBX;
                entry.ecx = 0;
                entry.edx = 0;
            }
            _ => {}
        }
        out.push(entry);
    }
    let max_extended = EXTENDED_LEAVES
        .iter()
        .copied()
        .filter(|&leaf| find(leaf).is_some())
        .max()
        .unwrap_or(0x8000_0000);
    for leaf in EXTENDED_LEAVES {
        let Some(mut entry) = find(leaf) else {
            continue;
        };
        if leaf == 0x8000_0000 {
            entry.eax = max_extended;
        }
        out.push(entry);
    }
    out
}

/// Sets the initial APIC ID that leaf 1 reports (EBX bits 31:24) to `apic_id`: each vCPU
/// of a VM with several reads its own, as KVM gives vCPU `n` local APIC ID `n`.
pub fn set_apic_id(cpuid: &mut CpuId, apic_id: u8) {
    for entry in cpuid.as_mut_slice() {
        if entry.function == 1 {
            entry.ebx = (entry.ebx & 0x00ff_ffff) | (u32::from(apic_id) << 24);
        }
    }
}

/// The monitor's leaves: signature, features, TSC frequency.
pub fn hypervisor_leaves(tsc_khz: u32) -> Vec<kvm_cpuid_entry2> {
    let word = |i: usize| u32::from_le_bytes(abi::SIGNATURE[i..i + 4].try_into().expect("4 bytes"));
    let leaf = |function, eax, ebx, ecx, edx| kvm_cpuid_entry2 {
        function,
        eax,
        ebx,
        ecx,
        edx,
        ..Default::default()
    };
    vec![
        leaf(
            abi::CPUID_SIGNATURE,
            abi::CPUID_TIMING,
            word(0),
            word(4),
            word(8),
        ),
        leaf(
            abi::CPUID_FEATURES,
            abi::FEATURE_CONSOLE | abi::FEATURE_CLOCK,
            abi::VERSION,
            0,
            0,
        ),
        leaf(abi::CPUID_TIMING, tsc_khz, 0, 0, 0),
    ]
}

/// The general registers at the PVH entry: EIP at the entry, EBX at the start info,
/// only the reserved bit of EFLAGS set (interrupts off).
pub fn pvh_regs(entry: u64, start_info: u64) -> kvm_regs {
    kvm_regs {
        rip: entry,
        rbx: start_info,
        rflags: 0x2,
        ..Default::default()
    }
}

/// The system registers at the PVH entry: 32-bit protected mode with paging off, CS a flat
/// 4 GiB execute/read code segment, the data segments flat 4 GiB read/write, a valid TR.
pub fn pvh_sregs(mut sregs: kvm_sregs) -> kvm_sregs {
    let flat = |selector: u16, type_: u8| kvm_segment {
        base: 0,
        limit: 0xffff_ffff,
        selector,
        type_,
        present: 1,
        dpl: 0,
        db: 1,
        s: 1,
        l: 0,
        g: 1,
        avl: 0,
        unusable: 0,
        padding: 0,
    };
    sregs.cs = flat(0x08, 0xb); // execute/read, accessed
    let data = flat(0x10, 0x3); // read/write, accessed
    sregs.ds = data;
    sregs.es = data;
    sregs.fs = data;
    sregs.gs = data;
    sregs.ss = data;
    sregs.tr = kvm_segment {
        base: 0,
        limit: 0x67,
        selector: 0x18,
        type_: 0xb, // busy 32-bit TSS
        present: 1,
        s: 0,
        ..data
    };
    sregs.cr0 = 0x11; // PE | ET
    sregs.cr3 = 0;
    sregs.cr4 = 0;
    sregs.efer = 0;
    sregs
}
