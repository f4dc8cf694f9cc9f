//! The ACPI tables that tell a guest its CPUs: an RSDP in the BIOS area (where a kernel
//! scans for it, 0xe0000-0xfffff), an XSDT listing one MADT, and the MADT with a local
//! APIC per vCPU and KVM's I/O APIC. Built with rust-vmm's `acpi_tables` (Cloud
//! Hypervisor's), which keeps the lengths and checksums right.
//!
//! Written only for VMs with KVM's interrupt controllers: without them there is no local
//! APIC to describe. No FADT: our kernels need none (they read the MADT only), and a
//! FADT would promise power-management registers the monitor does not have.

use acpi_tables::Aml;
use acpi_tables::madt::{
    EnabledStatus, IoApic, LocalInterruptController, MADT, ProcessorLocalApic,
};
use acpi_tables::rsdp::Rsdp;
use acpi_tables::xsdt::XSDT;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::error::{Error, Result};

/// Where the RSDP goes: the first 16-byte boundary of the BIOS area.
pub const RSDP: u64 = 0xe_0000;
/// Where the XSDT and the MADT follow it (inside the E820 hole, which the guest leaves
/// alone).
const XSDT: u64 = RSDP + 0x40;
const MADT: u64 = RSDP + 0x100;
/// The last byte the tables may use: the end of the BIOS area.
const END: u64 = 0x10_0000;

const OEM_ID: [u8; 6] = *b"UNIKVM";
const OEM_TABLE_ID: [u8; 8] = *b"UKMONITR";
/// KVM's local APIC and I/O APIC, at their PC addresses.
const LOCAL_APIC: u32 = 0xfee0_0000;
const IO_APIC: u32 = 0xfec0_0000;
/// The I/O APIC's ID: KVM's in-kernel I/O APIC reports 0 in its ID register.
const IO_APIC_ID: u8 = 0;

/// The tables for `cpus` CPUs with local APIC IDs 0..cpus (KVM gives vCPU `n` APIC ID
/// `n`), each at its address: `(address, bytes)`.
pub fn tables(cpus: u8) -> Vec<(u64, Vec<u8>)> {
    let mut madt = MADT::new(
        OEM_ID,
        OEM_TABLE_ID,
        1,
        LocalInterruptController::Address(LOCAL_APIC),
    );
    for cpu in 0..cpus {
        madt.add_structure(ProcessorLocalApic::new(cpu, cpu, EnabledStatus::Enabled));
    }
    madt.add_structure(IoApic::new(IO_APIC_ID, IO_APIC, 0));
    let mut xsdt = XSDT::new(OEM_ID, OEM_TABLE_ID, 1);
    xsdt.add_entry(MADT);
    let bytes = |table: &dyn Aml| {
        let mut out = Vec::new();
        table.to_aml_bytes(&mut out);
        out
    };
    vec![
        (RSDP, bytes(&Rsdp::new(OEM_ID, XSDT))),
        (XSDT, bytes(&xsdt)),
        (MADT, bytes(&madt)),
    ]
}

/// Writes the tables for `cpus` CPUs into guest memory; returns the RSDP's address (the
/// PVH start info's `rsdp_paddr`).
pub fn write(mem: &GuestMemoryMmap, cpus: u8) -> Result<u64> {
    for (address, bytes) in tables(cpus) {
        // 64 CPUs make a MADT of 44 + 64 * 8 + 12 bytes: far below the end of the area.
        debug_assert!(address + bytes.len() as u64 <= END);
        mem.write_slice(&bytes, GuestAddress(address))
            .map_err(|err| Error::GuestMemory {
                what: "the ACPI tables",
                detail: err.to_string(),
            })?;
    }
    Ok(RSDP)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(bytes: &[u8]) -> u8 {
        bytes.iter().fold(0u8, |sum, &b| sum.wrapping_add(b))
    }

    fn u32_at(bytes: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
    }

    #[test]
    fn the_tables_chain_from_the_rsdp_to_a_madt_with_one_local_apic_per_cpu() {
        let tables = tables(4);
        let (rsdp_at, rsdp) = &tables[0];
        assert_eq!(*rsdp_at, RSDP);
        assert_eq!(rsdp_at % 16, 0, "the guest scans 16-byte boundaries");
        assert_eq!(&rsdp[..8], b"RSD PTR ");
        assert_eq!(sum(&rsdp[..20]), 0, "the ACPI 1.0 checksum");
        assert_eq!(sum(rsdp), 0, "the extended checksum");
        assert_eq!(rsdp[15], 2, "revision 2: the XSDT is used");
        assert_eq!(u64::from_le_bytes(rsdp[24..32].try_into().unwrap()), XSDT);

        let (xsdt_at, xsdt) = &tables[1];
        assert_eq!((*xsdt_at, &xsdt[..4]), (XSDT, &b"XSDT"[..]));
        assert_eq!(u32_at(xsdt, 4) as usize, xsdt.len());
        assert_eq!(sum(xsdt), 0);
        assert_eq!(u64::from_le_bytes(xsdt[36..44].try_into().unwrap()), MADT);
        assert!(XSDT + xsdt.len() as u64 <= MADT);

        let (madt_at, madt) = &tables[2];
        assert_eq!((*madt_at, &madt[..4]), (MADT, &b"APIC"[..]));
        assert_eq!(u32_at(madt, 4) as usize, madt.len());
        assert_eq!(sum(madt), 0);
        assert_eq!(u32_at(madt, 36), LOCAL_APIC);
        // Entries from offset 44: four local APICs (type 0: uid, APIC ID, enabled), then
        // the I/O APIC (type 1).
        let mut entries = Vec::new();
        let mut at = 44;
        while at < madt.len() {
            entries.push(madt[at..at + usize::from(madt[at + 1])].to_vec());
            at += usize::from(madt[at + 1]);
        }
        assert_eq!(entries.len(), 5);
        for (cpu, entry) in entries[..4].iter().enumerate() {
            assert_eq!(entry[..4], [0, 8, cpu as u8, cpu as u8]);
            assert_eq!(u32_at(entry, 4), 1, "enabled");
        }
        assert_eq!(entries[4][..3], [1, 12, IO_APIC_ID]);
        assert_eq!(u32_at(&entries[4], 4), IO_APIC);
    }

    #[test]
    fn sixty_four_cpus_fit_in_the_bios_area() {
        let tables = tables(64);
        let (at, madt) = &tables[2];
        assert_eq!(madt.len(), 44 + 64 * 8 + 12);
        assert!(at + madt.len() as u64 <= END);
        let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 2 << 20)]).unwrap();
        assert_eq!(write(&mem, 64).unwrap(), RSDP);
        let mut signature = [0u8; 8];
        mem.read_slice(&mut signature, GuestAddress(RSDP)).unwrap();
        assert_eq!(&signature, b"RSD PTR ");
    }
}
