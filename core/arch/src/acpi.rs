//! The CPUs the firmware describes: the ACPI MADT's local APIC entries, found through the
//! RSDP in the BIOS area (QEMU's microvm, pc and q35 all put one there).
//!
//! Plain logic over [`PhysRead`], unit-tested on the host; the kernel reads through
//! on-demand mappings (`smp.rs`).

use crate::boot::PhysRead;
use core::fmt;

/// Where the RSDP may lie: the BIOS read-only area (ACPI 6.5, 5.2.5.1).
pub const BIOS_AREA: core::ops::Range<u64> = 0xe_0000..0x10_0000;

/// The most CPUs the kernel runs on (`sched(cpus = N)` allows up to this).
pub const MAX_CPUS: usize = 64;

/// Why the CPU list could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AcpiError {
    /// No RSDP in the BIOS area.
    NoRsdp,
    /// The RSDT/XSDT lists no MADT ("APIC").
    NoMadt,
    /// A table's checksum is wrong.
    BadChecksum(&'static str),
}

impl fmt::Display for AcpiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoRsdp => f.write_str("no ACPI RSDP in the BIOS area (0xe0000-0xfffff)"),
            Self::NoMadt => f.write_str("the ACPI tables have no MADT"),
            Self::BadChecksum(table) => write!(f, "the ACPI {table} has a wrong checksum"),
        }
    }
}

fn bytes_sum(mem: &impl PhysRead, start: u64, len: u64) -> u8 {
    (start..start + len).fold(0u8, |sum, addr| sum.wrapping_add(mem.read_u8(addr)))
}

fn signature(mem: &impl PhysRead, addr: u64) -> [u8; 4] {
    mem.read_u32(addr).to_le_bytes()
}

/// The RSDP's address: the first 16-byte aligned "RSD PTR " in `area` whose first 20
/// bytes sum to zero.
pub fn find_rsdp(mem: &impl PhysRead, area: core::ops::Range<u64>) -> Result<u64, AcpiError> {
    (area.start..area.end.saturating_sub(20))
        .step_by(16)
        .find(|&addr| {
            mem.read_u64(addr) == u64::from_le_bytes(*b"RSD PTR ") && bytes_sum(mem, addr, 20) == 0
        })
        .ok_or(AcpiError::NoRsdp)
}

/// The APIC IDs of the enabled (or online-capable) CPUs of the MADT, in its order (the
/// boot CPU first, as firmware lists it), into `ids`. Returns how many; entries past
/// `ids.len()` are counted but not stored.
pub fn cpu_apic_ids(mem: &impl PhysRead, rsdp: u64, ids: &mut [u32]) -> Result<usize, AcpiError> {
    let madt = find_table(mem, rsdp, *b"APIC")?;
    let length = u64::from(mem.read_u32(madt + 4));
    if bytes_sum(mem, madt, length) != 0 {
        return Err(AcpiError::BadChecksum("MADT"));
    }
    let mut count = 0;
    let mut entry = madt + 44;
    while entry + 2 <= madt + length {
        let kind = mem.read_u8(entry);
        let len = u64::from(mem.read_u8(entry + 1));
        if len < 2 {
            break;
        }
        let cpu = match kind {
            // Processor local APIC: APIC ID (u8) at 3, flags at 4.
            0 => Some((u32::from(mem.read_u8(entry + 3)), mem.read_u32(entry + 4))),
            // Processor local x2APIC: x2APIC ID at 4, flags at 8.
            9 => Some((mem.read_u32(entry + 4), mem.read_u32(entry + 8))),
            _ => None,
        };
        // Flags bit 0: enabled; bit 1: online capable (may be enabled by the OS).
        if let Some((id, _)) = cpu.filter(|&(_, flags)| flags & 0b11 != 0) {
            if let Some(slot) = ids.get_mut(count) {
                *slot = id;
            }
            count += 1;
        }
        entry += len;
    }
    Ok(count)
}

/// The address of the table with `signature` listed by the XSDT (ACPI 2+) or the RSDT.
fn find_table(mem: &impl PhysRead, rsdp: u64, wanted: [u8; 4]) -> Result<u64, AcpiError> {
    let revision = mem.read_u8(rsdp + 15);
    let (root, entry_size) = if revision >= 2 && mem.read_u64(rsdp + 24) != 0 {
        (mem.read_u64(rsdp + 24), 8)
    } else {
        (u64::from(mem.read_u32(rsdp + 16)), 4)
    };
    let length = u64::from(mem.read_u32(root + 4));
    if bytes_sum(mem, root, length) != 0 {
        return Err(AcpiError::BadChecksum("root table"));
    }
    (root + 36..root + length)
        .step_by(entry_size)
        .map(|entry| match entry_size {
            8 => mem.read_u64(entry),
            _ => u64::from(mem.read_u32(entry)),
        })
        .find(|&table| signature(mem, table) == wanted)
        .ok_or(AcpiError::NoMadt)
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::vec::Vec;

    struct Memory(Vec<u8>);

    impl PhysRead for Memory {
        fn read_u8(&self, addr: u64) -> u8 {
            self.0[addr as usize]
        }
    }

    fn fix_checksum(bytes: &mut [u8], at: usize) {
        bytes[at] = 0;
        let sum = bytes.iter().fold(0u8, |s, b| s.wrapping_add(*b));
        bytes[at] = 0u8.wrapping_sub(sum);
    }

    fn table(signature: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut bytes = Vec::from(*signature);
        bytes.extend_from_slice(&((36 + body.len()) as u32).to_le_bytes());
        bytes.resize(36, 0);
        bytes.extend_from_slice(body);
        fix_checksum(&mut bytes, 9);
        bytes
    }

    /// A memory with an RSDP (revision 0) at 0xe0010, an RSDT at 0x1000 listing a FACP
    /// and a MADT at 0x2000 with `entries`.
    fn memory(entries: &[u8]) -> Memory {
        let mut mem = std::vec![0u8; 0x10_0000];
        let mut rsdp = Vec::from(*b"RSD PTR ");
        rsdp.push(0);
        rsdp.extend_from_slice(b"BOCHS ");
        rsdp.push(0);
        rsdp.extend_from_slice(&0x1000u32.to_le_bytes());
        fix_checksum(&mut rsdp, 8);
        mem[0xe0010..0xe0010 + 20].copy_from_slice(&rsdp);
        let mut rsdt_body = Vec::new();
        rsdt_body.extend_from_slice(&0x3000u32.to_le_bytes());
        rsdt_body.extend_from_slice(&0x2000u32.to_le_bytes());
        let rsdt = table(b"RSDT", &rsdt_body);
        mem[0x1000..0x1000 + rsdt.len()].copy_from_slice(&rsdt);
        let facp = table(b"FACP", &[]);
        mem[0x3000..0x3000 + facp.len()].copy_from_slice(&facp);
        let mut madt_body = Vec::from(0xfee0_0000u32.to_le_bytes());
        madt_body.extend_from_slice(&1u32.to_le_bytes());
        madt_body.extend_from_slice(entries);
        let madt = table(b"APIC", &madt_body);
        mem[0x2000..0x2000 + madt.len()].copy_from_slice(&madt);
        Memory(mem)
    }

    fn local_apic(id: u8, flags: u32) -> Vec<u8> {
        let mut entry = std::vec![0, 8, id, id];
        entry.extend_from_slice(&flags.to_le_bytes());
        entry
    }

    #[test]
    fn the_enabled_cpus_of_the_madt_are_listed_in_order() {
        let mut entries = local_apic(0, 1);
        entries.extend(local_apic(1, 1));
        entries.extend([1, 12, 0, 0, 0, 0, 0xc0, 0xfe, 0, 0, 0, 0]); // an IOAPIC
        entries.extend(local_apic(2, 0)); // disabled
        entries.extend(local_apic(3, 2)); // online capable
        let mut x2apic = std::vec![9, 16, 0, 0];
        x2apic.extend_from_slice(&300u32.to_le_bytes());
        x2apic.extend_from_slice(&1u32.to_le_bytes());
        x2apic.extend_from_slice(&7u32.to_le_bytes());
        entries.extend(x2apic);
        let mem = memory(&entries);
        let rsdp = find_rsdp(&mem, BIOS_AREA).unwrap();
        assert_eq!(rsdp, 0xe0010);
        let mut ids = [0; 8];
        assert_eq!(cpu_apic_ids(&mem, rsdp, &mut ids), Ok(4));
        assert_eq!(ids[..4], [0, 1, 3, 300]);
        // More CPUs than room: all counted, the first stored.
        let mut two = [0; 2];
        assert_eq!(cpu_apic_ids(&mem, rsdp, &mut two), Ok(4));
        assert_eq!(two, [0, 1]);
    }

    #[test]
    fn missing_or_broken_tables_are_errors() {
        let mut mem = memory(&local_apic(0, 1));
        assert_eq!(find_rsdp(&mem, 0xe0020..0xe1000), Err(AcpiError::NoRsdp));
        mem.0[0x2000 + 40] ^= 1; // the MADT's flags, without fixing its checksum
        let mut ids = [0; 4];
        assert_eq!(
            cpu_apic_ids(&mem, 0xe0010, &mut ids),
            Err(AcpiError::BadChecksum("MADT"))
        );
        mem.0[0x2000] = b'X'; // no table says "APIC" any more
        assert_eq!(
            cpu_apic_ids(&mem, 0xe0010, &mut ids),
            Err(AcpiError::NoMadt)
        );
    }
}
