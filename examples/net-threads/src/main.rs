//! Blocking network calls under the cooperative scheduler: a `ticker` thread counts and
//! yields, and prints its count every 250 ms, while `main` blocks in `accept` and `read`.
//! A blocking call blocks only its thread (the device's interrupt wakes it), so the ticker
//! keeps counting meanwhile and the connection is still served.
//!
//! Port 7: each line received is answered with `<line> ticks=<count>`; the line `quit`
//! ends the VM with status 0 (runner/tests/net.rs; `cargo uk run net-threads --forward
//! 7007:7`, then `nc 127.0.0.1 7007`).
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU64, Ordering};
use unikernel::net::TcpListener;
use unikernel::prelude::*;
use unikernel::sched;

/// The ticker's loops so far.
static TICKS: AtomicU64 = AtomicU64::new(0);

#[unikernel(
    console,
    heap = "4 MiB",
    sched = coop,
    net(ipv4 = "10.0.2.15/24", gateway = "10.0.2.2")
)]
fn main(net: Net, clock: Clock, sched: Sched) -> ExitCode {
    sched
        .thread()
        .name("ticker")
        .spawn(move || {
            let mut next = clock.now();
            loop {
                TICKS.fetch_add(1, Ordering::Relaxed);
                if clock.now() >= next {
                    println!("net-threads: tick {}", TICKS.load(Ordering::Relaxed));
                    next += Duration::from_millis(250);
                }
                sched::yield_now();
            }
        })
        .expect("a thread");

    let listener = TcpListener::bind(&net, 7).expect("port 7 is free");
    println!(
        "net-threads: listening on {}",
        listener.local_addr().unwrap()
    );
    loop {
        // main blocks here: only this thread waits for the network.
        let (mut stream, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(error) => {
                println!("net-threads: accept: {error}");
                continue;
            }
        };
        println!(
            "net-threads: {peer} connected at tick {}",
            TICKS.load(Ordering::Relaxed)
        );
        let mut line = [0u8; 256];
        let mut len = 0;
        let mut buf = [0u8; 256];
        loop {
            // ... and here, until the peer sends something.
            let n = match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            for &byte in &buf[..n] {
                if byte != b'\n' {
                    if len < line.len() {
                        line[len] = byte;
                        len += 1;
                    }
                    continue;
                }
                let text = core::str::from_utf8(&line[..len]).unwrap_or("?").trim_end();
                if text == "quit" {
                    let _ = stream.write_all(b"bye\n");
                    return ExitCode::SUCCESS;
                }
                let ticks = TICKS.load(Ordering::Relaxed);
                let reply = alloc_reply(text, ticks);
                if stream.write_all(reply.as_bytes()).is_err() {
                    break;
                }
                len = 0;
            }
        }
    }
}

extern crate alloc;

fn alloc_reply(text: &str, ticks: u64) -> alloc::string::String {
    alloc::format!("{text} ticks={ticks}\n")
}
