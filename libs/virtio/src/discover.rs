//! Where virtio devices are: the virtio-mmio transports a VMM announces on the kernel
//! command line, or functions on the PCI bus.
//!
//! QEMU's microvm (and Firecracker) append one `virtio_mmio.device=<size>@<base>:<irq>`
//! parameter per device to the command line, Linux's syntax: the size may carry a `K`, `M`
//! or `G` suffix, numbers may be decimal or `0x` hexadecimal, and an optional `:<id>`
//! follows the interrupt. pc and q35 put virtio devices on PCI instead.

/// One virtio-mmio transport announced on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmioDevice {
    /// The physical address of its registers.
    pub base: u64,
    /// The size of its register window.
    pub size: u64,
    /// Its interrupt line (a GSI: an I/O APIC pin or, under the legacy PIC, an IRQ).
    pub irq: u32,
}

const PARAM: &str = "virtio_mmio.device=";

/// Where QEMU microvm puts its virtio-mmio transports (hw/i386/microvm.c, QEMU 7.2):
/// 512-byte windows from 0xfeb00000. Without ACPI there are 8 on IRQs 5 to 12, announced
/// on the command line. With ACPI they are described in the DSDT instead, so the kernel
/// probes them: 24 on GSIs 24 to 47 (the second I/O APIC) when QEMU made one, else 8 on
/// GSIs 16 to 23.
pub const MICROVM_MMIO_BASE: u64 = 0xfeb0_0000;
/// The size of one microvm transport window.
pub const MICROVM_MMIO_SIZE: u64 = 512;
/// The most transports microvm has.
pub const MICROVM_TRANSPORTS: usize = 24;

/// The microvm transport at `index` found by probing (ACPI on), given whether there are
/// 24 (else 8).
pub fn microvm_transport(index: usize, all_24: bool) -> MmioDevice {
    MmioDevice {
        base: MICROVM_MMIO_BASE + index as u64 * MICROVM_MMIO_SIZE,
        size: MICROVM_MMIO_SIZE,
        irq: if all_24 { 24 } else { 16 } + index as u32,
    }
}

/// The virtio-mmio devices on a kernel command line, in order; malformed entries are
/// skipped (and a VMM never writes them).
pub fn mmio_devices(cmdline: &str) -> impl Iterator<Item = MmioDevice> + '_ {
    cmdline
        .split_ascii_whitespace()
        .filter_map(|word| word.strip_prefix(PARAM))
        .filter_map(parse_mmio_device)
}

/// Parses `<size>@<base>:<irq>[:<id>]`.
pub fn parse_mmio_device(text: &str) -> Option<MmioDevice> {
    let (size, rest) = text.split_once('@')?;
    let mut fields = rest.split(':');
    let base = number(fields.next()?)?;
    let irq = u32::try_from(number(fields.next()?)?).ok()?;
    let size = match size.as_bytes().last()? {
        b'K' | b'k' => number(&size[..size.len() - 1])?.checked_mul(1 << 10)?,
        b'M' | b'm' => number(&size[..size.len() - 1])?.checked_mul(1 << 20)?,
        b'G' | b'g' => number(&size[..size.len() - 1])?.checked_mul(1 << 30)?,
        _ => number(size)?,
    };
    (size > 0).then_some(MmioDevice { base, size, irq })
}

fn number(text: &str) -> Option<u64> {
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::vec::Vec;

    #[test]
    fn reads_what_qemu_microvm_appends() {
        let line = "unikernel.log=info -- --port 80 virtio_mmio.device=512@0xfeb00e00:12 \
                    virtio_mmio.device=512@0xfeb00c00:11";
        let devices: Vec<_> = mmio_devices(line).collect();
        assert_eq!(
            devices,
            [
                MmioDevice {
                    base: 0xfeb0_0e00,
                    size: 512,
                    irq: 12
                },
                MmioDevice {
                    base: 0xfeb0_0c00,
                    size: 512,
                    irq: 11
                },
            ]
        );
    }

    #[test]
    fn reads_linux_syntax_with_suffixes_and_ids() {
        assert_eq!(
            parse_mmio_device("4K@0x1001e000:42:3"),
            Some(MmioDevice {
                base: 0x1001_e000,
                size: 4096,
                irq: 42
            })
        );
        assert_eq!(
            parse_mmio_device("1M@4096:5").map(|d| d.size),
            Some(1 << 20)
        );
    }

    #[test]
    fn microvm_transports_follow_the_io_apics() {
        // Without ACPI QEMU names the last of 8 on the command line: 512@0xfeb00e00:12;
        // with ACPI the same window is on GSI 23 (one I/O APIC) or the last of 24 on GSI 47.
        assert_eq!(microvm_transport(7, false).base, 0xfeb0_0e00);
        assert_eq!(microvm_transport(7, false).irq, 23);
        assert_eq!(microvm_transport(23, true).base, 0xfeb0_2e00);
        assert_eq!(microvm_transport(23, true).irq, 47);
    }

    #[test]
    fn skips_malformed_entries() {
        for bad in [
            "",
            "512",
            "512@",
            "512@0xzz:1",
            "0@0x1000:1",
            "512@0x1000",
            "x@0x1000:1",
        ] {
            assert_eq!(parse_mmio_device(bad), None, "{bad:?}");
        }
        assert_eq!(mmio_devices("virtio_mmio.device=junk -- a").count(), 0);
    }
}
