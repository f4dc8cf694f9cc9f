//! Identity paging with the image mapped W^X.
//!
//! The boot entry maps the first 2 MiB with one large read-write-execute page. `init`
//! replaces it with 4 KiB pages: page 0 and the rest of the first MiB unmapped, text R-X,
//! data and bss RW- NX with each stack's guard page unmapped, rodata R-- NX, and the free
//! memory after the image up to 2 MiB RW- NX. Memory beyond 2 MiB is mapped on demand
//! (`map_identity`), in 2 MiB pages, only where the kernel hands it out.

use crate::cpu::PAGE;
use crate::fault::Area;
use crate::memory::MemoryError;
use core::sync::atomic::{AtomicU64, Ordering};
use x86_64::instructions::tlb;
use x86_64::structures::paging::{PageTable, PageTableFlags as Flags};
use x86_64::{PhysAddr, VirtAddr};

const LARGE_PAGE: u64 = 2 << 20;
const GIB: u64 = 1 << 30;

/// The boot tables: the entry writes their first entries, `init` the rest.
pub(crate) static mut PML4: PageTable = PageTable::new();
pub(crate) static mut PDPT: PageTable = PageTable::new();
pub(crate) static mut PD: PageTable = PageTable::new();
/// 4 KiB pages for the first 2 MiB, where the image lives.
static mut LOW_PT: PageTable = PageTable::new();
/// Page directories for memory above 1 GiB, taken as needed.
const SPARE: usize = 4;
static mut SPARE_PDS: [PageTable; SPARE] = [const { PageTable::new() }; SPARE];
static TABLES: spin::Mutex<usize> = spin::Mutex::new(0);
/// The bits of `Flags::NO_EXECUTE` where the CPU supports it, else 0 (the bit is reserved
/// there).
static NX: AtomicU64 = AtomicU64::new(0);

unsafe extern "C" {
    static __image_start: u8;
    static __text_end: u8;
    static __data_end: u8;
    static __rodata_end: u8;
}

fn symbol(sym: *const u8) -> u64 {
    sym as u64
}

/// The first byte after the image (bss included), page aligned.
pub(crate) fn image_end() -> u64 {
    symbol(&raw const __rodata_end)
}

/// The image's parts, in address order (see unikernel.ld): `[text, data, rodata, end)`.
struct Layout {
    text: u64,
    data: u64,
    rodata: u64,
    end: u64,
}

fn layout() -> Layout {
    Layout {
        text: symbol(&raw const __image_start),
        data: symbol(&raw const __text_end),
        rodata: symbol(&raw const __data_end),
        end: symbol(&raw const __rodata_end),
    }
}

/// The image's code: where a return address may point.
pub(crate) fn code() -> core::ops::Range<u64> {
    let layout = layout();
    layout.text..layout.data
}

/// The image's parts and the stack guard pages, named for fault reports.
pub(crate) fn areas() -> [Area; 8] {
    let [main, double_fault, nmi, machine_check, page_fault] = crate::cpu::stack_guards();
    let Layout {
        text,
        data,
        rodata,
        end,
    } = layout();
    let area = |name, start, end| Area {
        name,
        start,
        end,
        is_stack_guard: false,
    };
    [
        area("the kernel's code", text, data),
        area("the kernel's data", data, rodata),
        area("the kernel's read-only data", rodata, end),
        main,
        double_fault,
        nmi,
        machine_check,
        page_fault,
    ]
}

fn no_execute() -> Flags {
    Flags::from_bits_retain(NX.load(Ordering::Relaxed))
}

/// Replaces the boot mapping of the first 2 MiB with the W^X one.
///
/// # Safety
/// Call once, on the boot path, before anything maps memory (`map_identity`,
/// `set_small_page`) and with `nx` only where EFER.NXE is set (else the bit is reserved).
pub(crate) unsafe fn init(nx: bool) {
    let nx = if nx {
        Flags::NO_EXECUTE
    } else {
        Flags::empty()
    };
    NX.store(nx.bits(), Ordering::Relaxed);
    let Layout {
        text,
        data,
        rodata,
        end,
    } = layout();
    let guards = crate::cpu::stack_guards();

    let table = &raw mut LOW_PT;
    // SAFETY: LOW_PT is not yet referenced by any live table (the caller runs this before
    // anything maps memory), so nothing else reads or writes it while it is filled.
    let table = unsafe { &mut *table };
    fill_low(table, text, data, Flags::empty());
    fill_low(table, data, rodata, Flags::WRITABLE | no_execute());
    fill_low(table, rodata, end, no_execute());
    for guard in guards {
        if let Some(entry) = table.iter_mut().nth((guard.start / PAGE as u64) as usize) {
            entry.set_unused();
        }
    }
    // The free memory after the image is mapped when it is handed out (`map_identity`).

    let pd = &raw mut PD;
    // SAFETY: the new table maps everything the kernel touches from here on (its image,
    // stacks and the memory above it) at the same addresses as the boot large page, so
    // switching to it changes permissions only. Reloading CR3 flushes the old translation.
    // (A plain store rather than `set_addr`, whose alignment check LOW_PT's type makes moot.)
    unsafe {
        as_words(&mut *pd)[0] = &raw const LOW_PT as u64 | TABLE.bits();
    }
    flush_all();
}

/// Flushes the TLB by reloading CR3 with its own value: two instructions, where
/// `tlb::flush_all` also rebuilds CR3's value through `PhysFrame` (four more on the boot
/// path).
fn flush_all() {
    // SAFETY: reloading CR3 with its own value only flushes the TLB.
    unsafe { core::arch::asm!("mov {0}, cr3", "mov cr3, {0}", out(reg) _, options(nostack)) };
}

/// The flags of an entry that points at a lower-level table.
const TABLE: Flags = Flags::PRESENT.union(Flags::WRITABLE);

/// The physical address of a page table: the kernel is identity mapped.
fn table_address(table: *const PageTable) -> PhysAddr {
    PhysAddr::new_truncate(table as u64)
}

/// Maps the 4 KiB pages of `[from, to)` (page aligned, below 2 MiB) in `table` with
/// `flags`. Writes the entries as plain words, eight a step, rather than through
/// `PageTableEntry::set_addr`, whose alignment assertion costs instructions per page: on a
/// software-assisted KVM every instruction of the boot path costs about a microsecond, and
/// the image has about a hundred pages (and a heap that starts below 2 MiB up to 400 more).
/// Eight a step rather than four: 2.4 instructions a page instead of 2.8 (about 90 fewer
/// on hello's boot), for 28 bytes of code.
fn fill_low(table: &mut PageTable, from: u64, to: u64, flags: Flags) {
    const STEP: u64 = PAGE as u64;
    let words = as_words(table);
    let mut entry = from | (flags | Flags::PRESENT).bits();
    let range = words
        .get_mut((from / STEP) as usize..(to / STEP) as usize)
        .unwrap_or_default();
    let mut slots = range.chunks_exact_mut(8);
    for eight in &mut slots {
        // Spelled out: opt-level "s" keeps a loop here as a loop.
        eight[0] = entry;
        eight[1] = entry + STEP;
        eight[2] = entry + 2 * STEP;
        eight[3] = entry + 3 * STEP;
        eight[4] = entry + 4 * STEP;
        eight[5] = entry + 5 * STEP;
        eight[6] = entry + 6 * STEP;
        eight[7] = entry + 7 * STEP;
        entry += 8 * STEP;
    }
    for slot in slots.into_remainder() {
        *slot = entry;
        entry += STEP;
    }
}

/// A page table's entries as plain words, for the boot path's bulk writes.
fn as_words(table: &mut PageTable) -> &mut [u64; 512] {
    // SAFETY: `PageTable` is `repr(C)` around 512 `repr(transparent)` u64 entries, so it
    // has the layout of `[u64; 512]`, and any u64 is a valid entry; the borrow of `table`
    // moves into the view.
    unsafe { &mut *(table as *mut PageTable).cast::<[u64; 512]>() }
}

/// Maps `[start, end)` read-write and not executable at the same addresses.
pub(crate) fn map_identity(start: u64, end: u64) -> Result<(), MemoryError> {
    let mut spare_used = TABLES.lock();
    if start < LARGE_PAGE {
        let from = start / PAGE as u64 * PAGE as u64;
        let to = end.min(LARGE_PAGE).next_multiple_of(PAGE as u64);
        let table = &raw mut LOW_PT;
        // SAFETY: LOW_PT is live; entries are changed only here and in `set_small_page`,
        // under the TABLES lock, and only empty slots above the image are filled: no
        // mapping in use changes. A not-present entry is never cached, so no flush.
        let table = unsafe { &mut *table };
        fill_low(
            table,
            from.max(image_end()),
            to,
            Flags::WRITABLE | no_execute(),
        );
    }
    let from = start.max(LARGE_PAGE) / LARGE_PAGE * LARGE_PAGE;
    for addr in (from..end).step_by(LARGE_PAGE as usize) {
        let pd = page_directory(addr, &mut spare_used)
            .map_err(|_| MemoryError::NoPageTables { start, end })?;
        let entry = &mut pd[((addr / LARGE_PAGE) % 512) as usize];
        if entry.is_unused() {
            // `set_addr` wants 4 KiB alignment, which a 2 MiB-aligned address has.
            entry.set_addr(
                PhysAddr::new_truncate(addr),
                TABLE | Flags::HUGE_PAGE | no_execute(),
            );
        }
    }
    Ok(())
}

/// The page directory that maps the GiB `addr` lies in, taken from SPARE_PDS if there is
/// none yet. Called with the TABLES lock held (`spare_used` is under it).
fn page_directory(
    addr: u64,
    spare_used: &mut usize,
) -> Result<&'static mut PageTable, MemoryError> {
    let no_tables = MemoryError::NoPageTables {
        start: addr,
        end: addr + PAGE as u64,
    };
    let gib = (addr / GIB) as usize;
    if gib >= 512 {
        return Err(no_tables);
    }
    let pdpt = &raw mut PDPT;
    // SAFETY: the page tables are only changed under the TABLES lock, which the caller
    // holds, and entries are only added: no mapping in use changes.
    let pdpt = unsafe { &mut *pdpt };
    if pdpt[gib].is_unused() {
        if *spare_used >= SPARE {
            return Err(no_tables);
        }
        // SAFETY: spare tables are handed out once each, under the lock; the index is
        // below SPARE, checked above.
        let pd = unsafe { (&raw mut SPARE_PDS).cast::<PageTable>().add(*spare_used) };
        *spare_used += 1;
        pdpt[gib].set_addr(table_address(pd), TABLE);
    }
    let pd = pdpt[gib].addr().as_u64() as *mut PageTable;
    // SAFETY: the entry points at PD or one of SPARE_PDS (identity-mapped statics, set
    // above or by the boot entry), changed only under the lock the caller holds.
    Ok(unsafe { &mut *pd })
}

// Page-level mappings above the image: device registers (uncached) and the guard pages of
// thread stacks. Both need a 4 KiB page table for the 2 MiB range they fall in: LOW_PT for
// the first 2 MiB, else one taken from the VM's memory, which replaces a large page by 512
// small ones with the same permissions ("splitting" it) or fills an empty slot.

/// A page of the VM's memory kept for the next page table, taken outside the TABLES lock
/// (taking memory maps it, which takes the lock).
static SPARE_PAGE: spin::Mutex<Option<u64>> = spin::Mutex::new(None);

/// The page table that maps `addr` with 4 KiB pages, made if there is none yet.
/// Called with the TABLES lock held; `Ok(None)` when a new table is needed and no spare
/// page is at hand (the caller takes one and retries).
fn small_pages_for(
    addr: u64,
    spare_used: &mut usize,
) -> Result<Option<*mut PageTable>, MemoryError> {
    if addr < LARGE_PAGE {
        return Ok(Some(&raw mut LOW_PT));
    }
    let pd = page_directory(addr, spare_used)?;
    let entry = &mut pd[((addr / LARGE_PAGE) % 512) as usize];
    if !entry.is_unused() && !entry.flags().contains(Flags::HUGE_PAGE) {
        return Ok(Some(entry.addr().as_u64() as *mut PageTable));
    }
    let Some(page) = SPARE_PAGE.lock().take() else {
        return Ok(None);
    };
    // SAFETY: `page` is a page of the VM's memory handed out by `memory::allocate` for this
    // purpose only, identity mapped read-write; nothing else refers to it.
    let table = unsafe { &mut *(page as *mut PageTable) };
    if entry.is_unused() {
        table.zero();
    } else {
        // Split: the same memory, the same permissions, in 4 KiB pages.
        let base = entry.addr().align_down(LARGE_PAGE).as_u64();
        let flags = entry.flags() - Flags::HUGE_PAGE;
        for (i, small) in table.iter_mut().enumerate() {
            small.set_addr(PhysAddr::new_truncate(base + (i * PAGE) as u64), flags);
        }
    }
    entry.set_addr(table_address(table), TABLE);
    flush_all();
    Ok(Some(page as *mut PageTable))
}

/// Sets the 4 KiB page at `addr` to `flags` (empty: unmapped), mapping it at its own
/// address.
fn set_small_page(addr: u64, flags: Flags) -> Result<(), MemoryError> {
    loop {
        {
            let mut spare_used = TABLES.lock();
            if let Some(table) = small_pages_for(addr, &mut spare_used)? {
                let index = ((addr / PAGE as u64) % 512) as usize;
                // SAFETY: `table` is a live page table, changed only under the TABLES lock,
                // which is held. The caller vouches for what the new entry maps.
                let entry = unsafe { &mut (&mut *table)[index] };
                if flags.is_empty() {
                    entry.set_unused();
                } else {
                    entry.set_addr(PhysAddr::new_truncate(addr & !(PAGE as u64 - 1)), flags);
                }
                tlb::flush(VirtAddr::new_truncate(addr));
                return Ok(());
            }
        }
        let page = crate::memory::allocate(PAGE)?;
        *SPARE_PAGE.lock() = Some(page.as_ptr() as u64);
    }
}

/// Unmaps the 4 KiB page at `addr` (a stack's guard page): any access to it faults.
pub(crate) fn unmap_page(addr: u64) -> Result<(), MemoryError> {
    set_small_page(addr, Flags::empty())
}

/// Maps `[start, end)` (device registers) read-write, uncached and not executable, at the
/// same addresses.
pub(crate) fn map_device(start: u64, end: u64) -> Result<(), MemoryError> {
    let flags = TABLE | Flags::NO_CACHE | Flags::WRITE_THROUGH | no_execute();
    for addr in (start & !(PAGE as u64 - 1)..end).step_by(PAGE) {
        set_small_page(addr, flags)?;
    }
    Ok(())
}

/// Maps the 4 KiB page at `addr` (below 1 MiB) for the AP trampoline: writable and not
/// executable while it is copied (`writable`), then read-only and executable.
///
/// # Safety
/// The page is the trampoline's alone; with `!writable` its contents are the trampoline
/// code, which runs only as the AP start-up protocol (smp.s) expects.
pub(crate) unsafe fn map_trampoline(addr: u64, writable: bool) -> Result<(), MemoryError> {
    let flags = if writable {
        Flags::PRESENT | Flags::WRITABLE | no_execute()
    } else {
        Flags::PRESENT
    };
    set_small_page(addr, flags)
}

/// Maps the page holding `addr` (firmware tables: the ACPI RSDP and MADT) read-only and
/// not executable, unless the image or memory handed out already maps it.
pub(crate) fn map_firmware_page(addr: u64) {
    let Layout { text, end, .. } = layout();
    if (text..end).contains(&addr) {
        return;
    }
    let page = addr & !(PAGE as u64 - 1);
    if page < text {
        // Below the image nothing else is mapped: read-only will do.
        let _ = set_small_page(page, Flags::PRESENT | no_execute());
    } else {
        // Above it, as memory handed out is mapped (read-write, not executable); a
        // mapping already there stays as it is.
        let _ = map_identity(page, page + PAGE as u64);
    }
}
