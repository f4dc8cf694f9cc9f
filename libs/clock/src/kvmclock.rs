//! kvmclock: KVM's paravirtual clock, which gives the TSC's scale (so no calibration) and
//! the wall-clock time.

/// "KVMKVMKVM\0\0\0", CPUID 0x40000000's EBX, ECX, EDX under KVM.
pub const SIGNATURE: [u8; 12] = *b"KVMKVMKVM\0\0\0";
/// KVM_FEATURE_CLOCKSOURCE2 in CPUID 0x40000001's EAX: the MSRs below exist.
pub const FEATURE_CLOCKSOURCE2: u32 = 1 << 3;
pub const MSR_WALL_CLOCK_NEW: u32 = 0x4b56_4d00;
pub const MSR_SYSTEM_TIME_NEW: u32 = 0x4b56_4d01;

/// `pvclock_vcpu_time_info`, which the host keeps up to date.
#[repr(C, align(64))]
#[derive(Clone, Copy, Debug, Default)]
pub struct TimeInfo {
    pub version: u32,
    pub pad0: u32,
    pub tsc_timestamp: u64,
    pub system_time: u64,
    pub tsc_to_system_mul: u32,
    pub tsc_shift: i8,
    pub flags: u8,
    pub pad: [u8; 2],
}

/// `pvclock_wall_clock`: the wall-clock time at which kvmclock read 0.
#[repr(C, align(16))]
#[derive(Clone, Copy, Debug, Default)]
pub struct WallClock {
    pub version: u32,
    pub sec: u32,
    pub nsec: u32,
}

impl TimeInfo {
    /// kvmclock's nanoseconds at `tsc`.
    pub fn ns_at(&self, tsc: u64) -> u64 {
        let scale = crate::scale::Scale::from_pvclock(self.tsc_to_system_mul, self.tsc_shift);
        self.system_time
            .wrapping_add(scale.to_ns(tsc.wrapping_sub(self.tsc_timestamp)))
    }
}

/// Whether CPUID shows KVM with kvmclock.
pub fn present() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::__cpuid;
        let leaf = __cpuid(0x4000_0000);
        let mut signature = [0u8; 12];
        signature[..4].copy_from_slice(&leaf.ebx.to_le_bytes());
        signature[4..8].copy_from_slice(&leaf.ecx.to_le_bytes());
        signature[8..].copy_from_slice(&leaf.edx.to_le_bytes());
        signature == SIGNATURE
            && leaf.eax >= 0x4000_0001
            && __cpuid(0x4000_0001).eax & FEATURE_CLOCKSOURCE2 != 0
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

#[cfg(target_os = "none")]
pub use target::*;

#[cfg(target_os = "none")]
mod target {
    use super::*;
    use core::sync::atomic::{Ordering, fence};
    use x86_64::registers::model_specific::Msr;

    static mut TIME_INFO: TimeInfo = TimeInfo {
        version: 0,
        pad0: 0,
        tsc_timestamp: 0,
        system_time: 0,
        tsc_to_system_mul: 0,
        tsc_shift: 0,
        flags: 0,
        pad: [0; 2],
    };
    static mut WALL_CLOCK: WallClock = WallClock {
        version: 0,
        sec: 0,
        nsec: 0,
    };

    /// Reads a structure the host updates: retried until the version is even and the
    /// same before and after (the host makes it odd while it writes).
    fn consistent<T: Copy>(at: *const T, version: fn(&T) -> u32) -> T {
        loop {
            // SAFETY: `at` is one of the statics above, aligned and valid; the host writes
            // it between our reads, which the version protocol detects; volatile reads
            // keep the compiler from caching or tearing them into one.
            let first = unsafe { core::ptr::read_volatile(at) };
            fence(Ordering::Acquire);
            // SAFETY: as above.
            let second = unsafe { core::ptr::read_volatile(at) };
            if version(&first).is_multiple_of(2) && version(&first) == version(&second) {
                return second;
            }
        }
    }

    /// Registers the per-CPU time page with the host and reads it.
    pub fn enable() -> TimeInfo {
        let page = &raw const TIME_INFO as u64;
        // SAFETY: CPUID reported kvmclock, so the MSR exists; it tells the host to keep
        // TIME_INFO (a static, identity mapped, so its address is physical) up to date.
        // Bit 0 enables the updates.
        unsafe { Msr::new(MSR_SYSTEM_TIME_NEW).write(page | 1) };
        consistent(&raw const TIME_INFO, |info| info.version)
    }

    /// The time page as the host last wrote it.
    pub fn time_info() -> TimeInfo {
        consistent(&raw const TIME_INFO, |info| info.version)
    }

    /// The wall-clock time now, in nanoseconds since the Unix epoch.
    pub fn wall_ns() -> u64 {
        let page = &raw const WALL_CLOCK as u64;
        // SAFETY: CPUID reported kvmclock; the write asks the host to fill WALL_CLOCK (a
        // static, identity mapped) once, during the write.
        unsafe { Msr::new(MSR_WALL_CLOCK_NEW).write(page) };
        let wall = consistent(&raw const WALL_CLOCK, |wall| wall.version);
        let boot = u64::from(wall.sec) * 1_000_000_000 + u64::from(wall.nsec);
        boot + time_info().ns_at(unikernel_arch::timeline::tsc())
    }
}
