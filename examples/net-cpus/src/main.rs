//! Sockets used from a CPU other than the network's: the network and the device's
//! interrupt stay on CPU 0, while a TCP server thread and a UDP echo thread, both pinned to
//! CPU 1, block in `accept`, `read` and `recv_from`. The interrupt on CPU 0 wakes them
//! through the scheduler's wake-up IPI. Every answer names the CPU that wrote it.
//!
//! Port 7, TCP: each line is answered with `<line> cpu=<k>`; the line `quit` is answered
//! with `bye cpu=<k>` and ends the VM with status 0; the line `wait <ms>` makes the server
//! read with a timeout of `<ms>` while the peer sends nothing, and answer `timed out after
//! <elapsed> ms cpu=<k>` (the timeout runs on CPU 1's timer). Port 7, UDP: each datagram
//! comes back with ` cpu=<k>` appended. runner/tests/net.rs drives it; by hand: `cargo uk
//! run net-cpus --machine q35 --forward 7007:7 --forward udp:7008:7`, then `nc 127.0.0.1
//! 7007` (q35: on microvm a network turns ACPI off, and the second CPU is found in ACPI).
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use unikernel::net::{Error, TcpListener, TcpStream, UdpSocket};
use unikernel::prelude::*;
use unikernel::sched::{Builder, sleep, this_cpu};

/// The CPU the sockets are used from (the network runs on CPU 0).
const SOCKET_CPU: usize = 1;

/// Echoes datagrams on port 7 with the CPU that answered, forever.
fn udp_echo(net: Net) {
    let socket = UdpSocket::bind(&net, 7).expect("UDP port 7 is free");
    println!("net-cpus: udp on cpu {} listening", this_cpu());
    let mut buf = [0u8; 1500];
    loop {
        // This thread blocks here, on CPU 1, until a datagram comes.
        match socket.recv_from(&mut buf) {
            Ok((n, peer)) => {
                let mut reply = buf[..n].to_vec();
                reply.extend_from_slice(format!(" cpu={}", this_cpu()).as_bytes());
                if let Err(error) = socket.send_to(&reply, peer) {
                    println!("net-cpus: udp send: {error}");
                }
            }
            Err(error) => println!("net-cpus: udp: {error}"),
        }
    }
}

/// Reads with a timeout of `timeout` while the peer sends nothing, and says how it ended.
fn timed_read(stream: &mut TcpStream, clock: Clock, timeout: Duration) -> alloc::string::String {
    let mut scratch = [0u8; 64];
    let _ = stream.set_read_timeout(Some(timeout));
    let started = clock.now();
    let outcome = stream.read(&mut scratch);
    let waited = clock.now() - started;
    let _ = stream.set_read_timeout(None);
    match outcome {
        Err(Error::TimedOut) => format!(
            "timed out after {} ms cpu={}\n",
            waited.as_millis(),
            this_cpu()
        ),
        other => format!("read {other:?} instead of timing out cpu={}\n", this_cpu()),
    }
}

/// Answers lines on TCP port 7 with the CPU that answered, until the line `quit`.
/// Returns the CPU it ran on.
fn tcp_server(net: Net, clock: Clock) -> usize {
    let listener = TcpListener::bind(&net, 7).expect("TCP port 7 is free");
    println!("net-cpus: tcp on cpu {} listening", this_cpu());
    loop {
        // Blocks in accept, then in read, on CPU 1.
        let (mut stream, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(error) => {
                println!("net-cpus: accept: {error}");
                continue;
            }
        };
        println!("net-cpus: {peer} connected on cpu {}", this_cpu());
        let mut line = alloc::vec::Vec::new();
        let mut buf = [0u8; 512];
        loop {
            let n = match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            for &byte in &buf[..n] {
                if byte != b'\n' {
                    line.push(byte);
                    continue;
                }
                let text = core::str::from_utf8(&line).unwrap_or("?").trim_end();
                if text == "quit" {
                    let _ = stream.write_all(format!("bye cpu={}\n", this_cpu()).as_bytes());
                    // The VM ends when this returns: wait (at most 2 s) until the peer has
                    // the answer, or it may die with the VMM on its way out.
                    let deadline = clock.now() + Duration::from_secs(2);
                    while stream.send_queue() > 0 && clock.now() < deadline {
                        sleep(Duration::from_millis(1));
                    }
                    return this_cpu();
                }
                let reply = match text.strip_prefix("wait ").map(str::parse::<u64>) {
                    Some(Ok(ms)) => timed_read(&mut stream, clock, Duration::from_millis(ms)),
                    _ => format!("{text} cpu={}\n", this_cpu()),
                };
                if stream.write_all(reply.as_bytes()).is_err() {
                    break;
                }
                line.clear();
            }
        }
    }
}

#[unikernel(
    console,
    heap = "4 MiB",
    sched = fixed(cpus = 2),
    net(ipv4 = "10.0.2.15/24", gateway = "10.0.2.2")
)]
fn main(net: Net, clock: Clock, sched: Sched) -> ExitCode {
    if sched.cpus() <= SOCKET_CPU {
        println!("FAIL: net-cpus needs {} CPUs", SOCKET_CPU + 1);
        return ExitCode::FAILURE;
    }
    Builder::new()
        .cpu(SOCKET_CPU)
        .spawn(move || udp_echo(net))
        .expect("CPU 1 runs");
    let server = Builder::new()
        .cpu(SOCKET_CPU)
        .spawn(move || tcp_server(net, clock))
        .expect("CPU 1 runs");
    let served_on = server.join();
    println!("net-cpus: the tcp server quit on cpu {served_on}");
    if served_on == SOCKET_CPU {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
