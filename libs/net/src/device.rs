//! Finding the virtio-net device (only in the kernel): `unikernel_virtio::find`, shared
//! with the disk.

use core::sync::atomic::{AtomicU64, Ordering};

use virtio_drivers::transport::{DeviceType, SomeTransport};

pub(crate) use unikernel_virtio::Location;

/// The transitional (0x1000) and modern (0x1041) virtio-net device ids.
const VIRTIO_NET: [u16; 2] = [0x1000, 0x1041];

/// The address of the PCI device's ISR status register (0 on virtio-mmio, or before it is
/// found). Reading it acknowledges the interrupt and lowers the device's INTx line.
static ISR: AtomicU64 = AtomicU64::new(0);

/// The first virtio network device: on the command line's virtio-mmio windows, else on
/// PCI bus 0, else on microvm's windows.
pub(crate) fn find(cmdline: &str) -> Option<(SomeTransport<'static>, Location)> {
    let found = unikernel_virtio::find(cmdline, DeviceType::Network, VIRTIO_NET)?;
    if let Some(isr) = found.isr {
        ISR.store(isr, Ordering::Relaxed);
    }
    Some((found.transport, found.location))
}

/// Acknowledges the PCI device's interrupt from its handler (nothing on virtio-mmio).
pub(crate) fn ack_isr() {
    unikernel_virtio::ack_isr(ISR.load(Ordering::Relaxed));
}
