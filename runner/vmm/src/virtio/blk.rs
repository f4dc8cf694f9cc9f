//! virtio-blk on a file: read, write, flush and get-id, one request queue. The file is
//! the disk (its size, rounded down to 512-byte sectors, is the capacity); a request past
//! the end is answered with an I/O error, not a failure of the device.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use virtio_bindings::virtio_blk::{
    VIRTIO_BLK_F_FLUSH, VIRTIO_BLK_F_RO, VIRTIO_BLK_ID_BYTES, VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_OK,
    VIRTIO_BLK_S_UNSUPP, VIRTIO_BLK_T_FLUSH, VIRTIO_BLK_T_GET_ID, VIRTIO_BLK_T_IN,
    VIRTIO_BLK_T_OUT,
};
use virtio_bindings::virtio_ring::VIRTIO_RING_F_EVENT_IDX;
use virtio_queue::{Queue, QueueT};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::chain::{Buffer, read_chain};
use super::{DeviceError, Event, VirtioDevice, pop_head};

pub const SECTOR: u64 = 512;
const QUEUE_SIZE: u16 = 256;
/// The request header: type, reserved, sector.
const HEADER_LEN: u32 = 16;
/// The most data one request may move (the guest's buffers are copied through the host).
const MAX_REQUEST: u64 = 1 << 20;
/// The alignment of the buffers O_DIRECT transfers go through: a page.
const DIRECT_ALIGN: usize = 4096;

/// Counters of the device.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlkCounters {
    pub reads: u64,
    pub writes: u64,
    pub flushes: u64,
    pub errors: u64,
}

/// The virtio-blk device.
#[derive(Debug)]
pub struct Blk {
    file: File,
    sectors: u64,
    read_only: bool,
    id: [u8; VIRTIO_BLK_ID_BYTES as usize],
    /// One request's data on its way between the guest and the file.
    bounce: Vec<u8>,
    pub counters: BlkCounters,
}

impl Blk {
    /// A disk on the file at `path`, read-only or not; its ID is the file's name (the
    /// first 20 bytes).
    pub fn open(path: &Path, read_only: bool) -> std::io::Result<Self> {
        Self::open_with(path, read_only, false)
    }

    /// Like [`Blk::open`]; with `direct`, the file is opened with O_DIRECT: the guest's
    /// reads and writes bypass the host's page cache (as QEMU's `cache=none`), so the
    /// guest's own cache is the only one and the host's memory is not spent on the disk.
    /// Every transfer is then a whole number of 512-byte sectors from a page-aligned
    /// buffer; a file system that needs more (4 KiB logical blocks) or has no O_DIRECT is
    /// refused here, with the reason, rather than failing requests later.
    pub fn open_with(path: &Path, read_only: bool, direct: bool) -> std::io::Result<Self> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(!read_only)
            .custom_flags(if direct { libc::O_DIRECT } else { 0 })
            .open(path)
            .map_err(|err| match err.raw_os_error() {
                Some(libc::EINVAL) if direct => std::io::Error::other(
                    "its file system does not support O_DIRECT: drop --disk-direct",
                ),
                _ => err,
            })?;
        let name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        let blk = Self::new(file, name.as_bytes(), read_only)?;
        if direct && blk.sectors > 0 {
            let mut probe = Vec::new();
            let sector = aligned(&mut probe, SECTOR as usize);
            blk.file.read_exact_at(sector, 0).map_err(|err| {
                std::io::Error::other(format!(
                    "O_DIRECT reads of one 512-byte sector fail ({err}): its file system \
                     needs larger aligned transfers than the guest's sectors; drop --disk-direct"
                ))
            })?;
        }
        Ok(blk)
    }

    /// A disk on `file`, with `id`.
    pub fn new(file: File, id: &[u8], read_only: bool) -> std::io::Result<Self> {
        let sectors = file.metadata()?.len() / SECTOR;
        let mut id_bytes = [0u8; VIRTIO_BLK_ID_BYTES as usize];
        let n = id.len().min(id_bytes.len());
        id_bytes[..n].copy_from_slice(&id[..n]);
        Ok(Blk {
            file,
            sectors,
            read_only,
            id: id_bytes,
            bounce: Vec::new(),
            counters: BlkCounters::default(),
        })
    }

    /// The capacity in 512-byte sectors.
    pub fn sectors(&self) -> u64 {
        self.sectors
    }

    /// Serves one request whose header, data buffers and status byte are `buffers`;
    /// returns the bytes written into the guest's buffers, status byte included.
    fn serve(
        &mut self,
        mem: &GuestMemoryMmap,
        head: u16,
        buffers: &[Buffer],
    ) -> Result<u32, DeviceError> {
        let malformed = |what: &str| DeviceError(format!("request {head}: {what}"));
        let (header, rest) = buffers
            .split_first()
            .ok_or_else(|| malformed("an empty chain"))?;
        let (status, data) = rest
            .split_last()
            .ok_or_else(|| malformed("no status byte"))?;
        if header.writable || header.len < HEADER_LEN {
            return Err(malformed("the header is not 16 device-readable bytes"));
        }
        if !status.writable || status.len < 1 {
            return Err(malformed("the status byte is not device-writable"));
        }
        let mut raw = [0u8; HEADER_LEN as usize];
        mem.read_slice(&mut raw, header.addr)
            .map_err(|_| malformed("its header is outside guest memory"))?;
        let kind = u32::from_le_bytes(raw[0..4].try_into().unwrap_or_default());
        let sector = u64::from_le_bytes(raw[8..16].try_into().unwrap_or_default());
        let data_len: u64 = data.iter().map(|b| u64::from(b.len)).sum();
        let (code, written) = match kind {
            VIRTIO_BLK_T_IN | VIRTIO_BLK_T_OUT => {
                let writing = kind == VIRTIO_BLK_T_OUT;
                if data.iter().any(|b| b.writable == writing) {
                    return Err(malformed(if writing {
                        "a write's data is device-writable"
                    } else {
                        "a read's data is device-readable"
                    }));
                }
                if data_len > MAX_REQUEST {
                    return Err(malformed(&format!(
                        "{data_len} bytes in one request (at most {MAX_REQUEST})"
                    )));
                }
                let in_range = data_len.is_multiple_of(SECTOR)
                    && sector
                        .checked_add(data_len / SECTOR)
                        .is_some_and(|end| end <= self.sectors);
                if !in_range || (writing && self.read_only) {
                    self.counters.errors += 1;
                    (VIRTIO_BLK_S_IOERR, 0)
                } else if writing {
                    self.write(mem, sector, data)?
                } else {
                    self.read(mem, sector, data)?
                }
            }
            VIRTIO_BLK_T_FLUSH => {
                self.counters.flushes += 1;
                match self.file.sync_data() {
                    Ok(()) => (VIRTIO_BLK_S_OK, 0),
                    Err(_) => {
                        self.counters.errors += 1;
                        (VIRTIO_BLK_S_IOERR, 0)
                    }
                }
            }
            VIRTIO_BLK_T_GET_ID => {
                let mut at = 0usize;
                for buffer in data {
                    if !buffer.writable {
                        return Err(malformed("get-id's buffer is device-readable"));
                    }
                    let n = (buffer.len as usize).min(self.id.len() - at);
                    mem.write_slice(&self.id[at..at + n], buffer.addr)
                        .map_err(|_| malformed("its buffer is outside guest memory"))?;
                    at += n;
                }
                (VIRTIO_BLK_S_OK, at as u32)
            }
            _ => (VIRTIO_BLK_S_UNSUPP, 0),
        };
        mem.write_obj(code as u8, status.addr)
            .map_err(|_| malformed("its status byte is outside guest memory"))?;
        Ok(written + 1)
    }

    fn read(
        &mut self,
        mem: &GuestMemoryMmap,
        sector: u64,
        data: &[Buffer],
    ) -> Result<(u32, u32), DeviceError> {
        let len: usize = data.iter().map(|b| b.len as usize).sum();
        let bytes = aligned(&mut self.bounce, len);
        if self.file.read_exact_at(bytes, sector * SECTOR).is_err() {
            self.counters.errors += 1;
            return Ok((VIRTIO_BLK_S_IOERR, 0));
        }
        let mut at = 0;
        for buffer in data {
            let end = at + buffer.len as usize;
            mem.write_slice(&bytes[at..end], buffer.addr)
                .map_err(|_| DeviceError("a read's buffer is outside guest memory".into()))?;
            at = end;
        }
        self.counters.reads += 1;
        Ok((VIRTIO_BLK_S_OK, len as u32))
    }

    fn write(
        &mut self,
        mem: &GuestMemoryMmap,
        sector: u64,
        data: &[Buffer],
    ) -> Result<(u32, u32), DeviceError> {
        let len: usize = data.iter().map(|b| b.len as usize).sum();
        let bytes = aligned(&mut self.bounce, len);
        let mut at = 0;
        for buffer in data {
            let end = at + buffer.len as usize;
            mem.read_slice(&mut bytes[at..end], buffer.addr)
                .map_err(|_| DeviceError("a write's buffer is outside guest memory".into()))?;
            at = end;
        }
        if self.file.write_all_at(bytes, sector * SECTOR).is_err() {
            self.counters.errors += 1;
            return Ok((VIRTIO_BLK_S_IOERR, 0));
        }
        self.counters.writes += 1;
        Ok((VIRTIO_BLK_S_OK, 0))
    }
}

/// `len` bytes of `buffer` (grown as needed) starting at a page boundary: an O_DIRECT
/// transfer must start at an address aligned to the device's logical block size, which a
/// page covers. One request's data in one buffer is also one system call.
fn aligned(buffer: &mut Vec<u8>, len: usize) -> &mut [u8] {
    let needed = len + DIRECT_ALIGN;
    if buffer.len() < needed {
        buffer.resize(needed, 0);
    }
    let start = buffer.as_ptr().align_offset(DIRECT_ALIGN);
    &mut buffer[start..start + len]
}

fn queue_error(err: virtio_queue::Error) -> DeviceError {
    DeviceError(format!("the queue's rings: {err:?}"))
}

impl VirtioDevice for Blk {
    fn device_type(&self) -> u32 {
        virtio_bindings::virtio_ids::VIRTIO_ID_BLOCK
    }

    fn name(&self) -> &'static str {
        "virtio-blk"
    }

    fn features(&self) -> u64 {
        let mut features = (1 << VIRTIO_BLK_F_FLUSH) | (1 << VIRTIO_RING_F_EVENT_IDX);
        if self.read_only {
            features |= 1 << VIRTIO_BLK_F_RO;
        }
        features
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &[QUEUE_SIZE]
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        // capacity (le64) is the first field of struct virtio_blk_config.
        super::read_bytes(&self.sectors.to_le_bytes(), offset, data);
    }

    fn process(
        &mut self,
        queues: &mut [Queue],
        mem: &GuestMemoryMmap,
        _event: Event,
    ) -> Result<bool, DeviceError> {
        let [queue] = queues else {
            return Err(DeviceError("virtio-blk has one queue".into()));
        };
        if !queue.ready() {
            return Ok(false);
        }
        let mut notify = false;
        loop {
            queue.disable_notification(mem).map_err(queue_error)?;
            while let Some(head) = pop_head(queue, mem)? {
                let chain = read_chain(mem, GuestAddress(queue.desc_table()), queue.size(), head)?;
                let written = self.serve(mem, head, &chain.buffers)?;
                queue.add_used(mem, head, written).map_err(queue_error)?;
                notify |= queue.needs_notification(mem).map_err(queue_error)?;
            }
            if !queue.enable_notification(mem).map_err(queue_error)? {
                return Ok(notify);
            }
        }
    }
}
