//! CPU tables: the GDT with a TSS whose interrupt stack table gives the faults that must
//! not run on a possibly broken stack (double fault, NMI, machine check, page fault) stacks
//! of their own, and the IDT that routes every CPU exception to one report.

use crate::fault::{Area, Fault, TrapFrame};
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicBool, Ordering};
use x86_64::VirtAddr;
use x86_64::instructions::segmentation::{CS, DS, ES, SS, Segment};
use x86_64::instructions::tables::{lgdt, lidt, load_tss};
use x86_64::structures::DescriptorTablePointer;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable, SegmentSelector};
use x86_64::structures::tss::TaskStateSegment;

pub(crate) const PAGE: usize = 4096;

/// A stack with an unmapped guard page below it: running off the end faults at once
/// instead of overwriting whatever lies below.
#[repr(C, align(4096))]
pub(crate) struct GuardedStack<const SIZE: usize> {
    guard: [u8; PAGE],
    stack: [u8; SIZE],
}

impl<const SIZE: usize> GuardedStack<SIZE> {
    const fn new() -> Self {
        Self {
            guard: [0; PAGE],
            stack: [0; SIZE],
        }
    }
}

pub(crate) const BOOT_STACK_SIZE: usize = crate::context::BOOT_STACK_SIZE;
const FAULT_STACK_SIZE: usize = 16 * 1024;

/// The stack `main` runs on. Its top is loaded by the boot entry.
pub(crate) static mut BOOT_STACK: GuardedStack<BOOT_STACK_SIZE> = GuardedStack::new();
static mut DOUBLE_FAULT_STACK: GuardedStack<FAULT_STACK_SIZE> = GuardedStack::new();
static mut NMI_STACK: GuardedStack<FAULT_STACK_SIZE> = GuardedStack::new();
static mut MACHINE_CHECK_STACK: GuardedStack<FAULT_STACK_SIZE> = GuardedStack::new();
static mut PAGE_FAULT_STACK: GuardedStack<FAULT_STACK_SIZE> = GuardedStack::new();

/// Where each stack's guard page is, for paging (to unmap it) and for fault reports.
pub(crate) fn stack_guards() -> [Area; 5] {
    fn guard<const N: usize>(name: &'static str, stack: *const GuardedStack<N>) -> Area {
        let start = stack as u64;
        Area {
            name,
            start,
            end: start + PAGE as u64,
            is_stack_guard: true,
        }
    }
    [
        guard(crate::context::MAIN_STACK, &raw const BOOT_STACK),
        guard("the double-fault stack", &raw const DOUBLE_FAULT_STACK),
        guard("the NMI stack", &raw const NMI_STACK),
        guard("the machine-check stack", &raw const MACHINE_CHECK_STACK),
        guard("the page-fault stack", &raw const PAGE_FAULT_STACK),
    ]
}

fn top<const N: usize>(stack: *const GuardedStack<N>) -> VirtAddr {
    // The statics are identity mapped in the low 2 MiB: canonical, nothing to check.
    VirtAddr::new_truncate(stack as u64 + size_of::<GuardedStack<N>>() as u64)
}

// Interrupt stack table slots (1-based in the IDT, 0-based in the TSS).
const IST_DOUBLE_FAULT: u8 = 1;
const IST_NMI: u8 = 2;
const IST_MACHINE_CHECK: u8 = 3;
const IST_PAGE_FAULT: u8 = 4;

// The CPU tables. Written once by `init`, on the boot CPU, before anything can use them;
// plain statics rather than lazily initialised cells keep the boot path and image small.
// `MaybeUninit` keeps them in .bss: their initial values are not all zeros.
static mut TSS: MaybeUninit<TaskStateSegment> = MaybeUninit::uninit();
static mut GDT: MaybeUninit<GlobalDescriptorTable> = MaybeUninit::uninit();

/// One 64-bit interrupt gate (Intel SDM vol. 3, 6.14.1), as its two quadwords: offset
/// bits 0-15, selector, IST and type, offset bits 16-31; then offset bits 32-63. Built
/// with shifts into two stores, since every instruction before `main` may be emulated.
#[derive(Clone, Copy)]
#[repr(C)]
struct Gate(u64, u64);

impl Gate {
    const MISSING: Self = Self(0, 0);

    fn interrupt(handler: u64, selector: SegmentSelector, ist: u8) -> Self {
        const PRESENT_INTERRUPT_GATE: u64 = 0x8e00;
        let low = (handler & 0xffff)
            | u64::from(selector.0) << 16
            | (PRESENT_INTERRUPT_GATE | u64::from(ist)) << 32
            | (handler & 0xffff_0000) << 32;
        Self(low, handler >> 32)
    }
}

#[repr(C, align(16))]
struct Idt([Gate; 256]);

static mut IDT: Idt = Idt([Gate::MISSING; 256]);

unsafe extern "C" {
    /// The 32 exception entry stubs of `entry.s`, by vector (below 4 GiB, like the image).
    static exception_stubs: [u32; 32];
}

/// Loads the GDT, the TSS and the IDT. From here on a CPU exception is reported.
///
/// # Safety
/// Call once, first thing on the boot path, with interrupts off: the tables are rebuilt
/// in place, so no other code may be using them.
pub(crate) unsafe fn init() {
    let (tss, gdt, idt) = (&raw mut TSS, &raw mut GDT, &raw mut IDT);
    // SAFETY: the caller runs this once, first thing on the only CPU, with interrupts off:
    // nothing else reads or writes the tables while they are filled, and after `init` they
    // are only read by the CPU.
    let (tss, gdt, idt) = unsafe { (&mut *tss, &mut *gdt, &mut *idt) };
    let tss = tss.write(TaskStateSegment::new());
    let gdt = gdt.write(GlobalDescriptorTable::new());

    // The TSS is packed: build the table aside and copy it in.
    let mut ist = tss.interrupt_stack_table;
    ist[usize::from(IST_DOUBLE_FAULT - 1)] = top(&raw const DOUBLE_FAULT_STACK);
    ist[usize::from(IST_NMI - 1)] = top(&raw const NMI_STACK);
    ist[usize::from(IST_MACHINE_CHECK - 1)] = top(&raw const MACHINE_CHECK_STACK);
    ist[usize::from(IST_PAGE_FAULT - 1)] = top(&raw const PAGE_FAULT_STACK);
    tss.interrupt_stack_table = ist;

    let code = gdt.append(Descriptor::kernel_code_segment());
    let data = gdt.append(Descriptor::kernel_data_segment());
    let tss_static = &raw const TSS;
    // SAFETY: the TSS is a static, complete from here on.
    let tss_selector = gdt.append(Descriptor::tss_segment(unsafe {
        (*tss_static).assume_init_ref()
    }));
    // Loaded by hand like the IDT below: `GlobalDescriptorTable::load` checks that the
    // table's address is canonical, and that check's panic costs the image about 160 bytes.
    let gdt_pointer = DescriptorTablePointer {
        limit: gdt.limit(),
        base: VirtAddr::new_truncate(gdt.entries().as_ptr() as u64),
    };
    // SAFETY: the pointer describes the GDT built above, a static that is not changed
    // after this point; its code and data descriptors match the boot GDT's, so the
    // segment registers stay valid until they are reloaded below.
    unsafe { lgdt(&gdt_pointer) };
    // SAFETY: the selectors index the GDT just loaded; the code segment is a 64-bit ring-0
    // segment like the boot one, so execution continues.
    unsafe {
        CS::set_reg(code);
        SS::set_reg(data);
        DS::set_reg(data);
        ES::set_reg(data);
        load_tss(tss_selector);
    }

    // SAFETY: `exception_stubs` is an immutable table in entry.s's .rodata.
    let stubs = unsafe { &exception_stubs };
    // Only each gate's first quadword: the second holds offset bits 32-63, zero for a stub
    // below 4 GiB, and the IDT is in .bss (two instructions a gate, 64 on the boot path).
    for (gate, &stub) in idt.0.iter_mut().zip(stubs) {
        gate.0 = Gate::interrupt(stub.into(), code, 0).0;
    }
    // Spelled out rather than a loop over pairs: constant indices need no bounds checks.
    idt.0[2].0 = Gate::interrupt(stubs[2].into(), code, IST_NMI).0;
    idt.0[8].0 = Gate::interrupt(stubs[8].into(), code, IST_DOUBLE_FAULT).0;
    idt.0[14].0 = Gate::interrupt(stubs[14].into(), code, IST_PAGE_FAULT).0;
    idt.0[18].0 = Gate::interrupt(stubs[18].into(), code, IST_MACHINE_CHECK).0;
    let pointer = DescriptorTablePointer {
        limit: (size_of::<Idt>() - 1) as u16,
        base: VirtAddr::new_truncate(&raw const IDT as u64),
    };
    // SAFETY: the IDT is a static and every present gate points at a stub of entry.s,
    // which saves the registers and calls `exception_handler`.
    unsafe { lidt(&pointer) };
}

// The APs' tables, by CPU index (slot 0 unused: the boot CPU has the statics above).
static mut AP_TSS: [MaybeUninit<TaskStateSegment>; crate::acpi::MAX_CPUS] =
    [const { MaybeUninit::uninit() }; crate::acpi::MAX_CPUS];
static mut AP_GDT: [MaybeUninit<GlobalDescriptorTable>; crate::acpi::MAX_CPUS] =
    [const { MaybeUninit::uninit() }; crate::acpi::MAX_CPUS];

/// Loads an AP's own GDT and TSS (its fault stacks `fault_tops`: double fault, NMI,
/// machine check, page fault) and the shared IDT.
///
/// # Safety
/// Call once per AP, first thing in its Rust code with interrupts off, with its own
/// `index` (1..MAX_CPUS): the slot's tables are written here and then only read by that CPU.
pub(crate) unsafe fn init_ap(index: usize, fault_tops: [u64; 4]) {
    let (tss_slots, gdt_slots) = (&raw mut AP_TSS, &raw mut AP_GDT);
    // SAFETY: slot `index` belongs to this AP alone (the caller's contract).
    let (tss, gdt) = unsafe {
        (
            (*tss_slots)[index].write(TaskStateSegment::new()),
            (*gdt_slots)[index].write(GlobalDescriptorTable::new()),
        )
    };
    let mut ist = tss.interrupt_stack_table;
    for (slot, top) in [IST_DOUBLE_FAULT, IST_NMI, IST_MACHINE_CHECK, IST_PAGE_FAULT]
        .into_iter()
        .zip(fault_tops)
    {
        ist[usize::from(slot - 1)] = VirtAddr::new_truncate(top);
    }
    tss.interrupt_stack_table = ist;
    let tss: &'static TaskStateSegment = tss;
    let code = gdt.append(Descriptor::kernel_code_segment());
    let data = gdt.append(Descriptor::kernel_data_segment());
    let tss_selector = gdt.append(Descriptor::tss_segment(tss));
    let gdt_pointer = DescriptorTablePointer {
        limit: gdt.limit(),
        base: VirtAddr::new_truncate(gdt.entries().as_ptr() as u64),
    };
    let idt_pointer = DescriptorTablePointer {
        limit: (size_of::<Idt>() - 1) as u16,
        base: VirtAddr::new_truncate(&raw const IDT as u64),
    };
    // SAFETY: the GDT was built above and is never changed again; its code and data
    // descriptors are 64-bit ring-0 ones like the trampoline's, so execution continues
    // once CS is reloaded. The IDT is the boot CPU's, complete since `init`, whose gates
    // are only changed with interrupts off.
    unsafe {
        lgdt(&gdt_pointer);
        CS::set_reg(code);
        SS::set_reg(data);
        DS::set_reg(data);
        ES::set_reg(data);
        load_tss(tss_selector);
        lidt(&idt_pointer);
    }
}

/// Points the IDT gate of `vector` (32 to 255) at `handler`, on the current stack (no IST).
///
/// # Safety
/// `handler` is an interrupt entry stub (interrupts.s): it saves the interrupted
/// registers and returns with `iretq`. Interrupts are disabled.
pub(crate) unsafe fn set_interrupt_gate(vector: usize, handler: u64) {
    assert!(
        (32..256).contains(&vector),
        "vector {vector} is a CPU exception"
    );
    let code = CS::get_reg();
    let idt = &raw mut IDT;
    // SAFETY: the IDT is only written here and in `init`, both with interrupts disabled on
    // the only CPU, so no gate is read while it is written; the caller vouches for `handler`.
    unsafe { (*idt).0[vector] = Gate::interrupt(handler, code, 0) };
}

/// Turns on no-execute pages where the CPU has them. Returns whether it did.
pub(crate) fn enable_nx() -> bool {
    use x86_64::registers::model_specific::{Efer, EferFlags};
    // Leaf 0x80000001 exists on every x86_64 CPU (it reports long mode).
    let nx = core::arch::x86_64::__cpuid(0x8000_0001).edx & (1 << 20) != 0;
    if nx {
        // SAFETY: the CPU reports NX, so EFER.NXE is writable; setting it only makes the
        // NX bit of page-table entries meaningful.
        unsafe { Efer::update(|flags| flags.insert(EferFlags::NO_EXECUTE_ENABLE)) };
    }
    nx
}

/// Called by `exception_common` in entry.s with the saved registers. Reports and exits:
/// no exception is recoverable in a kernel with one address space and no processes.
pub(crate) extern "C" fn exception_handler(frame: &mut TrapFrame) {
    static REPORTING: AtomicBool = AtomicBool::new(false);
    if REPORTING.swap(true, Ordering::Relaxed) {
        crate::serial::print(format_args!(
            "exception: {} while reporting an exception\n",
            crate::fault::exception_name(frame.vector).0
        ));
        crate::exit::exit(crate::exit::status::EXCEPTION);
    }
    let fault_address = x86_64::registers::control::Cr2::read_raw();
    // The image's areas, then the guard pages of thread stacks.
    const IMAGE_AREAS: usize = 8;
    let unused = Area {
        name: "",
        start: 0,
        end: 0,
        is_stack_guard: false,
    };
    let mut areas = [unused; IMAGE_AREAS + crate::context::MAX_STACKS];
    areas[..IMAGE_AREAS].copy_from_slice(&crate::paging::areas());
    let mut next = IMAGE_AREAS;
    crate::context::for_each_guard(|area| {
        if let Some(slot) = areas.get_mut(next) {
            *slot = area;
            next += 1;
        }
    });
    let fault = Fault {
        frame,
        fault_address,
        areas: areas.get(..next).unwrap_or_default(),
    };
    if crate::smp::online() > 1 {
        crate::serial::print(format_args!("on CPU {}: ", crate::smp::this_cpu()));
    }
    crate::serial::print(format_args!("{fault}\n"));
    crate::backtrace::print(frame.rbp, frame.rsp);
    crate::exit::exit(crate::exit::status::EXCEPTION)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    static PANICKING: AtomicBool = AtomicBool::new(false);
    if PANICKING.swap(true, Ordering::Relaxed) {
        crate::serial::print(format_args!(
            "panicked while panicking: {}\n",
            info.message()
        ));
    } else if let Some(failure) = crate::oom::failure_behind(info.location()) {
        crate::serial::print(format_args!("panicked: {failure}\n"));
    } else if let Some(location) = info.location() {
        // The location's parts as u64s: `Location`'s own `Display` would link u32's
        // formatting, which nothing else in most images uses.
        crate::serial::print(format_args!(
            "panicked at {}:{}:{}:\n{}\n",
            location.file(),
            u64::from(location.line()),
            u64::from(location.column()),
            info.message()
        ));
    } else {
        crate::serial::print(format_args!("panicked:\n{}\n", info.message()));
    }
    let (rbp, rsp): (u64, u64);
    // SAFETY: copies two registers; no memory is touched.
    unsafe {
        core::arch::asm!(
            "mov {}, rbp",
            "mov {}, rsp",
            out(reg) rbp,
            out(reg) rsp,
            options(nomem, nostack, preserves_flags),
        );
    }
    crate::backtrace::print(rbp, rsp);
    crate::exit::exit(crate::exit::status::PANIC)
}
