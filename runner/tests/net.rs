//! Network boot tests: examples/http and examples/udp-echo boot in QEMU with the user-mode
//! network, and the host talks to them through port forwards on 127.0.0.1 (the only
//! address these tests send to). Every guest runs under a deadline and is killed when its
//! test ends; every socket has a timeout.
//!
//! A request sent in one segment is safe through the forward however many clients connect
//! at once; one sent in pieces is not, and such tests use the tap (tests/net_hostile.rs).
//! QEMU's forward listens on the host with a backlog of 1: a burst of clients overflows
//! it, Linux then answers with SYN cookies and drops what arrives while the queue is full.
//! A cookie also validates on a segment that starts up to 3 bytes past the first (the
//! MSS index it encodes absorbs the difference), so a first piece of 3 bytes or fewer
//! that was dropped is acknowledged to the client and never reaches QEMU (`"GET"`,
//! `" /path ..."` arrives as `" /path ..."`: a 400); after a longer one, the next piece
//! may meet a reset.

#[path = "common/http.rs"]
mod http;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use http::{closed, read_response_to, request};
use runner::net::{Forward, Guest, Network, Protocol4};
use runner::{AccelRequest, Boot, Machine};

/// How long a guest may take to boot and start listening.
const READY: Duration = Duration::from_secs(60);

fn example(name: &str) -> PathBuf {
    runner::example_elf(name)
}

/// A free port on the host's loopback (free when asked; QEMU binds it right after).
fn free_port(protocol: Protocol4) -> u16 {
    match protocol {
        Protocol4::Tcp => TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port(),
        Protocol4::Udp => UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port(),
    }
}

/// A running guest whose output is shown if the test fails.
struct Running(Option<Guest>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(guest) = self.0.take()
            && std::thread::panicking()
        {
            eprintln!(
                "--- guest output ---\n{}\n--- command ---\n{}",
                guest.output(),
                guest.command
            );
        }
    }
}

impl std::ops::Deref for Running {
    type Target = Guest;
    fn deref(&self) -> &Guest {
        self.0.as_ref().expect("running")
    }
}

impl std::ops::DerefMut for Running {
    fn deref_mut(&mut self) -> &mut Guest {
        self.0.as_mut().expect("running")
    }
}

/// Boots `name` with one forward to `guest_port` and waits for `ready` on its console.
fn start(name: &str, protocol: Protocol4, guest_port: u16, ready: &str) -> (Running, u16) {
    start_on(Machine::Microvm, name, protocol, guest_port, ready)
}

/// As [`start`], on `machine`.
fn start_on(
    machine: Machine,
    name: &str,
    protocol: Protocol4,
    guest_port: u16,
    ready: &str,
) -> (Running, u16) {
    let elf = example(name);
    let host_port = free_port(protocol);
    let forward = Forward {
        protocol,
        host_port,
        guest_port,
    };
    let boot = Boot::new(&elf).memory(64);
    let mut guest = Guest::spawn(
        &boot,
        &elf,
        AccelRequest::Auto,
        machine,
        &Network::User(vec![forward]),
    )
    .unwrap_or_else(|err| panic!("starting {name}: {err}"));
    guest
        .wait_for(ready, READY)
        .unwrap_or_else(|err| panic!("{err}"));
    (Running(Some(guest)), host_port)
}

/// A connection to the forward on 127.0.0.1's `port`.
fn connect(port: u16) -> BufReader<TcpStream> {
    http::connect(SocketAddr::from(([127, 0, 0, 1], port)))
}

#[test]
fn http_serves_a_page_a_404_a_400_and_a_413() {
    let (guest, port) = start("http", Protocol4::Tcp, 80, "http: listening");
    let mut c = connect(port);

    let page = request(&mut c, "GET / HTTP/1.1\r\nHost: test\r\n\r\n");
    assert_eq!(page.status, 200, "{page:?}");
    assert_eq!(page.header("content-type"), Some("text/html"));
    let body = String::from_utf8(page.body.clone()).unwrap();
    assert!(body.contains("Hello from a unikernel"), "{body}");

    let missing = request(&mut c, "GET /no/such/page HTTP/1.1\r\nHost: test\r\n\r\n");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body, b"not found\n");

    c.get_mut()
        .write_all(b"HEAD / HTTP/1.1\r\nHost: test\r\n\r\n")
        .unwrap();
    let head = read_response_to(&mut c, true);
    assert_eq!(head.header("content-length"), page.header("content-length"));

    let mut bad = connect(port);
    let malformed = request(&mut bad, "THIS IS NOT HTTP\r\n\r\n");
    assert_eq!(malformed.status, 400);
    assert_eq!(malformed.header("connection"), Some("close"));
    assert!(closed(&mut bad), "the server closes after a 400");

    let mut big = connect(port);
    let oversized = request(
        &mut big,
        "POST /upload HTTP/1.1\r\nHost: test\r\nContent-Length: 100000000\r\n\r\n",
    );
    assert_eq!(oversized.status, 413);
    assert!(closed(&mut big), "the server closes after a 413");

    // The first connection is still alive.
    assert_eq!(request(&mut c, "GET / HTTP/1.1\r\n\r\n").status, 200);
    drop(guest);
}

#[test]
fn http_answers_1000_keep_alive_requests_on_one_connection() {
    let (guest, port) = start("http", Protocol4::Tcp, 80, "http: listening");
    let mut c = connect(port);
    for i in 0..1000 {
        let path = if i % 10 == 9 { "/missing" } else { "/" };
        let response = request(
            &mut c,
            &format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n"),
        );
        let expected = if path == "/" { 200 } else { 404 };
        assert_eq!(response.status, expected, "request {i}: {response:?}");
        assert_eq!(
            response.header("connection"),
            None,
            "request {i} kept the connection"
        );
    }
    drop(guest);
}

#[test]
fn http_serves_50_concurrent_connections() {
    let (guest, port) = start("http", Protocol4::Tcp, 80, "http: listening");
    http::concurrent_50(SocketAddr::from(([127, 0, 0, 1], port)));
    drop(guest);
}

#[test]
fn udp_echo_echoes_and_quits() {
    let (mut guest, port) = start("udp-echo", Protocol4::Udp, 7, "udp-echo: listening");
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut buf = [0u8; 2048];
    for i in 0..20 {
        let message = format!("datagram {i} {}", "x".repeat(i * 50));
        // UDP may lose a datagram: retry a few times.
        let echoed = (0..5).find_map(|_| {
            socket
                .send_to(message.as_bytes(), ("127.0.0.1", port))
                .unwrap();
            socket.recv_from(&mut buf).ok()
        });
        let (n, _) = echoed.unwrap_or_else(|| panic!("no echo of datagram {i}"));
        assert_eq!(&buf[..n], message.as_bytes());
    }
    socket.send_to(b"quit", ("127.0.0.1", port)).unwrap();
    assert_eq!(
        guest.wait(Duration::from_secs(30)),
        Some(0),
        "{}",
        guest.output()
    );
}

/// How many `net-threads: tick` lines the guest has printed.
fn ticks(guest: &Guest) -> usize {
    guest.output().matches("net-threads: tick ").count()
}

/// Waits until the guest has printed `more` tick lines beyond `from` (the ticker prints
/// one every 250 ms), or panics naming `what` main was blocked in.
fn ticks_go_on(guest: &Guest, from: usize, more: usize, what: &str) -> usize {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = ticks(guest);
        if now >= from + more {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "the ticker printed {} lines in 20 s while main blocked in {what}",
            now - from
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The value of `ticks=` in a reply of net-threads.
fn ticks_in(reply: &str) -> u64 {
    reply
        .trim_end()
        .rsplit_once("ticks=")
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or_else(|| panic!("no ticks= in {reply:?}"))
}

/// Under `sched = coop`, a thread blocked in `accept` or `read` lets the others run: the
/// ticker thread counts and prints while main waits for a connection and for its data,
/// and the connection is still served when the data comes.
fn net_threads_on(machine: Machine) {
    let (mut guest, port) = start_on(
        machine,
        "net-threads",
        Protocol4::Tcp,
        7,
        "net-threads: listening",
    );
    // main is blocked in accept: the ticker goes on.
    let seen = ticks_go_on(&guest, ticks(&guest), 3, "accept");
    let mut c = connect(port);
    guest
        .wait_for("connected at tick", READY)
        .unwrap_or_else(|err| panic!("{err}"));
    // main is blocked in read: the ticker goes on.
    let seen = ticks_go_on(&guest, seen, 3, "read");
    c.get_mut().write_all(b"hello\n").unwrap();
    let mut reply = String::new();
    c.read_line(&mut reply).expect("a reply");
    assert!(reply.starts_with("hello ticks="), "{reply:?}");
    let first = ticks_in(&reply);
    ticks_go_on(&guest, seen, 2, "read");
    c.get_mut().write_all(b"again\n").unwrap();
    reply.clear();
    c.read_line(&mut reply).expect("a second reply");
    assert!(reply.starts_with("again ticks="), "{reply:?}");
    assert!(
        ticks_in(&reply) > first,
        "the ticker counted while main waited for the second line: {reply:?}"
    );
    c.get_mut().write_all(b"quit\n").unwrap();
    assert_eq!(
        guest.wait(Duration::from_secs(30)),
        Some(0),
        "{}",
        guest.output()
    );
}

#[test]
fn net_threads_block_only_their_thread_on_microvm() {
    net_threads_on(Machine::Microvm);
}

#[test]
fn net_threads_block_only_their_thread_on_q35() {
    net_threads_on(Machine::Q35);
}

/// The counters of http's `/stats` page, asked for on `c`.
fn counters(c: &mut BufReader<TcpStream>) -> std::collections::HashMap<String, u64> {
    let stats = request(c, "GET /stats HTTP/1.1\r\n\r\n");
    assert_eq!(stats.status, 200, "{stats:?}");
    String::from_utf8_lossy(&stats.body)
        .lines()
        .filter_map(|line| {
            let (name, value) = line.split_once(' ')?;
            Some((name.to_string(), value.parse().ok()?))
        })
        .collect()
}

/// On PCI machines the device interrupts (INTx, level-triggered, through the I/O APIC):
/// the server answers; left idle, it waits for the network rather than polling it (its
/// event loop turns a few times, for its one-second timeout); and the request that ends
/// the idle time reaches it through a device interrupt.
fn http_is_interrupt_driven_on(machine: Machine) {
    let (guest, port) = start_on(machine, "http", Protocol4::Tcp, 80, "http: listening");
    assert!(
        guest.output().contains("interrupt driven"),
        "{}",
        guest.output()
    );
    let mut c = connect(port);
    assert_eq!(request(&mut c, "GET / HTTP/1.1\r\n\r\n").status, 200);
    let before = counters(&mut c);
    // Idle: the keep-alive connection is open, nothing is sent.
    std::thread::sleep(Duration::from_secs(2));
    let after = counters(&mut c);
    let grew = |name: &str| after[name] - before[name];
    assert!(
        grew("waits") < 20,
        "the server waited {} times in 2 s of idle time: it polls ({before:?} then {after:?})",
        grew("waits")
    );
    assert!(
        grew("interrupts") > 0,
        "no device interrupt between two requests 2 s apart: the guest does not take the device's interrupts ({before:?} then {after:?})"
    );
    drop(guest);
}

/// The server's event loop asks each connection in turn and waits when none can go on:
/// the stack is polled a few times per turn however many connections are open, not once
/// for each (a poll walks every socket, so a poll per connection made the loop's work grow
/// with the square of the connections that slowloris clients can hold open).
#[test]
fn an_event_loop_over_idle_connections_polls_the_stack_a_few_times_per_turn() {
    const IDLE: usize = 32;
    let (guest, port) = start("http", Protocol4::Tcp, 80, "http: listening");
    let mut c = connect(port);
    assert_eq!(request(&mut c, "GET / HTTP/1.1\r\n\r\n").status, 200);
    // Open, accepted (the server answers on each), then silent.
    let mut idle: Vec<_> = (0..IDLE).map(|_| connect(port)).collect();
    for connection in &mut idle {
        assert_eq!(request(connection, "GET / HTTP/1.1\r\n\r\n").status, 200);
    }
    let before = counters(&mut c);
    std::thread::sleep(Duration::from_secs(3));
    let after = counters(&mut c);
    let grew = |name: &str| after[name] - before[name];
    assert!(after["connections"] > IDLE as u64, "{after:?}");
    // The turns that waited (about one a second: the loop's timeout), and up to two for
    // each /stats request.
    let turns = grew("waits") + 4;
    assert!(
        grew("polls") < turns * IDLE as u64 / 2,
        "{} polls in {} turns of the event loop over {} connections: a poll per connection \
         ({before:?} then {after:?})",
        grew("polls"),
        turns,
        after["connections"],
    );
    drop(idle);
    drop(guest);
}

#[test]
fn http_is_interrupt_driven_on_q35() {
    http_is_interrupt_driven_on(Machine::Q35);
}

#[test]
fn http_is_interrupt_driven_on_pc() {
    http_is_interrupt_driven_on(Machine::Pc);
}

/// How long one answer of net-cpus may take (the guest runs 2 vCPUs under TCG on a host
/// shared with other builds); a waiter that is never woken fails here instead of hanging.
const NET_CPUS_ANSWER: Duration = Duration::from_secs(10);

/// Sockets used from threads on a CPU other than the network's: examples/net-cpus on 2
/// vCPUs (q35, multi-threaded TCG) runs a TCP server and a UDP echo on CPU 1, blocked
/// in `accept`, `read` and `recv_from` while the device interrupts CPU 0. Every answer
/// comes back, written on CPU 1, each within a bound, sequentially from one client (the
/// user-mode forward can lose bytes to several at once). On microvm the runner keeps ACPI
/// for the APs' MADT, and the guest finds the device by probing microvm's windows.
#[test]
fn sockets_answer_from_threads_on_cpu_1() {
    sockets_answer_from_threads_on_cpu_1_of(Machine::Q35);
}

#[test]
fn sockets_answer_from_threads_on_cpu_1_on_microvm() {
    sockets_answer_from_threads_on_cpu_1_of(Machine::Microvm);
}

fn sockets_answer_from_threads_on_cpu_1_of(machine: Machine) {
    let elf = example("net-cpus");
    let tcp_port = free_port(Protocol4::Tcp);
    let udp_port = free_port(Protocol4::Udp);
    let forwards = vec![
        Forward {
            protocol: Protocol4::Tcp,
            host_port: tcp_port,
            guest_port: 7,
        },
        Forward {
            protocol: Protocol4::Udp,
            host_port: udp_port,
            guest_port: 7,
        },
    ];
    let boot = Boot::new(&elf).memory(64).cpus(2);
    let guest = Guest::spawn(
        &boot,
        &elf,
        AccelRequest::Tcg,
        machine,
        &Network::User(forwards),
    )
    .unwrap_or_else(|err| panic!("starting net-cpus on {machine:?}: {err}"));
    let mut guest = Running(Some(guest));
    for ready in [
        "net-cpus: tcp on cpu 1 listening",
        "net-cpus: udp on cpu 1 listening",
    ] {
        guest
            .wait_for(ready, READY)
            .unwrap_or_else(|err| panic!("{err}"));
    }
    let started = Instant::now();

    // Two connections in turn: the server thread blocks in `accept` before each, and in
    // `read` before each line.
    let mut lines = 0;
    for connection in 0..2 {
        let mut c = connect(tcp_port);
        c.get_ref().set_read_timeout(Some(NET_CPUS_ANSWER)).unwrap();
        for i in 0..10 {
            let line = format!("line {i} of connection {connection}");
            let asked = Instant::now();
            c.get_mut()
                .write_all(format!("{line}\n").as_bytes())
                .unwrap();
            let mut reply = String::new();
            c.read_line(&mut reply).unwrap_or_else(|err| {
                panic!(
                    "no answer to {line:?} within {NET_CPUS_ANSWER:?}: {err}\n{}",
                    guest.output()
                )
            });
            assert_eq!(reply, format!("{line} cpu=1\n"));
            assert!(asked.elapsed() < NET_CPUS_ANSWER);
            lines += 1;
        }
    }
    assert_eq!(lines, 20);

    // The echo thread blocks in `recv_from` before each datagram.
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut buf = [0u8; 2048];
    for i in 0..10 {
        let message = format!("datagram {i}");
        // UDP may lose a datagram: a few tries, each bounded.
        let echoed = (0..5).find_map(|_| {
            socket
                .send_to(message.as_bytes(), ("127.0.0.1", udp_port))
                .unwrap();
            socket.recv_from(&mut buf).ok()
        });
        let (n, _) = echoed.unwrap_or_else(|| {
            panic!(
                "no echo of {message:?} in 5 tries of 2 s\n{}",
                guest.output()
            )
        });
        assert_eq!(
            String::from_utf8_lossy(&buf[..n]),
            format!("{message} cpu=1")
        );
    }

    let mut c = connect(tcp_port);
    c.get_ref().set_read_timeout(Some(NET_CPUS_ANSWER)).unwrap();
    // A read with a timeout and nothing to read: the timeout ends it, on CPU 1's timer.
    let asked = Instant::now();
    c.get_mut().write_all(b"wait 300\n").unwrap();
    let mut reply = String::new();
    c.read_line(&mut reply)
        .unwrap_or_else(|err| panic!("no answer to a 300 ms wait: {err}\n{}", guest.output()));
    let host_waited = asked.elapsed();
    let guest_waited: u64 = reply
        .strip_prefix("timed out after ")
        .and_then(|rest| rest.strip_suffix(" ms cpu=1\n"))
        .and_then(|ms| ms.parse().ok())
        .unwrap_or_else(|| panic!("{reply:?}"));
    assert!(
        (300..3_000).contains(&guest_waited) && host_waited >= Duration::from_millis(300),
        "a 300 ms read timeout on CPU 1 took {guest_waited} ms in the guest, {host_waited:?} on the host"
    );
    reply.clear();
    c.get_mut().write_all(b"quit\n").unwrap();
    c.read_line(&mut reply).expect("an answer to quit");
    assert_eq!(reply, "bye cpu=1\n");
    let elapsed = started.elapsed();
    eprintln!(
        "net-cpus: 20 lines, 10 datagrams, a 300 ms read timeout ({guest_waited} ms) and quit answered from CPU 1 in {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_secs(120),
        "20 lines, 10 datagrams, a timed-out read and quit took {elapsed:?}"
    );
    assert_eq!(
        guest.wait(Duration::from_secs(30)),
        Some(0),
        "{}",
        guest.output()
    );
    assert!(
        guest
            .output()
            .contains("net-cpus: the tcp server quit on cpu 1"),
        "{}",
        guest.output()
    );
}
