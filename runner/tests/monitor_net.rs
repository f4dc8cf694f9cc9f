//! The network tests of tests/net.rs on the monitor: examples/http (pages, 404, 400, 413,
//! 1,000 keep-alive requests, 50 concurrent connections), examples/udp-echo and
//! examples/net-threads boot with `--vmm monitor`, with passt (user-mode, no root, port
//! forwards on 127.0.0.1) and with a tap device (root; the clients then run inside the
//! runner's network namespace). And a guest that offers malformed descriptor chains
//! (tests/guests/virtio-rogue) gets its device marked failed, with a report, while the
//! monitor carries on.
//!
//! Each guest is `cargo uk boot --vmm monitor` (the runner binary) as a child process,
//! stopped with SIGTERM (which removes its passt or namespace) when its test ends. The
//! tests need KVM and skip without it (see `common::kvm_usable`); the tap tests need root.

mod common;
#[path = "common/http.rs"]
mod http;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

const RUNNER: &str = env!("CARGO_BIN_EXE_runner");
use http::{closed, connect, request};

/// How long a guest may take to boot and start listening.
const READY: Duration = Duration::from_secs(60);
/// What tells the test binary, re-run inside a namespace, which client to be.
const SUITE_VAR: &str = "MONITOR_NET_SUITE";
const ADDR_VAR: &str = "MONITOR_NET_ADDR";

/// A guest on the monitor, in the background, with its output collected.
struct Guest {
    child: Child,
    output: Arc<Mutex<String>>,
}

impl Guest {
    /// `cargo uk boot --vmm monitor <options> <image> -- <args>`.
    fn spawn(image: &Path, options: &[String], args: &[&str]) -> Guest {
        let mut child = Command::new(RUNNER)
            .args([
                "boot",
                "--vmm",
                "monitor",
                "--memory",
                "64",
                "--timeout",
                "300",
            ])
            .args(options)
            .arg(image)
            .arg("--")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the runner starts");
        let output = Arc::new(Mutex::new(String::new()));
        let streams: [Box<dyn Read + Send>; 2] = [
            Box::new(child.stdout.take().expect("piped")),
            Box::new(child.stderr.take().expect("piped")),
        ];
        for stream in streams {
            let output = Arc::clone(&output);
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    let mut output = output.lock().unwrap();
                    output.push_str(&line);
                    output.push('\n');
                }
            });
        }
        Guest { child, output }
    }

    fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    fn wait_for(&self, needle: &str) {
        let deadline = Instant::now() + READY;
        while !self.output().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "no {needle:?} within {READY:?}:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The runner's exit status, once it has ended (within `timeout`).
    fn wait(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the readers take the last lines.
                std::thread::sleep(Duration::from_millis(100));
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- guest output ---\n{}", self.output());
        }
        // SIGTERM: the runner stops the guest and removes passt or its namespace.
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32);
        if let Some(pid) = pid {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        if self.wait(Duration::from_secs(10)).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn free_port(udp: bool) -> u16 {
    if udp {
        UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    } else {
        TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }
}

/// Boots example `name` with passt forwarding a free host port to `guest_port`; returns
/// the guest and the address to talk to.
fn on_passt(name: &str, udp: bool, guest_port: u16, ready: &str) -> (Guest, SocketAddr) {
    let host_port = free_port(udp);
    let forward = format!(
        "{}:{host_port}:{guest_port}",
        if udp { "udp" } else { "tcp" }
    );
    let guest = Guest::spawn(
        &runner::example_elf(name),
        &["--forward".into(), forward],
        &[],
    );
    guest.wait_for(ready);
    (guest, SocketAddr::from(([127, 0, 0, 1], host_port)))
}

/// Boots example `name` on a tap device and runs `suite` inside its namespace.
fn on_tap(name: &str, ready: &str, suite: &str, guest_port: u16) -> Guest {
    let mut guest = Guest::spawn(&runner::example_elf(name), &["--tap".into()], &[]);
    guest.wait_for(ready);
    let output = guest.output();
    let namespace = output
        .split_once("in namespace ")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no namespace named in:\n{output}"));
    let test_binary = std::env::current_exe().unwrap();
    let status = Command::new("ip")
        .args(["netns", "exec", namespace])
        .arg(&test_binary)
        .args([
            "--exact",
            "client_inside_a_namespace",
            "--ignored",
            "--nocapture",
        ])
        .env(SUITE_VAR, suite)
        .env(ADDR_VAR, format!("10.0.2.15:{guest_port}"))
        .status()
        .expect("ip netns exec runs");
    assert!(
        status.success(),
        "the {suite} client inside {namespace} failed"
    );
    if suite == "net-threads" || suite == "udp" {
        assert_eq!(
            guest.wait(Duration::from_secs(30)),
            Some(0),
            "{}",
            guest.output()
        );
    }
    guest
}

fn kvm_and(root: bool) -> bool {
    if !common::kvm_usable() {
        return false;
    }
    if root && !rustix::process::geteuid().is_root() {
        eprintln!("skipped: the tap tests need root");
        return false;
    }
    true
}

/// Runs one client suite against `addr` (inside the namespace of a tap test).
#[test]
#[ignore = "the client half of the tap tests, run by them inside their namespace"]
fn client_inside_a_namespace() {
    let suite = std::env::var(SUITE_VAR).expect("run by a tap test, which sets the suite");
    let addr: SocketAddr = std::env::var(ADDR_VAR).unwrap().parse().unwrap();
    match suite.as_str() {
        "http" => {
            pages_404_400_413(addr);
            keep_alive_1000(addr);
            http::concurrent_50(addr);
        }
        "udp" => udp_echo(addr),
        "net-threads" => net_threads_client(addr),
        other => panic!("unknown suite {other}"),
    }
}

fn pages_404_400_413(addr: SocketAddr) {
    let mut c = connect(addr);
    let page = request(&mut c, "GET / HTTP/1.1\r\nHost: test\r\n\r\n");
    assert_eq!(page.status, 200, "{page:?}");
    assert_eq!(page.header("content-type"), Some("text/html"));
    assert!(String::from_utf8_lossy(&page.body).contains("Hello from a unikernel"));
    let missing = request(&mut c, "GET /no/such/page HTTP/1.1\r\nHost: test\r\n\r\n");
    assert_eq!(
        (missing.status, missing.body.as_slice()),
        (404, &b"not found\n"[..])
    );

    let mut bad = connect(addr);
    let malformed = request(&mut bad, "THIS IS NOT HTTP\r\n\r\n");
    assert_eq!(malformed.status, 400);
    assert_eq!(malformed.header("connection"), Some("close"));
    assert!(closed(&mut bad), "the server closes after a 400");

    let mut big = connect(addr);
    let oversized = request(
        &mut big,
        "POST /upload HTTP/1.1\r\nHost: test\r\nContent-Length: 100000000\r\n\r\n",
    );
    assert_eq!(oversized.status, 413);
    assert!(closed(&mut big), "the server closes after a 413");
    assert_eq!(request(&mut c, "GET / HTTP/1.1\r\n\r\n").status, 200);
}

fn keep_alive_1000(addr: SocketAddr) {
    let mut c = connect(addr);
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
}

fn udp_echo(addr: SocketAddr) {
    let socket = UdpSocket::bind(if addr.ip().is_loopback() {
        "127.0.0.1:0"
    } else {
        "0.0.0.0:0"
    })
    .unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut buf = [0u8; 2048];
    for i in 0..20 {
        let message = format!("datagram {i} {}", "x".repeat(i * 50));
        let echoed = (0..5).find_map(|_| {
            socket.send_to(message.as_bytes(), addr).unwrap();
            socket.recv_from(&mut buf).ok()
        });
        let (n, _) = echoed.unwrap_or_else(|| panic!("no echo of datagram {i}"));
        assert_eq!(&buf[..n], message.as_bytes());
    }
    socket.send_to(b"quit", addr).unwrap();
}

fn ticks_in(reply: &str) -> u64 {
    reply
        .trim_end()
        .rsplit_once("ticks=")
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or_else(|| panic!("no ticks= in {reply:?}"))
}

/// The client half of net-threads: while main blocks in read, the ticker counts on.
fn net_threads_client(addr: SocketAddr) {
    let mut c = connect(addr);
    std::thread::sleep(Duration::from_secs(1));
    c.get_mut().write_all(b"hello\n").unwrap();
    let mut reply = String::new();
    c.read_line(&mut reply).expect("a reply");
    assert!(reply.starts_with("hello ticks="), "{reply:?}");
    let first = ticks_in(&reply);
    std::thread::sleep(Duration::from_secs(1));
    c.get_mut().write_all(b"again\n").unwrap();
    reply.clear();
    c.read_line(&mut reply).expect("a second reply");
    assert!(reply.starts_with("again ticks="), "{reply:?}");
    assert!(
        ticks_in(&reply) > first,
        "the ticker counted while main waited for the second line: {reply:?}"
    );
    c.get_mut().write_all(b"quit\n").unwrap();
}

// The tests.

#[test]
fn http_on_passt_serves_pages_errors_keep_alive_and_concurrency() {
    if !kvm_and(false) {
        return;
    }
    let (guest, addr) = on_passt("http", false, 80, "http: listening");
    assert!(
        guest.output().contains("interrupt driven"),
        "{}",
        guest.output()
    );
    pages_404_400_413(addr);
    keep_alive_1000(addr);
    http::concurrent_50(addr);
}

#[test]
fn udp_echo_on_passt_echoes_and_quits() {
    if !kvm_and(false) {
        return;
    }
    let (mut guest, addr) = on_passt("udp-echo", true, 7, "udp-echo: listening");
    udp_echo(addr);
    assert_eq!(
        guest.wait(Duration::from_secs(30)),
        Some(0),
        "{}",
        guest.output()
    );
}

#[test]
fn net_threads_on_passt_block_only_their_thread() {
    if !kvm_and(false) {
        return;
    }
    let (mut guest, addr) = on_passt("net-threads", false, 7, "net-threads: listening");
    let ticks = |guest: &Guest| guest.output().matches("net-threads: tick ").count();
    // main is blocked in accept: the ticker goes on.
    let before = ticks(&guest);
    let deadline = Instant::now() + Duration::from_secs(20);
    while ticks(&guest) < before + 3 {
        assert!(
            Instant::now() < deadline,
            "no ticks while main waits in accept"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    net_threads_client(addr);
    assert_eq!(
        guest.wait(Duration::from_secs(30)),
        Some(0),
        "{}",
        guest.output()
    );
}

#[test]
fn http_on_a_tap_serves_pages_errors_keep_alive_and_concurrency() {
    if !kvm_and(true) {
        return;
    }
    let guest = on_tap("http", "http: listening", "http", 80);
    drop(guest);
}

#[test]
fn udp_echo_and_net_threads_on_a_tap() {
    if !kvm_and(true) {
        return;
    }
    on_tap("udp-echo", "udp-echo: listening", "udp", 7);
    let guest = on_tap("net-threads", "net-threads: listening", "net-threads", 7);
    assert!(
        guest.output().contains("net-threads: tick "),
        "{}",
        guest.output()
    );
}

fn rogue() -> &'static Path {
    static IMAGE: OnceLock<PathBuf> = OnceLock::new();
    IMAGE.get_or_init(|| {
        runner::build::CargoBuild {
            manifest_path: Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/guests/virtio-rogue/Cargo.toml"),
            package: None,
            release: true,
            quiet: true,
        }
        .run()
        .expect("the virtio-rogue guest builds")
    })
}

#[test]
fn malformed_chains_fail_the_device_with_a_report_and_the_monitor_carries_on() {
    if !kvm_and(false) {
        return;
    }
    for (mode, report) in [
        (
            "loop",
            "visits more than the queue's 16 descriptors (a loop)",
        ),
        ("outside", "outside guest memory"),
        ("runaway", "the available ring"),
    ] {
        let port = free_port(false);
        let mut guest = Guest::spawn(
            rogue(),
            &["--forward".into(), format!("{port}:80")],
            &[mode],
        );
        assert_eq!(
            guest.wait(Duration::from_secs(60)),
            Some(0),
            "{mode}: {}",
            guest.output()
        );
        let output = guest.output();
        assert!(
            output.contains("virtio-rogue: needs reset"),
            "{mode}: {output}"
        );
        let expected = "virtio-net at 0xfeb00000 marked failed (DEVICE_NEEDS_RESET): virtio-net: ";
        assert!(
            output.contains(expected) && output.contains(report),
            "{mode}: {output}"
        );
    }
}
