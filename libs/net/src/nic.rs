//! The virtio-net device as a smoltcp `Device`: fixed pools of frame buffers, refilled as
//! frames are consumed, so the data path allocates nothing.
//!
//! Receive buffers are posted to the device up front; a received frame is handed to smoltcp
//! in place and its buffer goes straight back to the device. Transmit buffers come from a
//! free list; when it is empty (the device has not sent the earlier frames yet) `transmit`
//! says so and smoltcp keeps the data in the socket: that is the backpressure between the
//! sockets and the wire.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::cell::RefCell;

use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;
use virtio_drivers::device::net::VirtIONetRaw;
use virtio_drivers::transport::SomeTransport;

use unikernel_virtio::KernelHal;

use crate::gate::{CookieKey, SynGate, Verdict};

/// Descriptors per virtqueue.
pub(crate) const QUEUE_SIZE: usize = 256;
/// Frames the device may fill before the stack reads them.
const RX_BUFFERS: usize = 128;
/// Frames the stack may queue before the device has sent them.
const TX_BUFFERS: usize = 64;
/// A frame (1514 bytes), the virtio-net header (10 or 12) and room to spare.
const BUFFER_LEN: usize = 2048;

type Buffer = Box<[u8; BUFFER_LEN]>;
pub(crate) type Raw = VirtIONetRaw<KernelHal, SomeTransport<'static>, QUEUE_SIZE>;

/// Packet counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NicStats {
    pub rx_frames: u64,
    pub tx_frames: u64,
    /// Frames smoltcp built while no transmit buffer was free (replies it sends unasked,
    /// such as ACKs and RSTs); TCP retransmits what matters.
    pub tx_dropped: u64,
    /// Frames the device reported with an error.
    pub rx_errors: u64,
}

pub(crate) struct Nic {
    inner: RefCell<Inner>,
    /// Answers connection requests no listener has room for with SYN cookies, before
    /// smoltcp answers them with a reset, and opens those the client completes.
    pub(crate) gate: SynGate,
}

struct Inner {
    raw: Raw,
    /// The buffer the device holds for each receive token.
    rx: Vec<Option<Buffer>>,
    /// The buffer the device is sending for each transmit token.
    tx: Vec<Option<Buffer>>,
    tx_free: Vec<Buffer>,
    /// The length of the virtio-net header in front of each frame (10 or 12 bytes).
    header: usize,
    stats: NicStats,
    /// In the current egress pass: whether a socket may have more to send, or a frame was
    /// refused (see [`crate::stack::EgressPass`]).
    pass_may_have_more: bool,
}

fn buffer() -> Buffer {
    Box::new([0; BUFFER_LEN])
}

impl Nic {
    pub(crate) fn new(mut raw: Raw, cookie_key: CookieKey) -> Result<Self, virtio_drivers::Error> {
        raw.disable_interrupts();
        let header = raw.fill_buffer_header(&mut [0; 16])?;
        let mut inner = Inner {
            raw,
            rx: (0..QUEUE_SIZE).map(|_| None).collect(),
            tx: (0..QUEUE_SIZE).map(|_| None).collect(),
            tx_free: (0..TX_BUFFERS).map(|_| buffer()).collect(),
            header,
            stats: NicStats::default(),
            pass_may_have_more: false,
        };
        for _ in 0..RX_BUFFERS {
            inner.post_rx(buffer())?;
        }
        Ok(Self {
            inner: RefCell::new(inner),
            gate: SynGate::with_key(cookie_key),
        })
    }

    pub(crate) fn mac(&self) -> [u8; 6] {
        self.inner.borrow().raw.mac_address()
    }

    pub(crate) fn stats(&self) -> NicStats {
        self.inner.borrow().stats
    }

    /// Whether a received frame is waiting (or one the gate has for the stack).
    pub(crate) fn has_rx(&self) -> bool {
        self.gate.has_injected() || self.inner.borrow().raw.poll_receive().is_some()
    }

    /// Asks the device to interrupt when it uses a buffer (before halting).
    pub(crate) fn enable_interrupts(&mut self) {
        self.inner.get_mut().raw.enable_interrupts();
    }

    /// Acknowledges the device's interrupt; it goes on interrupting.
    pub(crate) fn ack(&mut self) {
        self.inner.get_mut().raw.ack_interrupt();
    }

    /// Acknowledges the device's interrupt and asks it not to interrupt while the stack is
    /// busy anyway (it polls the queues).
    pub(crate) fn ack_and_quiet(&mut self) {
        let inner = self.inner.get_mut();
        inner.raw.ack_interrupt();
        inner.raw.disable_interrupts();
    }
}

impl Inner {
    fn post_rx(&mut self, mut buffer: Buffer) -> Result<(), virtio_drivers::Error> {
        // SAFETY: the buffer is owned by `self.rx[token]` until `receive_complete` for the
        // same token, so it stays valid and untouched while the device writes into it.
        let token = unsafe { self.raw.receive_begin(&mut buffer[..])? };
        self.rx[usize::from(token)] = Some(buffer);
        Ok(())
    }

    /// Takes back the buffers of frames the device has sent.
    fn reclaim_tx(&mut self) {
        while let Some(token) = self.raw.poll_transmit() {
            let Some(buffer) = self.tx[usize::from(token)].take() else {
                break;
            };
            // SAFETY: `buffer` is the one passed to `transmit_begin` for `token`, and the
            // device reported it used.
            let _ = unsafe { self.raw.transmit_complete(token, &buffer[..]) };
            self.tx_free.push(buffer);
        }
    }

    /// Sends `frame` (a reply the gate made) if a transmit buffer is free.
    fn send_frame(&mut self, frame: &[u8]) {
        self.reclaim_tx();
        let Some(mut buffer) = self.tx_free.pop() else {
            self.stats.tx_dropped += 1;
            return;
        };
        let len = frame.len().min(BUFFER_LEN - self.header);
        buffer[self.header..self.header + len].copy_from_slice(&frame[..len]);
        self.send(buffer, self.header + len);
    }

    fn send(&mut self, mut buffer: Buffer, len: usize) {
        match self.raw.fill_buffer_header(&mut buffer[..]) {
            Ok(_) => {}
            Err(_) => {
                self.stats.tx_dropped += 1;
                self.tx_free.push(buffer);
                return;
            }
        }
        // SAFETY: the buffer is owned by `self.tx[token]` until `transmit_complete`, so it
        // stays valid and unchanged while the device reads it.
        match unsafe { self.raw.transmit_begin(&buffer[..len]) } {
            Ok(token) => {
                self.tx[usize::from(token)] = Some(buffer);
                self.stats.tx_frames += 1;
            }
            Err(_) => {
                self.stats.tx_dropped += 1;
                self.tx_free.push(buffer);
            }
        }
    }
}

impl Device for Nic {
    type RxToken<'a> = RxToken<'a>;
    type TxToken<'a> = TxToken<'a>;

    fn receive(&mut self, timestamp: Instant) -> Option<(RxToken<'_>, TxToken<'_>)> {
        let inner = self.inner.get_mut();
        loop {
            if let Some(frame) = self.gate.next_injected(timestamp) {
                let end = frame.len();
                return Some((
                    RxToken {
                        nic: &self.inner,
                        frame: Some(Frame::Injected(frame)),
                        start: 0,
                        end,
                    },
                    TxToken {
                        nic: &self.inner,
                        gate: &mut self.gate,
                    },
                ));
            }
            let token = inner.raw.poll_receive()?;
            let mut buffer = inner.rx[usize::from(token)].take()?;
            // SAFETY: `buffer` is the one passed to `receive_begin` for `token`.
            match unsafe { inner.raw.receive_complete(token, &mut buffer[..]) } {
                Ok((header, len)) => {
                    inner.stats.rx_frames += 1;
                    let end = (header + len).min(BUFFER_LEN);
                    match self.gate.inbound(&mut buffer[header..end], timestamp) {
                        Verdict::Pass => {}
                        Verdict::Drop => {
                            let _ = inner.post_rx(buffer);
                            continue;
                        }
                        Verdict::Reply => {
                            inner.send_frame(self.gate.reply());
                            let _ = inner.post_rx(buffer);
                            continue;
                        }
                    }
                    return Some((
                        RxToken {
                            nic: &self.inner,
                            frame: Some(Frame::Device(buffer)),
                            start: header,
                            end,
                        },
                        TxToken {
                            nic: &self.inner,
                            gate: &mut self.gate,
                        },
                    ));
                }
                Err(_) => {
                    inner.stats.rx_errors += 1;
                    let _ = inner.post_rx(buffer);
                }
            }
        }
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<TxToken<'_>> {
        let inner = self.inner.get_mut();
        inner.reclaim_tx();
        if inner.tx_free.is_empty() || !inner.raw.can_send() {
            inner.pass_may_have_more = true;
            return None;
        }
        Some(TxToken {
            nic: &self.inner,
            gate: &mut self.gate,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = 1514;
        caps.max_burst_size = None;
        caps
    }
}

impl crate::stack::EgressPass for Nic {
    fn start_pass(&mut self) {
        self.inner.get_mut().pass_may_have_more = false;
    }

    fn may_have_more(&self) -> bool {
        self.inner.borrow().pass_may_have_more
    }
}

pub(crate) struct RxToken<'a> {
    nic: &'a RefCell<Inner>,
    frame: Option<Frame>,
    start: usize,
    end: usize,
}

/// A received frame: in a buffer of the device's, or made by the gate.
enum Frame {
    Device(Buffer),
    Injected(Vec<u8>),
}

impl phy::RxToken for RxToken<'_> {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        match self.frame.as_ref().expect("consumed once") {
            Frame::Device(buffer) => f(&buffer[self.start..self.end]),
            Frame::Injected(frame) => f(&frame[self.start..self.end]),
        }
    }
}

impl Drop for RxToken<'_> {
    fn drop(&mut self) {
        if let Some(Frame::Device(buffer)) = self.frame.take() {
            let _ = self.nic.borrow_mut().post_rx(buffer);
        }
    }
}

pub(crate) struct TxToken<'a> {
    nic: &'a RefCell<Inner>,
    gate: &'a mut SynGate,
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        let (buffer, header) = {
            let mut inner = self.nic.borrow_mut();
            inner.reclaim_tx();
            (inner.tx_free.pop(), inner.header)
        };
        let Some(mut buffer) = buffer else {
            // Nothing free (a reply built while receiving): build it, count it, drop it.
            self.nic.borrow_mut().stats.tx_dropped += 1;
            let mut scratch = [0u8; BUFFER_LEN];
            return f(&mut scratch[..len.min(BUFFER_LEN)]);
        };
        let len = len.min(BUFFER_LEN - header);
        let result = f(&mut buffer[header..header + len]);
        let mut inner = self.nic.borrow_mut();
        inner.pass_may_have_more |= crate::stack::may_be_followed(&buffer[header..header + len]);
        // The gate swallows smoltcp's SYN-ACK to a client that has the cookie's.
        if self.gate.outbound(&mut buffer[header..header + len]) {
            inner.send(buffer, header + len);
        } else {
            inner.tx_free.push(buffer);
        }
        result
    }
}
