//! The HTTP and TCP client of the network boot tests (`net.rs`, `monitor_net.rs`), which
//! include it with `#[path = "common/http.rs"] mod http;`: not every test file that uses
//! `common` makes requests.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// How long a connect, a read or a write may take.
pub const IO_TIMEOUT: Duration = Duration::from_secs(20);

/// A connection to `addr` with the timeouts set, retried until [`IO_TIMEOUT`]: a tap's
/// first connection may race the guest's first ARP answer.
pub fn connect(addr: SocketAddr) -> BufReader<TcpStream> {
    let deadline = Instant::now() + IO_TIMEOUT;
    let stream = loop {
        match TcpStream::connect_timeout(&addr, IO_TIMEOUT) {
            Ok(stream) => break stream,
            Err(err) if Instant::now() < deadline => {
                eprintln!("connect {addr}: {err}; again");
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(err) => panic!("connect {addr}: {err}"),
        }
    };
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_nodelay(true).unwrap();
    BufReader::new(stream)
}

/// One HTTP response: status, headers (lower-case names), body (by Content-Length).
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

pub fn read_response(reader: &mut BufReader<TcpStream>) -> Response {
    read_response_to(reader, false)
}

/// Reads a response; `head` for the answer to a HEAD request (a length, no body).
pub fn read_response_to(reader: &mut BufReader<TcpStream>, head: bool) -> Response {
    let mut line = String::new();
    if let Err(err) = reader.read_line(&mut line) {
        panic!("no status line: {err}");
    }
    let status = line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP/1.1 status line: {line:?}"));
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).expect("a header line");
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':').expect("name: value");
        headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
    }
    let mut response = Response {
        status,
        headers,
        body: Vec::new(),
    };
    let length: usize = response
        .header("content-length")
        .expect("every response has a Content-Length")
        .parse()
        .unwrap();
    if head {
        return response;
    }
    response.body = vec![0; length];
    reader
        .read_exact(&mut response.body)
        .expect("the whole body");
    response
}

/// Sends `text` and reads the response.
pub fn request(reader: &mut BufReader<TcpStream>, text: &str) -> Response {
    reader.get_mut().write_all(text.as_bytes()).unwrap();
    read_response(reader)
}

/// Whether the server closed the connection (EOF, or a reset).
pub fn closed(reader: &mut BufReader<TcpStream>) -> bool {
    let mut byte = [0u8; 1];
    matches!(reader.read(&mut byte), Ok(0) | Err(_))
}

/// 50 keep-alive connections open at once, each making 5 requests and then closing with
/// `Connection: close`; the server is still up and its heap figures readable after.
pub fn concurrent_50(addr: SocketAddr) {
    // Open all 50 first, then use them, so that they are open at the same time.
    let connections: Vec<BufReader<TcpStream>> = (0..50).map(|_| connect(addr)).collect();
    let threads: Vec<_> = connections
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| {
            std::thread::spawn(move || {
                for round in 0..5 {
                    let response = request(
                        &mut c,
                        &format!("GET / HTTP/1.1\r\nHost: test\r\nX-Client: {i}-{round}\r\n\r\n"),
                    );
                    assert_eq!(response.status, 200, "connection {i}, round {round}");
                }
                let last = request(&mut c, "GET / HTTP/1.1\r\nConnection: close\r\n\r\n");
                assert_eq!(last.header("connection"), Some("close"));
                assert!(
                    closed(&mut c),
                    "connection {i} is closed after `Connection: close`"
                );
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("every connection is served");
    }
    let stats = request(&mut connect(addr), "GET /stats HTTP/1.1\r\n\r\n");
    assert_eq!(stats.status, 200);
    assert!(String::from_utf8_lossy(&stats.body).contains("heap_high_water"));
}
