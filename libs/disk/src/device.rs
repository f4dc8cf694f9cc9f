//! Finding the virtio-blk device and driving it (only in the kernel).
//!
//! Discovery follows `libs/net/src/device.rs` (the command line's virtio-mmio windows, PCI
//! bus 0, microvm's windows by probing), copied in its minimal form rather than shared: a
//! shared crate would be linked into images that start either subsystem, and the
//! image-contents test holds each image to the crates it declares. Requests poll the
//! queue, so no interrupt is routed.

use core::ptr::NonNull;

use virtio_drivers::device::blk::VirtIOBlk;
use virtio_drivers::transport::mmio::{MmioTransport, VirtIOHeader};
use virtio_drivers::transport::pci::PciTransport;
use virtio_drivers::transport::pci::bus::{Command, ConfigurationAccess, DeviceFunction, PciRoot};
use virtio_drivers::transport::{DeviceType, SomeTransport, Transport};

use crate::block::{DeviceError, SECTOR};
use crate::hal::KernelHal;
use crate::{BlockDev, InitError};

/// The VMM's virtio-blk device.
pub struct VirtioBlk {
    device: VirtIOBlk<KernelHal, SomeTransport<'static>>,
    capacity_bytes: usize,
}

impl core::fmt::Debug for VirtioBlk {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("VirtioBlk")
            .field("capacity_bytes", &self.capacity_bytes)
            .finish()
    }
}

impl VirtioBlk {
    pub fn capacity_bytes(&self) -> usize {
        self.capacity_bytes
    }

    pub fn readonly(&self) -> bool {
        self.device.readonly()
    }

    pub fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        let sector = usize::try_from(sector).map_err(|_| DeviceError("sector out of range"))?;
        self.device
            .read_blocks(sector, buf)
            .map_err(|_| DeviceError("the device failed a read"))
    }

    pub fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), DeviceError> {
        let sector = usize::try_from(sector).map_err(|_| DeviceError("sector out of range"))?;
        self.device
            .write_blocks(sector, buf)
            .map_err(|_| DeviceError("the device failed a write"))
    }

    pub fn flush(&mut self) -> Result<(), DeviceError> {
        self.device
            .flush()
            .map_err(|_| DeviceError("the device failed a flush"))
    }
}

/// Finds the first virtio-blk device and starts it.
pub fn open(cmdline: &str) -> Result<BlockDev, InitError> {
    let transport = find_mmio(mmio_devices(cmdline))
        .or_else(find_pci)
        .or_else(|| find_mmio(probe_microvm()))
        .ok_or(InitError::NoDevice)?;
    let device = VirtIOBlk::<KernelHal, _>::new(transport)
        .map_err(|_| InitError::Device("it refused the driver's features or queue"))?;
    let capacity_bytes = usize::try_from(device.capacity())
        .ok()
        .and_then(|sectors| sectors.checked_mul(SECTOR))
        .ok_or(InitError::Device(
            "its capacity does not fit in memory addresses",
        ))?;
    log::info!(
        "disk: virtio-blk, {} MiB{}",
        capacity_bytes >> 20,
        if device.readonly() { ", read-only" } else { "" }
    );
    Ok(BlockDev::Virtio(VirtioBlk {
        device,
        capacity_bytes,
    }))
}

/// One virtio-mmio window: `virtio_mmio.device=<size>@<base>:<irq>` on the command line.
struct MmioWindow {
    base: u64,
    size: u64,
}

fn mmio_devices(cmdline: &str) -> impl Iterator<Item = MmioWindow> + '_ {
    cmdline
        .split_ascii_whitespace()
        .filter_map(|word| word.strip_prefix("virtio_mmio.device="))
        .filter_map(|text| {
            let (size, rest) = text.split_once('@')?;
            let base = number(rest.split(':').next()?)?;
            let size = match size.as_bytes().last()? {
                b'K' | b'k' => number(&size[..size.len() - 1])?.checked_mul(1 << 10)?,
                b'M' | b'm' => number(&size[..size.len() - 1])?.checked_mul(1 << 20)?,
                _ => number(size)?,
            };
            (size > 0).then_some(MmioWindow { base, size })
        })
}

fn number(text: &str) -> Option<u64> {
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

/// microvm's virtio-mmio windows (see `libs/net/src/discover.rs`).
const MICROVM_MMIO_BASE: u64 = 0xfeb0_0000;
const MICROVM_MMIO_SIZE: u64 = 512;
const MICROVM_TRANSPORTS: u64 = 24;
/// `"virt"`, the first register of every virtio-mmio window.
const MMIO_MAGIC: u32 = 0x7472_6976;

fn probe_microvm() -> impl Iterator<Item = MmioWindow> {
    let mapped =
        unikernel_arch::device::map(MICROVM_MMIO_BASE, MICROVM_TRANSPORTS * MICROVM_MMIO_SIZE)
            .is_ok();
    (0..MICROVM_TRANSPORTS)
        .map(|index| MICROVM_MMIO_BASE + index * MICROVM_MMIO_SIZE)
        .filter(move |&base| {
            // SAFETY: the whole microvm window range was just mapped uncached; a read of the
            // first register of a virtio-mmio window has no side effect, and where no device
            // decodes the address the VMM returns all ones or zeros.
            mapped && unsafe { core::ptr::read_volatile(base as *const u32) } == MMIO_MAGIC
        })
        .map(|base| MmioWindow {
            base,
            size: MICROVM_MMIO_SIZE,
        })
}

fn find_mmio(windows: impl Iterator<Item = MmioWindow>) -> Option<SomeTransport<'static>> {
    for window in windows {
        if unikernel_arch::device::map(window.base, window.size).is_err() {
            continue;
        }
        let header = NonNull::new(window.base as *mut VirtIOHeader)?;
        // SAFETY: the VMM announced (or answered with the magic at) a virtio-mmio register
        // window of `window.size` bytes at `window.base`, just mapped uncached; a transport
        // that is not a block device is dropped without touching its state.
        let transport = match unsafe { MmioTransport::new(header, window.size as usize) } {
            Ok(transport) => transport,
            Err(_) => continue,
        };
        if transport.device_type() == DeviceType::Block {
            return Some(transport.into());
        }
    }
    None
}

/// PCI configuration space through the legacy ports 0xcf8/0xcfc.
struct PortCam;

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
        // SAFETY: 0xcf8/0xcfc are the PCI configuration ports; interrupts are off around
        // the address/data pair, so no other access (the network's) interleaves.
        unikernel_arch::interrupts::without(|| unsafe {
            Port::<u32>::new(0xcf8).write(config_address(function, offset));
            Port::<u32>::new(0xcfc).read()
        })
    }

    fn write_word(&mut self, function: DeviceFunction, offset: u8, data: u32) {
        use x86_64::instructions::port::Port;
        // SAFETY: as in `read_word`.
        unikernel_arch::interrupts::without(|| unsafe {
            Port::<u32>::new(0xcf8).write(config_address(function, offset));
            Port::<u32>::new(0xcfc).write(data);
        })
    }

    unsafe fn unsafe_clone(&self) -> Self {
        PortCam
    }
}

/// The transitional (0x1001) and modern (0x1042) virtio-blk device ids.
const VIRTIO_BLK: [u16; 2] = [0x1001, 0x1042];

fn find_pci() -> Option<SomeTransport<'static>> {
    let mut root = PciRoot::new(PortCam);
    let (function, _) = root
        .enumerate_bus(0)
        .find(|(_, info)| info.vendor_id == 0x1af4 && VIRTIO_BLK.contains(&info.device_id))?;
    let (_, command) = root.get_status_command(function);
    root.set_command(
        function,
        command | Command::IO_SPACE | Command::MEMORY_SPACE | Command::BUS_MASTER,
    );
    PciTransport::new::<KernelHal, _>(&mut root, function)
        .ok()
        .map(Into::into)
}
