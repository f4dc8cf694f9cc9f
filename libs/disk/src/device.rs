//! Finding the virtio-blk device and driving it (only in the kernel).
//!
//! Discovery is `unikernel_virtio::find`, shared with the network (the command line's
//! virtio-mmio windows, PCI bus 0, microvm's windows by probing).
//!
//! Reads and writes are interrupt driven where the device's line could be routed: the
//! request is queued, and the caller blocks (its thread, under a scheduler) or halts the
//! CPU until the device's interrupt says it completed. Flushes, and everything where the
//! line could not be routed, poll the queue.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use virtio_drivers::device::blk::{BlkReq, BlkResp, RespStatus};

use virtio_drivers::device::blk::VirtIOBlk;
use virtio_drivers::transport::{DeviceType, SomeTransport};

use crate::block::{DeviceError, SECTOR};
use crate::{BlockDev, InitError};
use unikernel_virtio::{KernelHal, Location};

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
    let found = unikernel_virtio::find(cmdline, DeviceType::Block, VIRTIO_BLK)
        .ok_or(InitError::NoDevice)?;
    let line = match found.location {
        Location::Mmio { irq, .. } => Some(Line {
            number: irq,
            level: false,
        }),
        Location::Pci { irq, .. } => irq.map(|irq| Line {
            number: u32::from(irq),
            level: true,
        }),
    };
    if let Some(isr) = found.isr {
        ISR.store(isr, Ordering::Relaxed);
    }
    let transport = found.transport;
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

/// The transitional (0x1001) and modern (0x1042) virtio-blk device ids.
const VIRTIO_BLK: [u16; 2] = [0x1001, 0x1042];

/// The PCI device's ISR status register (0: none, or virtio-mmio). Reading it acknowledges
/// the interrupt and lowers the INTx line.
static ISR: AtomicU64 = AtomicU64::new(0);

fn ack_isr() {
    unikernel_virtio::ack_isr(ISR.load(Ordering::Relaxed));
}
