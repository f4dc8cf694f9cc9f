//! The `irq` subsystem: interrupt controllers and handlers.
//!
//! At init the legacy 8259 PICs are remapped off the CPU exception vectors and masked.
//! Where the CPU has a local APIC it is enabled, in x2APIC mode where CPUID reports it
//! (else xAPIC, memory-mapped), and device lines are routed through the I/O APIC(s); where
//! it has none, the PICs are the controller (with a local APIC but the PICs forced, the
//! APIC passes their interrupts through: "virtual wire mode"). The kernel flag `unikernel.irq=pic`,
//! `unikernel.irq=xapic` or `unikernel.irq=x2apic` forces a choice, to test each path.
//!
//! Handlers are plain functions, registered for a device line ([`Irq::register`]) or for a
//! local source such as the APIC timer ([`Irq::register_local`]). They run with interrupts
//! disabled, on the interrupted stack, and the controller is acknowledged after they
//! return. Nothing goes unnoticed: spurious interrupts (vector 0xff, or the PICs' IRQ 7
//! and 15 with nothing in service), APIC errors and interrupts on a vector with no handler
//! are counted ([`Irq::stats`]) and the first of each kind is reported on the console.
//!
//! I/O APICs are found at the standard addresses (0xfec00000, and 0xfec10000 for QEMU
//! microvm's second one), with the PC's ISA routing (IRQ 0 on pin 2, the rest identity).
#![no_std]
// Only the controller drivers touch hardware; the routing and dispatch logic needs no unsafe.
#![deny(unsafe_code)]

#[allow(unsafe_code)]
pub mod ioapic;
#[allow(unsafe_code)]
pub mod lapic;
#[allow(unsafe_code)]
pub mod pic;

use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};

pub use ioapic::{Polarity, Trigger};
use unikernel_arch::cmdline::KernelFlags;
use unikernel_arch::interrupts;

/// The local APIC's spurious-interrupt vector.
pub const SPURIOUS_VECTOR: u8 = 0xff;
/// The local APIC's error vector.
pub const ERROR_VECTOR: u8 = 0xfe;
/// Vectors handed out for local sources (the APIC timer): the highest priority class.
const LOCAL_VECTORS: core::ops::Range<u8> = 0xf0..0xfe;
/// Vectors handed out for device lines.
const DEVICE_VECTORS: core::ops::Range<u8> = 0x30..0xf0;

/// An interrupt line of a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Line {
    /// A legacy ISA IRQ (0 to 15): 0 the PIT, 1 the keyboard, 4 COM1, 8 the RTC.
    Isa(u8),
    /// A global system interrupt: an I/O APIC input.
    Gsi {
        gsi: u32,
        trigger: Trigger,
        polarity: Polarity,
    },
}

impl Line {
    /// A global system interrupt, edge-triggered and active high (virtio-mmio).
    pub const fn gsi(gsi: u32) -> Line {
        Line::Gsi {
            gsi,
            trigger: Trigger::Edge,
            polarity: Polarity::High,
        }
    }

    /// The global system interrupt an ISA IRQ arrives on, with the PC's routing: the PIT
    /// (IRQ 0) is wired to pin 2, everything else to the pin of its number.
    pub fn isa_gsi(irq: u8) -> u32 {
        if irq == 0 { 2 } else { u32::from(irq) }
    }

    /// The line's GSI, trigger and polarity.
    pub fn routing(self) -> (u32, Trigger, Polarity) {
        match self {
            Line::Isa(irq) => (Line::isa_gsi(irq), Trigger::Edge, Polarity::High),
            Line::Gsi {
                gsi,
                trigger,
                polarity,
            } => (gsi, trigger, polarity),
        }
    }
}

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Line::Isa(irq) => write!(f, "ISA IRQ {irq}"),
            Line::Gsi { gsi, .. } => write!(f, "GSI {gsi}"),
        }
    }
}

/// Which controller delivers interrupts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Controller {
    /// The local APIC (in this mode) and this many I/O APICs.
    Apic { mode: lapic::Mode, ioapics: usize },
    /// The 8259 PIC pair.
    Pic,
}

impl fmt::Display for Controller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Controller::Apic {
                mode: lapic::Mode::X2Apic,
                ioapics,
            } => write!(f, "x2APIC, {ioapics} I/O APIC(s)"),
            Controller::Apic {
                mode: lapic::Mode::XApic { base },
                ioapics,
            } => write!(f, "xAPIC at {base:#x}, {ioapics} I/O APIC(s)"),
            Controller::Pic => f.write_str("8259 PIC"),
        }
    }
}

/// Why a handler could not be registered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IrqError {
    /// No I/O APIC input (or PIC line) is this line.
    NoSuchLine(Line),
    /// The line already has a handler.
    LineInUse(Line),
    /// Every vector of the range is taken.
    NoVectorLeft,
    /// Local sources need a local APIC, and the machine runs on the PIC.
    NoLocalApic,
    /// Vectors 0 to 31 are CPU exceptions.
    NotAnInterruptVector(u8),
    /// No running CPU has this index.
    NoSuchCpu(usize),
}

impl fmt::Display for IrqError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoSuchLine(line) => write!(f, "the machine has no interrupt line {line}"),
            Self::LineInUse(line) => write!(f, "{line} already has a handler"),
            Self::NoVectorLeft => f.write_str("no interrupt vector left"),
            Self::NoLocalApic => f.write_str("the machine has no local APIC"),
            Self::NotAnInterruptVector(vector) => {
                write!(f, "vector {vector} is a CPU exception, not an interrupt")
            }
            Self::NoSuchCpu(cpu) => write!(f, "no CPU {cpu} runs"),
        }
    }
}

/// Sends a raw interrupt command (its low word) to a local APIC ID.
pub type SendIpi = fn(apic_id: u32, command: u32);

/// What the dispatcher has counted since boot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Interrupts delivered to a registered handler.
    pub handled: u64,
    /// Spurious interrupts (the APIC's vector 0xff, the PICs' phantom IRQ 7 and 15).
    pub spurious: u64,
    /// Interrupts on a vector with no handler.
    pub unexpected: u64,
    /// Local APIC error interrupts.
    pub apic_errors: u64,
}

/// The handle `main` takes for interrupts. Copy it freely: there is one set of controllers.
#[derive(Clone, Copy, Debug)]
pub struct Irq(());

const NOT_READY: u8 = 0;
const APIC: u8 = 1;
const PIC: u8 = 2;
static CONTROLLER: AtomicU8 = AtomicU8::new(NOT_READY);

/// Every vector's handler. Taken with interrupts disabled only (in the dispatcher, and in
/// `register` under `interrupts::without`), so on the one CPU it is never contended.
static HANDLERS: spin::Mutex<[Handler; 256]> = spin::Mutex::new([None; 256]);
type Handler = Option<fn()>;
static COUNTS: [AtomicU64; 256] = [const { AtomicU64::new(0) }; 256];
static REPORTED: [AtomicBool; 256] = [const { AtomicBool::new(false) }; 256];
static SPURIOUS: AtomicU64 = AtomicU64::new(0);
static UNEXPECTED: AtomicU64 = AtomicU64::new(0);
static APIC_ERRORS: AtomicU64 = AtomicU64::new(0);

/// Routing state: the I/O APICs and the vectors handed out.
struct Routing {
    ioapics: [Option<ioapic::IoApic>; 2],
    apic_id: u8,
    next_device: u8,
    next_local: u8,
    /// The lines routed so far, and their vectors.
    lines: [Option<(u32, u8)>; 64],
}

static ROUTING: spin::Mutex<Routing> = spin::Mutex::new(Routing {
    ioapics: [None; 2],
    apic_id: 0,
    next_device: DEVICE_VECTORS.start,
    next_local: LOCAL_VECTORS.start,
    lines: [None; 64],
});

/// What the kernel command line asks for (`unikernel.irq=...`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Force {
    Auto,
    Pic,
    XApic,
    X2Apic,
}

/// Reads `unikernel.irq=<pic|xapic|x2apic>` from the kernel flags (before any `--`).
pub fn forced(cmdline: &str) -> Force {
    match KernelFlags::parse(cmdline).value("irq") {
        Some("pic") => Force::Pic,
        Some("xapic") => Force::XApic,
        Some("x2apic") => Force::X2Apic,
        _ => Force::Auto,
    }
}

/// Sets up the controllers, points vectors 32 to 255 at the dispatcher and enables
/// interrupts. Every line starts masked.
pub fn init(cmdline: &str) -> Irq {
    let force = forced(cmdline);
    #[cfg(target_os = "none")]
    target::init(force);
    #[cfg(not(target_os = "none"))]
    let _ = force;
    interrupts::install(dispatch);
    interrupts::enable();
    Irq(())
}

/// The handle, once [`init`] ran.
pub fn handle() -> Option<Irq> {
    (CONTROLLER.load(Ordering::Acquire) != NOT_READY).then_some(Irq(()))
}

impl Irq {
    /// Which controller delivers interrupts.
    pub fn controller(&self) -> Controller {
        #[cfg(target_os = "none")]
        if let Some(mode) = lapic::mode().filter(|_| CONTROLLER.load(Ordering::Relaxed) == APIC) {
            let routing = ROUTING.lock();
            return Controller::Apic {
                mode,
                ioapics: routing.ioapics.iter().flatten().count(),
            };
        }
        Controller::Pic
    }

    /// Routes a device `line` to a new vector and calls `handler` for each of its
    /// interrupts. Returns the vector.
    pub fn register(&self, line: Line, handler: fn()) -> Result<u8, IrqError> {
        interrupts::without(|| {
            if CONTROLLER.load(Ordering::Relaxed) == PIC {
                return register_pic(line, handler);
            }
            let (gsi, trigger, polarity) = line.routing();
            let mut routing = ROUTING.lock();
            if routing.lines.iter().flatten().any(|&(used, _)| used == gsi) {
                return Err(IrqError::LineInUse(line));
            }
            let ioapic = routing
                .ioapics
                .iter()
                .flatten()
                .find(|ioapic| ioapic.handles(gsi))
                .copied()
                .ok_or(IrqError::NoSuchLine(line))?;
            let slot = routing
                .lines
                .iter()
                .position(Option::is_none)
                .ok_or(IrqError::NoVectorLeft)?;
            let vector = routing.next_device;
            if !DEVICE_VECTORS.contains(&vector) {
                return Err(IrqError::NoVectorLeft);
            }
            routing.next_device += 1;
            routing.lines[slot] = Some((gsi, vector));
            HANDLERS.lock()[usize::from(vector)] = Some(handler);
            let entry =
                ioapic::redirection_entry(vector, routing.apic_id, trigger, polarity, false);
            #[cfg(target_os = "none")]
            ioapic.set_entry(gsi - ioapic.gsi_base(), entry);
            #[cfg(not(target_os = "none"))]
            let _ = (ioapic, entry);
            Ok(vector)
        })
    }

    /// Hands out a vector for a source of the local APIC (its timer) and calls `handler`
    /// for each interrupt on it. The caller programs the source with the vector.
    pub fn register_local(&self, handler: fn()) -> Result<u8, IrqError> {
        interrupts::without(|| {
            if CONTROLLER.load(Ordering::Relaxed) != APIC {
                return Err(IrqError::NoLocalApic);
            }
            let mut routing = ROUTING.lock();
            let vector = routing.next_local;
            if !LOCAL_VECTORS.contains(&vector) {
                return Err(IrqError::NoVectorLeft);
            }
            routing.next_local += 1;
            HANDLERS.lock()[usize::from(vector)] = Some(handler);
            Ok(vector)
        })
    }

    /// Raises `vector` (32 to 255) on this CPU through the local APIC (a self-IPI): to
    /// defer work to an interrupt handler, or to test one. The interrupt is taken as soon
    /// as interrupts are enabled.
    pub fn raise(&self, vector: u8) -> Result<(), IrqError> {
        if CONTROLLER.load(Ordering::Relaxed) != APIC {
            return Err(IrqError::NoLocalApic);
        }
        if vector < interrupts::FIRST_VECTOR {
            return Err(IrqError::NotAnInterruptVector(vector));
        }
        #[cfg(target_os = "none")]
        lapic::self_interrupt(vector);
        Ok(())
    }

    /// Sends `vector` (32 to 255) to the CPU with index `cpu` (see
    /// `unikernel_arch::smp`): to wake it from a halt, or to have it run a handler.
    pub fn send_to(&self, cpu: usize, vector: u8) -> Result<(), IrqError> {
        if CONTROLLER.load(Ordering::Relaxed) != APIC {
            return Err(IrqError::NoLocalApic);
        }
        if vector < interrupts::FIRST_VECTOR {
            return Err(IrqError::NotAnInterruptVector(vector));
        }
        let Some(apic_id) = unikernel_arch::smp::apic_id(cpu) else {
            return Err(IrqError::NoSuchCpu(cpu));
        };
        #[cfg(target_os = "none")]
        lapic::send_ipi(apic_id, u32::from(vector));
        #[cfg(not(target_os = "none"))]
        let _ = apic_id;
        Ok(())
    }

    /// Sets up the local APIC of the AP this runs on as the boot CPU's was (enabled,
    /// timer and LINT0 masked, the spurious and error vectors), interrupts still off.
    pub fn init_this_cpu(&self) {
        #[cfg(target_os = "none")]
        if CONTROLLER.load(Ordering::Relaxed) == APIC {
            use lapic::reg;
            lapic::enable_this_cpu();
            lapic::write(reg::TASK_PRIORITY, 0);
            lapic::write(reg::LVT_TIMER, lapic::LVT_MASKED);
            lapic::write(reg::LVT_LINT0, lapic::LVT_MASKED | lapic::LVT_EXTINT);
            lapic::write(reg::LVT_LINT1, lapic::LVT_MASKED | lapic::LVT_NMI);
            lapic::write(reg::LVT_ERROR, u32::from(ERROR_VECTOR));
            lapic::write(reg::ERROR_STATUS, 0);
            lapic::write(
                reg::SPURIOUS,
                lapic::SOFTWARE_ENABLE | u32::from(SPURIOUS_VECTOR),
            );
        }
    }

    /// The start-up IPI path for `unikernel_arch::smp::start`: the boot CPU's APIC ID
    /// and a function that sends a raw interrupt command to an APIC ID.
    pub fn startup_ipis(&self) -> Option<(u32, SendIpi)> {
        if CONTROLLER.load(Ordering::Relaxed) != APIC {
            return None;
        }
        #[cfg(target_os = "none")]
        return Some((lapic::id(), lapic::send_ipi));
        #[cfg(not(target_os = "none"))]
        None
    }

    /// What the dispatcher has counted.
    pub fn stats(&self) -> Stats {
        Stats {
            handled: COUNTS.iter().map(|c| c.load(Ordering::Relaxed)).sum(),
            spurious: SPURIOUS.load(Ordering::Relaxed),
            unexpected: UNEXPECTED.load(Ordering::Relaxed),
            apic_errors: APIC_ERRORS.load(Ordering::Relaxed),
        }
    }

    /// How many interrupts `vector`'s handler has run for.
    pub fn count(&self, vector: u8) -> u64 {
        COUNTS[usize::from(vector)].load(Ordering::Relaxed)
    }
}

fn register_pic(line: Line, handler: fn()) -> Result<u8, IrqError> {
    let irq = match line {
        Line::Isa(irq) if irq < 16 => irq,
        Line::Gsi { gsi, .. } if gsi < 16 => gsi as u8,
        _ => return Err(IrqError::NoSuchLine(line)),
    };
    let vector = pic::vector_of(irq);
    let mut handlers = HANDLERS.lock();
    if handlers[usize::from(vector)].is_some() {
        return Err(IrqError::LineInUse(line));
    }
    handlers[usize::from(vector)] = Some(handler);
    #[cfg(target_os = "none")]
    pic::set_masks(pic::unmask(pic::masks(), irq));
    Ok(vector)
}

/// Reports the first occurrence of something odd on `vector`; later ones are counted only.
fn report_once(vector: u8, what: fmt::Arguments<'_>) {
    if !REPORTED[usize::from(vector)].swap(true, Ordering::Relaxed) {
        unikernel_arch::serial::print(format_args!(
            "irq: {what} on vector {vector:#04x} (reported once; Irq::stats counts them all)\n"
        ));
    }
}

fn spurious(vector: u8) {
    SPURIOUS.fetch_add(1, Ordering::Relaxed);
    report_once(vector, format_args!("spurious interrupt"));
}

/// Runs `vector`'s handler, or counts and reports an interrupt nobody expected.
fn run_handler(vector: u8) {
    let handler = HANDLERS.lock()[usize::from(vector)];
    match handler {
        Some(handler) => {
            COUNTS[usize::from(vector)].fetch_add(1, Ordering::Relaxed);
            handler();
        }
        None => {
            UNEXPECTED.fetch_add(1, Ordering::Relaxed);
            report_once(vector, format_args!("unexpected interrupt (no handler)"));
        }
    }
}

/// Called by the arch layer for every interrupt on vectors 32 to 255.
fn dispatch(vector: u8) {
    if CONTROLLER.load(Ordering::Relaxed) == PIC {
        return dispatch_pic(vector);
    }
    match vector {
        // No EOI: a spurious interrupt sets no in-service bit.
        SPURIOUS_VECTOR => spurious(vector),
        ERROR_VECTOR => {
            APIC_ERRORS.fetch_add(1, Ordering::Relaxed);
            #[cfg(target_os = "none")]
            {
                // The error status register latches on a write.
                lapic::write(lapic::reg::ERROR_STATUS, 0);
                let status = lapic::read(lapic::reg::ERROR_STATUS);
                report_once(vector, format_args!("local APIC error {status:#x}"));
                lapic::end_of_interrupt();
            }
        }
        _ => {
            // The PICs are masked; only their phantom IRQ 7 and 15 can still get here.
            if let Some(irq) = pic::irq_of(vector) {
                #[cfg(target_os = "none")]
                if irq == 15 {
                    pic::end_of_spurious_slave_interrupt();
                }
                let _ = irq;
                return spurious(vector);
            }
            run_handler(vector);
            #[cfg(target_os = "none")]
            lapic::end_of_interrupt();
        }
    }
}

fn dispatch_pic(vector: u8) {
    if vector == SPURIOUS_VECTOR {
        // From a local APIC in virtual wire mode.
        return spurious(vector);
    }
    let Some(irq) = pic::irq_of(vector) else {
        // Not from the PICs: a software interrupt; there is no controller to acknowledge.
        return run_handler(vector);
    };
    #[cfg(target_os = "none")]
    if (irq == 7 || irq == 15) && !pic::in_service(irq) {
        if irq == 15 {
            pic::end_of_spurious_slave_interrupt();
        }
        return spurious(vector);
    }
    run_handler(vector);
    #[cfg(target_os = "none")]
    pic::end_of_interrupt(irq);
    #[cfg(not(target_os = "none"))]
    let _ = irq;
}

#[cfg(target_os = "none")]
mod target {
    use super::*;
    use core::arch::x86_64::__cpuid;

    const IOAPIC_BASES: [u64; 2] = [0xfec0_0000, 0xfec1_0000];

    pub(super) fn init(force: Force) {
        // Whatever delivers interrupts later, the PICs must not raise anything on the
        // exception vectors they power up with.
        pic::init();
        let leaf1 = __cpuid(1);
        let has_apic = leaf1.edx & (1 << 9) != 0;
        let has_x2apic = leaf1.ecx & (1 << 21) != 0;
        if !has_apic {
            CONTROLLER.store(PIC, Ordering::Release);
            return;
        }
        let x2apic = has_x2apic && force != Force::XApic && force != Force::Pic;
        if lapic::enable(x2apic).is_err() {
            CONTROLLER.store(PIC, Ordering::Release);
            return;
        }
        use lapic::reg;
        lapic::write(reg::TASK_PRIORITY, 0);
        lapic::write(reg::LVT_TIMER, lapic::LVT_MASKED);
        // LINT0 carries the PICs' output (ExtINT): open ("virtual wire mode") when the PICs
        // are the controller, else closed.
        let lint0 = if force == Force::Pic {
            lapic::LVT_EXTINT
        } else {
            lapic::LVT_MASKED | lapic::LVT_EXTINT
        };
        lapic::write(reg::LVT_LINT0, lint0);
        lapic::write(reg::LVT_LINT1, lapic::LVT_NMI);
        lapic::write(reg::LVT_ERROR, u32::from(ERROR_VECTOR));
        lapic::write(reg::ERROR_STATUS, 0);
        lapic::write(
            reg::SPURIOUS,
            lapic::SOFTWARE_ENABLE | u32::from(SPURIOUS_VECTOR),
        );
        if force == Force::Pic {
            CONTROLLER.store(PIC, Ordering::Release);
            return;
        }
        let mut routing = ROUTING.lock();
        routing.apic_id = lapic::id() as u8;
        let mut gsi_base = 0;
        for (slot, base) in IOAPIC_BASES.into_iter().enumerate() {
            match ioapic::IoApic::probe(base, gsi_base) {
                Some(found) => {
                    gsi_base += found.pins();
                    routing.ioapics[slot] = Some(found);
                }
                None => break,
            }
        }
        CONTROLLER.store(APIC, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isa_irq_0_is_on_pin_2() {
        assert_eq!(Line::Isa(0).routing().0, 2);
        assert_eq!(Line::Isa(4).routing(), (4, Trigger::Edge, Polarity::High));
        assert_eq!(Line::gsi(17).routing(), (17, Trigger::Edge, Polarity::High));
    }

    #[test]
    fn kernel_flag_forces_a_controller() {
        assert_eq!(forced("unikernel.irq=pic -- x"), Force::Pic);
        assert_eq!(forced("unikernel.irq=xapic"), Force::XApic);
        assert_eq!(forced("-- unikernel.irq=pic"), Force::Auto);
        assert_eq!(forced(""), Force::Auto);
    }

    #[test]
    fn redirection_entries() {
        let entry = ioapic::redirection_entry(0x31, 0, Trigger::Edge, Polarity::High, false);
        assert_eq!(entry, 0x31);
        let entry = ioapic::redirection_entry(0x40, 3, Trigger::Level, Polarity::Low, true);
        assert_eq!(entry, 0x40 | (1 << 15) | (1 << 13) | (1 << 16) | (3 << 56));
        assert_eq!(ioapic::redirection_register(2), 0x14);
        assert_eq!(ioapic::pins_from_version(0x0017_0020), 24);
    }

    #[test]
    fn pic_vectors_and_masks() {
        assert_eq!(pic::vector_of(0), 0x20);
        assert_eq!(pic::irq_of(0x2f), Some(15));
        assert_eq!(pic::irq_of(0x30), None);
        assert_eq!(pic::irq_of(0x1f), None);
        assert_eq!(pic::unmask((0xff, 0xff), 0), (0xfe, 0xff));
        assert_eq!(pic::unmask((0xff, 0xff), 8), (0xfb, 0xfe));
    }

    #[test]
    fn apic_registers() {
        assert_eq!(lapic::x2apic_msr(lapic::reg::EOI), 0x80b);
        assert_eq!(lapic::x2apic_msr(lapic::reg::LVT_TIMER), 0x832);
        assert_eq!(lapic::base_address(0xfee0_0900), 0xfee0_0000);
        assert_eq!(lapic::enabled_base(0xfee0_0100, true), 0xfee0_0d00);
    }

    #[test]
    fn unexpected_interrupts_are_counted() {
        let before = Irq(()).stats().unexpected;
        run_handler(0x99);
        run_handler(0x99);
        assert_eq!(Irq(()).stats().unexpected, before + 2);
    }
}
