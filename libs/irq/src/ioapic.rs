//! I/O APICs: each routes its input pins (global system interrupts `gsi_base..gsi_base +
//! pins`) to vectors of a local APIC, through a redirection table.

/// How a line signals: ISA devices are edge-triggered, active high; PCI-style lines are
/// level-triggered, active low.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    Edge,
    Level,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Polarity {
    High,
    Low,
}

const REDIRECTION_TABLE: u32 = 0x10;
const MASKED: u64 = 1 << 16;
const LEVEL: u64 = 1 << 15;
const ACTIVE_LOW: u64 = 1 << 13;

/// The redirection-table register of `pin`: its low half; the high half is the next one.
pub fn redirection_register(pin: u32) -> u32 {
    REDIRECTION_TABLE + 2 * pin
}

/// A redirection entry: fixed delivery of `vector` to the local APIC `apic_id` (physical
/// destination mode), with the line's trigger and polarity; masked if `masked`.
pub fn redirection_entry(
    vector: u8,
    apic_id: u8,
    trigger: Trigger,
    polarity: Polarity,
    masked: bool,
) -> u64 {
    let mut entry = u64::from(vector) | (u64::from(apic_id) << 56);
    if trigger == Trigger::Level {
        entry |= LEVEL;
    }
    if polarity == Polarity::Low {
        entry |= ACTIVE_LOW;
    }
    if masked {
        entry |= MASKED;
    }
    entry
}

/// The number of pins from the version register (bits 16..23 hold the last pin's index).
pub fn pins_from_version(version: u32) -> u32 {
    ((version >> 16) & 0xff) + 1
}

/// One I/O APIC, found by `IoApic::probe`. The fields are private: a value exists only
/// for a register window that was probed and mapped, which is what makes the volatile
/// accesses of `read` and `write` sound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoApic {
    /// Its identity-mapped register window.
    base: u64,
    /// The first global system interrupt it handles.
    gsi_base: u32,
    pins: u32,
}

impl IoApic {
    /// Whether `gsi` is one of its inputs.
    pub fn handles(&self, gsi: u32) -> bool {
        (self.gsi_base..self.gsi_base + self.pins).contains(&gsi)
    }

    /// The first global system interrupt it handles.
    pub fn gsi_base(&self) -> u32 {
        self.gsi_base
    }

    /// How many inputs it has.
    pub fn pins(&self) -> u32 {
        self.pins
    }
}

#[cfg(target_os = "none")]
impl IoApic {
    /// Probes the I/O APIC whose registers are at `base`: maps them and reads the version
    /// register. `None` if nothing answers there (all ones) or mapping failed. Crate-only:
    /// the caller vouches that `base` is where an I/O APIC may be (a standard address),
    /// since the probe writes the select register there.
    pub(crate) fn probe(base: u64, gsi_base: u32) -> Option<IoApic> {
        unikernel_arch::device::map(base, 4096).ok()?;
        let mut ioapic = IoApic {
            base,
            gsi_base,
            pins: 0,
        };
        let version = ioapic.read(1);
        if version == u32::MAX || version & 0xff == 0 {
            return None;
        }
        ioapic.pins = pins_from_version(version);
        for pin in 0..ioapic.pins {
            ioapic.set_entry(pin, MASKED);
        }
        Some(ioapic)
    }

    fn read(&self, register: u32) -> u32 {
        // SAFETY: `base` is an I/O APIC's register window, mapped uncached by `probe`:
        // IOREGSEL at +0 selects the register, IOWIN at +0x10 reads it. Callers run with
        // interrupts disabled, so the select-then-read pair is not interleaved.
        unsafe {
            core::ptr::write_volatile(self.base as *mut u32, register);
            core::ptr::read_volatile((self.base + 0x10) as *const u32)
        }
    }

    fn write(&self, register: u32, value: u32) {
        // SAFETY: as in `read`; the registers only configure interrupt routing.
        unsafe {
            core::ptr::write_volatile(self.base as *mut u32, register);
            core::ptr::write_volatile((self.base + 0x10) as *mut u32, value);
        }
    }

    /// Writes the redirection entry of `pin`, masking it first so that no half-written
    /// entry is ever live.
    pub fn set_entry(&self, pin: u32, entry: u64) {
        let register = redirection_register(pin);
        self.write(register, MASKED as u32);
        self.write(register + 1, (entry >> 32) as u32);
        self.write(register, entry as u32);
    }
}
