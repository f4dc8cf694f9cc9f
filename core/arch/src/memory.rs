//! Guest memory beyond the image: handed out in page-aligned ranges, each mapped read-write
//! and never executable before it is returned.

use crate::boot::MemoryRegion;
use core::fmt;

pub const PAGE_SIZE: u64 = 4096;

/// Why memory could not be handed out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryError {
    /// No free range of the VM's memory is large enough.
    NotEnough { wanted: u64, largest_free: u64 },
    /// The range is free but the kernel ran out of page tables to map it.
    NoPageTables { start: u64, end: u64 },
    /// Device registers were asked for at `start`, in the VM's memory (see
    /// [`crate::device::map`]).
    NotDevice { start: u64 },
}

impl fmt::Display for MemoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::NotEnough {
                wanted,
                largest_free,
            } => write!(
                f,
                "{} does not fit: the largest free range of the VM's memory is {}; give the VM more memory (the runner's `--memory <MiB>`)",
                Size(wanted),
                Size(largest_free)
            ),
            Self::NoPageTables { start, end } => {
                write!(f, "no page table left to map {start:#x}..{end:#x}")
            }
            Self::NotDevice { start } => write!(f, "{start:#x} is RAM, not a device"),
        }
    }
}

/// A byte count printed in binary units: `4 MiB`, `1.5 KiB`, `512 B`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size(pub u64);

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
        // The largest unit the size reaches; bytes below 1 KiB.
        let power = (self.0.max(1).ilog2() / 10).min(3);
        let unit = UNITS.get(power as usize).copied().unwrap_or_default();
        let tenths = (self.0 * 10) >> (10 * power);
        if tenths.is_multiple_of(10) {
            write!(f, "{} {unit}", tenths / 10)
        } else {
            write!(f, "{}.{} {unit}", tenths / 10, tenths % 10)
        }
    }
}

/// Finds `size` bytes (rounded up to pages) of usable memory at or above `cursor`.
/// Returns the start of the range; the caller moves its cursor past it.
pub fn find_free(regions: &[MemoryRegion], cursor: u64, size: u64) -> Result<u64, MemoryError> {
    let size = size.div_ceil(PAGE_SIZE) * PAGE_SIZE;
    let mut largest_free = 0;
    for region in regions.iter().filter(|region| region.usable) {
        let start = region.start.max(cursor).next_multiple_of(PAGE_SIZE);
        let end = region.end / PAGE_SIZE * PAGE_SIZE;
        let free = end.saturating_sub(start);
        if free >= size {
            return Ok(start);
        }
        largest_free = largest_free.max(free);
    }
    Err(MemoryError::NotEnough {
        wanted: size,
        largest_free,
    })
}

/// Where to look again when `[start, start + size)` overlaps `reserved` (the initrd,
/// which the memory map counts as usable RAM): just above it. `None`: no overlap.
pub fn past_reserved(start: u64, size: u64, reserved: Option<(u64, u64)>) -> Option<u64> {
    let (from, len) = reserved?;
    let to = from.saturating_add(len);
    (start < to && from < start.saturating_add(size)).then_some(to)
}

/// Whether `[start, end)` overlaps usable memory of the memory map.
pub fn overlaps_ram(regions: &[MemoryRegion], start: u64, end: u64) -> bool {
    regions
        .iter()
        .any(|region| region.usable && region.start < end && start < region.end)
}

#[cfg(target_os = "none")]
pub use target::{allocate, initrd};

/// Whether the loader's initrd `[start, start + len)` lies inside one usable range of the
/// memory map and above the image (`image_end`): the VMM's numbers are checked before the
/// kernel reads through them.
pub fn initrd_in_ram(regions: &[MemoryRegion], image_end: u64, start: u64, len: u64) -> bool {
    let Some(end) = start.checked_add(len) else {
        return false;
    };
    start >= image_end
        && regions
            .iter()
            .any(|region| region.usable && region.start <= start && end <= region.end)
}

/// Host builds have no loader, so no initrd.
#[cfg(not(target_os = "none"))]
pub fn initrd() -> Result<Option<&'static [u8]>, InitrdError> {
    Ok(None)
}

/// Why the loader's initrd cannot be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitrdError {
    /// The loader placed it outside the VM's usable memory or over the image.
    OutsideRam { start: u64, len: u64 },
    /// It could not be mapped.
    Map(MemoryError),
}

impl fmt::Display for InitrdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::OutsideRam { start, len } => write!(
                f,
                "the loader placed the initrd at {start:#x} ({len} bytes), outside the VM's free memory"
            ),
            Self::Map(error) => write!(f, "the initrd could not be mapped: {error}"),
        }
    }
}

/// Host builds (unit tests) have no guest memory to hand out.
#[cfg(not(target_os = "none"))]
pub fn allocate(size: usize) -> Result<&'static mut [core::mem::MaybeUninit<u8>], MemoryError> {
    Err(MemoryError::NotEnough {
        wanted: size as u64,
        largest_free: 0,
    })
}

/// Hands out memory of the VM for good, holding `len` values made by `init(index)`: tables
/// whose size is only known at boot (the scheduler's per-task statistics), without a heap.
///
/// # Panics
/// If `T` needs an alignment above a page, or the size overflows.
pub fn leak_slice<T>(
    len: usize,
    mut init: impl FnMut(usize) -> T,
) -> Result<&'static mut [T], MemoryError> {
    assert!(
        align_of::<T>() <= PAGE_SIZE as usize,
        "leak_slice: alignment above a page"
    );
    let bytes = size_of::<T>()
        .checked_mul(len)
        .expect("leak_slice: size overflows");
    // `allocate` hands out page-aligned ranges.
    let first = allocate(bytes.max(1))?.as_mut_ptr().cast::<T>();
    for index in 0..len {
        // SAFETY: the range holds `len` values of T and starts page aligned, so slot
        // `index` is in bounds and aligned for T; each slot is written once.
        unsafe { first.add(index).write(init(index)) };
    }
    // SAFETY: every slot was initialised above, and the range is handed out only here.
    Ok(unsafe { core::slice::from_raw_parts_mut(first, len) })
}

#[cfg(target_os = "none")]
mod target {
    use super::*;
    use core::mem::MaybeUninit;

    /// Everything below this has been handed out (or is the image itself).
    static CURSOR: spin::Mutex<Option<u64>> = spin::Mutex::new(None);

    /// Hands out `size` bytes of the VM's memory, mapped read-write and not executable.
    pub fn allocate(size: usize) -> Result<&'static mut [MaybeUninit<u8>], MemoryError> {
        let mut cursor = CURSOR.lock();
        let from = cursor.unwrap_or_else(crate::paging::image_end);
        let info = crate::boot::info();
        let mut start = find_free(info.regions(), from, size as u64)?;
        if let Some(above) = past_reserved(start, size as u64, info.initrd()) {
            // Above the initrd nothing is reserved.
            start = find_free(info.regions(), above, size as u64)?;
        }
        let end = start + size as u64;
        crate::paging::map_identity(start, end)?;
        *cursor = Some(end.next_multiple_of(PAGE_SIZE));
        // SAFETY: [start, end) is usable RAM from the memory map, above the image and every
        // range handed out before (the cursor only grows), and it was just identity mapped
        // read-write; so the slice is valid and nothing else aliases it.
        Ok(unsafe { core::slice::from_raw_parts_mut(start as *mut MaybeUninit<u8>, size) })
    }

    /// The initrd the loader placed in memory, mapped (not executable) and shared for the
    /// rest of the run; `None` when the loader passed none.
    pub fn initrd() -> Result<Option<&'static [u8]>, InitrdError> {
        let info = crate::boot::info();
        let Some((start, len)) = info.initrd() else {
            return Ok(None);
        };
        if !initrd_in_ram(info.regions(), crate::paging::image_end(), start, len) {
            return Err(InitrdError::OutsideRam { start, len });
        }
        crate::paging::map_identity(start, start + len).map_err(InitrdError::Map)?;
        // SAFETY: [start, start + len) is usable RAM above the image (checked above), just
        // mapped; `allocate` never hands out any of it (`find_free` skips the initrd), so no
        // mutable reference to it exists and nothing writes it: shared slices are sound.
        Ok(Some(unsafe {
            core::slice::from_raw_parts(start as *const u8, len as usize)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::string::ToString;

    const QEMU_32M: [MemoryRegion; 2] = [
        MemoryRegion {
            start: 0,
            end: 0x9fc00,
            usable: true,
        },
        MemoryRegion {
            start: 0x100000,
            end: 0x200_0000,
            usable: true,
        },
    ];

    #[test]
    fn takes_memory_above_the_cursor() {
        assert_eq!(find_free(&QEMU_32M, 0x120000, 0x100000), Ok(0x120000));
        assert_eq!(find_free(&QEMU_32M, 0x120001, 1), Ok(0x121000));
    }

    #[test]
    fn skips_regions_that_are_too_small_or_unusable() {
        let regions = [
            MemoryRegion {
                start: 0x100000,
                end: 0x180000,
                usable: true,
            },
            MemoryRegion {
                start: 0x180000,
                end: 0x1000000,
                usable: false,
            },
            MemoryRegion {
                start: 0x1000000,
                end: 0x2000000,
                usable: true,
            },
        ];
        assert_eq!(find_free(&regions, 0x110000, 0x100000), Ok(0x1000000));
    }

    #[test]
    fn reports_the_largest_free_range() {
        let err = find_free(&QEMU_32M, 0x120000, 64 << 20).unwrap_err();
        assert_eq!(
            err,
            MemoryError::NotEnough {
                wanted: 64 << 20,
                largest_free: 0x200_0000 - 0x120000
            }
        );
        assert_eq!(
            err.to_string(),
            "64 MiB does not fit: the largest free range of the VM's memory is 30.8 MiB; give the VM more memory (the runner's `--memory <MiB>`)"
        );
    }

    #[test]
    fn allocations_skip_the_initrd() {
        let initrd = Some((0x1e00800, 0x100000));
        assert_eq!(past_reserved(0x120000, 0x1000, None), None);
        assert_eq!(past_reserved(0x120000, 0x1000, initrd), None, "below it");
        assert_eq!(
            past_reserved(0x1d00000, 0x100800, initrd),
            None,
            "ends at its start"
        );
        assert_eq!(
            past_reserved(0x1d00000, 0x100801, initrd),
            Some(0x1f00800),
            "runs into it"
        );
        assert_eq!(
            past_reserved(0x1e40000, 1, initrd),
            Some(0x1f00800),
            "inside it"
        );
        assert_eq!(past_reserved(0x1f00800, 1, initrd), None, "above it");
        // The next search starts above it, page aligned by find_free.
        assert_eq!(find_free(&QEMU_32M, 0x1f00800, 0x1000), Ok(0x1f01000));
    }

    #[test]
    fn an_initrd_must_lie_in_free_ram() {
        let image_end = 0x130000;
        assert!(initrd_in_ram(&QEMU_32M, image_end, 0x1e00000, 0x1000));
        assert!(
            !initrd_in_ram(&QEMU_32M, image_end, 0x1fff000, 0x2000),
            "past the end"
        );
        assert!(
            !initrd_in_ram(&QEMU_32M, image_end, 0x120000, 0x1000),
            "over the image"
        );
        assert!(
            !initrd_in_ram(&QEMU_32M, image_end, 0x9f000, 0x80000),
            "across the hole"
        );
        assert!(
            !initrd_in_ram(&QEMU_32M, image_end, u64::MAX - 1, 2),
            "overflows"
        );
    }

    #[test]
    fn ranges_in_usable_memory_are_told_apart() {
        assert!(overlaps_ram(&QEMU_32M, 0, 1), "page 0");
        assert!(
            overlaps_ram(&QEMU_32M, 0x1ff_f000, 0x201_0000),
            "straddles the end"
        );
        assert!(
            !overlaps_ram(&QEMU_32M, 0x9fc00, 0x100000),
            "the legacy hole"
        );
        assert!(
            !overlaps_ram(&QEMU_32M, 0xfec0_0000, 0xfec0_1000),
            "an I/O APIC"
        );
        assert!(
            !overlaps_ram(&QEMU_32M, 0x200_0000, 0x200_1000),
            "just past the end"
        );
        let reserved = [MemoryRegion {
            start: 0,
            end: 0x1000,
            usable: false,
        }];
        assert!(!overlaps_ram(&reserved, 0, 0x1000));
    }

    #[test]
    fn sizes_print_in_binary_units() {
        assert_eq!(Size(512).to_string(), "512 B");
        assert_eq!(Size(1536).to_string(), "1.5 KiB");
        assert_eq!(Size(4 << 20).to_string(), "4 MiB");
        assert_eq!(Size(3 << 30).to_string(), "3 GiB");
        assert_eq!(Size(0).to_string(), "0 B");
    }
}
