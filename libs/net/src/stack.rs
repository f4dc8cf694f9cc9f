//! The one network stack of the kernel: the device, smoltcp's interface and sockets, the
//! listeners' accept queues, and the waiting.
//!
//! Everything lives behind one lock, taken with interrupts disabled (a thread preempted
//! while holding it would block every other). The device's interrupt handler does not take
//! it: it only records that something happened; the waiting code acknowledges the device.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec;
use alloc::vec::Vec;
use core::net::Ipv4Addr;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use core::time::Duration;

use smoltcp::iface::{Interface, PollIngressSingleResult, PollResult, SocketHandle, SocketSet};
use smoltcp::socket::{dhcpv4, tcp};
use smoltcp::time::Instant;
use smoltcp::wire::{IpCidr, Ipv4Cidr};

use crate::gate::Tuple;
use crate::nic::Nic;
use crate::platform::Platform;

/// How long a stream the app dropped may take to finish closing before it is aborted.
const LINGER: Duration = Duration::from_secs(30);
/// Closed sockets kept for reuse (their buffers are the expensive part).
const POOL_MAX: usize = 256;
/// Listening sockets kept ready per listener, so that a burst of connection requests
/// within one batch of frames finds a listener for each (smoltcp answers a SYN that finds
/// none with a reset).
const READY_LISTENERS: usize = 16;
/// How long a connection request may stay half-open (SYN received, handshake not done):
/// a SYN from a forged address is never completed and would hold its socket forever.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// A half-open request younger than this is not evicted to make room for a new one: its
/// SYN-ACK must get the chance to go out and be answered (a peer on the path answers well
/// within it), else under a burst every request would evict the one before it. Short, so
/// that a flood of forged SYNs needs few sockets to be outlasted: at 200 SYNs a second, 20.
pub(crate) const EVICTABLE_AFTER: Duration = Duration::from_millis(100);
/// A connection that finished its handshake but has waited this long for `accept` without
/// sending a whole request may be reset to make room for a new request when the backlog is
/// full: the app at its cap accepts only connections worth serving (see
/// [`Stack::accept_if`]), and a backlog full of those it leaves would refuse every
/// newcomer. One that has sent a whole request keeps its place however long it waits: it
/// is what the app is there to serve. Short, as slowloris clients that are reset come back
/// at once: each holds a socket this long per visit.
pub(crate) const WAITING_EVICTABLE_AFTER: Duration = Duration::from_millis(250);
/// An accepted connection whose peer stops answering (unacknowledged data, or keep-alive
/// probes) for this long is aborted.
pub(crate) const STREAM_TIMEOUT: Duration = Duration::from_secs(120);
/// How often an idle accepted connection probes its peer.
pub(crate) const KEEP_ALIVE: Duration = Duration::from_secs(45);
/// A non-blocking call that finds nothing to do polls the stack only if the device has a
/// frame, or if the last poll is this old (for the stack's timers: retransmissions,
/// delayed ACKs). A poll walks every socket, and an event loop asks each of its
/// connections in turn: a poll per ask made the loop's work grow with the square of the
/// connections (slowloris clients holding many of them).
const TIMER_POLL_INTERVAL: Duration = Duration::from_millis(1);
/// How often a poll also returns closed sockets to their pools and expires half-open
/// requests: each walks the backlog and the closing sockets, and doing it at every poll
/// (every frame) cost more under slowloris than the frame itself. Their deadlines are
/// seconds; a socket that finished closing waits this long at most to be reused.
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_millis(10);

pub(crate) struct Stack {
    pub(crate) iface: Interface,
    pub(crate) sockets: SocketSet<'static>,
    pub(crate) nic: Nic,
    pub(crate) platform: &'static dyn Platform,
    dhcp: Option<SocketHandle>,
    pub(crate) listeners: Vec<Option<Listener>>,
    /// Streams the app has dropped, still closing, with when they were dropped.
    released: Vec<(SocketHandle, Instant)>,
    /// Closed TCP sockets ready to be reused, with their buffer sizes (those of no
    /// listener: a listener keeps its own).
    pool: Vec<(SocketHandle, usize, usize)>,
    /// The listener each socket made for a listener belongs to, until it is freed.
    owners: BTreeMap<SocketHandle, usize>,
    /// Sockets of connections opened from a SYN cookie, whose segments the gate
    /// translates until the socket is recycled.
    cookie_sockets: BTreeMap<SocketHandle, Tuple>,
    /// Polls since boot: each walks every socket, so this is the stack's work (`/stats`).
    pub(crate) polls: u64,
    last_poll: Instant,
    /// When a poll next runs [`Stack::reap`] and [`Stack::expire_half_open`].
    next_housekeeping: Instant,
    /// The gate's handover arrivals when room for them was last sought.
    handover_arrivals_seen: u64,
}

/// A listening port: sockets waiting for a connection, and connections waiting for
/// `accept`. Every socket made for it counts against `max_sockets` until it is freed, so
/// that its buffers never take more than `max_sockets` times their size.
pub(crate) struct Listener {
    pub(crate) port: u16,
    pub(crate) backlog: usize,
    pub(crate) buffers: (usize, usize),
    max_sockets: usize,
    /// Sockets made for this listener and not freed: listening, pending, accepted,
    /// closing, or closed in `pool`.
    allocated: usize,
    /// Closed sockets of this listener, ready to listen again.
    pool: Vec<SocketHandle>,
    listening: Vec<SocketHandle>,
    /// Connection requests in arrival order.
    pending: VecDeque<Pending>,
    /// Whether a waiting connection's bytes so far are a whole request (the app's
    /// predicate); without one, any byte is.
    complete: Option<fn(&[u8]) -> bool>,
    pub(crate) stats: ListenerStats,
}

/// A connection request waiting for `accept`.
struct Pending {
    handle: SocketHandle,
    /// When it left the listening state.
    since: Instant,
    /// How many received bytes the listener's predicate last found not to be a whole
    /// request: until more arrive, the answer stands (the app has read none of them), so
    /// the backlog's choice of whom to evict does not peek at and parse every waiting
    /// connection's bytes again (under slowloris, a backlog full of them, at every frame).
    incomplete_at: Option<usize>,
}

impl Pending {
    fn new(handle: SocketHandle, since: Instant) -> Self {
        Self {
            handle,
            since,
            incomplete_at: None,
        }
    }
}

/// Where a waiting request is, for the backlog's choice of whom to evict: asks `complete`
/// only about bytes it has not yet found incomplete (see [`Pending::incomplete_at`]).
fn classify(
    socket: &mut tcp::Socket<'_>,
    incomplete_at: &mut Option<usize>,
    complete: impl FnOnce(&[u8]) -> bool,
    scratch: &mut Vec<u8>,
) -> Waiting {
    match socket.state() {
        tcp::State::SynReceived => Waiting::HalfOpen,
        state if !is_established_or_later(state) => Waiting::Kept,
        _ if *incomplete_at == Some(socket.recv_queue()) => Waiting::Incomplete,
        _ if complete(peek_received(socket, scratch)) => Waiting::Kept,
        _ => {
            *incomplete_at = Some(socket.recv_queue());
            Waiting::Incomplete
        }
    }
}

/// What a listener did with connection requests, and its sockets now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ListenerStats {
    /// Sockets the listener has now (listening, waiting, accepted, closing, or closed and
    /// kept for reuse): at most its `max_connections`.
    pub sockets: usize,
    /// Connection requests waiting for `accept` (half-open or established).
    pub pending: usize,
    /// Connections handed to the app by `accept`.
    pub accepted: u64,
    /// Half-open requests dropped after [`HANDSHAKE_TIMEOUT`] without the handshake's
    /// last ACK (or reset by the peer before `accept`).
    pub expired: u64,
    /// Half-open requests dropped, oldest first, to make room for a new one when the
    /// backlog or the socket budget was full.
    pub evicted: u64,
    /// Connections past their handshake but without a whole request reset, oldest first,
    /// after waiting for `accept` longer than [`WAITING_EVICTABLE_AFTER`], to make room
    /// for a new request.
    pub waiting_evicted: u64,
    /// Connection requests (SYNs) dropped unanswered because nothing could make room for
    /// them: the client sends its SYN again, and gets in once there is room. With SYN
    /// cookies (always, in the kernel) only handshakes completed by cookie while too
    /// many others waited for a socket.
    pub syn_dropped: u64,
    /// SYNs answered with a cookie (the listener had no room, or had none lately).
    pub syn_cookies: u64,
    /// Connections opened from a cookie (the client completed the handshake).
    pub cookie_connections: u64,
}

/// What a device tells of the frames sent in one egress pass (one visit of every socket,
/// each sending at most one frame).
pub(crate) trait EgressPass {
    /// A pass begins.
    fn start_pass(&mut self);
    /// Whether a socket that sent a frame in this pass may have more to send now, or the
    /// device refused a frame (sockets after it were not visited).
    fn may_have_more(&self) -> bool;
}

/// Sends what the sockets have queued: passes over every socket until a pass leaves none
/// with more to send. Each pass visits every socket, so the one that would only find that
/// nothing is left is skipped: most polls send a frame or two (an answer, an ACK) and then
/// took two walks over every socket, under slowloris ~180 of them, at every frame. Returns
/// whether a socket sent anything.
fn egress<D: smoltcp::phy::Device + EgressPass>(
    iface: &mut Interface,
    device: &mut D,
    sockets: &mut SocketSet<'_>,
    now: Instant,
) -> bool {
    let mut sent = false;
    loop {
        device.start_pass();
        if iface.poll_egress(now, device, sockets) == PollResult::None {
            return sent;
        }
        sent = true;
        if !device.may_have_more() {
            return sent;
        }
    }
}

/// Whether the socket that sent `frame` (an Ethernet frame) may have more to send at once:
/// a TCP segment with data and without PSH or FIN (smoltcp marks the segment that empties
/// its send buffer with one; one without stopped at the segment size, the window or the
/// end of the send ring). A segment without data (an ACK, a SYN, a FIN, a reset) is all
/// its socket had to send, or the window allows nothing more. Any other frame (ARP, UDP,
/// DHCP, ICMP): maybe.
pub(crate) fn may_be_followed(frame: &[u8]) -> bool {
    use smoltcp::wire::{EthernetFrame, EthernetProtocol, IpProtocol, Ipv4Packet, TcpPacket};
    let Ok(ethernet) = EthernetFrame::new_checked(frame) else {
        return true;
    };
    if ethernet.ethertype() != EthernetProtocol::Ipv4 {
        return true;
    }
    let Ok(ip) = Ipv4Packet::new_checked(ethernet.payload()) else {
        return true;
    };
    if ip.next_header() != IpProtocol::Tcp {
        return true;
    }
    let Ok(tcp) = TcpPacket::new_checked(ip.payload()) else {
        return true;
    };
    !tcp.payload().is_empty() && !tcp.psh() && !tcp.fin()
}

/// Where a connection request waiting for `accept` is, for the backlog's choice of whom to
/// evict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Waiting {
    /// In the handshake (SYN received; a forged one stays so until it expires).
    HalfOpen,
    /// Past the handshake, without a whole request yet.
    Incomplete,
    /// Past the handshake with a whole request, or failed (dropped by
    /// `expire_half_open`): never evicted.
    Kept,
}

/// Which waiting request, given in arrival order with their ages, makes room for a new
/// one: the oldest half-open one of at least [`EVICTABLE_AFTER`], else the oldest
/// incomplete one of at least [`WAITING_EVICTABLE_AFTER`], else none (the new request
/// waits). When the newcomer is a handshake completed by SYN cookie that brought a whole
/// request, the oldest incomplete one goes however young: a whole request is what the
/// app serves, and it never gives its place up in turn, so this cannot churn.
fn eviction_candidate(
    waiting: &[(Waiting, smoltcp::time::Duration)],
    for_whole_request: bool,
) -> Option<usize> {
    let oldest = |kind, after| {
        waiting
            .iter()
            .position(|&(state, age)| state == kind && age >= smoltcp_duration(after))
    };
    let incomplete_after = match for_whole_request {
        true => Duration::ZERO,
        false => WAITING_EVICTABLE_AFTER,
    };
    oldest(Waiting::HalfOpen, EVICTABLE_AFTER)
        .or_else(|| oldest(Waiting::Incomplete, incomplete_after))
}

static STACK: spin::Mutex<Option<Stack>> = spin::Mutex::new(None);
/// Set by the interrupt handler, cleared by the waiting code.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static INTERRUPTS: AtomicU64 = AtomicU64::new(0);
/// Threads blocked in `wait` (only ever more than one under a scheduler).
static WAITERS: AtomicUsize = AtomicUsize::new(0);
/// Counts the polls that made progress: a thread about to wait compares it with what it saw
/// at its last poll, so progress another thread made in between (under a preemptive
/// scheduler) is not slept through.
static PROGRESS: AtomicU64 = AtomicU64::new(0);
/// A poll made progress another waiting thread may need: wake them after the lock.
static WAKE_WAITERS: AtomicBool = AtomicBool::new(false);
/// Whether the device's interrupt is routed (else the stack polls).
static INTERRUPT_DRIVEN: AtomicBool = AtomicBool::new(false);

/// Runs `f` on the stack, with interrupts disabled. If a poll inside made progress while
/// threads wait for the network, they are woken once the lock is released.
pub(crate) fn with<R>(f: impl FnOnce(&mut Stack) -> R) -> R {
    let result = unikernel_arch::interrupts::without(|| {
        let mut stack = STACK.lock();
        f(stack
            .as_mut()
            .expect("the network is initialised before any socket exists"))
    });
    if WAKE_WAITERS.load(Ordering::Relaxed) && WAKE_WAITERS.swap(false, Ordering::Relaxed) {
        unikernel_arch::wait::wake();
    }
    result
}

pub(crate) fn install(stack: Stack) {
    *STACK.lock() = Some(stack);
}

/// The device's interrupt handler: wakes whoever waits (the thread that halted, or every
/// thread a scheduler blocked in `wait`, on whichever CPU). It never takes [`STACK`], so
/// another CPU holding the stack never holds it up.
pub(crate) fn on_interrupt() {
    #[cfg(target_os = "none")]
    crate::device::ack_isr();
    INTERRUPTED.store(true, Ordering::Release);
    INTERRUPTS.fetch_add(1, Ordering::Relaxed);
    unikernel_arch::wait::wake();
}

pub(crate) fn set_interrupt_driven(on: bool) {
    INTERRUPT_DRIVEN.store(on, Ordering::Relaxed);
}

pub(crate) fn interrupt_driven() -> bool {
    INTERRUPT_DRIVEN.load(Ordering::Relaxed)
}

/// The progress count, for [`wait`]'s `seen` (read it under the lock, after polling).
pub(crate) fn progress() -> u64 {
    PROGRESS.load(Ordering::Relaxed)
}

pub(crate) fn interrupts() -> u64 {
    INTERRUPTS.load(Ordering::Relaxed)
}

pub(crate) fn instant(since_boot: Duration) -> Instant {
    Instant::from_micros(since_boot.as_micros() as i64)
}

impl Stack {
    pub(crate) fn new(iface: Interface, nic: Nic, platform: &'static dyn Platform) -> Self {
        Self {
            iface,
            sockets: SocketSet::new(Vec::new()),
            nic,
            platform,
            dhcp: None,
            listeners: Vec::new(),
            released: Vec::new(),
            pool: Vec::new(),
            owners: BTreeMap::new(),
            cookie_sockets: BTreeMap::new(),
            polls: 0,
            last_poll: Instant::ZERO,
            next_housekeeping: Instant::ZERO,
            handover_arrivals_seen: 0,
        }
    }

    pub(crate) fn now(&self) -> Instant {
        instant(self.platform.now())
    }

    pub(crate) fn set_address(&mut self, cidr: Ipv4Cidr, gateway: Option<Ipv4Addr>) {
        self.iface.update_ip_addrs(|addrs| {
            addrs.clear();
            let _ = addrs.push(IpCidr::Ipv4(cidr));
        });
        let routes = self.iface.routes_mut();
        routes.remove_default_ipv4_route();
        if let Some(gateway) = gateway {
            let _ = routes.add_default_ipv4_route(gateway);
        }
    }

    pub(crate) fn start_dhcp(&mut self) {
        let handle = self.sockets.add(dhcpv4::Socket::new());
        self.dhcp = Some(handle);
    }

    /// The interface's address, once it has one.
    pub(crate) fn address(&self) -> Option<Ipv4Cidr> {
        self.iface
            .ip_addrs()
            .iter()
            .map(|cidr| match cidr {
                IpCidr::Ipv4(cidr) => *cidr,
            })
            .next()
    }

    pub(crate) fn gateway(&mut self) -> Option<Ipv4Addr> {
        match self.iface.routes_mut().get_default_ipv4_route()?.via_router {
            smoltcp::wire::IpAddress::Ipv4(router) => Some(router),
        }
    }

    /// Processes received frames, sends what the sockets have queued, runs the timers.
    /// Returns whether any socket may have changed.
    pub(crate) fn poll(&mut self) -> bool {
        let now = self.now();
        self.polls += 1;
        self.last_poll = now;
        let mut changed = false;
        let mut received = false;
        self.iface.poll_maintenance(now);
        // A handshake completed by SYN cookie goes in twice: its replayed SYN, then (once
        // smoltcp's SYN-ACK went out, and was swallowed by the gate) the client's segment.
        loop {
            loop {
                match self
                    .iface
                    .poll_ingress_single(now, &mut self.nic, &mut self.sockets)
                {
                    PollIngressSingleResult::None => break,
                    PollIngressSingleResult::PacketProcessed => received = true,
                    PollIngressSingleResult::SocketStateChanged => changed = true,
                }
                // A connection request takes a listening socket: put another in its place
                // before the next frame (which may be the next request).
                self.sweep_listeners();
            }
            changed |= egress(&mut self.iface, &mut self.nic, &mut self.sockets, now);
            self.make_room_for_handovers();
            if !self.nic.gate.has_injected() {
                break;
            }
        }
        if self.dhcp.is_some() {
            self.poll_dhcp();
        }
        if now >= self.next_housekeeping {
            self.next_housekeeping = now + smoltcp_duration(HOUSEKEEPING_INTERVAL);
            self.reap(now);
            self.expire_half_open(now);
        }
        // Frames this thread took off the device may be what another thread waits for
        // (the device will not interrupt for them again).
        if changed || received {
            PROGRESS.fetch_add(1, Ordering::Relaxed);
            if WAITERS.load(Ordering::Relaxed) != 0 {
                WAKE_WAITERS.store(true, Ordering::Relaxed);
            }
        }
        changed
    }

    /// Whether a poll now could let a socket go on: the device has a frame (or the gate
    /// one to replay), or the timers may have run since the last poll.
    pub(crate) fn poll_may_help(&self) -> bool {
        self.nic.has_rx() || self.now() - self.last_poll >= smoltcp_duration(TIMER_POLL_INTERVAL)
    }

    fn poll_dhcp(&mut self) {
        let handle = self.dhcp.expect("checked by the caller");
        let event = match self.sockets.get_mut::<dhcpv4::Socket>(handle).poll() {
            None => return,
            Some(dhcpv4::Event::Configured(config)) => Some((config.address, config.router)),
            Some(dhcpv4::Event::Deconfigured) => None,
        };
        match event {
            Some((address, router)) => {
                let cidr = address;
                log::info!(
                    "net: leased {cidr}{} by DHCP",
                    match router {
                        Some(router) => alloc::format!(" via {router}"),
                        None => alloc::string::String::new(),
                    }
                );
                self.set_address(cidr, router);
            }
            None => {
                log::warn!("net: the DHCP lease was lost");
                self.iface.update_ip_addrs(|addrs| addrs.clear());
                self.iface.routes_mut().remove_default_ipv4_route();
            }
        }
    }

    /// When the stack next needs to run (a retransmission, a delayed ACK, a timeout).
    pub(crate) fn next_deadline(&mut self) -> Option<Duration> {
        let now = self.now();
        self.iface
            .poll_at(now, &self.sockets)
            .map(|at| Duration::from_micros(at.total_micros().max(0) as u64))
            .map(|at| match self.released.is_empty() {
                true => at,
                // Sockets lingering after a close are checked on a coarse beat.
                false => at.min(Duration::from_micros(now.total_micros() as u64) + LINGER),
            })
    }

    // ---- TCP sockets ----------------------------------------------------------------

    /// A TCP socket with `rx` and `tx` bytes of buffer: a closed one from the pool, or new.
    pub(crate) fn tcp_socket(&mut self, rx: usize, tx: usize) -> SocketHandle {
        if let Some(index) = self
            .pool
            .iter()
            .rposition(|&(_, pool_rx, pool_tx)| (pool_rx, pool_tx) == (rx, tx))
        {
            return self.pool.swap_remove(index).0;
        }
        self.new_tcp_socket(rx, tx)
    }

    fn new_tcp_socket(&mut self, rx: usize, tx: usize) -> SocketHandle {
        let socket = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; rx]),
            tcp::SocketBuffer::new(vec![0; tx]),
        );
        self.sockets.add(socket)
    }

    pub(crate) fn tcp(&mut self, handle: SocketHandle) -> &mut tcp::Socket<'static> {
        self.sockets.get_mut::<tcp::Socket>(handle)
    }

    /// The app is done with `handle`: it closes in the background, and is then reused.
    pub(crate) fn release_tcp(&mut self, handle: SocketHandle) {
        let now = self.now();
        let socket = self.tcp(handle);
        socket.close();
        self.released.push((handle, now));
    }

    /// Returns finished sockets to the pool and aborts those that linger too long.
    fn reap(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.released.len() {
            let (handle, since) = self.released[i];
            let socket = self.sockets.get_mut::<tcp::Socket>(handle);
            match socket.state() {
                // TIME-WAIT only guards against stray segments of the old connection;
                // a socket reused for listening answers those with a reset.
                tcp::State::Closed | tcp::State::TimeWait => {
                    self.released.swap_remove(i);
                    self.recycle(handle);
                    continue;
                }
                _ if now - since > smoltcp_duration(LINGER) => {
                    socket.abort();
                }
                _ => {}
            }
            i += 1;
        }
    }

    fn recycle(&mut self, handle: SocketHandle) {
        if let Some(tuple) = self.cookie_sockets.remove(&handle) {
            self.nic.gate.forget(&tuple);
        }
        let socket = self.sockets.get_mut::<tcp::Socket>(handle);
        socket.abort();
        let sizes = (socket.recv_capacity(), socket.send_capacity());
        if let Some(&id) = self.owners.get(&handle)
            && let Some(listener) = self.listeners[id].as_mut()
        {
            // Still counted in the listener's `allocated`: reused for its next request.
            listener.pool.push(handle);
            return;
        }
        self.owners.remove(&handle);
        if self.pool.len() < POOL_MAX {
            self.pool.push((handle, sizes.0, sizes.1));
        } else {
            self.sockets.remove(handle);
        }
    }

    pub(crate) fn ephemeral_port(&mut self) -> u16 {
        crate::ephemeral_port()
    }

    // ---- listeners ------------------------------------------------------------------

    pub(crate) fn listen(
        &mut self,
        port: u16,
        backlog: usize,
        buffers: (usize, usize),
        max_sockets: usize,
    ) -> Result<usize, crate::Error> {
        if self.listeners.iter().flatten().any(|l| l.port == port) {
            return Err(crate::Error::AddrInUse);
        }
        let listener = Listener {
            port,
            backlog: backlog.max(1),
            buffers,
            max_sockets: max_sockets.max(1),
            allocated: 0,
            pool: Vec::new(),
            listening: Vec::new(),
            pending: VecDeque::new(),
            complete: None,
            stats: ListenerStats::default(),
        };
        let id = match self.listeners.iter().position(Option::is_none) {
            Some(free) => free,
            None => {
                self.listeners.push(None);
                self.listeners.len() - 1
            }
        };
        self.listeners[id] = Some(listener);
        self.refill(id);
        Ok(id)
    }

    /// Sets how listener `id` tells a waiting connection that has sent a whole request.
    pub(crate) fn set_complete_request(&mut self, id: usize, complete: fn(&[u8]) -> bool) {
        if let Some(listener) = self.listeners[id].as_mut() {
            listener.complete = Some(complete);
            self.nic.gate.set_complete_request(listener.port, complete);
        }
    }

    /// Tops up a listener's listening sockets, within its backlog and its socket budget.
    /// When both leave none listening, the oldest half-open request makes room, as a SYN
    /// backlog does: a flood of forged requests cannot shut the port. If nothing can make
    /// room, the gate answers new requests with SYN cookies until something can.
    fn refill(&mut self, id: usize) {
        self.fill(id);
        if let Some(listener) = self.listeners[id].as_ref() {
            let (port, room) = (listener.port, listener.listening.len());
            self.nic.gate.set_room(port, room, listener.buffers.0);
        }
    }

    fn fill(&mut self, id: usize) {
        let mut reaped = false;
        loop {
            let Some(listener) = self.listeners[id].as_mut() else {
                return;
            };
            let ready = listener.listening.len();
            if ready >= READY_LISTENERS.min(listener.backlog) {
                return;
            }
            let backlog_full = ready + listener.pending.len() >= listener.backlog;
            if !backlog_full && listener.pool.is_empty() && !reaped && !self.released.is_empty() {
                // Sockets that finished closing since the last housekeeping are reused
                // before a new one is made or a waiting request evicted for want of one:
                // as if the housekeeping ran at every poll.
                reaped = true;
                let now = self.now();
                self.reap(now);
                continue;
            }
            let budget_spent =
                listener.pool.is_empty() && listener.allocated >= listener.max_sockets;
            if backlog_full || budget_spent {
                // Room for a new request only by dropping the oldest half-open one, or
                // else the one without a whole request that has waited longest.
                if ready > 0 || !self.evict_one(id) {
                    return;
                }
                continue;
            }
            let (port, (rx, tx)) = (listener.port, listener.buffers);
            let handle = match listener.pool.pop() {
                Some(handle) => handle,
                None => {
                    listener.allocated += 1;
                    let handle = self.new_tcp_socket(rx, tx);
                    self.owners.insert(handle, id);
                    handle
                }
            };
            let socket = self.tcp(handle);
            // A request from a forged address never completes its handshake: smoltcp
            // closes it after this long (see also `expire_half_open`).
            socket.set_timeout(Some(smoltcp_duration(HANDSHAKE_TIMEOUT)));
            socket.set_keep_alive(None);
            socket.set_nagle_enabled(true);
            if socket.listen(port).is_err() {
                self.recycle(handle);
                return;
            }
            self.listeners[id]
                .as_mut()
                .expect("checked above")
                .listening
                .push(handle);
        }
    }

    /// Makes room in listener `id`'s backlog (see [`eviction_candidate`]), returning the
    /// socket to the listener's pool. `false` if nothing may be evicted.
    fn evict_one(&mut self, id: usize) -> bool {
        let now = self.now();
        let Some(listener) = self.listeners[id].as_mut() else {
            return false;
        };
        let complete = listener.complete.unwrap_or(|bytes| !bytes.is_empty());
        let for_whole_request = self.nic.gate.has_waiting_request(listener.port);
        let sockets = &mut self.sockets;
        let mut scratch = Vec::new();
        let waiting: Vec<_> = listener
            .pending
            .iter_mut()
            .map(|entry| {
                let socket = sockets.get_mut::<tcp::Socket>(entry.handle);
                let state = classify(socket, &mut entry.incomplete_at, complete, &mut scratch);
                (state, now - entry.since)
            })
            .collect();
        let Some(index) = eviction_candidate(&waiting, for_whole_request) else {
            return false;
        };
        let handle = listener.pending.remove(index).expect("found above").handle;
        match waiting[index].0 {
            Waiting::HalfOpen => listener.stats.evicted += 1,
            _ => listener.stats.waiting_evicted += 1,
        }
        // Reused at once (a newcomer must find a listening socket in this very batch of
        // frames), so no reset is sent: the peer's next segment meets a listening socket,
        // which answers it with one. That peer has not sent a whole request, so it is not
        // waiting for an answer; and a slowloris client learns of it only when it next
        // trickles a byte, instead of coming back at once.
        self.recycle(handle);
        true
    }

    /// Drops the requests that failed before `accept` (reset, or timed out in the
    /// handshake) and aborts those half-open longer than [`HANDSHAKE_TIMEOUT`]. A listener
    /// left with no listening socket tries again to make room (a half-open request may
    /// have become old enough to evict), so that SYNs find one again instead of a cookie.
    fn expire_half_open(&mut self, now: Instant) {
        let timeout = smoltcp_duration(HANDSHAKE_TIMEOUT);
        for id in 0..self.listeners.len() {
            let Some(listener) = self.listeners[id].as_mut() else {
                continue;
            };
            let mut dropped = Vec::new();
            let sockets = &mut self.sockets;
            listener.pending.retain(|&Pending { handle, since, .. }| {
                let socket = sockets.get_mut::<tcp::Socket>(handle);
                let drop = match socket.state() {
                    tcp::State::Closed => true,
                    tcp::State::SynReceived => now - since > timeout,
                    tcp::State::Listen => false,
                    _ => {
                        set_stream_timeouts(socket);
                        false
                    }
                };
                if drop {
                    dropped.push(handle);
                }
                !drop
            });
            if dropped.is_empty() {
                if listener.listening.is_empty() {
                    self.refill(id);
                }
                continue;
            }
            listener.stats.expired += dropped.len() as u64;
            for handle in dropped {
                self.recycle(handle);
            }
            self.refill(id);
        }
    }

    /// Gives a handshake completed by cookie a listening socket when it arrives (or brings
    /// its request), rather than at the next housekeeping: SYNs need none (the gate
    /// answers them with cookies), but such a handshake goes in only through one, and its
    /// client waits. Room that comes with time (a waiting request old enough to evict, a
    /// socket closed) is found by the housekeeping; looking at every poll cost as much as
    /// the housekeeping did under slowloris.
    fn make_room_for_handovers(&mut self) {
        let arrivals = self.nic.gate.handover_arrivals();
        if arrivals == self.handover_arrivals_seen {
            return;
        }
        self.handover_arrivals_seen = arrivals;
        for id in 0..self.listeners.len() {
            if let Some(listener) = self.listeners[id].as_ref()
                && listener.listening.is_empty()
                && self.nic.gate.has_waiting_handover(listener.port)
            {
                self.refill(id);
            }
        }
    }

    /// Moves sockets that left the listening state to their listener's accept queue.
    fn sweep_listeners(&mut self) {
        let now = self.now();
        for id in 0..self.listeners.len() {
            let Some(listener) = self.listeners[id].as_mut() else {
                continue;
            };
            let mut moved = false;
            let mut i = 0;
            while i < listener.listening.len() {
                let handle = listener.listening[i];
                let socket = self.sockets.get::<tcp::Socket>(handle);
                if socket.state() != tcp::State::Listen {
                    if let (Some(local), Some(remote)) =
                        (socket.local_endpoint(), socket.remote_endpoint())
                        && self.nic.gate.is_handed_over(&Tuple::of(local, remote))
                    {
                        self.cookie_sockets.insert(handle, Tuple::of(local, remote));
                    }
                    listener.listening.swap_remove(i);
                    listener.pending.push_back(Pending::new(handle, now));
                    moved = true;
                } else {
                    i += 1;
                }
            }
            if moved {
                self.refill(id);
            }
        }
    }

    /// The first connection of listener `id` that finished its handshake.
    pub(crate) fn accept(&mut self, id: usize) -> Option<SocketHandle> {
        self.accept_if(id, |_| true)
    }

    /// The first connection of listener `id` that finished its handshake and whose
    /// received bytes so far (all of them, in order, however its receive ring holds them)
    /// satisfy `wanted`. Those passed over keep their place.
    pub(crate) fn accept_if(
        &mut self,
        id: usize,
        mut wanted: impl FnMut(&[u8]) -> bool,
    ) -> Option<SocketHandle> {
        let listener = self.listeners[id].as_mut()?;
        let sockets = &mut self.sockets;
        let mut scratch = Vec::new();
        // Requests still in the handshake (or back to listening after a reset) wait; those
        // that failed are dropped by `expire_half_open`.
        let index = listener.pending.iter().position(|entry| {
            let socket = sockets.get_mut::<tcp::Socket>(entry.handle);
            is_established_or_later(socket.state()) && wanted(peek_received(socket, &mut scratch))
        })?;
        Some(self.take_pending(id, index))
    }

    /// The first connection of listener `id` that finished its handshake and has sent a
    /// whole request by the listener's predicate ([`Stack::set_complete_request`]; without
    /// one, any byte). Like `accept_if` with that predicate, but bytes found incomplete
    /// are not looked at again until more arrive: an app at its cap asks at every turn of
    /// its loop, with a backlog full of slowloris connections.
    pub(crate) fn accept_complete(&mut self, id: usize) -> Option<SocketHandle> {
        let listener = self.listeners[id].as_mut()?;
        let complete = listener.complete.unwrap_or(|bytes| !bytes.is_empty());
        let sockets = &mut self.sockets;
        let mut scratch = Vec::new();
        let index = listener.pending.iter_mut().position(|entry| {
            let socket = sockets.get_mut::<tcp::Socket>(entry.handle);
            is_established_or_later(socket.state())
                && classify(socket, &mut entry.incomplete_at, complete, &mut scratch)
                    == Waiting::Kept
        })?;
        Some(self.take_pending(id, index))
    }

    /// Hands listener `id`'s waiting connection at `index` to the app.
    fn take_pending(&mut self, id: usize, index: usize) -> SocketHandle {
        let listener = self.listeners[id].as_mut().expect("the caller found it");
        let handle = listener.pending.remove(index).expect("found above").handle;
        listener.stats.accepted += 1;
        set_stream_timeouts(self.tcp(handle));
        self.refill(id);
        handle
    }

    /// Listener `id`'s counters and sockets.
    pub(crate) fn listener_stats(&self, id: usize) -> ListenerStats {
        self.listeners[id]
            .as_ref()
            .map_or(ListenerStats::default(), |listener| ListenerStats {
                sockets: listener.allocated,
                pending: listener.pending.len(),
                syn_dropped: self.nic.gate.dropped(listener.port),
                syn_cookies: self.nic.gate.cookies(listener.port).0,
                cookie_connections: self.nic.gate.cookies(listener.port).1,
                ..listener.stats
            })
    }

    pub(crate) fn close_listener(&mut self, id: usize) {
        let Some(listener) = self.listeners[id].take() else {
            return;
        };
        self.nic.gate.remove(listener.port);
        // Its accepted streams live on; they go to the shared pool (or are freed) when
        // they finish.
        self.owners.retain(|_, owner| *owner != id);
        for handle in listener.pool {
            self.sockets.remove(handle);
        }
        for handle in listener.listening {
            self.recycle(handle);
        }
        for Pending { handle, .. } in listener.pending {
            let socket = self.tcp(handle);
            socket.abort();
            self.released.push((handle, Instant::ZERO));
        }
    }
}

/// The bytes a socket has received and not yet handed out, in order. smoltcp's receive
/// buffer is a ring and its `peek` lends only the part up to the ring's end: where the
/// bytes wrap it, both parts are copied into `scratch`; otherwise they are lent in place.
fn peek_received<'a>(socket: &'a mut tcp::Socket<'_>, scratch: &'a mut Vec<u8>) -> &'a [u8] {
    let queued = socket.recv_queue();
    let in_place = socket
        .peek(queued)
        .is_ok_and(|contiguous| contiguous.len() == queued);
    if in_place {
        return socket.peek(queued).unwrap_or_default();
    }
    scratch.clear();
    scratch.resize(queued, 0);
    // `peek_slice` copies from both parts of the ring.
    let copied = socket.peek_slice(scratch).unwrap_or(0);
    scratch.truncate(copied);
    scratch
}

/// Whether a listener's request finished its handshake (and did not fail since).
fn is_established_or_later(state: tcp::State) -> bool {
    !matches!(
        state,
        tcp::State::SynReceived | tcp::State::Listen | tcp::State::Closed
    )
}

/// A connection past its handshake gives up on a peer that stops answering (its data
/// unacknowledged, or keep-alive probes unanswered) after [`STREAM_TIMEOUT`] rather than
/// [`HANDSHAKE_TIMEOUT`]. Set once: setting keep-alive restarts its timer.
fn set_stream_timeouts(socket: &mut tcp::Socket<'_>) {
    let timeout = Some(smoltcp_duration(STREAM_TIMEOUT));
    if socket.timeout() != timeout {
        socket.set_timeout(timeout);
        socket.set_keep_alive(Some(smoltcp_duration(KEEP_ALIVE)));
    }
}

fn smoltcp_duration(duration: Duration) -> smoltcp::time::Duration {
    smoltcp::time::Duration::from_micros(duration.as_micros() as u64)
}

/// Waits until the device has news or `deadline` (time since boot) passes. The stack must
/// have been polled just before, without progress; `seen` is [`progress`] then, and the
/// wait ends at once if another thread made progress since.
///
/// Under a scheduler (`unikernel_arch::wait`), only the calling thread blocks and the
/// others run; the device's interrupt, or a poll by another thread that took frames off the
/// device, wakes it, on any CPU (the scheduler's IPI carries the wake-up to a CPU other than
/// the interrupt's, and its block returns at once for a wake-up that came after this look
/// at the device). Without one, the CPU halts until an interrupt.
pub(crate) fn wait(deadline: Option<Duration>, seen: u64) {
    if !interrupt_driven() {
        // Without the device's interrupt, waiting is polling (letting other threads run).
        unikernel_arch::wait::relax();
        return;
    }
    let were_enabled = unikernel_arch::interrupts::are_enabled();
    unikernel_arch::interrupts::disable();
    let (platform, next) = {
        let mut stack = STACK.lock();
        let stack = stack.as_mut().expect("initialised");
        let next = stack.next_deadline();
        stack.nic.enable_interrupts();
        if stack.nic.has_rx() || progress() != seen {
            if WAITERS.load(Ordering::Relaxed) == 0 {
                stack.nic.ack_and_quiet();
            }
            if were_enabled {
                unikernel_arch::interrupts::enable();
            }
            return;
        }
        (stack.platform, next)
    };
    let until = match (deadline, next) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    if !INTERRUPTED.swap(false, Ordering::Acquire) {
        // Interrupts stay disabled from the look at the device to the block (or `sti;
        // hlt`), so the interrupt that ends the wait cannot slip in between.
        WAITERS.fetch_add(1, Ordering::Relaxed);
        if !unikernel_arch::wait::block(until) {
            platform.wait(until);
        }
        WAITERS.fetch_sub(1, Ordering::Relaxed);
    }
    INTERRUPTED.store(false, Ordering::Relaxed);
    {
        let mut stack = STACK.lock();
        if let Some(stack) = stack.as_mut() {
            // The last waiter out lets the device stop interrupting: whoever runs now polls.
            if WAITERS.load(Ordering::Relaxed) == 0 {
                stack.nic.ack_and_quiet();
            } else {
                stack.nic.ack();
            }
        }
    }
    if were_enabled {
        unikernel_arch::interrupts::enable();
    } else {
        unikernel_arch::interrupts::disable();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(ms: u64) -> smoltcp::time::Duration {
        smoltcp::time::Duration::from_millis(ms)
    }

    /// smoltcp's loopback device, which counts the frames sent and tells egress passes
    /// apart as the NIC does.
    struct Tracked {
        loopback: smoltcp::phy::Loopback,
        sent: usize,
        may_have_more: bool,
    }

    struct TrackedTx<'a> {
        inner: <smoltcp::phy::Loopback as smoltcp::phy::Device>::TxToken<'a>,
        sent: &'a mut usize,
        may_have_more: &'a mut bool,
    }

    impl smoltcp::phy::TxToken for TrackedTx<'_> {
        fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
            let (sent, more) = (self.sent, self.may_have_more);
            self.inner.consume(len, |frame| {
                let result = f(frame);
                *sent += 1;
                *more |= may_be_followed(frame);
                result
            })
        }
    }

    impl smoltcp::phy::Device for Tracked {
        type RxToken<'a> = <smoltcp::phy::Loopback as smoltcp::phy::Device>::RxToken<'a>;
        type TxToken<'a> = TrackedTx<'a>;

        fn receive(&mut self, now: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
            let (rx, tx) = self.loopback.receive(now)?;
            let tx = TrackedTx {
                inner: tx,
                sent: &mut self.sent,
                may_have_more: &mut self.may_have_more,
            };
            Some((rx, tx))
        }

        fn transmit(&mut self, now: Instant) -> Option<Self::TxToken<'_>> {
            Some(TrackedTx {
                inner: self.loopback.transmit(now)?,
                sent: &mut self.sent,
                may_have_more: &mut self.may_have_more,
            })
        }

        fn capabilities(&self) -> smoltcp::phy::DeviceCapabilities {
            let mut capabilities = self.loopback.capabilities();
            capabilities.max_transmission_unit = FRAME;
            capabilities
        }
    }

    /// Frames of at most 16 bytes of TCP data (behind 14 + 20 + 20 bytes of headers), so
    /// that an answer takes several segments.
    const FRAME: usize = 70;
    const MSS: usize = 16;

    impl EgressPass for Tracked {
        fn start_pass(&mut self) {
            self.may_have_more = false;
        }

        fn may_have_more(&self) -> bool {
            self.may_have_more
        }
    }

    /// A server socket with a `RING`-byte receive ring and a client connected to it, over
    /// smoltcp's loopback device.
    struct Pair {
        iface: Interface,
        device: Tracked,
        sockets: SocketSet<'static>,
        server: SocketHandle,
        client: SocketHandle,
        now: Instant,
    }

    const RING: usize = 64;

    impl Pair {
        fn connected() -> Self {
            use smoltcp::wire::{EthernetAddress, IpAddress};
            let mut device = Tracked {
                loopback: smoltcp::phy::Loopback::new(smoltcp::phy::Medium::Ethernet),
                sent: 0,
                may_have_more: false,
            };
            let config = smoltcp::iface::Config::new(EthernetAddress([2, 0, 0, 0, 0, 1]).into());
            let mut iface = Interface::new(config, &mut device, Instant::ZERO);
            iface.update_ip_addrs(|addrs| {
                addrs
                    .push(IpCidr::new(IpAddress::v4(127, 0, 0, 1), 8))
                    .unwrap();
            });
            let mut sockets = SocketSet::new(Vec::new());
            let socket = || {
                tcp::Socket::new(
                    tcp::SocketBuffer::new(vec![0; RING]),
                    tcp::SocketBuffer::new(vec![0; RING]),
                )
            };
            let server = sockets.add(socket());
            let client = sockets.add(socket());
            sockets.get_mut::<tcp::Socket>(server).listen(80).unwrap();
            sockets
                .get_mut::<tcp::Socket>(client)
                .connect(iface.context(), (IpAddress::v4(127, 0, 0, 1), 80), 49152)
                .unwrap();
            let mut pair = Self {
                iface,
                device,
                sockets,
                server,
                client,
                now: Instant::ZERO,
            };
            pair.run();
            assert_eq!(pair.server().state(), tcp::State::Established);
            pair
        }

        /// Lets the segments and their acknowledgements cross.
        fn run(&mut self) {
            for _ in 0..20 {
                self.iface
                    .poll(self.now, &mut self.device, &mut self.sockets);
                self.now += ms(1);
            }
        }

        fn server(&mut self) -> &mut tcp::Socket<'static> {
            self.sockets.get_mut::<tcp::Socket>(self.server)
        }

        fn send(&mut self, bytes: &[u8]) {
            let sent = self
                .sockets
                .get_mut::<tcp::Socket>(self.client)
                .send_slice(bytes)
                .unwrap();
            assert_eq!(sent, bytes.len());
            self.run();
        }

        /// Sends and reads `len` bytes, so that what arrives next starts `len` bytes into
        /// the server's ring.
        fn advance_ring(&mut self, len: usize) {
            self.send(&vec![b'x'; len]);
            let mut buf = vec![0; len];
            assert_eq!(self.server().recv_slice(&mut buf), Ok(len));
        }
    }

    const HEAD: &[u8] = b"GET / HTTP/1.1\r\nHost: wrapped\r\n\r\n";

    impl Pair {
        /// The server queues `bytes`; then one egress (as a poll does) and the frames it
        /// sent and the passes it took, and the bytes the client then has.
        fn answer(&mut self, bytes: &[u8]) -> (usize, usize, Vec<u8>) {
            assert_eq!(self.server().send_slice(bytes), Ok(bytes.len()));
            let sent_before = self.device.sent;
            let passes = core::cell::Cell::new(0);
            // Count the passes: each starts with `start_pass`.
            struct Counting<'a>(&'a mut Tracked, &'a core::cell::Cell<usize>);
            impl smoltcp::phy::Device for Counting<'_> {
                type RxToken<'b>
                    = <smoltcp::phy::Loopback as smoltcp::phy::Device>::RxToken<'b>
                where
                    Self: 'b;
                type TxToken<'b>
                    = TrackedTx<'b>
                where
                    Self: 'b;
                fn receive(
                    &mut self,
                    now: Instant,
                ) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
                    self.0.receive(now)
                }
                fn transmit(&mut self, now: Instant) -> Option<Self::TxToken<'_>> {
                    self.0.transmit(now)
                }
                fn capabilities(&self) -> smoltcp::phy::DeviceCapabilities {
                    self.0.capabilities()
                }
            }
            impl EgressPass for Counting<'_> {
                fn start_pass(&mut self) {
                    self.1.set(self.1.get() + 1);
                    self.0.start_pass();
                }
                fn may_have_more(&self) -> bool {
                    self.0.may_have_more()
                }
            }
            let sent = egress(
                &mut self.iface,
                &mut Counting(&mut self.device, &passes),
                &mut self.sockets,
                self.now,
            );
            assert!(sent);
            let frames = self.device.sent - sent_before;
            // Only ingress from here: the client takes what the server sent.
            while self
                .iface
                .poll_ingress_single(self.now, &mut self.device, &mut self.sockets)
                != PollIngressSingleResult::None
            {}
            let client = self.sockets.get_mut::<tcp::Socket>(self.client);
            let mut received = vec![0; RING];
            let len = client.recv_slice(&mut received).unwrap();
            received.truncate(len);
            (frames, passes.get(), received)
        }
    }

    #[test]
    fn an_answer_in_one_segment_takes_one_pass() {
        let mut pair = Pair::connected();
        let (frames, passes, received) = pair.answer(b"HTTP/1.1 200\r\n");
        assert_eq!((frames, passes), (1, 1), "no second walk over every socket");
        assert_eq!(received, b"HTTP/1.1 200\r\n");
    }

    #[test]
    fn an_answer_of_several_segments_goes_out_whole_in_one_egress() {
        let mut pair = Pair::connected();
        // (Nagle's algorithm would hold the last, short segment until an ACK.)
        pair.server().set_nagle_enabled(false);
        let answer: Vec<u8> = (0..MSS as u8 * 2 + 5).collect();
        let (frames, passes, received) = pair.answer(&answer);
        // A pass per segment: the last one, with PSH, ends them.
        assert_eq!((frames, passes), (3, 3));
        assert_eq!(received, answer);
    }

    #[test]
    fn control_segments_and_the_last_data_are_not_followed() {
        use smoltcp::wire::{
            EthernetAddress, EthernetFrame, EthernetProtocol, TcpControl, TcpRepr, TcpSeqNumber,
        };
        let frame = |control, payload: &[u8]| {
            let tcp = TcpRepr {
                src_port: 80,
                dst_port: 49152,
                control,
                seq_number: TcpSeqNumber(1),
                ack_number: Some(TcpSeqNumber(1)),
                window_len: 1024,
                window_scale: None,
                max_seg_size: None,
                sack_permitted: false,
                sack_ranges: [None; 3],
                timestamp: None,
                payload,
            };
            crate::gate::build_frame(
                EthernetAddress([2, 0, 0, 0, 0, 1]),
                EthernetAddress([2, 0, 0, 0, 0, 2]),
                Ipv4Addr::new(10, 0, 0, 1),
                Ipv4Addr::new(10, 0, 0, 2),
                &tcp,
            )
        };
        assert!(!may_be_followed(&frame(TcpControl::None, b"")), "an ACK");
        assert!(!may_be_followed(&frame(TcpControl::Syn, b"")), "a SYN-ACK");
        assert!(!may_be_followed(&frame(TcpControl::Rst, b"")), "a reset");
        assert!(!may_be_followed(&frame(TcpControl::Fin, b"")), "a FIN");
        assert!(!may_be_followed(&frame(TcpControl::Psh, b"the end")));
        assert!(!may_be_followed(&frame(
            TcpControl::Fin,
            b"the end, closing"
        )));
        assert!(may_be_followed(&frame(TcpControl::None, b"more to come")));
        // Not TCP: maybe.
        let mut arp = frame(TcpControl::None, b"");
        EthernetFrame::new_unchecked(&mut arp[..]).set_ethertype(EthernetProtocol::Arp);
        assert!(may_be_followed(&arp));
        assert!(may_be_followed(&[0; 10]), "a runt");
    }

    #[test]
    fn a_head_that_wraps_the_receive_ring_is_seen_whole() {
        let mut pair = Pair::connected();
        pair.advance_ring(RING - 10);
        pair.send(HEAD);
        let server = pair.server();
        // The premise: smoltcp's own peek sees only the part up to the ring's end.
        assert_eq!(server.peek(usize::MAX).unwrap().len(), 10);
        let mut scratch = Vec::new();
        assert_eq!(peek_received(server, &mut scratch), HEAD);
        // Looking takes nothing: the app still reads the whole head.
        let mut buf = [0; RING];
        assert_eq!(server.recv_slice(&mut buf), Ok(HEAD.len()));
        assert_eq!(&buf[..HEAD.len()], HEAD);
    }

    #[test]
    fn a_head_in_one_piece_is_lent_in_place() {
        let mut pair = Pair::connected();
        pair.send(&HEAD[..5]);
        pair.send(&HEAD[5..]);
        let mut scratch = Vec::new();
        assert_eq!(peek_received(pair.server(), &mut scratch), HEAD);
        assert!(scratch.is_empty(), "nothing copied");
    }

    #[test]
    fn a_head_followed_by_the_peers_fin_is_still_seen() {
        // A request followed by a half-close is a whole request.
        let mut pair = Pair::connected();
        pair.send(HEAD);
        pair.sockets.get_mut::<tcp::Socket>(pair.client).close();
        pair.run();
        let server = pair.server();
        assert_eq!(server.state(), tcp::State::CloseWait);
        let mut scratch = Vec::new();
        assert_eq!(peek_received(server, &mut scratch), HEAD);
        // Nothing received: nothing seen.
        let mut empty = Pair::connected();
        assert_eq!(peek_received(empty.server(), &mut scratch), b"");
    }

    #[test]
    fn bytes_found_incomplete_are_not_parsed_again() {
        let mut pair = Pair::connected();
        let asked = core::cell::Cell::new(0);
        let complete = |bytes: &[u8]| {
            asked.set(asked.get() + 1);
            bytes.ends_with(b"\r\n\r\n")
        };
        let (mut incomplete_at, mut scratch) = (None, Vec::new());
        pair.send(&HEAD[..20]);
        for _ in 0..3 {
            let state = classify(pair.server(), &mut incomplete_at, complete, &mut scratch);
            assert_eq!(state, Waiting::Incomplete);
        }
        assert_eq!(asked.get(), 1, "the same bytes are asked about once");
        // More bytes: asked again, and the whole head is seen.
        pair.send(&HEAD[20..]);
        let state = classify(pair.server(), &mut incomplete_at, complete, &mut scratch);
        assert_eq!(state, Waiting::Kept);
        assert_eq!(asked.get(), 2);
        // A half-open request is never asked about.
        let mut fresh = None;
        let mut listening = Pair::connected();
        listening.server().abort();
        listening.server().listen(80).unwrap();
        let state = classify(listening.server(), &mut fresh, complete, &mut scratch);
        assert_eq!(state, Waiting::Kept);
        assert_eq!((asked.get(), fresh), (2, None));
    }

    #[test]
    fn a_whole_request_is_never_evicted() {
        // However long it has waited, and with nothing else to evict.
        assert_eq!(
            eviction_candidate(&[(Waiting::Kept, ms(60_000))], false),
            None
        );
        assert_eq!(
            eviction_candidate(&[(Waiting::Kept, ms(60_000))], true),
            None
        );
        assert_eq!(
            eviction_candidate(
                &[(Waiting::Kept, ms(60_000)), (Waiting::Incomplete, ms(300)),],
                false
            ),
            Some(1)
        );
    }

    #[test]
    fn half_open_requests_go_first_oldest_first() {
        let waiting = [
            (Waiting::Incomplete, ms(5_000)),
            (Waiting::HalfOpen, ms(400)),
            (Waiting::HalfOpen, ms(150)),
        ];
        assert_eq!(eviction_candidate(&waiting, false), Some(1));
        assert_eq!(eviction_candidate(&waiting, true), Some(1));
    }

    #[test]
    fn young_entries_are_not_evicted() {
        let waiting = [
            (Waiting::HalfOpen, ms(99)),
            (Waiting::Incomplete, ms(249)),
            (Waiting::HalfOpen, ms(10)),
        ];
        assert_eq!(eviction_candidate(&waiting, false), None);
        assert_eq!(eviction_candidate(&[], false), None);
        // Once old enough, the incomplete one goes, the half-open ones being too young.
        let waiting = [(Waiting::HalfOpen, ms(99)), (Waiting::Incomplete, ms(250))];
        assert_eq!(eviction_candidate(&waiting, false), Some(1));
    }

    #[test]
    fn a_whole_request_by_cookie_takes_a_young_incomplete_place() {
        let waiting = [
            (Waiting::HalfOpen, ms(99)),
            (Waiting::Kept, ms(5)),
            (Waiting::Incomplete, ms(10)),
            (Waiting::Incomplete, ms(1)),
        ];
        assert_eq!(eviction_candidate(&waiting, false), None);
        assert_eq!(eviction_candidate(&waiting, true), Some(2));
        // Never a whole request's, nor a young half-open one's.
        let waiting = [(Waiting::HalfOpen, ms(99)), (Waiting::Kept, ms(5))];
        assert_eq!(eviction_candidate(&waiting, true), None);
    }
}
