//! The guest interface of the monitor, version 1: the same numbers and layouts as the
//! kernel's `core/arch/src/hypervisor.rs` (where the interface is documented). The runner
//! does not link the kernel crate; `tests/monitor.rs` checks that the two agree.

/// CPUID leaf with the highest hypervisor leaf and the signature.
pub const CPUID_SIGNATURE: u32 = 0x4000_0000;
/// CPUID leaf with the feature bits and the interface version.
pub const CPUID_FEATURES: u32 = 0x4000_0001;
/// CPUID leaf with the TSC frequency in kHz (EAX).
pub const CPUID_TIMING: u32 = 0x4000_0010;
/// The monitor's signature in EBX, ECX, EDX of [`CPUID_SIGNATURE`].
pub const SIGNATURE: [u8; 12] = *b"UnikernelVMM";
/// The interface version in EBX of [`CPUID_FEATURES`].
pub const VERSION: u32 = 1;
/// The paravirtual console.
pub const FEATURE_CONSOLE: u32 = 1 << 0;
/// The clock page.
pub const FEATURE_CLOCK: u32 = 1 << 1;

/// A 32-bit write of `S` ends the VM with status `S` (QEMU's isa-debug-exit address).
pub const EXIT_PORT: u16 = 0xf4;
/// A 32-bit write of the guest-physical address of a `{ buffer: u64, length: u64 }` prints it.
pub const CONSOLE_PORT: u16 = 0x0fe0;
/// A 32-bit write of the guest-physical address of a [`ClockPage`] registers it.
pub const CLOCK_PORT: u16 = 0x0fe4;

/// The size of a console request: `{ buffer: u64, length: u64 }`.
pub const CONSOLE_WRITE_SIZE: usize = 16;

/// The clock page (48 bytes): see the kernel's `hypervisor::abi::ClockPage`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClockPage {
    pub version: u32,
    pub flags: u32,
    pub tsc_timestamp: u64,
    pub system_ns: u64,
    pub wall_ns_at_zero: u64,
    pub tsc_hz: u64,
    pub tsc_to_ns_mul: u32,
    pub tsc_shift: i8,
    pub reserved: [u8; 3],
}

// SAFETY: `ClockPage` is `repr(C)` plain old data without padding (4 + 4 + 8 * 4 + 4 + 1 + 3
// = 48 bytes, every field aligned), so every byte pattern is a valid value.
unsafe impl vm_memory::ByteValued for ClockPage {}

/// `flags` bit: the TSC is invariant.
pub const CLOCK_TSC_STABLE: u32 = 1;

impl ClockPage {
    /// Nanoseconds since the VM was created at guest TSC `tsc` (the guest's formula).
    pub fn ns_at(&self, tsc: u64) -> u64 {
        let delta = tsc.wrapping_sub(self.tsc_timestamp);
        let delta = if self.tsc_shift >= 0 {
            delta << self.tsc_shift
        } else {
            delta >> -self.tsc_shift
        };
        let scaled = (u128::from(delta) * u128::from(self.tsc_to_ns_mul)) >> 32;
        self.system_ns.wrapping_add(scaled as u64)
    }
}

/// The `(tsc_to_ns_mul, tsc_shift)` pair for a TSC of `tsc_hz`, as KVM's
/// `kvm_get_time_scale` computes it.
pub fn scale(tsc_hz: u64) -> (u32, i8) {
    let mut ticks = tsc_hz.max(1);
    let mut scaled = 1_000_000_000u64;
    let mut shift: i8 = 0;
    while ticks > scaled * 2 || ticks & 0xffff_ffff_0000_0000 != 0 {
        ticks >>= 1;
        shift -= 1;
    }
    let mut ticks = ticks as u32;
    while u64::from(ticks) <= scaled || scaled & 0xffff_ffff_0000_0000 != 0 {
        if scaled & 0xffff_ffff_0000_0000 != 0 || ticks & 0x8000_0000 != 0 {
            scaled >>= 1;
        } else {
            ticks <<= 1;
        }
        shift += 1;
    }
    (((scaled << 32) / u64::from(ticks)) as u32, shift)
}
