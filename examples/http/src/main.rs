//! An HTTP/1.1 server: `/` is a small page, `/stats` the heap's and the network's figures,
//! `/static/...` the files of the initrd (`static/`, see `static_files`).
//!
//! One thread serves every connection with non-blocking sockets: accept what is waiting,
//! give each connection a turn (send what is pending, read what arrived, answer each whole
//! request), and when none could go on, wait for the network (the CPU halts until the
//! device interrupts). A connection whose peer does not read its responses stops being
//! read (backpressure).
//!
//! No client can exhaust the heap: the connections served at once are as many as the
//! heap holds at their worst (full socket buffers, a whole request of the largest size
//! buffered, a capped amount of responses queued), and the listener refuses the rest. A
//! connection that makes no progress is closed: the head of a request must arrive within
//! [`HEADER_TIMEOUT`] of its first byte and the whole request within [`REQUEST_TIMEOUT`],
//! however slowly it trickles in, and one idle between requests for [`IDLE_TIMEOUT`].
//!
//! No client can keep the others out either: slow or silent connections take at most
//! part of the places ([`WHOLE_HEADS_ONLY_SHARE`]), at the cap a whole request takes the
//! place of a slow one, and in the listener's backlog a connection with a whole request
//! keeps its place until it is served, while slow ones and forged SYNs make room for
//! newcomers.
//!
//! `runner run http` forwards the host's port 8080 to it: `curl http://127.0.0.1:8080/`.
#![no_std]
#![no_main]

extern crate alloc;

mod handler;
mod static_files;

use alloc::boxed::Box;
use alloc::format;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use core::time::Duration;

use unikernel::net::{Error, ListenOptions, Shutdown, TcpListener, TcpStream};
use unikernel::prelude::*;

use handler::Outcome;

/// A connection with no request under way is closed after this long.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// The head of a request must arrive within this long of its first byte.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// The whole request (head and body) must arrive within this long of its first byte.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Bytes read from a connection at a time.
const READ_CHUNK: usize = 4096;
/// The most a connection buffers of its requests: one request of the largest size.
const INPUT_LIMIT: usize = handler::MAX_HEAD + handler::MAX_BODY;
/// Responses are queued up to this many bytes; further pipelined requests wait.
const OUTPUT_LIMIT: usize = 4 * 1024;
/// The longest response (the page, `/stats` or an error, with its head).
const MAX_RESPONSE: usize = 1024;
/// Sockets the listener keeps beyond the connections served, for requests waiting to be
/// accepted (or still in their handshake): at the cap, or past the places open to any
/// connection, a newcomer waits in one of them until its head is whole. Enough for a burst
/// of clients that connect before they send (50 at once in runner/tests/net.rs), and no
/// more: slowloris clients fill every one of them all the time, and every socket costs
/// each frame's trip through the stack; a flood of forged SYNs is answered with SYN
/// cookies when they are full, and a whole request that comes by cookie takes the place
/// of a slow one.
const WAITING_ROOM: usize = 64;
/// At the cap, a connection whose request head has been arriving this long, or that has
/// sent nothing for this long, gives its place to a waiting connection that holds a whole
/// request head (what a slowloris client never sends).
const EVICT_AFTER: Duration = Duration::from_secs(1);
/// The share of the connection places, in percent, that only a connection whose request
/// head has arrived whole when it is accepted may take: slow or silent clients (slowloris)
/// fill at most the rest, so whole requests find a place at once instead of waiting for
/// a slow one to become evictable. Most of them: a client sends its head with or right
/// after its handshake, so waiting for it costs such a client nothing, while every
/// slowloris connection served costs each turn of the loop.
const WHOLE_HEADS_ONLY_SHARE: usize = 90;
/// The share of the heap (what is left once the network is up) the connections may take
/// at their worst, in percent: the rest is the allocator's room against fragmentation.
const HEAP_SHARE: usize = 70;
/// The heap one connection may take besides its socket: its input at the limit, its
/// output vector (grown by doubling, so at most twice what it holds) and its entry.
const APP_MEMORY_PER_CONNECTION: usize =
    INPUT_LIMIT + 2 * (OUTPUT_LIMIT + MAX_RESPONSE) + core::mem::size_of::<Connection>();

/// Times the server found nothing to do and waited for the network: an idle server waits
/// about once a second with a connection open (its one-second timeout, the stack's
/// timers) and not at all with none, a polling one would
/// count thousands (`/stats`; runner/tests/net.rs checks it).
static WAITS: AtomicU64 = AtomicU64::new(0);

#[unikernel(
    console,
    heap = "16 MiB",
    net(ipv4 = "10.0.2.15/24", gateway = "10.0.2.2"),
    fs
)]
fn main(net: Net, fs: Fs) -> ExitCode {
    let mut options = ListenOptions {
        backlog: 256,
        rx_buffer: 8 * 1024,
        tx_buffer: 16 * 1024,
        max_connections: 0,
    };
    let mut scratch = Box::new([0u8; READ_CHUNK]);
    // Budget every connection at its worst against the heap the app declared.
    let heap = unikernel::heap_stats().expect("the app declares a heap");
    let free = heap.size - heap.used;
    let per_connection = options.memory_per_connection() + APP_MEMORY_PER_CONNECTION;
    // The waiting room's sockets take their buffers, but no app memory until accepted.
    let waiting_room = WAITING_ROOM * options.memory_per_connection();
    let max_connections = (free / 100 * HEAP_SHARE).saturating_sub(waiting_room) / per_connection;
    options.max_connections = max_connections + WAITING_ROOM;
    options.backlog = WAITING_ROOM;
    let mut listener = match TcpListener::bind_with(&net, 80, options) {
        Ok(listener) => listener,
        Err(error) => {
            println!("http: cannot listen on port 80: {error}");
            return ExitCode::FAILURE;
        }
    };
    listener.set_nonblocking(true).unwrap();
    // A waiting connection with a whole request head keeps its place in the backlog until
    // it is served; slow heads and silent connections make room for newcomers.
    listener.set_complete_request(handler::head_is_complete);
    let open_to_any = max_connections - max_connections * WHOLE_HEADS_ONLY_SHARE / 100;
    println!(
        "http: listening on {}, at most {max_connections} connections of {} KiB each \
         ({open_to_any} open to any, the rest to whole request heads) and {WAITING_ROOM} \
         waiting ({} KiB of a {} KiB heap)",
        listener.local_addr().unwrap(),
        per_connection / 1024,
        (max_connections * per_connection + waiting_room) / 1024,
        heap.size / 1024,
    );

    // Every connection the listener can hand over has its entry already.
    let mut connections: Vec<Connection> = Vec::with_capacity(max_connections);
    let mut expired = 0u64;
    let mut evicted = 0u64;
    loop {
        let now = net.now();
        let mut progress = false;
        loop {
            let at_cap = connections.len() >= max_connections;
            // At the cap, only a newcomer whose request head is all there is worth a place,
            // and only if a slow or silent connection can give up its own; near it, only
            // such a newcomer gets one of the places kept for them.
            let accepted = if at_cap {
                let Some(slowest) = slowest_evictable(&connections, now) else {
                    break;
                };
                let accepted = listener.accept_complete();
                if accepted.is_ok() {
                    connections.swap_remove(slowest).stream.abort();
                    evicted += 1;
                }
                accepted
            } else if connections.len() >= open_to_any {
                listener.accept_complete()
            } else {
                listener.accept()
            };
            match accepted {
                Ok((stream, _)) => {
                    connections.push(Connection::new(stream, now));
                    progress = true;
                }
                Err(Error::WouldBlock) => break,
                Err(error) => {
                    println!("http: accept: {error}");
                    break;
                }
            }
        }
        let served = Served {
            net: &net,
            listener: &listener,
            connections: connections.len(),
            expired,
            evicted,
        };
        connections.retain_mut(|connection| {
            match connection.serve(&served, &fs, now, &mut scratch) {
                Turn::Done => {
                    progress = true;
                    false
                }
                _ if connection.expired(now) => {
                    expired += 1;
                    false
                }
                Turn::Idle => true,
                Turn::Progress => {
                    progress = true;
                    true
                }
            }
        });
        if !progress {
            WAITS.fetch_add(1, Ordering::Relaxed);
            // Connections have deadlines (and, at the cap, become evictable), checked once a
            // second; with none, only the network can bring work, so an idle server sleeps
            // until it does (thousands of idle VMs cost the host nothing).
            let timeout = (!connections.is_empty()).then_some(Duration::from_secs(1));
            net.wait(timeout);
        }
    }
}

/// What `/stats` reports besides the heap and the network.
struct Served<'a> {
    net: &'a Net,
    listener: &'a TcpListener,
    /// Connections being served.
    connections: usize,
    /// Connections closed for making no progress in time.
    expired: u64,
    /// Slow or silent connections reset at the cap to serve a waiting one.
    evicted: u64,
}

/// The connection to give up at the cap for a waiting one: the one whose request head has
/// been arriving longest, else the one silent longest, if that is [`EVICT_AFTER`] or more.
/// One with a whole head, or with responses to send, is being served and keeps its place.
fn slowest_evictable(connections: &[Connection], now: Duration) -> Option<usize> {
    let waited = |connection: &Connection| match connection.request_started {
        Some(start) if !connection.head_complete => Some((1, now - start)),
        None if connection.output.is_empty() && connection.body.is_empty() => {
            Some((0, now - connection.last_active))
        }
        _ => None,
    };
    connections
        .iter()
        .enumerate()
        .filter_map(|(index, connection)| Some((waited(connection)?, index)))
        .filter(|&((_, waited), _)| waited >= EVICT_AFTER)
        .max()
        .map(|(_, index)| index)
}

enum Flushed {
    /// Everything is sent (`true` if there was anything to send).
    All(bool),
    /// Some was sent, the socket's buffer is full.
    Partly,
    /// The socket's buffer is full.
    Nothing,
    /// The connection failed.
    Failed,
}

enum Turn {
    /// Nothing to do until the peer sends or reads.
    Idle,
    /// Something was read or written.
    Progress,
    /// The connection is finished; drop it.
    Done,
}

struct Connection {
    stream: TcpStream,
    /// Received bytes not yet answered.
    input: Vec<u8>,
    /// Response bytes not yet accepted by the socket.
    output: Vec<u8>,
    /// The rest of a static file's body, sent after `output`: in the initrd's pages, handed
    /// to the socket as it drains, never copied into `output` (so outside the budget).
    body: &'static [u8],
    sent: usize,
    /// Close once `output` is sent.
    closing: bool,
    /// When the first byte of the request in `input` arrived (`None`: no request under
    /// way).
    request_started: Option<Duration>,
    /// Whether `input` holds the whole head of that request.
    head_complete: bool,
    /// When a response was last sent or queued (or the connection accepted).
    last_active: Duration,
}

impl Connection {
    fn new(mut stream: TcpStream, now: Duration) -> Self {
        stream.set_nonblocking(true).unwrap();
        Self {
            stream,
            input: Vec::new(),
            output: Vec::new(),
            body: &[],
            sent: 0,
            closing: false,
            request_started: None,
            head_complete: false,
            last_active: now,
        }
    }

    /// Whether the connection made too little progress: a request that trickles in does
    /// not keep it open past the request's deadlines, however often a byte comes.
    fn expired(&self, now: Duration) -> bool {
        match self.request_started {
            Some(start) if self.head_complete => now - start > REQUEST_TIMEOUT,
            Some(start) => now - start > HEADER_TIMEOUT,
            // A peer that does not read its responses is not waited for forever either.
            None => now - self.last_active > IDLE_TIMEOUT,
        }
    }

    /// One turn: send what is pending, read what arrived, answer each whole request and
    /// send the answers. Bounded work, so that every connection gets its turn. At the end
    /// of the peer's stream, what was read is answered before the connection closes.
    ///
    /// Reads go through `scratch`, shared by every connection: reading straight into
    /// `input` would first zero a chunk of it at every turn of every connection, most of
    /// which find nothing to read (under slowloris, dozens per turn of the loop).
    fn serve(
        &mut self,
        served: &Served,
        fs: &Fs,
        now: Duration,
        scratch: &mut [u8; READ_CHUNK],
    ) -> Turn {
        let mut progress = false;
        // Send what is pending first: a peer that does not read is not read either.
        match self.flush() {
            Flushed::All(sent) => progress |= sent,
            Flushed::Partly => return self.turn(true, now),
            Flushed::Nothing => return self.turn(progress, now),
            Flushed::Failed => return Turn::Done,
        }
        if self.closing {
            let _ = self.stream.shutdown(Shutdown::Write);
            return Turn::Done;
        }

        let mut peer_closed = false;
        while self.input.len() < INPUT_LIMIT {
            let filled = self.input.len();
            let wanted = READ_CHUNK.min(INPUT_LIMIT - filled);
            match self.stream.read(&mut scratch[..wanted]) {
                Ok(0) => {
                    peer_closed = true;
                    break;
                }
                Ok(read) => {
                    self.reserve_input(read);
                    self.input.extend_from_slice(&scratch[..read]);
                    progress = true;
                    if filled == 0 {
                        self.request_started = Some(now);
                    }
                }
                Err(Error::WouldBlock) => break,
                Err(_) => return Turn::Done,
            }
        }

        let mut start = 0;
        // A file's body under way: the next response waits for it.
        while start < self.input.len()
            && !self.closing
            && self.output.len() < OUTPUT_LIMIT
            && self.body.is_empty()
        {
            let input = &self.input[start..];
            let static_file = static_files::respond(input, &mut self.output, &mut self.body, fs);
            let outcome = static_file.unwrap_or_else(|| {
                handler::respond(input, &mut self.output, &|path| stats(served, path))
            });
            match outcome {
                Outcome::Incomplete => break,
                Outcome::Responded {
                    consumed,
                    keep_alive,
                } => {
                    start += consumed;
                    self.closing = !keep_alive;
                    self.last_active = now;
                }
            }
        }
        if start > 0 {
            self.input.drain(..start);
            // What is left is the start of the next request.
            self.request_started = (!self.input.is_empty()).then_some(now);
            self.head_complete = false;
            // A large request's buffer is not kept by an idle connection.
            if self.input.capacity() > 2 * READ_CHUNK && self.input.len() <= READ_CHUNK {
                self.input.shrink_to(READ_CHUNK);
            }
        }
        if !self.head_complete && self.request_started.is_some() {
            self.head_complete = handler::head_is_complete(&self.input);
        }
        // The peer sends no more: answer what it sent, then close.
        if peer_closed {
            self.closing = true;
        }

        // Answer in this turn rather than the next.
        if let Flushed::Failed = self.flush() {
            return Turn::Done;
        }
        if self.closing && self.output.is_empty() && self.body.is_empty() {
            let _ = self.stream.shutdown(Shutdown::Write);
            return Turn::Done;
        }
        self.turn(progress, now)
    }

    /// Makes room for `wanted` more input bytes, growing by doubling up to the limit (never
    /// past it, so that the budget holds).
    fn reserve_input(&mut self, wanted: usize) {
        let needed = self.input.len() + wanted;
        if needed > self.input.capacity() {
            let capacity = (2 * self.input.capacity()).clamp(needed, INPUT_LIMIT);
            self.input.reserve_exact(capacity - self.input.len());
        }
    }

    /// Writes pending output, then the pending file body, until all is sent or the
    /// socket's buffer is full.
    fn flush(&mut self) -> Flushed {
        if self.output.is_empty() && self.body.is_empty() {
            return Flushed::All(false);
        }
        let mut sent_any = false;
        while self.sent < self.output.len() {
            match self.stream.write(&self.output[self.sent..]) {
                Ok(n) => {
                    self.sent += n;
                    sent_any = true;
                }
                Err(Error::WouldBlock) if sent_any => return Flushed::Partly,
                Err(Error::WouldBlock) => return Flushed::Nothing,
                Err(_) => return Flushed::Failed,
            }
        }
        self.output.clear();
        self.sent = 0;
        while !self.body.is_empty() {
            match self.stream.write(self.body) {
                Ok(n) => {
                    self.body = &self.body[n..];
                    sent_any = true;
                }
                Err(Error::WouldBlock) if sent_any => return Flushed::Partly,
                Err(Error::WouldBlock) => return Flushed::Nothing,
                Err(_) => return Flushed::Failed,
            }
        }
        Flushed::All(true)
    }

    fn turn(&mut self, progress: bool, now: Duration) -> Turn {
        if progress {
            // Sending counts as activity; receiving only within a request's deadlines.
            if self.request_started.is_none() {
                self.last_active = now;
            }
            Turn::Progress
        } else {
            Turn::Idle
        }
    }
}

/// `/stats`: the heap, the network and the listener, for the soak and hostile tests.
fn stats(served: &Served, path: &str) -> Option<Vec<u8>> {
    if path != "/stats" {
        return None;
    }
    let heap = unikernel::heap_stats()?;
    let uptime = served.net.now();
    let net = served.net.stats();
    let listener = served.listener.stats();
    Some(
        format!(
            "uptime_ms {}\nheap_size {}\nheap_used {}\nheap_high_water {}\nrx_frames {}\ntx_frames {}\n\
             tx_dropped {}\ninterrupts {}\nsockets {}\nwaits {}\naccepted {}\nhalf_open_expired {}\n\
             half_open_evicted {}\nwaiting_evicted {}\nsyn_dropped {}\nlistener_sockets {}\nconnections {}\nexpired {}\n\
             evicted {}\nsyn_cookies {}\ncookie_connections {}\npolls {}\n",
            uptime.as_millis(),
            heap.size,
            heap.used,
            heap.high_water,
            net.nic.rx_frames,
            net.nic.tx_frames,
            net.nic.tx_dropped,
            net.interrupts,
            net.sockets,
            WAITS.load(Ordering::Relaxed),
            listener.accepted,
            listener.expired,
            listener.evicted,
            listener.waiting_evicted,
            listener.syn_dropped,
            listener.sockets,
            served.connections,
            served.expired,
            served.evicted,
            listener.syn_cookies,
            listener.cookie_connections,
            net.polls,
        )
        .into_bytes(),
    )
}
