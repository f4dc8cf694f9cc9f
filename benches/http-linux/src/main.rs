//! The Linux baseline of the HTTP benchmark (`benches/http.sh`): the request handling of
//! `examples/http` (its `handler.rs`, included as is) in an ordinary std program, one
//! thread per connection with blocking sockets, the way a std server is usually written.
//! The benchmark builds it as a static binary (glibc, `+crt-static`) and runs it as the
//! only program of a busybox initramfs on Debian's kernel.
//!
//! `http-linux [port]` (default 80).

extern crate alloc;

#[path = "../../../examples/http/src/handler.rs"]
// The guest uses more of it (`head_is_complete` picks whom to accept at the connection cap).
#[allow(dead_code)]
mod handler;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};

use handler::Outcome;

fn main() {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|port| port.parse().ok())
        .unwrap_or(80);
    let listener = match TcpListener::bind(("0.0.0.0", port)) {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("http-linux: cannot listen on port {port}: {error}");
            std::process::exit(1);
        }
    };
    println!("http-linux: listening on port {port}");
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                std::thread::spawn(move || serve(stream));
            }
            Err(error) => eprintln!("http-linux: accept: {error}"),
        }
    }
}

/// Serves one connection: read, answer each whole request, until either side closes.
fn serve(mut stream: TcpStream) {
    let mut input = Vec::new();
    let mut output = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let mut start = 0;
        let mut close = false;
        while start < input.len() {
            match handler::respond(&input[start..], &mut output, &|_| None) {
                Outcome::Incomplete => break,
                Outcome::Responded {
                    consumed,
                    keep_alive,
                } => {
                    start += consumed;
                    if !keep_alive {
                        close = true;
                        break;
                    }
                }
            }
        }
        input.drain(..start);
        if !output.is_empty() {
            if stream.write_all(&output).is_err() {
                return;
            }
            output.clear();
        }
        if close {
            let _ = stream.shutdown(Shutdown::Write);
            return;
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => input.extend_from_slice(&chunk[..n]),
        }
    }
}
