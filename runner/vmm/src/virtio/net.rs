//! virtio-net: one receive and one transmit queue, a MAC address and a link that is up,
//! in front of one of two back ends:
//! - a tap device (root: the runner makes it in a network namespace of its own);
//! - a unix stream socket to `passt`, the unprivileged user-mode network, which carries
//!   each frame after its length as a 4-byte big-endian number (QEMU's `-netdev stream`).
//!
//! The virtio-net header (12 bytes, VIRTIO_F_VERSION_1) is dropped on the way out and a
//! zero one put before each frame on the way in: no offloads are offered.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use virtio_bindings::virtio_net::{VIRTIO_NET_F_MAC, VIRTIO_NET_F_STATUS, VIRTIO_NET_S_LINK_UP};
use virtio_bindings::virtio_ring::VIRTIO_RING_F_EVENT_IDX;
use virtio_queue::{Queue, QueueT};
use vm_memory::{GuestAddress, GuestMemoryMmap};

use super::chain::read_chain;
use super::{DeviceError, Event, VirtioDevice, pop_head};

/// The virtio-net header with VIRTIO_F_VERSION_1.
pub const HEADER_LEN: usize = 12;
/// The largest frame either way: an Ethernet frame without offloads, with room for VLAN
/// tags.
pub const MAX_FRAME: usize = 1522;
const TX: usize = 1;
const QUEUE_SIZE: u16 = 256;
/// Frames read from the back end but not yet given to the guest, at most.
const PENDING_MAX: usize = 256;
/// Bytes waiting to go to the stream back end, at most; past it frames are dropped as a
/// full wire would.
const STREAM_BACKLOG: usize = 1 << 20;

/// Where the frames go.
#[derive(Debug)]
pub enum Backend {
    /// A tap device, opened non-blocking (one frame per read and write), and the buffer
    /// frames are read into.
    Tap { file: File, buffer: Vec<u8> },
    /// A stream socket with length-prefixed frames (passt), non-blocking.
    Stream {
        socket: UnixStream,
        /// Bytes read that do not yet make a whole frame.
        input: Vec<u8>,
        /// Bytes not yet written.
        output: Vec<u8>,
    },
}

impl Backend {
    /// A tap back end on `file`.
    pub fn tap(file: File) -> io::Result<Self> {
        set_nonblocking(file.as_raw_fd())?;
        Ok(Backend::Tap {
            file,
            buffer: vec![0; 65536],
        })
    }

    /// A stream back end on `socket` (connected to passt).
    pub fn stream(socket: UnixStream) -> io::Result<Self> {
        socket.set_nonblocking(true)?;
        Ok(Backend::Stream {
            socket,
            input: Vec::new(),
            output: Vec::new(),
        })
    }

    fn fd(&self) -> RawFd {
        match self {
            Backend::Tap { file, .. } => file.as_raw_fd(),
            Backend::Stream { socket, .. } => socket.as_raw_fd(),
        }
    }

    /// Sends one frame; a full tap or backlog drops it, as a busy wire would.
    fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        match self {
            Backend::Tap { file, .. } => match file.write(frame) {
                Ok(_) => Ok(()),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => Ok(()),
                Err(err) => Err(err),
            },
            Backend::Stream { output, .. } => {
                if output.len() + frame.len() + 4 <= STREAM_BACKLOG {
                    output.extend_from_slice(&(frame.len() as u32).to_be_bytes());
                    output.extend_from_slice(frame);
                }
                self.flush()
            }
        }
    }

    /// Writes what the stream back end holds, as far as the socket takes it.
    fn flush(&mut self) -> io::Result<()> {
        if let Backend::Stream { socket, output, .. } = self {
            while !output.is_empty() {
                match socket.write(output) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(n) => {
                        output.drain(..n);
                    }
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                    Err(err) => return Err(err),
                }
            }
        }
        Ok(())
    }

    /// The next frame, if one has arrived.
    fn recv(&mut self) -> io::Result<Option<Vec<u8>>> {
        match self {
            Backend::Tap { file, buffer } => match file.read(buffer) {
                Ok(n) => Ok(Some(buffer[..n].to_vec())),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => Ok(None),
                Err(err) => Err(err),
            },
            Backend::Stream { socket, input, .. } => loop {
                if let Some(frame) = take_frame(input)? {
                    return Ok(Some(frame));
                }
                let mut chunk = [0u8; 16384];
                match socket.read(&mut chunk) {
                    Ok(0) => {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the network back end closed the connection",
                        ));
                    }
                    Ok(n) => input.extend_from_slice(&chunk[..n]),
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                    Err(err) => return Err(err),
                }
            },
        }
    }
}

/// Takes one length-prefixed frame off the front of `input`, if it holds a whole one.
fn take_frame(input: &mut Vec<u8>) -> io::Result<Option<Vec<u8>>> {
    let Some(prefix) = input.first_chunk::<4>() else {
        return Ok(None);
    };
    let len = u32::from_be_bytes(*prefix) as usize;
    if len > 65536 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the network back end sent a frame of {len} bytes"),
        ));
    }
    if input.len() < 4 + len {
        return Ok(None);
    }
    let frame = input[4..4 + len].to_vec();
    input.drain(..4 + len);
    Ok(Some(frame))
}

/// `struct ifreq` as TUNSETIFF reads it: the name, then the flags, padded to 40 bytes.
#[repr(C)]
struct InterfaceRequest {
    name: [u8; 16],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// `_IOW('T', 202, int)`.
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;

/// Opens the tap device `ifname` (made beforehand, e.g. `ip tuntap add`) inside the
/// network namespace at `netns` (`/run/netns/<name>`), or in the caller's. The namespace
/// is entered by a short-lived thread of its own, so the caller's stays as it was; the
/// descriptor stays bound to the device in that namespace.
pub fn open_tap(ifname: &str, netns: Option<&Path>) -> io::Result<File> {
    if ifname.is_empty() || ifname.len() >= 16 || ifname.contains('\0') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{ifname:?} is not a network interface name"),
        ));
    }
    let ifname = ifname.to_owned();
    let netns = netns.map(Path::to_path_buf);
    std::thread::spawn(move || -> io::Result<File> {
        if let Some(netns) = netns {
            let namespace = File::open(&netns)?;
            // SAFETY: setns with a descriptor of a network namespace file; it changes this
            // thread's network namespace only, and the thread ends after opening the tap.
            if unsafe { libc::setns(namespace.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        let tun = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/net/tun")?;
        let mut request = InterfaceRequest {
            name: [0; 16],
            flags: (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short,
            _pad: [0; 22],
        };
        request.name[..ifname.len()].copy_from_slice(ifname.as_bytes());
        // SAFETY: TUNSETIFF reads a `struct ifreq` (40 bytes, name then flags), which
        // `request` is laid out as, and may write the name back into it; `tun` is open.
        if unsafe { libc::ioctl(tun.as_raw_fd(), TUNSETIFF, &mut request) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(tun)
    })
    .join()
    .map_err(|_| io::Error::other("the thread that opens the tap panicked"))?
}

fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: F_GETFL and F_SETFL on a descriptor the caller owns; no memory is passed.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Counters of the device.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetCounters {
    pub tx_frames: u64,
    pub rx_frames: u64,
    /// Frames that arrived larger than the guest's buffers (dropped).
    pub rx_dropped: u64,
}

/// The virtio-net device.
#[derive(Debug)]
pub struct Net {
    mac: [u8; 6],
    backend: Backend,
    /// Frames from the back end waiting for a receive buffer.
    pending: VecDeque<Vec<u8>>,
    pub counters: NetCounters,
}

impl Net {
    pub fn new(mac: [u8; 6], backend: Backend) -> Self {
        Net {
            mac,
            backend,
            pending: VecDeque::new(),
            counters: NetCounters::default(),
        }
    }

    fn transmit(&mut self, queue: &mut Queue, mem: &GuestMemoryMmap) -> Result<bool, DeviceError> {
        let mut notify = false;
        loop {
            queue.disable_notification(mem).map_err(queue_error)?;
            while let Some(head) = pop_head(queue, mem)? {
                let chain = read_chain(mem, GuestAddress(queue.desc_table()), queue.size(), head)?;
                if chain.writable_len() > 0 {
                    return Err(DeviceError(format!(
                        "transmit chain {head} has device-writable buffers"
                    )));
                }
                let packet = chain.gather(mem, HEADER_LEN + MAX_FRAME).ok_or_else(|| {
                    DeviceError(format!(
                        "transmit chain {head} is longer than a header and a frame ({} bytes)",
                        HEADER_LEN + MAX_FRAME
                    ))
                })?;
                if packet.len() < HEADER_LEN {
                    return Err(DeviceError(format!(
                        "transmit chain {head} has {} bytes, less than the {HEADER_LEN}-byte header",
                        packet.len()
                    )));
                }
                self.backend
                    .send(&packet[HEADER_LEN..])
                    .map_err(|err| DeviceError(format!("the back end: {err}")))?;
                self.counters.tx_frames += 1;
                queue.add_used(mem, head, 0).map_err(queue_error)?;
                notify |= queue.needs_notification(mem).map_err(queue_error)?;
            }
            if !queue.enable_notification(mem).map_err(queue_error)? {
                return Ok(notify);
            }
        }
    }

    fn receive(&mut self, queue: &mut Queue, mem: &GuestMemoryMmap) -> Result<bool, DeviceError> {
        let mut notify = false;
        loop {
            if self.pending.is_empty() {
                match self.backend.recv() {
                    Ok(Some(frame)) => self.pending.push_back(frame),
                    Ok(None) => return Ok(notify),
                    Err(err) => return Err(DeviceError(format!("the back end: {err}"))),
                }
            }
            let Some(head) = pop_head(queue, mem)? else {
                // No buffer: ask to be told when there is one, and look once more (it
                // may have come in between).
                if queue.enable_notification(mem).map_err(queue_error)? {
                    continue;
                }
                // Keep reading while there is room, so the back end's edge is not lost.
                while self.pending.len() < PENDING_MAX {
                    match self.backend.recv() {
                        Ok(Some(frame)) => self.pending.push_back(frame),
                        Ok(None) => break,
                        Err(err) => return Err(DeviceError(format!("the back end: {err}"))),
                    }
                }
                return Ok(notify);
            };
            let chain = read_chain(mem, GuestAddress(queue.desc_table()), queue.size(), head)?;
            if chain.buffers.iter().any(|b| !b.writable) {
                return Err(DeviceError(format!(
                    "receive chain {head} has device-readable buffers"
                )));
            }
            let frame = self.pending.pop_front().unwrap_or_default();
            let mut packet = vec![0u8; HEADER_LEN];
            // num_buffers: the frame fits in this one chain.
            packet[10] = 1;
            packet.extend_from_slice(&frame);
            let written = if packet.len() <= chain.writable_len() {
                self.counters.rx_frames += 1;
                chain.scatter(mem, &packet)
            } else {
                self.counters.rx_dropped += 1;
                0
            };
            queue
                .add_used(mem, head, written as u32)
                .map_err(queue_error)?;
            notify |= queue.needs_notification(mem).map_err(queue_error)?;
        }
    }
}

fn queue_error(err: virtio_queue::Error) -> DeviceError {
    DeviceError(format!("the queue's rings: {err:?}"))
}

impl VirtioDevice for Net {
    fn device_type(&self) -> u32 {
        virtio_bindings::virtio_ids::VIRTIO_ID_NET
    }

    fn name(&self) -> &'static str {
        "virtio-net"
    }

    fn features(&self) -> u64 {
        (1 << VIRTIO_NET_F_MAC) | (1 << VIRTIO_NET_F_STATUS) | (1 << VIRTIO_RING_F_EVENT_IDX)
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &[QUEUE_SIZE, QUEUE_SIZE]
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        let mut config = [0u8; 8];
        config[..6].copy_from_slice(&self.mac);
        config[6..8].copy_from_slice(&(VIRTIO_NET_S_LINK_UP as u16).to_le_bytes());
        super::read_bytes(&config, offset, data);
    }

    fn backend_fd(&self) -> Option<RawFd> {
        Some(self.backend.fd())
    }

    fn process(
        &mut self,
        queues: &mut [Queue],
        mem: &GuestMemoryMmap,
        event: Event,
    ) -> Result<bool, DeviceError> {
        let [rx, tx] = queues else {
            return Err(DeviceError("virtio-net has two queues".into()));
        };
        let mut notify = false;
        if matches!(event, Event::Queue(TX) | Event::Backend) && tx.ready() {
            notify |= self.transmit(tx, mem)?;
        }
        self.backend
            .flush()
            .map_err(|err| DeviceError(format!("the back end: {err}")))?;
        if rx.ready() {
            notify |= self.receive(rx, mem)?;
        }
        Ok(notify)
    }

    fn reset(&mut self) {
        self.pending.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_frames_are_length_prefixed_big_endian() {
        let mut input = vec![0, 0, 0, 3, b'a', b'b', b'c', 0, 0];
        assert_eq!(take_frame(&mut input).unwrap(), Some(b"abc".to_vec()));
        assert_eq!(input, [0, 0]);
        assert_eq!(take_frame(&mut input).unwrap(), None, "half a prefix");
        let mut huge = vec![0, 2, 0, 0];
        assert!(take_frame(&mut huge).is_err());
    }
}
