//! The interface of the project's KVM monitor (version 1), as plain data: CPUID leaves,
//! I/O ports and the layouts of the structures the guest hands over. The guest side is
//! `core/arch/src/hypervisor.rs` (which documents the protocol), the host side the
//! `unikernel-vmm` crate.

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
/// The paravirtual console at [`CONSOLE_PORT`].
pub const FEATURE_CONSOLE: u32 = 1 << 0;
/// The clock page registered at [`CLOCK_PORT`].
pub const FEATURE_CLOCK: u32 = 1 << 1;
/// The request channel of function images (see [`crate::function`]).
pub use crate::function::{FEATURE_FUNCTION, FUNCTION_PORT};

/// A 32-bit write of `S` ends the VM with status `S`.
pub const EXIT_PORT: u16 = 0xf4;
/// A 32-bit write of the address of a [`ConsoleWrite`] prints it.
pub const CONSOLE_PORT: u16 = 0x0fe0;
/// A 32-bit write of the address of a [`ClockPage`] registers it.
pub const CLOCK_PORT: u16 = 0x0fe4;

/// One console write: `length` bytes at guest-physical `buffer`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConsoleWrite {
    pub buffer: u64,
    pub length: u64,
}

/// The clock the monitor keeps in guest memory (48 bytes, 8-byte aligned).
///
/// Nanoseconds since the VM was created, at TSC value `tsc`:
/// `ns = system_ns + ((tsc - tsc_timestamp) << tsc_shift) * tsc_to_ns_mul >> 32`
/// (a right shift when `tsc_shift` is negative), as in KVM's pvclock. Wall-clock time
/// (Unix epoch, nanoseconds) is that plus `wall_ns_at_zero`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClockPage {
    /// Odd while the monitor updates the page; read it before and after the fields
    /// and retry when it changed or is odd.
    pub version: u32,
    /// Bit 0: the TSC is invariant (constant rate, never stops).
    pub flags: u32,
    /// The guest TSC at which `system_ns` was taken.
    pub tsc_timestamp: u64,
    /// Nanoseconds since the VM was created, at `tsc_timestamp`.
    pub system_ns: u64,
    /// Unix time in nanoseconds when `system_ns` was 0.
    pub wall_ns_at_zero: u64,
    /// The TSC frequency in Hz.
    pub tsc_hz: u64,
    /// Fixed-point multiplier (32 fractional bits), after the shift.
    pub tsc_to_ns_mul: u32,
    /// Power-of-two scale applied to the TSC delta before the multiplication.
    pub tsc_shift: i8,
    pub reserved: [u8; 3],
}

/// `flags` bit: the TSC is invariant.
pub const CLOCK_TSC_STABLE: u32 = 1;

/// The size of a console request, [`ConsoleWrite`].
pub const CONSOLE_WRITE_SIZE: usize = size_of::<ConsoleWrite>();

impl ConsoleWrite {
    /// A request from its bytes as the guest laid them out (for the VMM, which reads them
    /// from guest memory).
    pub fn from_bytes(bytes: [u8; CONSOLE_WRITE_SIZE]) -> Self {
        let word = |at: usize| {
            let mut word = [0; 8];
            word.copy_from_slice(&bytes[at..at + 8]);
            u64::from_le_bytes(word)
        };
        ConsoleWrite {
            buffer: word(0),
            length: word(8),
        }
    }
}

impl ClockPage {
    /// The page's bytes as the guest sees them (for the VMM, which writes them into
    /// guest memory).
    pub fn to_bytes(&self) -> [u8; 48] {
        let mut bytes = [0; 48];
        bytes[0..4].copy_from_slice(&self.version.to_le_bytes());
        bytes[4..8].copy_from_slice(&self.flags.to_le_bytes());
        bytes[8..16].copy_from_slice(&self.tsc_timestamp.to_le_bytes());
        bytes[16..24].copy_from_slice(&self.system_ns.to_le_bytes());
        bytes[24..32].copy_from_slice(&self.wall_ns_at_zero.to_le_bytes());
        bytes[32..40].copy_from_slice(&self.tsc_hz.to_le_bytes());
        bytes[40..44].copy_from_slice(&self.tsc_to_ns_mul.to_le_bytes());
        bytes[44] = self.tsc_shift as u8;
        bytes
    }

    /// Nanoseconds since the VM was created at guest TSC `tsc`.
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

/// The `(tsc_to_ns_mul, tsc_shift)` pair for a TSC of `tsc_hz`, computed as KVM's
/// `kvm_get_time_scale` does: shift the rates until nanoseconds per tick fit a 32-bit
/// fraction below 1, using as many of its bits as possible.
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

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::offset_of;

    #[test]
    fn the_layouts_are_fixed() {
        assert_eq!(size_of::<ConsoleWrite>(), 16);
        assert_eq!(size_of::<ClockPage>(), 48);
        assert_eq!(offset_of!(ClockPage, tsc_timestamp), 8);
        assert_eq!(offset_of!(ClockPage, system_ns), 16);
        assert_eq!(offset_of!(ClockPage, wall_ns_at_zero), 24);
        assert_eq!(offset_of!(ClockPage, tsc_hz), 32);
        assert_eq!(offset_of!(ClockPage, tsc_to_ns_mul), 40);
        assert_eq!(offset_of!(ClockPage, tsc_shift), 44);
    }

    /// `to_bytes` puts each field at its `repr(C)` offset, which the guest reads in place.
    #[test]
    fn clock_page_bytes_follow_its_layout() {
        let page = ClockPage {
            version: 2,
            flags: CLOCK_TSC_STABLE,
            tsc_timestamp: 0x1122_3344_5566_7788,
            system_ns: 11,
            wall_ns_at_zero: 13,
            tsc_hz: 2_596_132_000,
            tsc_to_ns_mul: 0xdead_beef,
            tsc_shift: -2,
            reserved: [0; 3],
        };
        let bytes = page.to_bytes();
        assert_eq!(bytes[0..4], 2u32.to_le_bytes());
        assert_eq!(bytes[8..16], 0x1122_3344_5566_7788u64.to_le_bytes());
        assert_eq!(bytes[32..40], 2_596_132_000u64.to_le_bytes());
        assert_eq!(bytes[40..44], 0xdead_beefu32.to_le_bytes());
        assert_eq!(bytes[44], (-2i8) as u8);
        assert_eq!(bytes[45..], [0; 3]);
    }

    #[test]
    fn a_console_request_reads_back_from_its_bytes() {
        let mut bytes = [0; CONSOLE_WRITE_SIZE];
        bytes[..8].copy_from_slice(&0x12_3450u64.to_le_bytes());
        bytes[8..].copy_from_slice(&42u64.to_le_bytes());
        assert_eq!(
            ConsoleWrite::from_bytes(bytes),
            ConsoleWrite {
                buffer: 0x12_3450,
                length: 42
            }
        );
    }

    #[test]
    fn the_scale_converts_ticks_to_nanoseconds() {
        for hz in [
            1_000_000u64,
            100_000_000,
            1_000_000_000,
            2_445_000_000,
            3_000_000_000,
            5_200_000_000,
        ] {
            let (mul, shift) = scale(hz);
            let page = ClockPage {
                tsc_timestamp: 1000,
                system_ns: 5,
                tsc_to_ns_mul: mul,
                tsc_shift: shift,
                tsc_hz: hz,
                ..Default::default()
            };
            // One second of ticks is one second, within a part per million.
            let ns = page.ns_at(1000 + hz) - 5;
            assert!(
                ns.abs_diff(1_000_000_000) <= 1_000,
                "{hz} Hz: {ns} ns ({mul}, {shift})"
            );
            // An hour too, without overflow.
            let ns = page.ns_at(1000 + hz * 3600) - 5;
            let hour = 3_600_000_000_000u64;
            assert!(ns.abs_diff(hour) <= hour / 1_000_000, "{hz} Hz: {ns} ns");
        }
    }
}
