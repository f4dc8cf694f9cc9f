//! Finding a virtio device and opening its transport (only in the kernel): the command
//! line's virtio-mmio windows, PCI bus 0 through the legacy configuration ports, or
//! microvm's windows by probing; and acknowledging a PCI device's interrupt.

use core::ptr::NonNull;

use virtio_drivers::transport::mmio::{MmioTransport, VirtIOHeader};
use virtio_drivers::transport::pci::PciTransport;
use virtio_drivers::transport::pci::bus::{Command, ConfigurationAccess, DeviceFunction, PciRoot};
use virtio_drivers::transport::{DeviceType, SomeTransport, Transport};

use crate::KernelHal;
use crate::discover;

/// Where the device was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Location {
    /// A virtio-mmio window, with its interrupt line (a GSI).
    Mmio { base: u64, irq: u32 },
    /// A PCI function, with the interrupt line the firmware routed it to.
    ///
    /// The line is the Interrupt Line register: the ISA IRQ (5, 9, 10 or 11) the firmware
    /// (SeaBIOS) routed the function's INTx pin to through the chipset's PIRQ links, and
    /// wrote there for PIC-mode systems. It is also right in APIC mode on QEMU: on `pc`
    /// (PIIX) the PIRQ links drive the I/O APIC input of that number, as QEMU's ACPI tables
    /// say (an interrupt source override, level-triggered, active high); on `q35` (ICH9)
    /// a PIRQ drives both its dedicated input (GSI 16-23, what ACPI's `_PRT` names) and,
    /// when routed as the firmware does, the ISA IRQ's input. Using the ISA IRQ on both
    /// avoids parsing ACPI's AML for `_PRT`. QEMU's ACPI tables describe these lines as
    /// level-triggered and active high (its devices assert them high), so they are routed
    /// so. Tested on both machines (runner/tests/net.rs).
    Pci {
        bus: u8,
        device: u8,
        function: u8,
        irq: Option<u8>,
    },
}

impl core::fmt::Display for Location {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Mmio { base, irq } => write!(f, "virtio-mmio at {base:#x}, GSI {irq}"),
            Self::Pci {
                bus,
                device,
                function,
                irq,
            } => {
                write!(f, "virtio-pci at {bus:02x}:{device:02x}.{function}")?;
                match irq {
                    Some(irq) => write!(f, ", INTx on IRQ {irq} (level)"),
                    None => write!(f, ", no usable INTx"),
                }
            }
        }
    }
}

/// A device found: its transport, where it is, and (PCI with a usable INTx line) the
/// address of its ISR status register, which its interrupt handler reads to acknowledge.
#[derive(Debug)]
pub struct Found {
    pub transport: SomeTransport<'static>,
    pub location: Location,
    pub isr: Option<u64>,
}

/// The first virtio device of type `kind`: on the command line's virtio-mmio windows, else
/// on PCI bus 0 (a function of `pci_ids`, its transitional and modern device ids), else on
/// microvm's windows by probing.
pub fn find(cmdline: &str, kind: DeviceType, pci_ids: [u16; 2]) -> Option<Found> {
    find_mmio(discover::mmio_devices(cmdline), kind)
        .or_else(|| find_pci(pci_ids))
        .or_else(|| find_mmio(probe_microvm(), kind))
}

/// `"virt"`, the first register of every virtio-mmio window.
const MMIO_MAGIC: u32 = 0x7472_6976;

/// The microvm transports that answer with the virtio-mmio magic (see
/// `discover::MICROVM_MMIO_BASE`); on other machines nothing answers there.
fn probe_microvm() -> impl Iterator<Item = discover::MmioDevice> {
    let windows = discover::MICROVM_TRANSPORTS as u64 * discover::MICROVM_MMIO_SIZE;
    let mapped = unikernel_arch::device::map(discover::MICROVM_MMIO_BASE, windows).is_ok();
    let magic_at = move |index: usize| {
        let base = discover::MICROVM_MMIO_BASE + index as u64 * discover::MICROVM_MMIO_SIZE;
        // SAFETY: the whole microvm window range was just mapped uncached; a read of the
        // first register of a virtio-mmio window has no side effect, and where no device
        // decodes the address the VMM returns all ones or zeros.
        mapped && unsafe { core::ptr::read_volatile(base as *const u32) } == MMIO_MAGIC
    };
    let all_24 = magic_at(8);
    (0..if all_24 { 24 } else { 8 })
        .filter(move |&index| magic_at(index))
        .map(move |index| discover::microvm_transport(index, all_24))
}

fn find_mmio(
    devices: impl Iterator<Item = discover::MmioDevice>,
    kind: DeviceType,
) -> Option<Found> {
    for device in devices {
        if unikernel_arch::device::map(device.base, device.size).is_err() {
            log::warn!(
                "virtio: cannot map the virtio-mmio window at {:#x}",
                device.base
            );
            continue;
        }
        let header = NonNull::new(device.base as *mut VirtIOHeader)?;
        // SAFETY: the VMM announced a virtio-mmio register window of `device.size` bytes at
        // `device.base`; it was just mapped uncached, and no other part of the kernel
        // touches it (each window is opened once, here).
        let transport = match unsafe { MmioTransport::new(header, device.size as usize) } {
            Ok(transport) => transport,
            Err(_) => continue,
        };
        if transport.device_type() == kind {
            let location = Location::Mmio {
                base: device.base,
                irq: device.irq,
            };
            return Some(Found {
                transport: transport.into(),
                location,
                isr: None,
            });
        }
    }
    None
}

/// PCI configuration space through the legacy I/O ports 0xcf8/0xcfc (pc and q35 both
/// have them).
struct PortCam;

const CONFIG_ADDRESS: u16 = 0xcf8;
const CONFIG_DATA: u16 = 0xcfc;

fn config_address(function: DeviceFunction, offset: u8) -> u32 {
    0x8000_0000
        | u32::from(function.bus) << 16
        | u32::from(function.device) << 11
        | u32::from(function.function) << 8
        | u32::from(offset & 0xfc)
}

impl ConfigurationAccess for PortCam {
    fn read_word(&self, function: DeviceFunction, offset: u8) -> u32 {
        use x86_64::instructions::port::Port;
        // SAFETY: 0xcf8/0xcfc are the PCI configuration ports; the address/data pair is
        // used only by this driver, with interrupts disabled around the pair (the stack
        // lock or the boot path), so no other access interleaves.
        unikernel_arch::interrupts::without(|| unsafe {
            Port::<u32>::new(CONFIG_ADDRESS).write(config_address(function, offset));
            Port::<u32>::new(CONFIG_DATA).read()
        })
    }

    fn write_word(&mut self, function: DeviceFunction, offset: u8, data: u32) {
        use x86_64::instructions::port::Port;
        // SAFETY: as in `read_word`.
        unikernel_arch::interrupts::without(|| unsafe {
            Port::<u32>::new(CONFIG_ADDRESS).write(config_address(function, offset));
            Port::<u32>::new(CONFIG_DATA).write(data);
        })
    }

    unsafe fn unsafe_clone(&self) -> Self {
        PortCam
    }
}

const VIRTIO_VENDOR: u16 = 0x1af4;

fn find_pci(ids: [u16; 2]) -> Option<Found> {
    let mut root = PciRoot::new(PortCam);
    let found = root
        .enumerate_bus(0)
        .find(|(_, info)| info.vendor_id == VIRTIO_VENDOR && ids.contains(&info.device_id))?;
    let function = found.0;
    let (_, command) = root.get_status_command(function);
    root.set_command(
        function,
        command | Command::IO_SPACE | Command::MEMORY_SPACE | Command::BUS_MASTER,
    );
    let interrupt = PortCam.read_word(function, 0x3c);
    let line = (interrupt & 0xff) as u8;
    let pin = ((interrupt >> 8) & 0xff) as u8;
    let isr = isr_address(function);
    let usable = pin != 0 && line != 0xff && line != 0 && line < 16 && isr.is_some();
    match PciTransport::new::<KernelHal, _>(&mut root, function) {
        Ok(transport) => Some(Found {
            transport: transport.into(),
            location: Location::Pci {
                bus: function.bus,
                device: function.device,
                function: function.function,
                irq: usable.then_some(line),
            },
            isr: isr.filter(|_| usable),
        }),
        Err(error) => {
            log::warn!("virtio: the PCI function {ids:04x?} has no usable transport: {error}");
            None
        }
    }
}

/// The virtio ISR capability (`VIRTIO_PCI_CAP_ISR_CFG`), found in the function's vendor
/// capabilities, as an address in a memory BAR (mapped, uncached).
fn isr_address(function: DeviceFunction) -> Option<u64> {
    const STATUS_CAPABILITIES: u32 = 1 << 20;
    const VENDOR_CAPABILITY: u32 = 0x09;
    const ISR_CFG: u32 = 3;
    if PortCam.read_word(function, 0x04) & STATUS_CAPABILITIES == 0 {
        return None;
    }
    let mut at = (PortCam.read_word(function, 0x34) & 0xfc) as u8;
    for _ in 0..48 {
        if at == 0 {
            return None;
        }
        let head = PortCam.read_word(function, at);
        if head & 0xff == VENDOR_CAPABILITY && (head >> 24) & 0xff == ISR_CFG {
            let bar = (PortCam.read_word(function, at + 4) & 0xff) as u8;
            let offset = u64::from(PortCam.read_word(function, at + 8));
            if bar > 5 {
                return None;
            }
            let low = PortCam.read_word(function, 0x10 + 4 * bar);
            if low & 1 != 0 {
                return None; // an I/O BAR: not used by modern virtio for the ISR
            }
            let high = match (low >> 1) & 3 {
                2 if bar < 5 => PortCam.read_word(function, 0x10 + 4 * (bar + 1)),
                _ => 0,
            };
            let base = u64::from(high) << 32 | u64::from(low & !0xf);
            let address = base + offset;
            if base == 0 || unikernel_arch::device::map(address, 1).is_err() {
                return None;
            }
            return Some(address);
        }
        at = ((head >> 8) & 0xfc) as u8;
    }
    None
}

/// Acknowledges a PCI device's interrupt from its handler, which a level-triggered line
/// needs before the end of interrupt (else it is delivered again at once): `isr` is
/// [`Found::isr`], 0 for none (virtio-mmio, whose waiting code acknowledges).
pub fn ack_isr(isr: u64) {
    if isr != 0 {
        // SAFETY: `isr` is a device's ISR status register, found in its virtio capability
        // and mapped uncached by `isr_address`; a one-byte read of it has no effect but
        // acknowledging the interrupt (the waiting code's own read then finds 0).
        unsafe { core::ptr::read_volatile(isr as *const u8) };
    }
}
