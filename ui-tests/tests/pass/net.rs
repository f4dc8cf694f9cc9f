//! `net` with a static address: `irq` and `clock` are added for it (no choice involved),
//! `heap` is declared (a choice); `main` takes the `Net` handle and makes sockets with it.

#![deny(unused)]

// The entry is in a module so that the case's binary runs a `main` of its own: the one the
// attribute generates for a host build says that apps run in a VM, and fails.
mod app {
    use unikernel::net::{TcpListener, UdpSocket};
    use unikernel::prelude::*;

    #[unikernel(
        console,
        heap = "4 MiB",
        net(ipv4 = "10.0.2.15/24", gateway = "10.0.2.2")
    )]
    fn main(net: Net) -> ExitCode {
        let _listener = TcpListener::bind(&net, 80);
        let _socket = UdpSocket::bind(&net, 7);
        ExitCode::SUCCESS
    }
}

fn main() {}
