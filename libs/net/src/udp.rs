//! UDP: [`UdpSocket`], shaped like `std::net::UdpSocket`.

use alloc::vec;
use core::cell::Cell;
use core::net::{SocketAddr, SocketAddrV4};
use core::time::Duration;

use smoltcp::iface::SocketHandle;
use smoltcp::socket::udp;
use smoltcp::wire::{IpAddress, IpEndpoint};

use crate::stack;
use crate::{Error, Net, block};

/// Datagrams each direction may queue.
const PACKETS: usize = 64;
/// Bytes of payload each direction may queue.
const BYTES: usize = 64 * 1024;

/// A UDP socket bound to a port. Datagrams that arrive while the receive queue is full
/// are dropped, as UDP allows; `send_to` waits for room in the send queue.
#[derive(Debug)]
pub struct UdpSocket {
    handle: SocketHandle,
    port: u16,
    read_timeout: Cell<Option<Duration>>,
    nonblocking: Cell<bool>,
}

impl UdpSocket {
    /// Binds `port` (0 picks a free one).
    pub fn bind(_net: &Net, port: u16) -> Result<Self, Error> {
        let (handle, port) = stack::with(|stack| {
            let port = if port == 0 {
                stack.ephemeral_port()
            } else {
                port
            };
            let buffer = || {
                udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; PACKETS], vec![0; BYTES])
            };
            let mut socket = udp::Socket::new(buffer(), buffer());
            socket.bind(port).map_err(|_| Error::AddrInUse)?;
            Ok::<_, Error>((stack.sockets.add(socket), port))
        })?;
        Ok(Self {
            handle,
            port,
            read_timeout: Cell::new(None),
            nonblocking: Cell::new(false),
        })
    }

    /// Receives one datagram into `buf` (the excess of a longer one is lost) and returns
    /// its length and sender.
    pub fn recv_from(&self, buf: &mut [u8]) -> Result<(usize, SocketAddr), Error> {
        let handle = self.handle;
        block(self.nonblocking.get(), self.read_timeout.get(), |stack| {
            let socket = stack.sockets.get_mut::<udp::Socket>(handle);
            if !socket.can_recv() {
                return None;
            }
            Some(match socket.recv() {
                Ok((data, meta)) => {
                    let n = data.len().min(buf.len());
                    buf[..n].copy_from_slice(&data[..n]);
                    let IpAddress::Ipv4(ip) = meta.endpoint.addr;
                    Ok((n, SocketAddr::V4(SocketAddrV4::new(ip, meta.endpoint.port))))
                }
                Err(_) => Err(Error::WouldBlock),
            })
        })
    }

    /// Sends `buf` as one datagram to `addr`.
    pub fn send_to(&self, buf: &[u8], addr: SocketAddr) -> Result<usize, Error> {
        let SocketAddr::V4(addr) = addr else {
            return Err(Error::Unreachable);
        };
        if buf.len() > BYTES {
            return Err(Error::InvalidInput);
        }
        let handle = self.handle;
        let remote = IpEndpoint::new(IpAddress::Ipv4(*addr.ip()), addr.port());
        block(self.nonblocking.get(), None, |stack| {
            let socket = stack.sockets.get_mut::<udp::Socket>(handle);
            match socket.send_slice(buf, remote) {
                Ok(()) => {
                    stack.poll();
                    Some(Ok(buf.len()))
                }
                Err(udp::SendError::BufferFull) => None,
                Err(udp::SendError::Unaddressable) => Some(Err(Error::Unreachable)),
            }
        })
    }

    /// The port the socket is bound to, with the interface's address.
    pub fn local_addr(&self) -> Result<SocketAddr, Error> {
        let ip = stack::with(|stack| stack.address())
            .map(|cidr| cidr.address())
            .unwrap_or(core::net::Ipv4Addr::UNSPECIFIED);
        Ok(SocketAddr::V4(SocketAddrV4::new(ip, self.port)))
    }

    /// How long `recv_from` waits before `Err(Error::TimedOut)`; `None` waits forever.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> Result<(), Error> {
        if timeout == Some(Duration::ZERO) {
            return Err(Error::InvalidInput);
        }
        self.read_timeout.set(timeout);
        Ok(())
    }

    /// In non-blocking mode, `recv_from` and `send_to` return `Err(Error::WouldBlock)`
    /// instead of waiting.
    pub fn set_nonblocking(&self, nonblocking: bool) -> Result<(), Error> {
        self.nonblocking.set(nonblocking);
        Ok(())
    }
}

impl Drop for UdpSocket {
    fn drop(&mut self) {
        let handle = self.handle;
        stack::with(|stack| {
            stack.sockets.remove(handle);
        });
    }
}
