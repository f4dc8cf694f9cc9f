//! A UDP echo server: every datagram to port 7 comes back to its sender. The smallest app
//! with a network; `runner run udp-echo --forward udp:7007:7` reaches it from the host.
#![no_std]
#![no_main]

use unikernel::net::UdpSocket;
use unikernel::prelude::*;

#[unikernel(
    console,
    heap = "2 MiB",
    net(ipv4 = "10.0.2.15/24", gateway = "10.0.2.2")
)]
fn main(net: Net) -> ExitCode {
    let socket = UdpSocket::bind(&net, 7).expect("port 7 is free");
    println!("udp-echo: listening on {}", socket.local_addr().unwrap());
    let mut buf = [0u8; 2048];
    loop {
        match socket.recv_from(&mut buf) {
            Ok((n, peer)) => {
                if &buf[..n] == b"quit\n" || &buf[..n] == b"quit" {
                    let _ = socket.send_to(b"bye\n", peer);
                    return ExitCode::SUCCESS;
                }
                if let Err(error) = socket.send_to(&buf[..n], peer) {
                    println!("udp-echo: {error}");
                }
            }
            Err(error) => println!("udp-echo: {error}"),
        }
    }
}
