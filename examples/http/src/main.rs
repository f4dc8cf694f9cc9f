//! An HTTP/1.1 server: `/` is a small page, `/stats` the heap's and the network's figures,
//! `/static/...` the files of the initrd (`static/`, see `static_files`).
//!
//! One thread serves every connection with non-blocking sockets: accept what is waiting,
//! give each connection a turn (send what is pending, read what arrived, answer each whole
//! request), and when none could go on, wait for the network (the CPU halts until the
//! device interrupts). A connection whose peer does not read its responses stops being
//! read (backpressure), one idle for a minute is closed.
//!
//! `runner run http` forwards the host's port 8080 to it: `curl http://127.0.0.1:8080/`.
#![no_std]
#![no_main]

extern crate alloc;

mod handler;
mod static_files;

use alloc::format;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use core::time::Duration;

use unikernel::net::{Error, ListenOptions, Shutdown, TcpListener, TcpStream};
use unikernel::prelude::*;

use handler::Outcome;

/// Connections served at once; more wait in the listener's backlog.
const MAX_CONNECTIONS: usize = 1024;
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Bytes read from a connection at a time.
const READ_CHUNK: usize = 4096;

/// Times the server found nothing to do and waited for the network: an idle server waits
/// a few times a second (its one-second timeout, the stack's timers), a polling one would
/// count thousands (`/stats`; runner/tests/net.rs checks it).
static WAITS: AtomicU64 = AtomicU64::new(0);

#[unikernel(
    console,
    heap = "16 MiB",
    net(ipv4 = "10.0.2.15/24", gateway = "10.0.2.2"),
    fs
)]
fn main(net: Net, fs: Fs) -> ExitCode {
    let options = ListenOptions {
        backlog: 256,
        rx_buffer: 8 * 1024,
        tx_buffer: 16 * 1024,
    };
    let mut listener = match TcpListener::bind_with(&net, 80, options) {
        Ok(listener) => listener,
        Err(error) => {
            println!("http: cannot listen on port 80: {error}");
            return ExitCode::FAILURE;
        }
    };
    listener.set_nonblocking(true).unwrap();
    println!("http: listening on {}", listener.local_addr().unwrap());

    let mut connections: Vec<Connection> = Vec::new();
    loop {
        let now = net.now();
        let mut progress = false;
        while connections.len() < MAX_CONNECTIONS {
            match listener.accept() {
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
        connections.retain_mut(|connection| match connection.serve(&net, &fs, now) {
            Turn::Idle => now - connection.last_active < IDLE_TIMEOUT,
            Turn::Progress => {
                progress = true;
                true
            }
            Turn::Done => {
                progress = true;
                false
            }
        });
        if !progress {
            WAITS.fetch_add(1, Ordering::Relaxed);
            net.wait(Some(Duration::from_secs(1)));
        }
    }
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
    sent: usize,
    /// Close once `output` is sent.
    closing: bool,
    last_active: Duration,
}

impl Connection {
    fn new(mut stream: TcpStream, now: Duration) -> Self {
        stream.set_nonblocking(true).unwrap();
        Self {
            stream,
            input: Vec::new(),
            output: Vec::new(),
            sent: 0,
            closing: false,
            last_active: now,
        }
    }

    /// One turn: send what is pending, read what arrived, answer each whole request and
    /// send the answers. Bounded work, so that every connection gets its turn.
    fn serve(&mut self, net: &Net, fs: &Fs, now: Duration) -> Turn {
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

        let limit = handler::MAX_HEAD + handler::MAX_BODY;
        while self.input.len() <= limit {
            let filled = self.input.len();
            self.input.resize(filled + READ_CHUNK, 0);
            let read = self.stream.read(&mut self.input[filled..]);
            self.input.truncate(filled + *read.as_ref().unwrap_or(&0));
            match read {
                Ok(0) => return Turn::Done,
                Ok(_) => progress = true,
                Err(Error::WouldBlock) => break,
                Err(_) => return Turn::Done,
            }
        }

        let mut start = 0;
        while start < self.input.len() && !self.closing {
            let input = &self.input[start..];
            let outcome = static_files::respond(input, &mut self.output, fs).unwrap_or_else(|| {
                handler::respond(input, &mut self.output, &|path| stats(net, path))
            });
            match outcome {
                Outcome::Incomplete => break,
                Outcome::Responded {
                    consumed,
                    keep_alive,
                } => {
                    start += consumed;
                    self.closing = !keep_alive;
                }
            }
        }
        self.input.drain(..start);

        // Answer in this turn rather than the next.
        if let Flushed::Failed = self.flush() {
            return Turn::Done;
        }
        if self.closing && self.output.is_empty() {
            let _ = self.stream.shutdown(Shutdown::Write);
            return Turn::Done;
        }
        self.turn(progress, now)
    }

    /// Writes pending output until it is all sent or the socket's buffer is full.
    fn flush(&mut self) -> Flushed {
        if self.output.is_empty() {
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
        Flushed::All(true)
    }

    fn turn(&mut self, progress: bool, now: Duration) -> Turn {
        if progress {
            self.last_active = now;
            Turn::Progress
        } else {
            Turn::Idle
        }
    }
}

/// `/stats`: the heap and the network, for the soak test.
fn stats(net: &Net, path: &str) -> Option<Vec<u8>> {
    if path != "/stats" {
        return None;
    }
    let heap = unikernel::heap_stats()?;
    let uptime = net.now();
    let net = net.stats();
    Some(
        format!(
            "uptime_ms {}\nheap_size {}\nheap_used {}\nheap_high_water {}\nrx_frames {}\ntx_frames {}\n\
             tx_dropped {}\ninterrupts {}\nsockets {}\nwaits {}\n",
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
        )
        .into_bytes(),
    )
}
