//! TCP: [`TcpListener`] and [`TcpStream`], shaped like `std::net`'s.

use core::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use core::time::Duration;

use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp;
use smoltcp::wire::{IpAddress, IpEndpoint};

use crate::stack::{self, Stack};
use crate::{Error, Net, block};

/// Receive and send buffer sizes of a stream: the receive buffer bounds the window the peer
/// may fill, the send buffer how much a `write` may queue before it blocks.
pub const DEFAULT_BUFFER: usize = 16 * 1024;
/// Connections that may wait for `accept` (handshake done or under way).
pub const DEFAULT_BACKLOG: usize = 64;
/// Sockets a listener may have at once by default (see [`ListenOptions::max_connections`]).
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;

pub use crate::stack::ListenerStats;

/// How a listener's connections are set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListenOptions {
    /// Connections that may wait for `accept`. When it is full, a new request takes the
    /// place of the oldest one still in its handshake, else of the oldest established one
    /// without a whole request (see [`TcpListener::set_complete_request`]); if there is
    /// none, the request (its SYN) is answered with a SYN cookie, keeping no state, and
    /// the connection takes a place only once the client completes the handshake (for a
    /// while after, every SYN is answered so, so that forged ones take no place).
    pub backlog: usize,
    /// Each connection's receive buffer, in bytes.
    pub rx_buffer: usize,
    /// Each connection's send buffer, in bytes.
    pub tx_buffer: usize,
    /// The most sockets the listener has at once: listening, waiting for `accept`,
    /// accepted and not yet dropped, or still closing after the drop. Requests beyond are
    /// treated as beyond the backlog. So the listener's memory never exceeds
    /// [`ListenOptions::worst_case_memory`], however many peers connect.
    pub max_connections: usize,
}

impl Default for ListenOptions {
    fn default() -> Self {
        Self {
            backlog: DEFAULT_BACKLOG,
            rx_buffer: DEFAULT_BUFFER,
            tx_buffer: DEFAULT_BUFFER,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

impl ListenOptions {
    /// The heap one connection's socket may take: its buffers, the socket's state and its
    /// slot in the stack's socket set (with room for the allocator's rounding).
    pub const fn memory_per_connection(&self) -> usize {
        self.rx_buffer + self.tx_buffer + 2 * core::mem::size_of::<tcp::Socket<'static>>() + 64
    }

    /// The most heap the listener's sockets may take at once.
    pub const fn worst_case_memory(&self) -> usize {
        self.max_connections
            .saturating_mul(self.memory_per_connection())
    }
}

/// A TCP socket listening for connections on a port of the interface.
#[derive(Debug)]
pub struct TcpListener {
    id: usize,
    port: u16,
    nonblocking: bool,
}

impl TcpListener {
    /// Listens on `port` with the default options.
    pub fn bind(net: &Net, port: u16) -> Result<Self, Error> {
        Self::bind_with(net, port, ListenOptions::default())
    }

    /// Listens on `port`.
    pub fn bind_with(_net: &Net, port: u16, options: ListenOptions) -> Result<Self, Error> {
        if port == 0
            || options.rx_buffer == 0
            || options.tx_buffer == 0
            || options.max_connections == 0
        {
            return Err(Error::InvalidInput);
        }
        let id = stack::with(|stack| {
            stack.listen(
                port,
                options.backlog,
                (options.rx_buffer, options.tx_buffer),
                options.max_connections,
            )
        })?;
        Ok(Self {
            id,
            port,
            nonblocking: false,
        })
    }

    /// Waits for a connection and returns it with the peer's address. In non-blocking mode,
    /// `Err(Error::WouldBlock)` when none is waiting.
    pub fn accept(&self) -> Result<(TcpStream, SocketAddr), Error> {
        let id = self.id;
        let handle = block(self.nonblocking, None, |stack| stack.accept(id).map(Ok))?;
        let stream = TcpStream::from_handle(handle);
        let peer = stream.peer_addr()?;
        Ok((stream, peer))
    }

    /// Like [`TcpListener::accept`], but takes the first waiting connection whose bytes
    /// received so far satisfy `wanted` (an app at its cap of connections takes one only
    /// if it can serve it at once, e.g. a whole request has arrived). The others keep their
    /// place; one without a whole request left waiting too long may be reset to make room
    /// for new requests (see [`TcpListener::set_complete_request`]).
    pub fn accept_if(
        &self,
        wanted: impl FnMut(&[u8]) -> bool,
    ) -> Result<(TcpStream, SocketAddr), Error> {
        let id = self.id;
        let mut wanted = wanted;
        let handle = block(self.nonblocking, None, |stack| {
            stack.accept_if(id, &mut wanted).map(Ok)
        })?;
        let stream = TcpStream::from_handle(handle);
        let peer = stream.peer_addr()?;
        Ok((stream, peer))
    }

    /// Like [`TcpListener::accept_if`] with the predicate given to
    /// [`TcpListener::set_complete_request`] (without one, any byte received): the first
    /// waiting connection that has sent a whole request. Cheaper when asked often: bytes
    /// found incomplete are not looked at again until more arrive.
    pub fn accept_complete(&self) -> Result<(TcpStream, SocketAddr), Error> {
        let id = self.id;
        let handle = block(self.nonblocking, None, |stack| {
            stack.accept_complete(id).map(Ok)
        })?;
        let stream = TcpStream::from_handle(handle);
        let peer = stream.peer_addr()?;
        Ok((stream, peer))
    }

    /// Accepted connections, forever (or until an error in non-blocking mode).
    pub fn incoming(&self) -> impl Iterator<Item = Result<TcpStream, Error>> + '_ {
        core::iter::from_fn(move || Some(self.accept().map(|(stream, _)| stream)))
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> Result<SocketAddr, Error> {
        let ip = stack::with(|stack| stack.address())
            .map(|cidr| cidr.address())
            .unwrap_or(Ipv4Addr::UNSPECIFIED);
        Ok(SocketAddr::V4(SocketAddrV4::new(ip, self.port)))
    }

    /// In non-blocking mode, `accept` returns `Err(Error::WouldBlock)` instead of waiting.
    pub fn set_nonblocking(&mut self, nonblocking: bool) -> Result<(), Error> {
        self.nonblocking = nonblocking;
        Ok(())
    }

    /// Tells the listener which waiting connections have sent a whole request: those whose
    /// bytes received so far satisfy `complete` (for HTTP, a head up to its blank line).
    /// When the backlog is full, such a connection keeps its place however long it waits
    /// for `accept`; one that has not (a slowloris client, one that sends nothing) may be
    /// reset for a newcomer. Without it, a connection that has sent any byte keeps its
    /// place.
    pub fn set_complete_request(&self, complete: fn(&[u8]) -> bool) {
        let id = self.id;
        stack::with(|stack| stack.set_complete_request(id, complete));
    }

    /// What the listener did with connection requests since it was bound.
    pub fn stats(&self) -> ListenerStats {
        let id = self.id;
        stack::with(|stack| stack.listener_stats(id))
    }
}

impl Drop for TcpListener {
    fn drop(&mut self) {
        let id = self.id;
        stack::with(|stack| stack.close_listener(id));
    }
}

/// Which halves of a stream [`TcpStream::shutdown`] closes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shutdown {
    /// Reads return end-of-file from now on.
    Read,
    /// Sends FIN after the queued data; writes fail from now on.
    Write,
    /// Both.
    Both,
}

/// A TCP connection. Dropping it closes it gracefully (FIN after the queued data); the
/// socket finishes closing in the background and is then reused.
#[derive(Debug)]
pub struct TcpStream {
    handle: SocketHandle,
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
    nonblocking: bool,
    read_shut: bool,
}

impl TcpStream {
    fn from_handle(handle: SocketHandle) -> Self {
        Self {
            handle,
            read_timeout: None,
            write_timeout: None,
            nonblocking: false,
            read_shut: false,
        }
    }

    /// Connects to `addr`, with default buffers, waiting at most `timeout` (if given) for
    /// the handshake.
    pub fn connect(
        _net: &Net,
        addr: SocketAddrV4,
        timeout: Option<Duration>,
    ) -> Result<Self, Error> {
        let handle = stack::with(|stack| -> Result<SocketHandle, Error> {
            let handle = stack.tcp_socket(DEFAULT_BUFFER, DEFAULT_BUFFER);
            let port = stack.ephemeral_port();
            let Stack { iface, sockets, .. } = stack;
            let remote = IpEndpoint::new(IpAddress::Ipv4(*addr.ip()), addr.port());
            match sockets
                .get_mut::<tcp::Socket>(handle)
                .connect(iface.context(), remote, port)
            {
                Ok(()) => Ok(handle),
                Err(_) => {
                    stack.release_tcp(handle);
                    Err(Error::Unreachable)
                }
            }
        })?;
        let stream = Self::from_handle(handle);
        block(false, timeout, |stack| {
            let socket = stack.tcp(handle);
            match socket.state() {
                tcp::State::SynSent | tcp::State::SynReceived => None,
                tcp::State::Closed => Some(Err(Error::ConnectionRefused)),
                _ => Some(Ok(())),
            }
        })?;
        Ok(stream)
    }

    /// Reads what has arrived, waiting for at least one byte. `Ok(0)` at end of stream (the
    /// peer closed its side, or `buf` is empty).
    pub fn read(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        if buf.is_empty() || self.read_shut {
            return Ok(0);
        }
        let handle = self.handle;
        block(self.nonblocking, self.read_timeout, |stack| {
            let socket = stack.tcp(handle);
            if socket.can_recv() {
                return Some(socket.recv_slice(buf).map_err(|_| Error::ConnectionReset));
            }
            if !socket.may_recv() {
                return Some(match socket.state() {
                    tcp::State::Closed => Err(Error::ConnectionReset),
                    _ => Ok(0),
                });
            }
            None
        })
    }

    /// Reads exactly `buf.len()` bytes; `Err(Error::UnexpectedEof)` if the stream ends first.
    pub fn read_exact(&mut self, mut buf: &mut [u8]) -> Result<(), Error> {
        while !buf.is_empty() {
            match self.read(buf)? {
                0 => return Err(Error::UnexpectedEof),
                n => buf = &mut buf[n..],
            }
        }
        Ok(())
    }

    /// Queues as much of `buf` as the send buffer takes, waiting for room for at least one
    /// byte, and sends it.
    pub fn write(&mut self, buf: &[u8]) -> Result<usize, Error> {
        if buf.is_empty() {
            return Ok(0);
        }
        let handle = self.handle;
        block(self.nonblocking, self.write_timeout, |stack| {
            let socket = stack.tcp(handle);
            if !socket.may_send() {
                return Some(Err(match socket.state() {
                    tcp::State::Closed => Error::ConnectionReset,
                    _ => Error::BrokenPipe,
                }));
            }
            if !socket.can_send() {
                return None;
            }
            let sent = socket.send_slice(buf).map_err(|_| Error::BrokenPipe);
            // Send now, not at the next wait.
            stack.poll();
            Some(sent)
        })
    }

    /// Writes all of `buf`, waiting for room as needed.
    pub fn write_all(&mut self, mut buf: &[u8]) -> Result<(), Error> {
        while !buf.is_empty() {
            let n = self.write(buf)?;
            buf = &buf[n..];
        }
        Ok(())
    }

    /// Sends what is queued. Writes send at once already, so this only polls the stack.
    pub fn flush(&mut self) -> Result<(), Error> {
        stack::with(|stack| stack.poll());
        Ok(())
    }

    /// Closes the read half, the write half (FIN), or both.
    pub fn shutdown(&mut self, how: Shutdown) -> Result<(), Error> {
        let handle = self.handle;
        if matches!(how, Shutdown::Read | Shutdown::Both) {
            self.read_shut = true;
        }
        if matches!(how, Shutdown::Write | Shutdown::Both) {
            stack::with(|stack| {
                stack.tcp(handle).close();
                stack.poll();
            });
        }
        Ok(())
    }

    /// Closes the connection at once with a reset, discarding what is queued either way:
    /// its socket is free for a new connection as soon as the reset is sent, instead of
    /// after a graceful close the peer may drag out.
    pub fn abort(self) {
        let handle = self.handle;
        stack::with(|stack| stack.tcp(handle).abort());
        // Dropping releases the (now closed) socket and sends the reset.
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> Result<SocketAddr, Error> {
        let handle = self.handle;
        stack::with(|stack| stack.tcp(handle).remote_endpoint())
            .map(endpoint)
            .ok_or(Error::NotConnected)
    }

    /// This end's address.
    pub fn local_addr(&self) -> Result<SocketAddr, Error> {
        let handle = self.handle;
        stack::with(|stack| stack.tcp(handle).local_endpoint())
            .map(endpoint)
            .ok_or(Error::NotConnected)
    }

    /// How long `read` waits before `Err(Error::TimedOut)`; `None` waits forever.
    pub fn set_read_timeout(&mut self, timeout: Option<Duration>) -> Result<(), Error> {
        if timeout == Some(Duration::ZERO) {
            return Err(Error::InvalidInput);
        }
        self.read_timeout = timeout;
        Ok(())
    }

    /// How long `write` waits for room before `Err(Error::TimedOut)`.
    pub fn set_write_timeout(&mut self, timeout: Option<Duration>) -> Result<(), Error> {
        if timeout == Some(Duration::ZERO) {
            return Err(Error::InvalidInput);
        }
        self.write_timeout = timeout;
        Ok(())
    }

    pub fn read_timeout(&self) -> Option<Duration> {
        self.read_timeout
    }

    pub fn write_timeout(&self) -> Option<Duration> {
        self.write_timeout
    }

    /// In non-blocking mode, `read` and `write` return `Err(Error::WouldBlock)` instead of
    /// waiting.
    pub fn set_nonblocking(&mut self, nonblocking: bool) -> Result<(), Error> {
        self.nonblocking = nonblocking;
        Ok(())
    }

    /// Disables Nagle's algorithm: small writes go out at once even while earlier data is
    /// unacknowledged.
    pub fn set_nodelay(&mut self, nodelay: bool) -> Result<(), Error> {
        let handle = self.handle;
        stack::with(|stack| stack.tcp(handle).set_nagle_enabled(!nodelay));
        Ok(())
    }

    /// Bytes queued for sending and not yet acknowledged.
    pub fn send_queue(&self) -> usize {
        let handle = self.handle;
        stack::with(|stack| stack.tcp(handle).send_queue())
    }
}

impl Drop for TcpStream {
    fn drop(&mut self) {
        let handle = self.handle;
        stack::with(|stack| {
            stack.release_tcp(handle);
            stack.poll();
        });
    }
}

fn endpoint(endpoint: IpEndpoint) -> SocketAddr {
    match endpoint.addr {
        IpAddress::Ipv4(ip) => SocketAddr::V4(SocketAddrV4::new(ip, endpoint.port)),
    }
}
