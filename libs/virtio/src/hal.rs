//! The bridge between `virtio-drivers` and this kernel: DMA memory and device registers.
//!
//! Guest memory is identity mapped (`memory::allocate` maps what it hands out at its own
//! address, and so is the heap it carves), and QEMU's virtio devices see guest-physical
//! addresses without an IOMMU: a buffer's address IS its device address, so sharing a buffer
//! needs no copy and no bounce page.

use core::ptr::NonNull;

use virtio_drivers::{BufferDirection, Hal, PAGE_SIZE, PhysAddr};

/// The `virtio_drivers::Hal` of this kernel.
#[derive(Debug)]
pub struct KernelHal;

// SAFETY: `dma_alloc` returns zeroed, page-aligned memory that nothing else uses (fresh from
// `memory::allocate`, which never hands a range out twice), at an address that is both the
// CPU's and the device's; `mmio_phys_to_virt` maps the range uncached before returning its
// (identity) address; `share` returns the identity address of memory the caller keeps valid.
unsafe impl Hal for KernelHal {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        let Ok(memory) = unikernel_arch::memory::allocate(pages * PAGE_SIZE) else {
            // virtio-drivers reports a zero address as `Error::DmaError`.
            return (0, NonNull::dangling());
        };
        for byte in memory.iter_mut() {
            byte.write(0);
        }
        let address = memory.as_mut_ptr().cast::<u8>();
        (
            address as PhysAddr,
            NonNull::new(address).expect("allocations are not at 0"),
        )
    }

    unsafe fn dma_dealloc(_paddr: PhysAddr, _vaddr: NonNull<u8>, _pages: usize) -> i32 {
        // Queues live as long as the device, which lives as long as the kernel: nothing is
        // ever given back (memory::allocate cannot take it back either).
        0
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, size: usize) -> NonNull<u8> {
        if let Err(error) = unikernel_arch::device::map(paddr, size as u64) {
            panic!("virtio: cannot map device registers at {paddr:#x}: {error}");
        }
        NonNull::new(paddr as *mut u8).expect("devices are not at address 0")
    }

    unsafe fn share(buffer: NonNull<[u8]>, _direction: BufferDirection) -> PhysAddr {
        buffer.cast::<u8>().as_ptr() as PhysAddr
    }

    unsafe fn unshare(_paddr: PhysAddr, _buffer: NonNull<[u8]>, _direction: BufferDirection) {}
}
