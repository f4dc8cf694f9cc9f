//! The block device under the file system: the virtio-blk device in a guest, or an image in
//! memory (host tests, and a guest that wants a scratch disk).

use alloc::vec::Vec;
use core::task::{Context, Poll};
use hadris_io::{Error, ErrorKind};
use hadris_storage::{BlockIndex, BlockSize};

/// 512-byte sectors, virtio-blk's unit.
pub const SECTOR: usize = 512;

/// Why the device failed a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceError(pub &'static str);

impl core::fmt::Display for DeviceError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.0)
    }
}

impl core::error::Error for DeviceError {}

/// A block device the disk can mount.
pub enum BlockDev {
    /// An image in memory.
    Memory(Vec<u8>),
    /// The VMM's virtio-blk device.
    #[cfg(target_os = "none")]
    Virtio(crate::device::VirtioBlk),
}

impl core::fmt::Debug for BlockDev {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Memory(image) => write!(f, "Memory({} bytes)", image.len()),
            #[cfg(target_os = "none")]
            Self::Virtio(_) => f.write_str("Virtio"),
        }
    }
}

impl BlockDev {
    /// The image, for a device in memory.
    pub fn into_image(self) -> Option<Vec<u8>> {
        match self {
            Self::Memory(image) => Some(image),
            #[cfg(target_os = "none")]
            Self::Virtio(_) => None,
        }
    }

    fn range(
        &self,
        first: BlockIndex,
        len: usize,
    ) -> Result<core::ops::Range<usize>, Error<DeviceError>> {
        let start = usize::try_from(first.get())
            .ok()
            .and_then(|block| block.checked_mul(SECTOR));
        let end = start.and_then(|start| start.checked_add(len));
        match (start, end) {
            (Some(start), Some(end)) if len.is_multiple_of(SECTOR) && end <= self.len_bytes() => {
                Ok(start..end)
            }
            _ => Err(Error::new(
                ErrorKind::InvalidInput,
                "request outside the device",
            )),
        }
    }

    fn len_bytes(&self) -> usize {
        match self {
            Self::Memory(image) => image.len() / SECTOR * SECTOR,
            #[cfg(target_os = "none")]
            Self::Virtio(device) => device.capacity_bytes(),
        }
    }
}

impl hadris_io::ErrorType for BlockDev {
    type Error = DeviceError;
}

impl hadris_storage::async_::BlockDevice for BlockDev {
    fn block_size(&self) -> BlockSize {
        BlockSize::new(SECTOR as u32).expect("512 is a block size")
    }

    fn block_count(&self) -> u64 {
        (self.len_bytes() / SECTOR) as u64
    }

    fn writable(&self) -> bool {
        match self {
            Self::Memory(_) => true,
            #[cfg(target_os = "none")]
            Self::Virtio(device) => !device.readonly(),
        }
    }

    /// Requests complete before the call returns, so there is no state between polls.
    type State = ();

    fn poll_read_blocks(
        &mut self,
        _: &mut (),
        _: &mut Context<'_>,
        first: BlockIndex,
        buf: &mut [u8],
    ) -> Poll<Result<(), Error<DeviceError>>> {
        let range = match self.range(first, buf.len()) {
            Ok(range) => range,
            Err(error) => return Poll::Ready(Err(error)),
        };
        Poll::Ready(match self {
            Self::Memory(image) => {
                buf.copy_from_slice(&image[range]);
                Ok(())
            }
            #[cfg(target_os = "none")]
            Self::Virtio(device) => device
                .read(first.get(), buf)
                .map_err(|e| Error::device(e, "virtio-blk read failed")),
        })
    }

    fn poll_write_blocks(
        &mut self,
        _: &mut (),
        _: &mut Context<'_>,
        first: BlockIndex,
        buf: &[u8],
    ) -> Poll<Result<(), Error<DeviceError>>> {
        let range = match self.range(first, buf.len()) {
            Ok(range) => range,
            Err(error) => return Poll::Ready(Err(error)),
        };
        Poll::Ready(match self {
            Self::Memory(image) => {
                image[range].copy_from_slice(buf);
                Ok(())
            }
            #[cfg(target_os = "none")]
            Self::Virtio(device) => device
                .write(first.get(), buf)
                .map_err(|e| Error::device(e, "virtio-blk write failed")),
        })
    }

    fn poll_flush(
        &mut self,
        _: &mut (),
        _: &mut Context<'_>,
    ) -> Poll<Result<(), Error<DeviceError>>> {
        Poll::Ready(match self {
            Self::Memory(_) => Ok(()),
            #[cfg(target_os = "none")]
            Self::Virtio(device) => device
                .flush()
                .map_err(|e| Error::device(e, "virtio-blk flush failed")),
        })
    }

    fn cancel(&mut self, _: &mut ()) {}
}
