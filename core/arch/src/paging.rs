//! Identity paging with the image mapped W^X.
//!
//! The boot entry maps the first 2 MiB with one large read-write-execute page. `init`
//! replaces it with 4 KiB pages: page 0 and the rest of the first MiB unmapped, text R-X,
//! rodata R--, data and bss RW- NX with each stack's guard page unmapped, and the free
//! memory after the image up to 2 MiB RW- NX. Memory beyond 2 MiB is mapped on demand
//! (`map_identity`), in 2 MiB pages, only where the kernel hands it out.

use crate::cpu::PAGE;
use crate::fault::Area;
use crate::memory::MemoryError;
use core::sync::atomic::{AtomicBool, Ordering};
use x86_64::PhysAddr;
use x86_64::structures::paging::{PageTable, PageTableFlags as Flags};

const LARGE_PAGE: u64 = 2 << 20;
const GIB: u64 = 1 << 30;

/// The boot tables: the entry writes their first entries, `init` the rest.
pub(crate) static mut PML4: PageTable = PageTable::new();
pub(crate) static mut PDPT: PageTable = PageTable::new();
pub(crate) static mut PD: PageTable = PageTable::new();
/// 4 KiB pages for the first 2 MiB, where the image lives.
static mut LOW_PT: PageTable = PageTable::new();
/// Page directories for memory above 1 GiB, taken as needed.
static mut SPARE_PDS: [PageTable; 4] = [const { PageTable::new() }; 4];
static TABLES: spin::Mutex<usize> = spin::Mutex::new(0);
static NX: AtomicBool = AtomicBool::new(false);

unsafe extern "C" {
    static __image_start: u8;
    static __text_end: u8;
    static __rodata_end: u8;
    static __image_end: u8;
}

fn symbol(sym: *const u8) -> u64 {
    sym as u64
}

/// The first byte after the image (bss included), page aligned.
pub(crate) fn image_end() -> u64 {
    symbol(&raw const __image_end)
}

/// The image's parts and the stack guard pages, named for fault reports.
pub(crate) fn areas() -> [Area; 8] {
    let [main, double_fault, nmi, machine_check, page_fault] = crate::cpu::stack_guards();
    let text = symbol(&raw const __image_start);
    let rodata = symbol(&raw const __text_end);
    let data = symbol(&raw const __rodata_end);
    [
        Area {
            name: "the kernel's code",
            start: text,
            end: rodata,
            is_stack_guard: false,
        },
        Area {
            name: "the kernel's read-only data",
            start: rodata,
            end: data,
            is_stack_guard: false,
        },
        Area {
            name: "the kernel's data",
            start: data,
            end: image_end(),
            is_stack_guard: false,
        },
        main,
        double_fault,
        nmi,
        machine_check,
        page_fault,
    ]
}

fn no_execute() -> Flags {
    if NX.load(Ordering::Relaxed) {
        Flags::NO_EXECUTE
    } else {
        Flags::empty()
    }
}

/// Replaces the boot mapping of the first 2 MiB with the W^X one.
pub(crate) fn init(nx: bool) {
    NX.store(nx, Ordering::Relaxed);
    let text = symbol(&raw const __image_start);
    let rodata = symbol(&raw const __text_end);
    let data = symbol(&raw const __rodata_end);
    let end = image_end();
    let guards = crate::cpu::stack_guards();

    // SAFETY: LOW_PT is not yet referenced by any live table, so nothing else reads or
    // writes it while it is filled.
    let table = unsafe { &mut *(&raw mut LOW_PT) };
    let mut fill = |from: u64, to: u64, flags: Flags| {
        for addr in (from..to).step_by(PAGE) {
            table[(addr / PAGE as u64) as usize]
                .set_addr(PhysAddr::new(addr), flags | Flags::PRESENT);
        }
    };
    fill(text, rodata, Flags::empty());
    fill(rodata, data, no_execute());
    fill(data, end, Flags::WRITABLE | no_execute());
    fill(end, LARGE_PAGE, Flags::WRITABLE | no_execute());
    for guard in guards {
        table[(guard.start / PAGE as u64) as usize].set_unused();
    }

    // SAFETY: the new table maps everything the kernel touches from here on (its image,
    // stacks and the memory above it) at the same addresses as the boot large page, so
    // switching to it changes permissions only. Reloading CR3 flushes the old translation.
    unsafe {
        let pd = &mut *(&raw mut PD);
        pd[0].set_addr(
            PhysAddr::new(&raw const LOW_PT as u64),
            Flags::PRESENT | Flags::WRITABLE,
        );
        let (frame, flags) = x86_64::registers::control::Cr3::read();
        x86_64::registers::control::Cr3::write(frame, flags);
    }
}

/// Maps `[start, end)` read-write and not executable at the same addresses.
pub(crate) fn map_identity(start: u64, end: u64) -> Result<(), MemoryError> {
    let mut spare_used = TABLES.lock();
    let from = start.max(LARGE_PAGE) / LARGE_PAGE * LARGE_PAGE;
    for addr in (from..end).step_by(LARGE_PAGE as usize) {
        let gib = (addr / GIB) as usize;
        // SAFETY: the page tables are only changed here, under the TABLES lock, and entries
        // are only added: no mapping in use changes.
        let pdpt = unsafe { &mut *(&raw mut PDPT) };
        if pdpt[gib].is_unused() {
            if gib >= 512 || *spare_used == 4 {
                return Err(MemoryError::NoPageTables { start, end });
            }
            // SAFETY: spare tables are handed out once each, under the lock.
            let pd = unsafe { &raw mut SPARE_PDS[*spare_used] };
            *spare_used += 1;
            pdpt[gib].set_addr(PhysAddr::new(pd as u64), Flags::PRESENT | Flags::WRITABLE);
        }
        let pd_addr = pdpt[gib].addr().as_u64();
        // SAFETY: pd_addr is PD or one of SPARE_PDS (identity mapped statics), set above.
        let pd = unsafe { &mut *(pd_addr as *mut PageTable) };
        let entry = &mut pd[((addr / LARGE_PAGE) % 512) as usize];
        if entry.is_unused() {
            entry.set_addr(
                PhysAddr::new(addr),
                Flags::PRESENT | Flags::WRITABLE | Flags::HUGE_PAGE | no_execute(),
            );
        }
    }
    Ok(())
}
