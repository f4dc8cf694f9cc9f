//! Descriptor chains, read with every guest-controlled value checked before the device
//! touches a byte: the head and every `next` index inside the table, the table and every
//! buffer inside guest memory (without wrapping around the address space), no loops (a
//! chain visits at most `size` descriptors), a total length that fits in 32 bits, no
//! indirect descriptors (the monitor does not offer them), and the direction each queue
//! needs (device-readable first, then device-writable, as the specification orders them).

use std::fmt;

use virtio_queue::desc::split::Descriptor;
use vm_memory::{Address, Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};

/// One buffer of a chain, inside guest memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Buffer {
    pub addr: GuestAddress,
    pub len: u32,
    pub writable: bool,
}

/// A chain checked from head to end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    pub head: u16,
    pub buffers: Vec<Buffer>,
}

/// How a guest broke the rules of a descriptor chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainError {
    IndexOutOfRange { index: u16, size: u16 },
    TableOutsideMemory { addr: u64 },
    BufferOutsideMemory { index: u16, addr: u64, len: u32 },
    Loop { head: u16, size: u16 },
    TooLong { head: u16 },
    Indirect { index: u16 },
    ReadableAfterWritable { index: u16 },
}

impl fmt::Display for ChainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ChainError::IndexOutOfRange { index, size } => {
                write!(f, "descriptor index {index} is outside the queue of {size}")
            }
            ChainError::TableOutsideMemory { addr } => {
                write!(f, "the descriptor at {addr:#x} lies outside guest memory")
            }
            ChainError::BufferOutsideMemory { index, addr, len } => write!(
                f,
                "descriptor {index} points at {len} bytes at {addr:#x}, outside guest memory"
            ),
            ChainError::Loop { head, size } => write!(
                f,
                "the chain from descriptor {head} visits more than the queue's {size} descriptors (a loop)"
            ),
            ChainError::TooLong { head } => {
                write!(f, "the chain from descriptor {head} is longer than 4 GiB")
            }
            ChainError::Indirect { index } => write!(
                f,
                "descriptor {index} is indirect, a feature the device did not offer"
            ),
            ChainError::ReadableAfterWritable { index } => write!(
                f,
                "descriptor {index} is device-readable after a device-writable one"
            ),
        }
    }
}

/// Reads the chain that starts at `head` in the descriptor table at `table` of a queue of
/// `size` entries.
pub fn read_chain(
    mem: &GuestMemoryMmap,
    table: GuestAddress,
    size: u16,
    head: u16,
) -> Result<Chain, ChainError> {
    let mut buffers = Vec::new();
    let mut index = head;
    let mut total: u32 = 0;
    let mut seen_writable = false;
    for _ in 0..size {
        if index >= size {
            return Err(ChainError::IndexOutOfRange { index, size });
        }
        let at =
            table
                .checked_add(u64::from(index) * 16)
                .ok_or(ChainError::TableOutsideMemory {
                    addr: table.raw_value(),
                })?;
        let desc: Descriptor = mem
            .read_obj(at)
            .map_err(|_| ChainError::TableOutsideMemory {
                addr: at.raw_value(),
            })?;
        if desc.refers_to_indirect_table() {
            return Err(ChainError::Indirect { index });
        }
        let outside = ChainError::BufferOutsideMemory {
            index,
            addr: desc.addr().raw_value(),
            len: desc.len(),
        };
        // `check_range` also refuses a range that wraps past the top of the address space.
        if desc.len() > 0 && !mem.check_range(desc.addr(), desc.len() as usize) {
            return Err(outside);
        }
        total = total
            .checked_add(desc.len())
            .ok_or(ChainError::TooLong { head })?;
        let writable = desc.is_write_only();
        if seen_writable && !writable {
            return Err(ChainError::ReadableAfterWritable { index });
        }
        seen_writable |= writable;
        buffers.push(Buffer {
            addr: desc.addr(),
            len: desc.len(),
            writable,
        });
        if !desc.has_next() {
            return Ok(Chain { head, buffers });
        }
        index = desc.next();
    }
    Err(ChainError::Loop { head, size })
}

impl Chain {
    /// The device-readable bytes, gathered, at most `limit` of them (`None` if there are
    /// more).
    pub fn gather(&self, mem: &GuestMemoryMmap, limit: usize) -> Option<Vec<u8>> {
        let total: usize = self
            .buffers
            .iter()
            .filter(|b| !b.writable)
            .map(|b| b.len as usize)
            .sum();
        if total > limit {
            return None;
        }
        let mut out = vec![0; total];
        let mut at = 0;
        for buffer in self.buffers.iter().filter(|b| !b.writable) {
            let end = at + buffer.len as usize;
            // Checked in `read_chain`.
            mem.read_slice(&mut out[at..end], buffer.addr).ok()?;
            at = end;
        }
        Some(out)
    }

    /// The room in the device-writable buffers.
    pub fn writable_len(&self) -> usize {
        self.buffers
            .iter()
            .filter(|b| b.writable)
            .map(|b| b.len as usize)
            .sum()
    }

    /// Scatters `data` over the device-writable buffers; returns the bytes written (all
    /// of `data` when it fits).
    pub fn scatter(&self, mem: &GuestMemoryMmap, data: &[u8]) -> usize {
        let mut at = 0;
        for buffer in self.buffers.iter().filter(|b| b.writable) {
            if at == data.len() {
                break;
            }
            let n = (buffer.len as usize).min(data.len() - at);
            if mem.write_slice(&data[at..at + n], buffer.addr).is_err() {
                break;
            }
            at += n;
        }
        at
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use virtio_bindings::virtio_ring::{
        VRING_DESC_F_INDIRECT, VRING_DESC_F_NEXT, VRING_DESC_F_WRITE,
    };

    const TABLE: GuestAddress = GuestAddress(0x1000);
    const NEXT: u16 = VRING_DESC_F_NEXT as u16;
    const WRITE: u16 = VRING_DESC_F_WRITE as u16;

    fn memory() -> GuestMemoryMmap {
        GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0x10_0000)]).unwrap()
    }

    fn put(mem: &GuestMemoryMmap, index: u16, desc: Descriptor) {
        mem.write_obj(desc, TABLE.unchecked_add(u64::from(index) * 16))
            .unwrap();
    }

    #[test]
    fn a_well_formed_chain_reads_in_order_and_moves_bytes() {
        let mem = memory();
        put(&mem, 0, Descriptor::new(0x8000, 4, NEXT, 2));
        put(&mem, 2, Descriptor::new(0x9000, 8, WRITE, 0));
        mem.write_slice(b"ping", GuestAddress(0x8000)).unwrap();
        let chain = read_chain(&mem, TABLE, 4, 0).unwrap();
        assert_eq!(chain.buffers.len(), 2);
        assert_eq!(chain.gather(&mem, 64).unwrap(), b"ping");
        assert_eq!(chain.gather(&mem, 3), None, "over the limit");
        assert_eq!(chain.writable_len(), 8);
        assert_eq!(chain.scatter(&mem, b"pong-and-more"), 8);
        let mut back = [0u8; 8];
        mem.read_slice(&mut back, GuestAddress(0x9000)).unwrap();
        assert_eq!(&back, b"pong-and");
    }

    #[test]
    fn loops_are_refused() {
        let mem = memory();
        put(&mem, 0, Descriptor::new(0x8000, 4, NEXT, 1));
        put(&mem, 1, Descriptor::new(0x8000, 4, NEXT, 0));
        assert_eq!(
            read_chain(&mem, TABLE, 4, 0),
            Err(ChainError::Loop { head: 0, size: 4 })
        );
        // A descriptor that points at itself.
        put(&mem, 3, Descriptor::new(0x8000, 4, NEXT, 3));
        assert!(matches!(
            read_chain(&mem, TABLE, 4, 3),
            Err(ChainError::Loop { .. })
        ));
    }

    #[test]
    fn indices_outside_the_queue_are_refused() {
        let mem = memory();
        assert_eq!(
            read_chain(&mem, TABLE, 4, 4),
            Err(ChainError::IndexOutOfRange { index: 4, size: 4 })
        );
        put(&mem, 0, Descriptor::new(0x8000, 4, NEXT, 200));
        assert_eq!(
            read_chain(&mem, TABLE, 4, 0),
            Err(ChainError::IndexOutOfRange {
                index: 200,
                size: 4
            })
        );
    }

    #[test]
    fn buffers_outside_memory_or_wrapping_are_refused() {
        let mem = memory();
        put(&mem, 0, Descriptor::new(0xf_ff00, 0x200, 0, 0));
        assert!(matches!(
            read_chain(&mem, TABLE, 4, 0),
            Err(ChainError::BufferOutsideMemory { index: 0, .. })
        ));
        put(&mem, 0, Descriptor::new(u64::MAX - 8, 64, 0, 0));
        assert!(matches!(
            read_chain(&mem, TABLE, 4, 0),
            Err(ChainError::BufferOutsideMemory { .. })
        ));
        // The table itself past the end of memory.
        assert!(matches!(
            read_chain(&mem, GuestAddress(0xf_fff8), 4, 0),
            Err(ChainError::TableOutsideMemory { .. })
        ));
        assert!(matches!(
            read_chain(&mem, GuestAddress(u64::MAX - 4), 4, 1),
            Err(ChainError::TableOutsideMemory { .. })
        ));
    }

    #[test]
    fn lengths_over_4_gib_indirect_and_misordered_chains_are_refused() {
        // 4 GiB and a bit of address space, mapped but never touched.
        let big = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0x1_0010_0000)]).unwrap();
        put(&big, 0, Descriptor::new(0x10_0000, 0x8000_0000, NEXT, 1));
        put(&big, 1, Descriptor::new(0x10_0000, 0x8000_0000, 0, 0));
        assert_eq!(
            read_chain(&big, TABLE, 2, 0),
            Err(ChainError::TooLong { head: 0 })
        );
        drop(big);
        let mem = memory();
        put(
            &mem,
            0,
            Descriptor::new(0x8000, 16, VRING_DESC_F_INDIRECT as u16, 0),
        );
        assert_eq!(
            read_chain(&mem, TABLE, 4, 0),
            Err(ChainError::Indirect { index: 0 })
        );
        put(&mem, 0, Descriptor::new(0x8000, 16, WRITE | NEXT, 1));
        put(&mem, 1, Descriptor::new(0x9000, 16, 0, 0));
        assert_eq!(
            read_chain(&mem, TABLE, 4, 0),
            Err(ChainError::ReadableAfterWritable { index: 1 })
        );
    }
}
