//! Random numbers from the `rand` subsystem, and what the network takes from it: prints a
//! random word, random bytes and where the seed came from; with `--connect <port>`, opens
//! a TCP connection to the gateway's `<port>` and prints the local port it was given.
//! Two boots print different values (`runner/tests/rand.rs` checks it).
#![no_std]
#![no_main]

use core::net::{Ipv4Addr, SocketAddrV4};
use unikernel::net::{Shutdown, TcpStream};
use unikernel::prelude::*;

#[unikernel(
    console,
    heap = "1 MiB",
    args,
    rand,
    net(ipv4 = "10.0.2.15/24", gateway = "10.0.2.2")
)]
fn main(args: Args, rand: Rand, net: Net) -> ExitCode {
    println!("rand: seeded from {}", rand.sources());
    println!("rand: u64 {:016x}", rand.u64());
    let mut bytes = [0u8; 16];
    rand.fill(&mut bytes);
    print!("rand: bytes ");
    for byte in bytes {
        print!("{byte:02x}");
    }
    println!();

    let Some(port) = args.value_of("connect") else {
        return ExitCode::SUCCESS;
    };
    let Ok(port) = port.parse::<u16>() else {
        println!("rand: --connect takes a port number");
        return ExitCode::from(2);
    };
    let gateway = SocketAddrV4::new(Ipv4Addr::new(10, 0, 2, 2), port);
    match TcpStream::connect(&net, gateway, Some(Duration::from_secs(10))) {
        Ok(mut stream) => {
            let local = stream.local_addr().map(|addr| addr.port()).unwrap_or(0);
            println!("rand: connected from port {local}");
            // Say hello, then wait for the peer to close: returning at once would end the
            // VM before the greeting left it.
            let _ = stream.write_all(b"hello\n");
            let _ = stream.shutdown(Shutdown::Write);
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let mut rest = [0u8; 64];
            while let Ok(1..) = stream.read(&mut rest) {}
            ExitCode::SUCCESS
        }
        Err(error) => {
            println!("rand: connect to {gateway}: {error}");
            ExitCode::from(3)
        }
    }
}
