//! The SYN gate: what stands between the device and smoltcp for connection requests.
//!
//! A listener has room for few half-open requests (its backlog, and sockets budgeted
//! against the heap). When a SYN finds none, the gate answers it itself with SYN cookies
//! (RFC 4987, section 3.6), as Linux does: the SYN-ACK's initial sequence number is a keyed
//! hash of the connection's addresses and ports, the client's sequence number, a coarse
//! clock and an MSS index, and the gate keeps no state. Forged SYNs then cost one SYN-ACK
//! each and take no place; a client that completes the handshake proves it with its ACK
//! (which acknowledges the cookie), and only then is the connection opened in smoltcp:
//! the gate replays a SYN from the client into a listening socket, swallows smoltcp's
//! SYN-ACK, and hands on the client's ACK. smoltcp picks its own initial sequence number,
//! so for the rest of such a connection the gate translates between the two: the
//! acknowledgement numbers coming in, the sequence numbers going out (a per-connection
//! offset, SYNPROXY-style). The cookie's SYN-ACK offers no window scaling, SACK or
//! timestamps (the cookie has no room to remember them), and the replayed SYN asks for
//! none, so the two sides agree on the options.
//!
//! Without a key (never in the kernel: `init` draws one) a SYN that finds no room is
//! dropped instead: smoltcp would answer it with a reset, which tells a client to give up,
//! while a dropped SYN is sent again (after 1 s, then 3 s, ...).
//!
//! A listener in trouble stays in cookie mode for a while ([`COOKIE_MODE`]): every SYN
//! gets a cookie, so that forged ones never take the places that a freed socket makes,
//! and only completed handshakes do.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec;
use alloc::vec::Vec;
use core::net::Ipv4Addr;

use siphasher::sip::SipHasher24;
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, IpAddress, IpEndpoint,
    IpProtocol, Ipv4Packet, Ipv4Repr, TcpControl, TcpPacket, TcpRepr, TcpSeqNumber,
};

/// The clock of the cookies: a cookie made in one period is valid in it and the next, so
/// for at least this long and at most twice as long. It bounds how long a captured cookie
/// can be replayed, and how late a client's first segment after its handshake may come.
const COOKIE_PERIOD: Duration = Duration::from_secs(8);
/// How long a listener stays in cookie mode after a SYN last found it without room.
pub(crate) const COOKIE_MODE: Duration = Duration::from_secs(10);
/// The MSS values a cookie can carry (two bits): the largest not above the client's is
/// used (Linux's table for IPv4).
const MSS_TABLE: [u16; 4] = [536, 1300, 1440, 1460];
/// The MSS the gate announces in its SYN-ACK: smoltcp's own for a 1,500-byte MTU.
const OWN_MSS: u16 = 1460;
/// Connections opened from a cookie whose sequence numbers are translated, at most: each
/// holds a listener's socket, so this is above what the sockets' budget allows (an entry
/// takes about 40 bytes: 40 KiB at most).
const MAX_TRANSLATED: usize = 1024;
/// Handshakes completed by cookie and waiting for a listening socket, at most.
const MAX_WAITING: usize = 64;
/// The bytes of client segments those handshakes may hold at once (a segment is at most
/// a frame): beyond, a segment is dropped and the client sends it again.
const MAX_WAITING_BYTES: usize = 64 * 1024;
/// How long such a handshake waits for room before its segment is dropped (the client
/// sends it again).
const WAIT_FOR_ROOM: Duration = Duration::from_secs(2);
/// The client's segments kept per handshake until smoltcp has the connection: the ACK
/// and what the client sends right after it (its request); later ones are dropped and
/// sent again by the client.
const SEGMENTS_PER_HANDOVER: usize = 4;

/// A TCP connection as the gate sees it: the peer's address and port, and the local ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Tuple {
    remote: (Ipv4Addr, u16),
    local: (Ipv4Addr, u16),
}

impl Tuple {
    /// The connection of a socket, from its endpoints.
    pub(crate) fn of(local: IpEndpoint, remote: IpEndpoint) -> Self {
        let address = |endpoint: IpEndpoint| match endpoint.addr {
            IpAddress::Ipv4(address) => address,
        };
        Self {
            remote: (address(remote), remote.port),
            local: (address(local), local.port),
        }
    }
}

/// The key of the cookies, drawn at boot.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CookieKey(SipHasher24);

impl CookieKey {
    pub(crate) fn new(key0: u64, key1: u64) -> Self {
        Self(SipHasher24::new_with_keys(key0, key1))
    }

    /// The cookie for a SYN of `tuple` with sequence number `client_isn`, made in cookie
    /// period `counter`, carrying MSS index `mss_index`: 30 bits of hash, 2 of index.
    fn cookie(&self, tuple: &Tuple, client_isn: u32, counter: u32, mss_index: u32) -> u32 {
        let mut input = [0u8; 24];
        input[0..4].copy_from_slice(&tuple.remote.0.octets());
        input[4..6].copy_from_slice(&tuple.remote.1.to_be_bytes());
        input[6..10].copy_from_slice(&tuple.local.0.octets());
        input[10..12].copy_from_slice(&tuple.local.1.to_be_bytes());
        input[12..16].copy_from_slice(&client_isn.to_be_bytes());
        input[16..20].copy_from_slice(&counter.to_be_bytes());
        input[20..24].copy_from_slice(&mss_index.to_be_bytes());
        (self.0.hash(&input) as u32 & !3) | (mss_index & 3)
    }

    /// The MSS a cookie made for `tuple` and `client_isn` in period `counter` or the one
    /// before carries; `None` if it is not one (forged, another connection's, or expired).
    fn check(&self, tuple: &Tuple, client_isn: u32, cookie: u32, counter: u32) -> Option<u16> {
        let mss_index = cookie & 3;
        [counter, counter.wrapping_sub(1)]
            .into_iter()
            .any(|made| self.cookie(tuple, client_isn, made, mss_index) == cookie)
            .then_some(MSS_TABLE[mss_index as usize])
    }
}

/// The cookie period `now` falls in.
fn cookie_counter(now: Instant) -> u32 {
    (now.total_millis() / COOKIE_PERIOD.total_millis() as i64) as u32
}

/// The MSS index for a client that announced `mss` (536, the default, if it did not).
fn mss_index(mss: Option<u16>) -> u32 {
    let mss = mss.unwrap_or(536);
    MSS_TABLE
        .iter()
        .rposition(|&entry| entry <= mss)
        .unwrap_or(0) as u32
}

/// The distance between the initial sequence number smoltcp chose for a connection and
/// the cookie the client knows: what the gate adds to acknowledgement numbers coming in
/// and takes from sequence numbers going out (modulo 2^32, as sequence numbers wrap).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Offset(u32);

impl Offset {
    fn between(cookie: u32, stack_isn: u32) -> Self {
        Self(stack_isn.wrapping_sub(cookie))
    }

    /// An acknowledgement number from the peer, in smoltcp's numbering.
    fn to_stack(self, ack: u32) -> u32 {
        ack.wrapping_add(self.0)
    }

    /// A sequence number from smoltcp, in the peer's numbering.
    fn to_peer(self, seq: u32) -> u32 {
        seq.wrapping_sub(self.0)
    }
}

/// What becomes of a frame that came in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// smoltcp gets it (translated, for a connection opened from a cookie).
    Pass,
    /// Nobody gets it.
    Drop,
    /// The gate answered it: [`SynGate::reply`] is the frame to send.
    Reply,
}

/// What the gate knows of a listening port.
#[derive(Debug)]
struct Port {
    port: u16,
    /// Listening sockets ready now: connection requests the listener takes at once.
    room: usize,
    /// The window the listener's sockets offer (their receive buffer, within 16 bits).
    window: u16,
    /// SYNs dropped for want of room (without cookies only).
    dropped: u64,
    cookies_sent: u64,
    /// Connections opened from a cookie.
    cookie_connections: u64,
    /// Until when every SYN gets a cookie.
    cookie_mode_until: Option<Instant>,
    /// When the last cookie went out: ACKs are checked for one until it expires.
    last_cookie: Option<Instant>,
    /// Which bytes are a whole request (see [`SynGate::set_complete_request`]).
    complete: Option<fn(&[u8]) -> bool>,
}

impl Port {
    fn cookie_mode(&self, now: Instant) -> bool {
        self.room == 0 || self.cookie_mode_until.is_some_and(|until| now < until)
    }

    fn expects_cookies(&self, now: Instant) -> bool {
        self.last_cookie
            .is_some_and(|last| now < last + COOKIE_PERIOD + COOKIE_PERIOD)
    }
}

/// A handshake completed by cookie, on its way into smoltcp.
#[derive(Debug)]
struct Handover {
    tuple: Tuple,
    cookie: u32,
    mss: u16,
    /// The client's segment that completed it, and those that came after it (Ethernet
    /// frames), handed on in order once smoltcp has the connection.
    segments: Vec<Vec<u8>>,
    since: Instant,
    /// Whether the replayed SYN has gone to smoltcp (else it waits for a listening socket).
    replayed: bool,
}

impl Handover {
    /// Whether the client's bytes so far satisfy `complete`.
    fn is_whole(&self, complete: fn(&[u8]) -> bool) -> bool {
        let mut payload = Vec::new();
        for frame in &self.segments {
            if let Some(segment) = Segment::find(frame) {
                payload.extend_from_slice(segment.tcp(frame).payload());
            }
        }
        complete(&payload)
    }
}

/// The gate of the device's frames (see the module's documentation).
#[derive(Debug, Default)]
pub(crate) struct SynGate {
    key: Option<CookieKey>,
    ports: Vec<Port>,
    /// Connections opened from a cookie, with their offsets.
    translated: BTreeMap<Tuple, Offset>,
    handovers: Vec<Handover>,
    /// Frames for smoltcp that did not come from the device (replayed SYNs, handed-on
    /// segments), in order.
    injected: VecDeque<Vec<u8>>,
    reply: Vec<u8>,
    /// Handshakes completed by cookie, and segments added to those still waiting, so far.
    handover_arrivals: u64,
}

impl SynGate {
    /// A gate that answers SYNs beyond a listener's room with cookies made with `key`.
    pub(crate) fn with_key(key: CookieKey) -> Self {
        Self {
            key: Some(key),
            ..Self::default()
        }
    }

    /// Tells the gate how many connection requests `port`'s listener takes at once now,
    /// and the window its sockets offer.
    pub(crate) fn set_room(&mut self, port: u16, room: usize, window: usize) {
        let window = window.min(usize::from(u16::MAX)) as u16;
        match self.ports.iter_mut().find(|entry| entry.port == port) {
            Some(entry) => {
                entry.room = room;
                entry.window = window;
            }
            None => self.ports.push(Port {
                port,
                room,
                window,
                dropped: 0,
                cookies_sent: 0,
                cookie_connections: 0,
                cookie_mode_until: None,
                last_cookie: None,
                complete: None,
            }),
        }
    }

    /// Forgets `port` (its listener is gone), counts included.
    pub(crate) fn remove(&mut self, port: u16) {
        self.ports.retain(|entry| entry.port != port);
        self.handovers
            .retain(|handover| handover.tuple.local.1 != port);
    }

    /// Connection requests to `port` dropped so far.
    pub(crate) fn dropped(&self, port: u16) -> u64 {
        self.port(port).map_or(0, |entry| entry.dropped)
    }

    /// SYN-ACKs with a cookie sent for `port`, and connections opened from one.
    pub(crate) fn cookies(&self, port: u16) -> (u64, u64) {
        self.port(port).map_or((0, 0), |entry| {
            (entry.cookies_sent, entry.cookie_connections)
        })
    }

    fn port(&self, port: u16) -> Option<&Port> {
        self.ports.iter().find(|entry| entry.port == port)
    }

    /// Whether `tuple` is a connection being opened from a cookie: its socket's sequence
    /// numbers are translated until [`SynGate::forget`].
    pub(crate) fn is_handed_over(&self, tuple: &Tuple) -> bool {
        self.handovers
            .iter()
            .any(|handover| handover.tuple == *tuple)
            || self.translated.contains_key(tuple)
    }

    /// The socket of `tuple` is closed: its segments are no longer translated.
    pub(crate) fn forget(&mut self, tuple: &Tuple) {
        self.translated.remove(tuple);
    }

    /// Tells the gate which bytes are a whole request on `port` (the listener's
    /// predicate): a handshake completed by cookie that brought one goes first, and may
    /// take the place of a connection without one.
    pub(crate) fn set_complete_request(&mut self, port: u16, complete: fn(&[u8]) -> bool) {
        if let Some(entry) = self.ports.iter_mut().find(|entry| entry.port == port) {
            entry.complete = Some(complete);
        }
    }

    /// Whether a handshake completed by cookie waits for room on `port` with a whole
    /// request.
    pub(crate) fn has_waiting_request(&self, port: u16) -> bool {
        let Some(complete) = self.port(port).and_then(|entry| entry.complete) else {
            return false;
        };
        self.handovers.iter().any(|handover| {
            !handover.replayed && handover.tuple.local.1 == port && handover.is_whole(complete)
        })
    }

    /// How many handshakes completed by cookie, and segments for those still waiting, have
    /// arrived: a waiting one may take a place it could not take before only after one.
    pub(crate) fn handover_arrivals(&self) -> u64 {
        self.handover_arrivals
    }

    /// Whether a handshake completed by cookie waits for a listening socket on `port`.
    pub(crate) fn has_waiting_handover(&self, port: u16) -> bool {
        self.handovers
            .iter()
            .any(|handover| !handover.replayed && handover.tuple.local.1 == port)
    }

    /// The frame to send for a [`Verdict::Reply`].
    pub(crate) fn reply(&self) -> &[u8] {
        &self.reply
    }

    /// Whether a frame waits for smoltcp.
    pub(crate) fn has_injected(&self) -> bool {
        !self.injected.is_empty()
            || self.handovers.iter().any(|handover| {
                !handover.replayed
                    && self
                        .port(handover.tuple.local.1)
                        .is_some_and(|port| port.room > 0)
            })
    }

    /// The next frame for smoltcp that did not come from the device: a segment handed on,
    /// or the replayed SYN of a handshake that now finds a listening socket.
    pub(crate) fn next_injected(&mut self, now: Instant) -> Option<Vec<u8>> {
        if let Some(frame) = self.injected.pop_front() {
            return Some(frame);
        }
        self.handovers
            .retain(|handover| now - handover.since < WAIT_FOR_ROOM);
        let ports = &mut self.ports;
        let ready = |handover: &Handover| {
            ports
                .iter()
                .find(|port| port.port == handover.tuple.local.1 && port.room > 0)
                .filter(|_| !handover.replayed)
        };
        // A whole request first: the room may have been made for it.
        let index = self
            .handovers
            .iter()
            .position(|handover| {
                ready(handover)
                    .and_then(|port| port.complete)
                    .is_some_and(|complete| handover.is_whole(complete))
            })
            .or_else(|| {
                self.handovers
                    .iter()
                    .position(|handover| ready(handover).is_some())
            })?;
        let handover = &mut self.handovers[index];
        let port = ports
            .iter_mut()
            .find(|port| port.port == handover.tuple.local.1)
            .expect("found above");
        port.room -= 1;
        port.cookie_connections += 1;
        handover.replayed = true;
        Some(replayed_syn(&handover.segments[0], handover.mss))
    }

    /// Looks at a frame from the device before smoltcp does: answers SYNs with cookies
    /// when the listener has no room, opens connections whose ACK carries a valid cookie,
    /// and translates the segments of connections opened so.
    pub(crate) fn inbound(&mut self, frame: &mut [u8], now: Instant) -> Verdict {
        if self.ports.is_empty()
            || (self.translated.is_empty()
                && self.handovers.is_empty()
                && !self
                    .ports
                    .iter()
                    .any(|port| port.cookie_mode(now) || port.expects_cookies(now)))
        {
            return Verdict::Pass;
        }
        let Some(segment) = Segment::find(frame) else {
            return Verdict::Pass;
        };
        let tuple = segment.tuple_inbound(frame);
        let (syn, ack) = {
            let tcp = segment.tcp(frame);
            (tcp.syn(), tcp.ack())
        };
        if let Some(&offset) = self.translated.get(&tuple) {
            if syn && !ack {
                // The client starts a new connection on the same ports.
                self.translated.remove(&tuple);
            } else {
                if !segment.checksum_ok(frame) {
                    return Verdict::Drop;
                }
                if ack {
                    let mut tcp = segment.tcp_mut(frame);
                    let number = offset.to_stack(tcp.ack_number().0 as u32);
                    tcp.set_ack_number(TcpSeqNumber(number as i32));
                }
                segment.fill_checksum(frame);
                return Verdict::Pass;
            }
        }
        let Some(port) = self
            .ports
            .iter()
            .position(|port| port.port == tuple.local.1)
        else {
            return Verdict::Pass;
        };
        if syn && !ack {
            return self.on_syn(port, &segment, frame, now);
        }
        let tcp = segment.tcp(frame);
        if !ack || syn || tcp.rst() || !self.ports[port].expects_cookies(now) {
            return Verdict::Pass;
        }
        let waiting_bytes: usize = self
            .handovers
            .iter()
            .flat_map(|handover| &handover.segments)
            .map(Vec::len)
            .sum();
        if let Some(handover) = self.handovers.iter_mut().find(|h| h.tuple == tuple) {
            // The client's next segment (its request) while its connection is being opened.
            if handover.segments.len() < SEGMENTS_PER_HANDOVER
                && waiting_bytes + frame.len() <= MAX_WAITING_BYTES
                && segment.checksum_ok(frame)
            {
                handover.segments.push(frame.to_vec());
                self.handover_arrivals += 1;
            }
            return Verdict::Drop;
        }
        let (client_isn, cookie) = (
            (tcp.seq_number() - 1).0 as u32,
            (tcp.ack_number() - 1).0 as u32,
        );
        let Some(key) = self.key else {
            return Verdict::Pass;
        };
        let Some(mss) = key.check(&tuple, client_isn, cookie, cookie_counter(now)) else {
            // Not a cookie: a segment of a connection smoltcp has (or a stray one).
            return Verdict::Pass;
        };
        if !segment.checksum_ok(frame) {
            return Verdict::Drop;
        }
        if self.handovers.len() >= MAX_WAITING
            || waiting_bytes + frame.len() > MAX_WAITING_BYTES
            || self.translated.len() >= MAX_TRANSLATED
        {
            self.ports[port].dropped += 1;
            return Verdict::Drop;
        }
        self.handovers.push(Handover {
            tuple,
            cookie,
            mss,
            segments: vec![frame.to_vec()],
            since: now,
            replayed: false,
        });
        self.handover_arrivals += 1;
        // The replayed SYN comes next from `next_injected`, if the listener has room.
        Verdict::Drop
    }

    fn on_syn(&mut self, port: usize, segment: &Segment, frame: &[u8], now: Instant) -> Verdict {
        let entry = &mut self.ports[port];
        if !entry.cookie_mode(now) {
            return Verdict::Pass;
        }
        if entry.room == 0 {
            entry.cookie_mode_until = Some(now + COOKIE_MODE);
        }
        let Some(key) = self.key else {
            entry.dropped += 1;
            return Verdict::Drop;
        };
        let checksums = ChecksumCapabilities::default();
        let (source, destination) = (segment.source(frame), segment.destination(frame));
        let Ok(syn) = TcpRepr::parse(
            &TcpPacket::new_unchecked(&frame[segment.tcp.clone()]),
            &IpAddress::Ipv4(source),
            &IpAddress::Ipv4(destination),
            &checksums,
        ) else {
            return Verdict::Drop;
        };
        let tuple = segment.tuple_inbound(frame);
        let index = mss_index(syn.max_seg_size);
        let cookie = key.cookie(&tuple, syn.seq_number.0 as u32, cookie_counter(now), index);
        let ethernet = EthernetFrame::new_unchecked(frame);
        let syn_ack = TcpRepr {
            src_port: syn.dst_port,
            dst_port: syn.src_port,
            control: TcpControl::Syn,
            seq_number: TcpSeqNumber(cookie as i32),
            ack_number: Some(syn.seq_number + 1),
            window_len: entry.window,
            window_scale: None,
            max_seg_size: Some(OWN_MSS),
            sack_permitted: false,
            sack_ranges: [None; 3],
            timestamp: None,
            payload: &[],
        };
        self.reply = build_frame(
            ethernet.dst_addr(),
            ethernet.src_addr(),
            destination,
            source,
            &syn_ack,
        );
        entry.cookies_sent += 1;
        entry.last_cookie = Some(now);
        Verdict::Reply
    }

    /// Looks at a frame smoltcp sends: swallows its SYN-ACK for a connection opened from a
    /// cookie (the client had the cookie's) and hands on the client's segment in its place;
    /// translates the later segments of such connections. Returns whether to send it.
    pub(crate) fn outbound(&mut self, frame: &mut [u8]) -> bool {
        if self.translated.is_empty() && self.handovers.is_empty() {
            return true;
        }
        let Some(segment) = Segment::find(frame) else {
            return true;
        };
        let tuple = segment.tuple_outbound(frame);
        if let Some(&offset) = self.translated.get(&tuple) {
            let mut tcp = segment.tcp_mut(frame);
            let number = offset.to_peer(tcp.seq_number().0 as u32);
            tcp.set_seq_number(TcpSeqNumber(number as i32));
            segment.fill_checksum(frame);
            return true;
        }
        let Some(index) = self
            .handovers
            .iter()
            .position(|handover| handover.replayed && handover.tuple == tuple)
        else {
            return true;
        };
        let handover = self.handovers.swap_remove(index);
        let tcp = segment.tcp(frame);
        if !(tcp.syn() && tcp.ack()) {
            // smoltcp refused the replayed SYN (a reset): the client is not told, as it
            // would not take a reset it cannot place; it gives up after its retries.
            return false;
        }
        let offset = Offset::between(handover.cookie, tcp.seq_number().0 as u32);
        self.translated.insert(handover.tuple, offset);
        for mut segment_in in handover.segments {
            let Some(client) = Segment::find(&segment_in) else {
                continue;
            };
            let mut tcp = client.tcp_mut(&mut segment_in);
            if tcp.ack() {
                let number = offset.to_stack(tcp.ack_number().0 as u32);
                tcp.set_ack_number(TcpSeqNumber(number as i32));
            }
            client.fill_checksum(&mut segment_in);
            self.injected.push_back(segment_in);
        }
        false
    }
}

/// Where a TCP segment over IPv4 lies in an Ethernet frame.
struct Segment {
    ip: core::ops::Range<usize>,
    tcp: core::ops::Range<usize>,
}

impl Segment {
    const ETHERNET_HEADER: usize = 14;

    /// The TCP segment in `frame`, if it holds one over IPv4 (not a fragment).
    fn find(frame: &[u8]) -> Option<Self> {
        let ethernet = EthernetFrame::new_checked(frame).ok()?;
        if ethernet.ethertype() != EthernetProtocol::Ipv4 {
            return None;
        }
        let ip = Ipv4Packet::new_checked(ethernet.payload()).ok()?;
        // A fragment's payload is not a TCP header (and smoltcp reassembles none here).
        if ip.next_header() != IpProtocol::Tcp || ip.frag_offset() != 0 || ip.more_frags() {
            return None;
        }
        let start = Self::ETHERNET_HEADER;
        let (header, total) = (usize::from(ip.header_len()), usize::from(ip.total_len()));
        TcpPacket::new_checked(ip.payload()).ok()?;
        Some(Self {
            ip: start..start + total,
            tcp: start + header..start + total,
        })
    }

    fn source(&self, frame: &[u8]) -> Ipv4Addr {
        Ipv4Packet::new_unchecked(&frame[self.ip.clone()]).src_addr()
    }

    fn destination(&self, frame: &[u8]) -> Ipv4Addr {
        Ipv4Packet::new_unchecked(&frame[self.ip.clone()]).dst_addr()
    }

    fn tcp<'a>(&self, frame: &'a [u8]) -> TcpPacket<&'a [u8]> {
        TcpPacket::new_unchecked(&frame[self.tcp.clone()])
    }

    fn tcp_mut<'a>(&self, frame: &'a mut [u8]) -> TcpPacket<&'a mut [u8]> {
        TcpPacket::new_unchecked(&mut frame[self.tcp.clone()])
    }

    /// The connection of a segment coming in (the source is the peer).
    fn tuple_inbound(&self, frame: &[u8]) -> Tuple {
        let tcp = self.tcp(frame);
        Tuple {
            remote: (self.source(frame), tcp.src_port()),
            local: (self.destination(frame), tcp.dst_port()),
        }
    }

    /// The connection of a segment going out (the destination is the peer).
    fn tuple_outbound(&self, frame: &[u8]) -> Tuple {
        let tcp = self.tcp(frame);
        Tuple {
            remote: (self.destination(frame), tcp.dst_port()),
            local: (self.source(frame), tcp.src_port()),
        }
    }

    fn checksum_ok(&self, frame: &[u8]) -> bool {
        let (source, destination) = (self.source(frame), self.destination(frame));
        self.tcp(frame)
            .verify_checksum(&IpAddress::Ipv4(source), &IpAddress::Ipv4(destination))
    }

    fn fill_checksum(&self, frame: &mut [u8]) {
        let (source, destination) = (self.source(frame), self.destination(frame));
        self.tcp_mut(frame)
            .fill_checksum(&IpAddress::Ipv4(source), &IpAddress::Ipv4(destination));
    }
}

/// The SYN the client sent before the segment `frame` that completed its handshake by
/// cookie, as smoltcp should see it: the same addresses, ports and sequence number, the
/// cookie's MSS, no other option (as the cookie's SYN-ACK offered none).
fn replayed_syn(frame: &[u8], mss: u16) -> Vec<u8> {
    let segment = Segment::find(frame).expect("checked when the handover was made");
    let ethernet = EthernetFrame::new_unchecked(frame);
    let tcp = segment.tcp(frame);
    let syn = TcpRepr {
        src_port: tcp.src_port(),
        dst_port: tcp.dst_port(),
        control: TcpControl::Syn,
        seq_number: tcp.seq_number() - 1,
        ack_number: None,
        window_len: tcp.window_len(),
        window_scale: None,
        max_seg_size: Some(mss),
        sack_permitted: false,
        sack_ranges: [None; 3],
        timestamp: None,
        payload: &[],
    };
    build_frame(
        ethernet.src_addr(),
        ethernet.dst_addr(),
        segment.source(frame),
        segment.destination(frame),
        &syn,
    )
}

/// An Ethernet frame holding `tcp` over IPv4, checksums filled in.
pub(crate) fn build_frame(
    from_mac: EthernetAddress,
    to_mac: EthernetAddress,
    from: Ipv4Addr,
    to: Ipv4Addr,
    tcp: &TcpRepr<'_>,
) -> Vec<u8> {
    let ip = Ipv4Repr {
        src_addr: from,
        dst_addr: to,
        next_header: IpProtocol::Tcp,
        payload_len: tcp.buffer_len(),
        hop_limit: 64,
    };
    let ethernet = EthernetRepr {
        src_addr: from_mac,
        dst_addr: to_mac,
        ethertype: EthernetProtocol::Ipv4,
    };
    let mut frame = vec![0; ethernet.buffer_len() + ip.buffer_len() + tcp.buffer_len()];
    let mut eth = EthernetFrame::new_unchecked(&mut frame[..]);
    ethernet.emit(&mut eth);
    let mut packet = Ipv4Packet::new_unchecked(eth.payload_mut());
    let checksums = ChecksumCapabilities::default();
    ip.emit(&mut packet, &checksums);
    tcp.emit(
        &mut TcpPacket::new_unchecked(packet.payload_mut()),
        &IpAddress::Ipv4(from),
        &IpAddress::Ipv4(to),
        &checksums,
    );
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENT: (Ipv4Addr, u16) = (Ipv4Addr::new(10, 0, 2, 2), 40000);
    const SERVER: (Ipv4Addr, u16) = (Ipv4Addr::new(10, 0, 2, 15), 80);
    const CLIENT_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 1]);
    const SERVER_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 2]);

    fn key() -> CookieKey {
        CookieKey::new(0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210)
    }

    fn tuple() -> Tuple {
        Tuple {
            remote: CLIENT,
            local: SERVER,
        }
    }

    fn at(seconds: i64) -> Instant {
        Instant::from_secs(seconds)
    }

    /// An Ethernet frame holding a TCP segment from `from` to `to`.
    fn segment(
        from: (Ipv4Addr, u16),
        to: (Ipv4Addr, u16),
        control: TcpControl,
        seq: u32,
        ack: Option<u32>,
        payload: &[u8],
    ) -> Vec<u8> {
        let tcp = TcpRepr {
            src_port: from.1,
            dst_port: to.1,
            control,
            seq_number: TcpSeqNumber(seq as i32),
            ack_number: ack.map(|ack| TcpSeqNumber(ack as i32)),
            window_len: 64240,
            window_scale: (control == TcpControl::Syn).then_some(7),
            max_seg_size: (control == TcpControl::Syn).then_some(1460),
            sack_permitted: control == TcpControl::Syn,
            sack_ranges: [None; 3],
            timestamp: None,
            payload,
        };
        let (from_mac, to_mac) = match from == CLIENT {
            true => (CLIENT_MAC, SERVER_MAC),
            false => (SERVER_MAC, CLIENT_MAC),
        };
        build_frame(from_mac, to_mac, from.0, to.0, &tcp)
    }

    fn from_client(control: TcpControl, seq: u32, ack: Option<u32>, payload: &[u8]) -> Vec<u8> {
        segment(CLIENT, SERVER, control, seq, ack, payload)
    }

    fn from_server(control: TcpControl, seq: u32, ack: Option<u32>) -> Vec<u8> {
        segment(SERVER, CLIENT, control, seq, ack, &[])
    }

    /// What a frame holds, its checksums checked: the Ethernet source, and the segment.
    fn parsed(frame: &[u8]) -> (EthernetAddress, TcpRepr<'_>) {
        let ethernet = EthernetFrame::new_checked(frame).unwrap();
        let ip = Ipv4Packet::new_checked(ethernet.payload()).unwrap();
        assert!(ip.verify_checksum(), "the IP checksum is right");
        let (source, destination) = (ip.src_addr(), ip.dst_addr());
        let segment = Segment::find(frame).unwrap();
        let tcp = TcpRepr::parse(
            &TcpPacket::new_checked(&frame[segment.tcp]).unwrap(),
            &IpAddress::Ipv4(source),
            &IpAddress::Ipv4(destination),
            &ChecksumCapabilities::default(),
        )
        .expect("a TCP segment with a right checksum");
        (ethernet.src_addr(), tcp)
    }

    fn number(seq: TcpSeqNumber) -> u32 {
        seq.0 as u32
    }

    #[test]
    fn a_cookie_is_valid_for_its_connection_in_its_period_and_the_next() {
        let key = key();
        let cookie = key.cookie(&tuple(), 1000, 50, 3);
        assert_eq!(cookie & 3, 3, "the MSS index is in the low bits");
        assert_eq!(key.check(&tuple(), 1000, cookie, 50), Some(1460));
        assert_eq!(
            key.check(&tuple(), 1000, cookie, 51),
            Some(1460),
            "one period on"
        );
        let index_one = key.cookie(&tuple(), 1000, 50, 1);
        assert_eq!(key.check(&tuple(), 1000, index_one, 50), Some(1300));
    }

    #[test]
    fn a_cookie_for_another_connection_is_refused() {
        let key = key();
        let cookie = key.cookie(&tuple(), 1000, 50, 3);
        let other_port = Tuple {
            remote: (CLIENT.0, CLIENT.1 + 1),
            local: SERVER,
        };
        let other_address = Tuple {
            remote: (Ipv4Addr::new(10, 0, 2, 3), CLIENT.1),
            local: SERVER,
        };
        let other_listener = Tuple {
            remote: CLIENT,
            local: (SERVER.0, 8080),
        };
        for tuple in [other_port, other_address, other_listener] {
            assert_eq!(key.check(&tuple, 1000, cookie, 50), None, "{tuple:?}");
        }
        assert_eq!(key.check(&tuple(), 1001, cookie, 50), None, "another SYN");
        let other_key = CookieKey::new(1, 2);
        assert_eq!(other_key.check(&tuple(), 1000, cookie, 50), None);
    }

    #[test]
    fn an_expired_cookie_is_refused() {
        let key = key();
        let cookie = key.cookie(&tuple(), 1000, 50, 3);
        assert_eq!(
            key.check(&tuple(), 1000, cookie, 52),
            None,
            "two periods on"
        );
        assert_eq!(key.check(&tuple(), 1000, cookie, 49), None, "made later");
        // The counter wraps like the clock it counts.
        let cookie = key.cookie(&tuple(), 1000, u32::MAX, 0);
        assert_eq!(key.check(&tuple(), 1000, cookie, 0), Some(536));
        // In time: COOKIE_PERIOD to twice that.
        let made = cookie_counter(at(100));
        let cookie = key.cookie(&tuple(), 1000, made, 2);
        let valid = |seconds| key.check(&tuple(), 1000, cookie, cookie_counter(at(seconds)));
        assert_eq!(valid(100 + COOKIE_PERIOD.secs() as i64 - 1), Some(1440));
        assert_eq!(valid(100 + 3 * COOKIE_PERIOD.secs() as i64), None);
    }

    #[test]
    fn forged_cookies_are_refused() {
        let key = key();
        let cookie = key.cookie(&tuple(), 1000, 50, 3);
        // Any other bit pattern, the MSS index changed included.
        for bit in 0..32 {
            assert_eq!(key.check(&tuple(), 1000, cookie ^ (1 << bit), 50), None);
        }
        // Guessing: of 100,000 numbers, none passes (each has a chance of 2^-29).
        let guesses = (0..100_000u32).map(|n| n.wrapping_mul(0x9e37_79b9));
        assert_eq!(
            guesses
                .filter(|&guess| key.check(&tuple(), 1000, guess, 50).is_some())
                .count(),
            0
        );
    }

    #[test]
    fn mss_indices_round_down() {
        assert_eq!(mss_index(None), 0);
        assert_eq!(mss_index(Some(100)), 0);
        assert_eq!(mss_index(Some(1299)), 0);
        assert_eq!(mss_index(Some(1300)), 1);
        assert_eq!(mss_index(Some(1460)), 3);
        assert_eq!(mss_index(Some(9000)), 3);
    }

    #[test]
    fn sequence_numbers_translate_across_the_wrap() {
        // smoltcp's number is below the cookie, and just past the wrap.
        let offset = Offset::between(0xffff_fff0, 0x10);
        assert_eq!(offset.to_stack(0xffff_fff1), 0x11);
        assert_eq!(offset.to_peer(0x11), 0xffff_fff1);
        // Data acknowledged across the wrap, both ways.
        assert_eq!(offset.to_stack(0x0000_0005), 0x25);
        assert_eq!(offset.to_peer(0x25), 0x0000_0005);
        // And the other way round: smoltcp's number near the top.
        let offset = Offset::between(0x20, 0xffff_ff00);
        assert_eq!(offset.to_stack(0x21), 0xffff_ff01);
        assert_eq!(offset.to_stack(0x121), 0x0000_0001);
        for seq in [0, 1, 0x7fff_ffff, 0x8000_0000, u32::MAX] {
            assert_eq!(offset.to_stack(offset.to_peer(seq)), seq);
        }
    }

    #[test]
    fn a_handshake_by_cookie_opens_the_connection_in_the_stack() {
        let mut gate = SynGate::with_key(key());
        gate.set_room(80, 0, 8192);
        let now = at(30);

        // A SYN that finds no room is answered with a cookie.
        let mut syn = from_client(TcpControl::Syn, 1000, None, &[]);
        assert_eq!(gate.inbound(&mut syn, now), Verdict::Reply);
        let reply = gate.reply().to_vec();
        let (from, syn_ack) = parsed(&reply);
        assert_eq!(from, SERVER_MAC);
        assert_eq!((syn_ack.src_port, syn_ack.dst_port), (80, 40000));
        assert_eq!(syn_ack.control, TcpControl::Syn);
        assert_eq!(syn_ack.ack_number, Some(TcpSeqNumber(1001)));
        assert_eq!(syn_ack.max_seg_size, Some(OWN_MSS));
        assert_eq!(syn_ack.window_len, 8192);
        assert_eq!(
            (
                syn_ack.window_scale,
                syn_ack.sack_permitted,
                syn_ack.timestamp
            ),
            (None, false, None),
            "no option the cookie cannot remember"
        );
        let cookie = number(syn_ack.seq_number);
        assert_eq!(gate.cookies(80), (1, 0));
        assert!(!gate.has_injected());

        // The client's ACK, then its request: the cookie is valid, but there is no room
        // yet, so they wait.
        let request = b"GET / HTTP/1.1\r\n\r\n";
        let mut ack = from_client(TcpControl::None, 1001, Some(cookie.wrapping_add(1)), &[]);
        assert_eq!(gate.inbound(&mut ack, now), Verdict::Drop);
        assert!(gate.is_handed_over(&tuple()));
        let mut data = from_client(TcpControl::Psh, 1001, Some(cookie.wrapping_add(1)), request);
        assert_eq!(gate.inbound(&mut data, now), Verdict::Drop);
        assert!(!gate.has_waiting_request(80), "no predicate yet");
        gate.set_complete_request(80, |bytes| bytes.ends_with(b"\r\n\r\n"));
        assert!(gate.has_waiting_request(80));
        assert!(!gate.has_waiting_request(8080));
        assert!(!gate.has_injected());
        assert_eq!(gate.next_injected(now), None);

        // Room: smoltcp gets the client's SYN, as the cookie remembers it.
        gate.set_room(80, 1, 8192);
        assert!(gate.has_injected());
        let replayed = gate.next_injected(now).expect("the replayed SYN");
        let (from, syn) = parsed(&replayed);
        assert_eq!(from, CLIENT_MAC);
        assert_eq!((syn.src_port, syn.dst_port), (40000, 80));
        assert_eq!(syn.control, TcpControl::Syn);
        assert_eq!((syn.seq_number, syn.ack_number), (TcpSeqNumber(1000), None));
        assert_eq!(syn.max_seg_size, Some(1460));
        assert_eq!((syn.window_scale, syn.sack_permitted), (None, false));
        assert_eq!(gate.cookies(80), (1, 1));
        assert_eq!(gate.next_injected(now), None, "one SYN per handshake");
        assert!(!gate.has_waiting_request(80), "no longer waiting");

        // smoltcp's SYN-ACK (its own number, here across the wrap from the cookie's) is
        // swallowed; the client's segments follow, acknowledging smoltcp's number.
        let stack_isn = cookie.wrapping_add(0x8000_0000);
        let mut stack_syn_ack = from_server(TcpControl::Syn, stack_isn, Some(1001));
        assert!(!gate.outbound(&mut stack_syn_ack));
        for payload in [&[][..], request] {
            let handed_on = gate.next_injected(now).expect("the client's segments");
            let (_, segment) = parsed(&handed_on);
            assert_eq!(segment.seq_number, TcpSeqNumber(1001));
            assert_eq!(
                segment.ack_number,
                Some(TcpSeqNumber(stack_isn.wrapping_add(1) as i32))
            );
            assert_eq!(segment.payload, payload);
        }
        assert_eq!(gate.next_injected(now), None);

        // From now on, smoltcp's sequence numbers go out in the cookie's numbering...
        let mut answer = from_server(TcpControl::Psh, stack_isn.wrapping_add(1), Some(1019));
        assert!(gate.outbound(&mut answer));
        let (_, sent) = parsed(&answer);
        assert_eq!(number(sent.seq_number), cookie.wrapping_add(1));
        // ... and the client's acknowledgements come in in smoltcp's.
        let mut client_ack = from_client(
            TcpControl::None,
            1019,
            Some(cookie.wrapping_add(1 + 300)),
            &[],
        );
        assert_eq!(gate.inbound(&mut client_ack, now), Verdict::Pass);
        let (_, received) = parsed(&client_ack);
        assert_eq!(
            number(received.ack_number.unwrap()),
            stack_isn.wrapping_add(301)
        );

        // Once the socket is recycled, nothing is translated.
        gate.forget(&tuple());
        assert!(!gate.is_handed_over(&tuple()));
        let mut later = from_server(TcpControl::Rst, stack_isn.wrapping_add(301), None);
        assert!(gate.outbound(&mut later));
        assert_eq!(
            number(parsed(&later).1.seq_number),
            stack_isn.wrapping_add(301)
        );
    }

    #[test]
    fn a_whole_request_by_cookie_gets_the_first_place() {
        let mut gate = SynGate::with_key(key());
        gate.set_room(80, 0, 8192);
        gate.set_complete_request(80, |bytes| bytes.ends_with(b"\r\n\r\n"));
        let now = at(30);
        let slow = (CLIENT.0, 40001);
        // A slow client completes its handshake first, with half a request; then one with
        // a whole request.
        for (client, payload) in [
            (slow, &b"GET / HTTP/1.1\r\n"[..]),
            (CLIENT, b"GET / HTTP/1.1\r\n\r\n"),
        ] {
            let mut syn = segment(client, SERVER, TcpControl::Syn, 1000, None, &[]);
            assert_eq!(gate.inbound(&mut syn, now), Verdict::Reply);
            let cookie = number(parsed(gate.reply()).1.seq_number);
            let mut data = segment(
                client,
                SERVER,
                TcpControl::Psh,
                1001,
                Some(cookie.wrapping_add(1)),
                payload,
            );
            assert_eq!(gate.inbound(&mut data, now), Verdict::Drop);
        }
        assert!(gate.has_waiting_request(80));
        gate.set_room(80, 1, 8192);
        let source_port = parsed(&gate.next_injected(now).unwrap()).1.src_port;
        assert_eq!(source_port, CLIENT.1, "the whole request goes first");
        assert!(!gate.has_waiting_request(80));
        assert_eq!(gate.next_injected(now), None, "no more room");
        gate.set_room(80, 1, 8192);
        let source_port = parsed(&gate.next_injected(now).unwrap()).1.src_port;
        assert_eq!(source_port, slow.1);
    }

    #[test]
    fn handshakes_waiting_for_room_hold_bounded_memory() {
        let mut gate = SynGate::with_key(key());
        gate.set_room(80, 0, 8192);
        let now = at(30);
        let body = [b'x'; 1400];
        for port in 1000..1100 {
            let client = (CLIENT.0, port);
            let mut syn = segment(client, SERVER, TcpControl::Syn, 1000, None, &[]);
            assert_eq!(gate.inbound(&mut syn, now), Verdict::Reply);
            let cookie = number(parsed(gate.reply()).1.seq_number);
            for _ in 0..SEGMENTS_PER_HANDOVER + 2 {
                let ack = Some(cookie.wrapping_add(1));
                let mut data = segment(client, SERVER, TcpControl::Psh, 1001, ack, &body);
                assert_eq!(gate.inbound(&mut data, now), Verdict::Drop);
            }
        }
        let held: usize = gate
            .handovers
            .iter()
            .flat_map(|handover| &handover.segments)
            .map(Vec::len)
            .sum();
        assert!(held <= MAX_WAITING_BYTES, "{held} bytes held");
        assert!(gate.handovers.len() <= MAX_WAITING);
        assert!(
            gate.handovers
                .iter()
                .all(|h| h.segments.len() <= SEGMENTS_PER_HANDOVER)
        );
        assert!(
            gate.dropped(80) > 0,
            "the handshakes beyond were dropped and counted"
        );
        // They are let go after a while (their clients send again).
        assert_eq!(gate.next_injected(now + WAIT_FOR_ROOM), None);
        assert!(gate.handovers.is_empty());
    }

    #[test]
    fn segments_with_no_valid_cookie_go_to_the_stack_untouched() {
        let mut gate = SynGate::with_key(key());
        gate.set_room(80, 0, 8192);
        let now = at(30);
        let mut syn = from_client(TcpControl::Syn, 1000, None, &[]);
        assert_eq!(gate.inbound(&mut syn, now), Verdict::Reply);
        let cookie = number(parsed(gate.reply()).1.seq_number);
        // A forged ACK, one for another SYN, and a late one: smoltcp answers each with a
        // reset, as before.
        for (seq, ack, when) in [
            (1001, cookie ^ 0x100, now),
            (2001, cookie.wrapping_add(1), now),
            (1001, cookie.wrapping_add(1), now + COOKIE_PERIOD * 3),
        ] {
            let mut frame = from_client(TcpControl::None, seq, Some(ack), &[]);
            let before = frame.clone();
            assert_eq!(gate.inbound(&mut frame, when), Verdict::Pass);
            assert_eq!(frame, before);
        }
        assert!(!gate.is_handed_over(&tuple()));
        // A valid cookie in a segment whose checksum is wrong is dropped.
        let mut corrupt = from_client(TcpControl::None, 1001, Some(cookie.wrapping_add(1)), b"x");
        let last = corrupt.len() - 1;
        corrupt[last] ^= 1;
        assert_eq!(gate.inbound(&mut corrupt, now), Verdict::Drop);
        assert!(!gate.is_handed_over(&tuple()));
    }

    #[test]
    fn cookie_mode_outlasts_the_shortage() {
        let mut gate = SynGate::with_key(key());
        gate.set_room(80, 2, 8192);
        let mut syn = from_client(TcpControl::Syn, 1000, None, &[]);
        assert_eq!(
            gate.inbound(&mut syn, at(10)),
            Verdict::Pass,
            "room: smoltcp's"
        );
        gate.set_room(80, 0, 8192);
        assert_eq!(gate.inbound(&mut syn, at(11)), Verdict::Reply);
        // Room again, but forged SYNs must not take it: cookies for a while yet.
        gate.set_room(80, 3, 8192);
        assert_eq!(gate.inbound(&mut syn, at(12)), Verdict::Reply);
        let after = at(11) + COOKIE_MODE;
        assert_eq!(gate.inbound(&mut syn, after), Verdict::Pass);
        // Other ports are not concerned.
        let mut other = segment(CLIENT, (SERVER.0, 8080), TcpControl::Syn, 5, None, &[]);
        assert_eq!(gate.inbound(&mut other, at(12)), Verdict::Pass);
        assert_eq!(gate.cookies(80), (2, 0));
        assert_eq!(gate.dropped(80), 0);
    }

    #[test]
    fn without_a_key_syns_beyond_the_room_are_dropped_and_counted() {
        let mut gate = SynGate::default();
        let mut syn = from_client(TcpControl::Syn, 7, None, &[]);
        assert_eq!(
            gate.inbound(&mut syn, at(1)),
            Verdict::Pass,
            "no listener known"
        );
        gate.set_room(80, 0, 8192);
        assert_eq!(gate.inbound(&mut syn, at(1)), Verdict::Drop);
        assert_eq!(gate.inbound(&mut syn, at(1)), Verdict::Drop);
        assert_eq!(gate.dropped(80), 2);
        // The handshake's last ACK, data, a SYN-ACK, a reset and other ports pass.
        for mut frame in [
            from_client(TcpControl::None, 8, Some(9), &[]),
            from_client(TcpControl::Psh, 8, Some(9), b"x"),
            from_client(TcpControl::Syn, 8, Some(9), &[]),
            from_client(TcpControl::Rst, 8, None, &[]),
            segment(CLIENT, (SERVER.0, 8080), TcpControl::Syn, 7, None, &[]),
        ] {
            assert_eq!(gate.inbound(&mut frame, at(1)), Verdict::Pass);
        }
        assert_eq!(gate.dropped(80), 2);
        gate.remove(80);
        assert_eq!(gate.dropped(80), 0);
    }

    #[test]
    fn frames_that_are_not_tcp_over_ipv4_pass() {
        let mut gate = SynGate::with_key(key());
        gate.set_room(80, 0, 8192);
        let mut arp = from_client(TcpControl::Syn, 7, None, &[]);
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(gate.inbound(&mut arp, at(1)), Verdict::Pass);
        assert_eq!(gate.inbound(&mut [0; 10], at(1)), Verdict::Pass, "a runt");
        let mut cut = from_client(TcpControl::Syn, 7, None, &[]);
        assert_eq!(
            gate.inbound(&mut cut[..14 + 20 + 8], at(1)),
            Verdict::Pass,
            "a TCP header cut short"
        );
    }
}
