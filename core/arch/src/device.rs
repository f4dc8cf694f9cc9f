//! Device registers in the physical address space (the local APIC, I/O APICs, virtio-mmio
//! windows): mapped at their own addresses, read-write, uncached and never executable.

use crate::memory::{self, MemoryError};

/// Maps `[start, start + len)` for a driver, which then reads and writes it with volatile
/// accesses. Mapping a range twice is harmless. A range that overlaps the VM's usable
/// memory is refused: remapping it would change the kernel's own pages (its code, a
/// stack's guard page) from safe code.
pub fn map(start: u64, len: u64) -> Result<(), MemoryError> {
    let end = start.saturating_add(len);
    if memory::overlaps_ram(crate::boot::info().regions(), start, end) {
        return Err(MemoryError::NotDevice { start });
    }
    #[cfg(target_os = "none")]
    return crate::paging::map_device(start, end);
    #[cfg(not(target_os = "none"))]
    Err(MemoryError::NoPageTables { start, end })
}
