//! The legacy 8259 PIC pair: remapped to vectors 0x20..0x2f, and either masked (when the
//! APICs deliver interrupts) or the machine's interrupt controller.

/// The vector of ISA IRQ 0 once remapped.
pub const VECTOR_BASE: u8 = 0x20;

/// The vector of ISA `irq` (0 to 15) once remapped.
pub fn vector_of(irq: u8) -> u8 {
    VECTOR_BASE + irq
}

/// The ISA IRQ of a vector the PIC delivers.
pub fn irq_of(vector: u8) -> Option<u8> {
    vector.checked_sub(VECTOR_BASE).filter(|irq| *irq < 16)
}

/// The mask registers' values with `irq` unmasked in `masks` (master, slave); a slave IRQ
/// also unmasks the cascade (IRQ 2).
pub fn unmask(masks: (u8, u8), irq: u8) -> (u8, u8) {
    let (master, slave) = masks;
    if irq < 8 {
        (master & !(1 << irq), slave)
    } else {
        (master & !(1 << 2), slave & !(1 << (irq - 8)))
    }
}

#[cfg(target_os = "none")]
pub use target::*;

#[cfg(target_os = "none")]
mod target {
    use x86_64::instructions::port::Port;

    /// The two 8259s' I/O ports; the only ones `out` and `inb` reach.
    #[derive(Clone, Copy)]
    #[repr(u16)]
    enum Register {
        MasterCommand = 0x20,
        MasterData = 0x21,
        SlaveCommand = 0xa0,
        SlaveData = 0xa1,
    }
    use Register::{MasterCommand, MasterData, SlaveCommand, SlaveData};
    const END_OF_INTERRUPT: u8 = 0x20;
    const READ_ISR: u8 = 0x0b;

    fn out(register: Register, value: u8) {
        // SAFETY: `register` is one of the 8259s' command and data ports; writing them
        // configures interrupt delivery and does not touch memory.
        unsafe { Port::new(register as u16).write(value) }
    }

    fn inb(register: Register) -> u8 {
        // SAFETY: reading an 8259 register has no effect on memory.
        unsafe { Port::new(register as u16).read() }
    }

    /// Remaps the PICs to vectors 0x20..0x2f (off the CPU exceptions) and masks every line.
    pub fn init() {
        out(MasterCommand, 0x11); // ICW1: initialise, ICW4 follows
        out(SlaveCommand, 0x11);
        out(MasterData, super::VECTOR_BASE); // ICW2: vector base
        out(SlaveData, super::VECTOR_BASE + 8);
        out(MasterData, 1 << 2); // ICW3: slave on IRQ 2
        out(SlaveData, 2); // ICW3: cascade identity
        out(MasterData, 0x01); // ICW4: 8086 mode
        out(SlaveData, 0x01);
        set_masks((0xff, 0xff));
    }

    pub fn masks() -> (u8, u8) {
        (inb(MasterData), inb(SlaveData))
    }

    pub fn set_masks((master, slave): (u8, u8)) {
        out(MasterData, master);
        out(SlaveData, slave);
    }

    /// Whether `irq` is really in service: IRQ 7 and 15 arrive spuriously when a line
    /// drops before the CPU acknowledges it, and then their in-service bit is clear.
    pub fn in_service(irq: u8) -> bool {
        let (command, bit) = if irq < 8 {
            (MasterCommand, irq)
        } else {
            (SlaveCommand, irq - 8)
        };
        out(command, READ_ISR);
        inb(command) & (1 << bit) != 0
    }

    /// Acknowledges `irq`; a slave IRQ needs both PICs acknowledged.
    pub fn end_of_interrupt(irq: u8) {
        if irq >= 8 {
            out(SlaveCommand, END_OF_INTERRUPT);
        }
        out(MasterCommand, END_OF_INTERRUPT);
    }

    /// A spurious IRQ 15 still came through the master's cascade line, which expects its
    /// acknowledgement.
    pub fn end_of_spurious_slave_interrupt() {
        out(MasterCommand, END_OF_INTERRUPT);
    }
}
