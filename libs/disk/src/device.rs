//! Finding the virtio-blk device and driving it (only in the kernel).
//!
//! Discovery follows `libs/net/src/device.rs` (the command line's virtio-mmio windows, PCI
//! bus 0, microvm's windows by probing), copied in its minimal form rather than shared: a
//! shared crate would be linked into images that start either subsystem, and the
//! image-contents test holds each image to the crates it declares.
//!
//! Reads and writes are interrupt driven where the device's line could be routed: the
//! request is queued, and the caller blocks (its thread, under a scheduler) or halts the
//! CPU until the device's interrupt says it completed. Flushes, and everything where the
//! line could not be routed, poll the queue.

use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use virtio_drivers::device::blk::{BlkReq, BlkResp, RespStatus};

use virtio_drivers::device::blk::VirtIOBlk;
use virtio_drivers::transport::mmio::{MmioTransport, VirtIOHeader};
use virtio_drivers::transport::pci::PciTransport;
use virtio_drivers::transport::pci::bus::{Command, ConfigurationAccess, DeviceFunction, PciRoot};
use virtio_drivers::transport::{DeviceType, SomeTransport, Transport};

use crate::block::{DeviceError, SECTOR};
use crate::{BlockDev, InitError};
use unikernel_virtio::KernelHal;

/// The VMM's virtio-blk device.
pub struct VirtioBlk {
    device: VirtIOBlk<KernelHal, SomeTransport<'static>>,
    capacity_bytes: usize,
    interrupt_driven: bool,
}

/// Set by the interrupt handler, cleared by the waiting code.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);
/// Interrupts taken, for the log and the tests.
static INTERRUPTS: AtomicU64 = AtomicU64::new(0);

/// The device's interrupt handler: acknowledges a PCI device's level-triggered line, then
/// wakes whoever waits.
fn on_interrupt() {
    ack_isr();
    INTERRUPTED.store(true, Ordering::Release);
    INTERRUPTS.fetch_add(1, Ordering::Relaxed);
    unikernel_arch::wait::wake();
}

/// How many interrupts the device raised.
pub fn interrupts() -> u64 {
    INTERRUPTS.load(Ordering::Relaxed)
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

    pub fn interrupt_driven(&self) -> bool {
        self.interrupt_driven
    }

    pub fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        const FAILED: DeviceError = DeviceError("the device failed a read");
        let sector = usize::try_from(sector).map_err(|_| DeviceError("sector out of range"))?;
        if !self.interrupt_driven {
            return self.device.read_blocks(sector, buf).map_err(|_| FAILED);
        }
        let (mut request, mut response) = (BlkReq::default(), BlkResp::default());
        // SAFETY: `request`, `buf` and `response` stay borrowed, untouched, until the request
        // completes below (`wait_for` returns only then), and are passed again to complete it.
        let token = unsafe {
            self.device
                .read_blocks_nb(sector, &mut request, buf, &mut response)
                .map_err(|_| FAILED)?
        };
        self.wait_for(token);
        // SAFETY: the same buffers as `read_blocks_nb` took, for the token it returned.
        unsafe {
            self.device
                .complete_read_blocks(token, &request, buf, &mut response)
                .map_err(|_| FAILED)?;
        }
        (response.status() == RespStatus::OK)
            .then_some(())
            .ok_or(FAILED)
    }

    pub fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), DeviceError> {
        const FAILED: DeviceError = DeviceError("the device failed a write");
        let sector = usize::try_from(sector).map_err(|_| DeviceError("sector out of range"))?;
        if !self.interrupt_driven {
            return self.device.write_blocks(sector, buf).map_err(|_| FAILED);
        }
        let (mut request, mut response) = (BlkReq::default(), BlkResp::default());
        // SAFETY: as in `read`: the buffers outlive the request, which completes before
        // this function returns.
        let token = unsafe {
            self.device
                .write_blocks_nb(sector, &mut request, buf, &mut response)
                .map_err(|_| FAILED)?
        };
        self.wait_for(token);
        // SAFETY: the same buffers as `write_blocks_nb` took, for the token it returned.
        unsafe {
            self.device
                .complete_write_blocks(token, &request, buf, &mut response)
                .map_err(|_| FAILED)?;
        }
        (response.status() == RespStatus::OK)
            .then_some(())
            .ok_or(FAILED)
    }

    /// Waits until the request `token` is in the used ring: blocks the thread (under a
    /// scheduler) or halts the CPU until the device interrupts. Interrupts stay disabled
    /// from the look at the ring to the block (or `sti; hlt`), so the interrupt that ends
    /// the wait cannot slip in between.
    fn wait_for(&mut self, token: u16) {
        let were_enabled = unikernel_arch::interrupts::are_enabled();
        loop {
            unikernel_arch::interrupts::disable();
            // virtio-mmio's status register: acknowledged here, as the handler does not.
            self.device.ack_interrupt();
            if self.device.peek_used() == Some(token) {
                break;
            }
            if !INTERRUPTED.swap(false, Ordering::Acquire) && !unikernel_arch::wait::block(None) {
                unikernel_arch::interrupts::enable_and_wait();
            }
        }
        INTERRUPTED.store(false, Ordering::Relaxed);
        if were_enabled {
            unikernel_arch::interrupts::enable();
        }
    }

    pub fn flush(&mut self) -> Result<(), DeviceError> {
        self.device
            .flush()
            .map_err(|_| DeviceError("the device failed a flush"))
    }
}

/// Where the device interrupts: a GSI (virtio-mmio, edge) or an ISA IRQ (PCI INTx,
/// level-triggered; see `libs/net/src/device.rs` for why the ISA IRQ on both pc and q35).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Line {
    number: u32,
    level: bool,
}

/// Finds the first virtio-blk device and starts it; `route_irq(line, level, handler)`
/// routes its interrupt (false: it could not, and requests poll).
pub fn open(
    cmdline: &str,
    route_irq: impl FnOnce(u32, bool, fn()) -> bool,
) -> Result<BlockDev, InitError> {
    let (transport, line) = find_mmio(mmio_devices(cmdline))
        .or_else(find_pci)
        .or_else(|| find_mmio(probe_microvm()))
        .ok_or(InitError::NoDevice)?;
    let mut device = VirtIOBlk::<KernelHal, _>::new(transport)
        .map_err(|_| InitError::Device("it refused the driver's features or queue"))?;
    let interrupt_driven =
        line.is_some_and(|line| route_irq(line.number, line.level, on_interrupt));
    if interrupt_driven {
        device.enable_interrupts();
    } else {
        device.disable_interrupts();
    }
    let capacity_bytes = usize::try_from(device.capacity())
        .ok()
        .and_then(|sectors| sectors.checked_mul(SECTOR))
        .ok_or(InitError::Device(
            "its capacity does not fit in memory addresses",
        ))?;
    log::info!(
        "disk: virtio-blk, {} MiB{}, {}",
        capacity_bytes >> 20,
        if device.readonly() { ", read-only" } else { "" },
        match line {
            Some(line) if interrupt_driven => alloc::format!(
                "interrupt driven ({} {})",
                if line.level { "IRQ" } else { "GSI" },
                line.number
            ),
            _ => alloc::string::String::from("polled"),
        }
    );
    Ok(BlockDev::Virtio(VirtioBlk {
        device,
        capacity_bytes,
        interrupt_driven,
    }))
}

/// One virtio-mmio window: `virtio_mmio.device=<size>@<base>:<irq>` on the command line.
struct MmioWindow {
    base: u64,
    size: u64,
    irq: u32,
}

fn mmio_devices(cmdline: &str) -> impl Iterator<Item = MmioWindow> + '_ {
    cmdline
        .split_ascii_whitespace()
        .filter_map(|word| word.strip_prefix("virtio_mmio.device="))
        .filter_map(|text| {
            let (size, rest) = text.split_once('@')?;
            let mut fields = rest.split(':');
            let base = number(fields.next()?)?;
            let irq = u32::try_from(number(fields.next()?)?).ok()?;
            let size = match size.as_bytes().last()? {
                b'K' | b'k' => number(&size[..size.len() - 1])?.checked_mul(1 << 10)?,
                b'M' | b'm' => number(&size[..size.len() - 1])?.checked_mul(1 << 20)?,
                _ => number(size)?,
            };
            (size > 0).then_some(MmioWindow { base, size, irq })
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
    let magic_at = move |index: u64| {
        let base = MICROVM_MMIO_BASE + index * MICROVM_MMIO_SIZE;
        // SAFETY: the whole microvm window range was just mapped uncached; a read of the
        // first register of a virtio-mmio window has no side effect, and where no device
        // decodes the address the VMM returns all ones or zeros.
        mapped && unsafe { core::ptr::read_volatile(base as *const u32) } == MMIO_MAGIC
    };
    // With ACPI, 24 windows on GSIs 24 to 47 when QEMU made a second I/O APIC, else 8 on
    // GSIs 16 to 23 (`libs/net/src/discover.rs`).
    let all_24 = magic_at(8);
    (0..if all_24 { MICROVM_TRANSPORTS } else { 8 })
        .filter(move |&index| magic_at(index))
        .map(move |index| MmioWindow {
            base: MICROVM_MMIO_BASE + index * MICROVM_MMIO_SIZE,
            size: MICROVM_MMIO_SIZE,
            irq: if all_24 { 24 } else { 16 } + index as u32,
        })
}

fn find_mmio(
    windows: impl Iterator<Item = MmioWindow>,
) -> Option<(SomeTransport<'static>, Option<Line>)> {
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
            let line = Line {
                number: window.irq,
                level: false,
            };
            return Some((transport.into(), Some(line)));
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

fn find_pci() -> Option<(SomeTransport<'static>, Option<Line>)> {
    let mut root = PciRoot::new(PortCam);
    let (function, _) = root
        .enumerate_bus(0)
        .find(|(_, info)| info.vendor_id == 0x1af4 && VIRTIO_BLK.contains(&info.device_id))?;
    let (_, command) = root.get_status_command(function);
    root.set_command(
        function,
        command | Command::IO_SPACE | Command::MEMORY_SPACE | Command::BUS_MASTER,
    );
    let interrupt = PortCam.read_word(function, 0x3c);
    let (number, pin) = (interrupt & 0xff, (interrupt >> 8) & 0xff);
    let isr = isr_address(function);
    let transport = PciTransport::new::<KernelHal, _>(&mut root, function).ok()?;
    let line = match isr {
        Some(isr) if pin != 0 && (1..16).contains(&number) => {
            ISR.store(isr, Ordering::Relaxed);
            Some(Line {
                number,
                level: true,
            })
        }
        _ => None,
    };
    Some((transport.into(), line))
}

/// The PCI device's ISR status register (0: none, or virtio-mmio). Reading it acknowledges
/// the interrupt and lowers the INTx line.
static ISR: AtomicU64 = AtomicU64::new(0);

/// The virtio ISR capability (`VIRTIO_PCI_CAP_ISR_CFG`) in a memory BAR, mapped uncached
/// (as `libs/net/src/device.rs` finds it).
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
                return None;
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

fn ack_isr() {
    let address = ISR.load(Ordering::Relaxed);
    if address != 0 {
        // SAFETY: `address` is the device's ISR status register, found in its virtio
        // capability and mapped uncached by `isr_address`; a one-byte read of it only
        // acknowledges the interrupt.
        unsafe { core::ptr::read_volatile(address as *const u8) };
    }
}
