//! A key-value store over UDP that survives crashes: every change is appended to a log on
//! the disk and synced before it is acknowledged; at boot the log is replayed, a torn last
//! record (a crash in the middle of an append) is detected by its length and checksum and
//! cut off, and a log much larger than the live data is compacted.
//!
//! One datagram per request to port 7070, one answer:
//! `PUT <key> <value>` -> `OK`, `GET <key>` -> `VALUE <value>` or `NOTFOUND`,
//! `DELETE <key>` (or `DEL`) -> `OK`, `STATS` -> `STATS <keys> <log bytes>`; anything else `ERR ...`.
//! `OK` is sent only once the change is on the disk (after `sync_all`).
//!
//! `cargo uk disk create data.img && cargo uk run kv --disk data.img`, then
//! `echo 'PUT a 1' | nc -u -w1 127.0.0.1 7070`.
#![no_std]
#![no_main]

extern crate alloc;

mod log;

use alloc::format;
use alloc::vec::Vec;
use unikernel::net::UdpSocket;
use unikernel::prelude::*;

use log::Store;

#[unikernel(
    console,
    heap = "16 MiB",
    net(ipv4 = "10.0.2.15/24", gateway = "10.0.2.2"),
    disk
)]
fn main(net: Net, disk: Disk) -> ExitCode {
    let mut store = match Store::open(&disk) {
        Ok(store) => store,
        Err(error) => {
            println!("kv: cannot open the store: {error}");
            return ExitCode::FAILURE;
        }
    };
    let socket = UdpSocket::bind(&net, 7070).expect("port 7070 is free");
    println!("kv: listening on {}", socket.local_addr().unwrap());
    let mut buf = [0u8; 2048];
    loop {
        let (n, peer) = match socket.recv_from(&mut buf) {
            Ok(received) => received,
            Err(error) => {
                println!("kv: {error}");
                continue;
            }
        };
        let answer = handle(&mut store, &buf[..n]);
        if let Err(error) = socket.send_to(&answer, peer) {
            println!("kv: {error}");
        }
    }
}

fn handle(store: &mut Store, request: &[u8]) -> Vec<u8> {
    let request = request.strip_suffix(b"\n").unwrap_or(request);
    let mut words = request.splitn(3, |&b| b == b' ');
    let command = words.next().unwrap_or_default();
    let key = words.next();
    let value = words.next();
    let result = match (command, key, value) {
        (b"PUT", Some(key), Some(value)) if !key.is_empty() => {
            store.put(key, value).map(|()| b"OK".to_vec())
        }
        (b"GET", Some(key), None) => Ok(match store.get(key) {
            Some(value) => [b"VALUE ", value].concat(),
            None => b"NOTFOUND".to_vec(),
        }),
        (b"DELETE" | b"DEL", Some(key), None) => store.delete(key).map(|()| b"OK".to_vec()),
        (b"STATS", None, None) => {
            Ok(format!("STATS {} {}", store.len(), store.log_len()).into_bytes())
        }
        _ => return b"ERR expected PUT <key> <value>, GET <key>, DELETE <key> or STATS".to_vec(),
    };
    result.unwrap_or_else(|error| format!("ERR {error}").into_bytes())
}
