//! Device registers in the physical address space (the local APIC, I/O APICs, virtio-mmio
//! windows): mapped at their own addresses, read-write, uncached and never executable.

use crate::memory::MemoryError;

/// Maps `[start, start + len)` for a driver, which then reads and writes it with volatile
/// accesses. Mapping a range twice is harmless.
pub fn map(start: u64, len: u64) -> Result<(), MemoryError> {
    #[cfg(target_os = "none")]
    return crate::paging::map_device(start, start + len);
    #[cfg(not(target_os = "none"))]
    Err(MemoryError::NoPageTables {
        start,
        end: start + len,
    })
}
