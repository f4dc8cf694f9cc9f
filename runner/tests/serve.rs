//! The gateway, `cargo uk serve`, end to end: each test starts the runner's binary on a
//! free loopback port with `examples/functions` and talks HTTP to it. Routes and 404, every
//! mode with the global counter (1 on every request in `fresh` and `snapshot`, growing in
//! `warm`), 504, 502 and the next request fine, 413, 503 when the queue is full, scale to
//! zero and back, and a SIGTERM that leaves nothing behind (no process, no snapshot
//! file, no descriptor growth while serving).
//!
//! These need a usable /dev/kvm; where there is none each says so and passes, or fails
//! under `UK_REQUIRE_KVM=1` (see `common`).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// `examples/functions`, built once per process; the manifest's path.
fn manifest() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let path = runner::repo_root().join("examples/functions");
        runner::functions::build(&path, true, &mut |line| eprintln!("{line}"))
            .unwrap_or_else(|err| panic!("building examples/functions: {err}"))
            .manifest_path
    })
}

/// A gateway process, with its own temporary folder (to see that it leaves nothing there).
struct Gateway {
    child: Child,
    address: SocketAddr,
    tmp: tempfile::TempDir,
    log: PathBuf,
}

impl Gateway {
    fn start(args: &[&str]) -> Gateway {
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("gateway.log");
        let sandbox = tmp.path().join("tmp");
        std::fs::create_dir(&sandbox).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_runner"))
            .arg("serve")
            .arg(manifest())
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .env("TMPDIR", &sandbox)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("the runner starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let address = line
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| {
                panic!(
                    "no address in {line:?}; log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )
            })
            .parse()
            .unwrap();
        Gateway {
            child,
            address,
            tmp,
            log,
        }
    }

    fn request(&self, method: &str, target: &str, body: &[u8]) -> Reply {
        request(self.address, method, target, body)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The descriptors the gateway holds now.
    fn descriptors(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .unwrap()
            .count()
    }

    /// SIGTERM, then checks it ended well and left nothing behind.
    fn stop(mut self) -> String {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "the gateway did not stop");
            std::thread::sleep(Duration::from_millis(20));
        };
        let log = self.log();
        assert!(status.success(), "{status:?}; log:\n{log}");
        assert!(log.contains("serve: stopped"), "{log}");
        let left: Vec<_> = std::fs::read_dir(self.tmp.path().join("tmp"))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
        assert!(left.is_empty(), "left behind: {left:?}");
        log
    }
}

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: String,
    body: String,
}

/// One HTTP/1.1 request on a connection of its own.
fn request(address: SocketAddr, method: &str, target: &str, body: &[u8]) -> Reply {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    write!(
        stream,
        "{method} {target} HTTP/1.1\r\nhost: test\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    // A gateway may answer (413) before it read the whole body.
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let raw = String::from_utf8_lossy(&raw);
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {raw:?}"));
    Reply {
        status,
        headers: head.to_ascii_lowercase(),
        body: body.to_string(),
    }
}

fn counts(gateway: &Gateway) -> Vec<String> {
    (0..3)
        .map(|_| {
            let reply = gateway.request("POST", "/count", b"");
            assert_eq!(reply.status, 200, "{reply:?}");
            reply.body.trim().to_string()
        })
        .collect()
}

#[test]
fn every_mode_routes_and_isolates_requests_as_it_should() {
    if !common::kvm_usable() {
        return;
    }
    for (mode, expected) in [
        ("snapshot", ["1", "1", "1"]),
        ("fresh", ["1", "1", "1"]),
        ("warm", ["1", "2", "3"]),
    ] {
        let gateway = Gateway::start(&["--mode", mode]);
        let hello = gateway.request("GET", "/hello", b"");
        assert_eq!(
            (hello.status, hello.body.as_str()),
            (200, "hello from a function\n"),
            "{mode}"
        );
        assert_eq!(counts(&gateway), expected, "{mode}: the global counter");
        let echo = gateway.request("POST", "/echo", b"round trip");
        assert_eq!((echo.status, echo.body.as_str()), (200, "round trip"));
        let stats = gateway.request("POST", "/stats", br#"{"numbers": [5, -1, 3]}"#);
        assert_eq!(stats.status, 200, "{stats:?}");
        assert!(stats.body.contains(r#""sorted":[-1,3,5]"#), "{stats:?}");
        let define = gateway.request("GET", "/define?word=snapshot", b"");
        assert!(define.body.starts_with("snapshot: "), "{define:?}");
        assert_eq!(gateway.request("GET", "/nowhere", b"").status, 404);
        assert_eq!(gateway.request("POST", "/hello", b"").status, 404);
        let metrics = gateway.request("GET", "/metrics", b"");
        assert!(
            metrics.body.contains(&format!(
                r#"uk_gateway_requests_total{{function="count",mode="{mode}",status="200"}} 3"#
            )),
            "{}",
            metrics.body
        );
        assert!(
            metrics.body.contains(&format!(
                r#"uk_gateway_latency_seconds_count{{function="hello",mode="{mode}",phase="guest"}} 1"#
            )),
            "{}",
            metrics.body
        );
        let log = gateway.stop();
        assert!(
            log.lines().any(
                |line| line.starts_with(&format!("serve: hello {mode} 200 setup "))
                    && line.contains(" guest ")
                    && line.contains(" total ")
            ),
            "{log}"
        );
    }
}

#[test]
fn failures_get_their_status_and_the_gateway_keeps_serving() {
    if !common::kvm_usable() {
        return;
    }
    let gateway = Gateway::start(&[]);
    let panicked = gateway.request("GET", "/panic", b"");
    assert_eq!(panicked.status, 502, "{panicked:?}");
    assert_eq!(gateway.request("GET", "/hello", b"").status, 200);
    let start = Instant::now();
    let forever = gateway.request("GET", "/forever", b"");
    assert_eq!(forever.status, 504, "{forever:?}");
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "its timeout is 1 s"
    );
    assert_eq!(gateway.request("GET", "/hello", b"").status, 200);
    let too_large = gateway.request("POST", "/stats", &vec![b'1'; (1 << 20) + 1]);
    assert_eq!(too_large.status, 413, "{too_large:?}");
    assert_eq!(gateway.request("GET", "/hello", b"").status, 200);
    // Serving does not accumulate descriptors (VMs, snapshot files, sockets).
    std::thread::sleep(Duration::from_millis(1000));
    let before = gateway.descriptors();
    for _ in 0..10 {
        assert_eq!(gateway.request("GET", "/hello", b"").status, 200);
    }
    // The pool's refills and the VMs' teardowns finish after the responses.
    let deadline = Instant::now() + Duration::from_secs(20);
    while gateway.descriptors() > before {
        assert!(
            Instant::now() < deadline,
            "descriptors after 10 requests: {} (before: {before})",
            gateway.descriptors()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = gateway.stop();
    assert!(
        log.contains("panics: the function failed: it exited with status 101")
            && log.contains("this function panics on purpose"),
        "the guest's report is in the log:\n{log}"
    );
    assert!(log.contains("serve: forever stopped after 1s"), "{log}");
}

#[test]
fn a_full_queue_is_a_503_with_retry_after() {
    if !common::kvm_usable() {
        return;
    }
    let gateway = Gateway::start(&["--concurrency", "1", "--queue", "1"]);
    let address = gateway.address;
    let clients: Vec<_> = (0..4)
        .map(|_| std::thread::spawn(move || request(address, "GET", "/forever", b"")))
        .collect();
    let replies: Vec<Reply> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    let statuses: Vec<u16> = replies.iter().map(|reply| reply.status).collect();
    assert_eq!(
        statuses.iter().filter(|&&s| s == 504).count(),
        2,
        "one running, one queued: {statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|&&s| s == 503).count(),
        2,
        "{statuses:?}"
    );
    assert!(
        replies
            .iter()
            .filter(|reply| reply.status == 503)
            .all(|reply| reply.headers.contains("retry-after: 1")),
        "{replies:?}"
    );
    assert_eq!(gateway.request("GET", "/hello", b"").status, 200);
    gateway.stop();
}

#[test]
fn an_idle_function_scales_to_zero_and_back() {
    if !common::kvm_usable() {
        return;
    }
    let gateway = Gateway::start(&["--idle", "0.5"]);
    assert_eq!(gateway.request("GET", "/hello", b"").status, 200);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !gateway.log().contains("serve: hello scaled to zero") {
        assert!(Instant::now() < deadline, "{}", gateway.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    // Every function is idle: each drops its snapshot.
    while std::fs::read_dir(gateway.tmp.path().join("tmp"))
        .unwrap()
        .count()
        > 0
    {
        assert!(
            Instant::now() < deadline,
            "snapshots left after scaling to zero"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let back = gateway.request("GET", "/hello", b"");
    assert_eq!(
        (back.status, back.body.as_str()),
        (200, "hello from a function\n")
    );
    let metrics = gateway.request("GET", "/metrics", b"");
    assert!(
        metrics
            .body
            .contains(r#"uk_gateway_scaled_to_zero_total{function="hello"}"#),
        "{}",
        metrics.body
    );
    gateway.stop();
}

/// The guest's own instructions for `hello` and `stats`: its boot to the first wait, and
/// one request in a VM restored from the snapshot taken there (single-stepped, so slow).
/// `benches/functions.sh` runs it (`--ignored`) to tell how much of a request's time is
/// the guest's code, which this machine's nested KVM emulates at about 1 us an
/// instruction. Prints `guest instructions: <function> boot <n> request <n>`.
#[test]
#[ignore = "a measurement for benches/functions.sh"]
fn guest_instructions_per_request() {
    use unikernel_abi::function::encode_request;
    use unikernel_vmm::{Channel, Image, Snapshot, Vm, VmConfig};
    if !common::kvm_usable() {
        return;
    }
    let manifest = runner::functions::Manifest::read(manifest()).unwrap();
    for (name, method, target, body) in [
        ("hello", "GET", "/hello", &b""[..]),
        (
            "stats",
            "POST",
            "/stats",
            &br#"{"numbers": [5, -1, 3, 8, 2]}"#[..],
        ),
    ] {
        let function = &manifest.functions[name];
        let image = Image::open(&function.image).unwrap();
        let kvm = unikernel_vmm::open_kvm().unwrap();
        let config = VmConfig {
            memory_mib: function.memory_mib,
            ..VmConfig::default()
        };
        let mut vm = Vm::new(&kvm, &image, &config).unwrap();
        let channel = Channel::new();
        vm.serve_function(channel.server()).unwrap();
        let (boot, _) = vm.count_instructions(&channel, None, 1 << 30).unwrap();
        let dir = tempfile::tempdir().unwrap();
        vm.snapshot(dir.path(), channel.mailbox()).unwrap();
        drop(vm);
        let snapshot = Snapshot::load(dir.path()).unwrap();
        let prepared = unikernel_vmm::Prepared::new(&kvm, snapshot.state.interrupts).unwrap();
        let channel = Channel::parked_at(snapshot.state.mailbox.unwrap());
        let mut vm = Vm::restore(&snapshot, prepared, Some(channel.server())).unwrap();
        let mut request = vec![0; 4096];
        let length = encode_request(&mut request, method, target, [], body).unwrap();
        let (steps, response) = vm
            .count_instructions(&channel, Some(&request[..length]), 1 << 30)
            .unwrap();
        let response = response.expect("a response");
        let decoded = unikernel_abi::function::decode_response(&response).unwrap();
        assert_eq!(decoded.status, 200);
        println!("guest instructions: {name} boot {boot} request {steps}");
    }
}

/// Sums `fields` (kB) of this process's /proc/self/smaps_rollup.
fn smaps_kib(fields: &[&str]) -> u64 {
    std::fs::read_to_string("/proc/self/smaps_rollup")
        .unwrap()
        .lines()
        .filter_map(|line| {
            let (name, value) = line.split_once(':')?;
            fields.contains(&name).then(|| {
                value
                    .trim()
                    .trim_end_matches(" kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })?
        })
        .sum()
}

/// Restore versus boot for `hello`: the time of each, and the host memory each VM holds
/// once it answered a request, split into pages shared with the other VMs (the snapshot
/// file's, in the page cache) and pages of its own. Prints `restore:` and `boot:` lines
/// for `benches/functions.sh`.
#[test]
#[ignore = "a measurement for benches/functions.sh"]
fn restore_versus_boot_time_and_memory() {
    use unikernel_abi::function::encode_request;
    use unikernel_vmm::{Channel, Image, Pool, Snapshot, Vm, VmConfig};
    if !common::kvm_usable() {
        return;
    }
    const VMS: usize = 16;
    let manifest = runner::functions::Manifest::read(manifest()).unwrap();
    let function = &manifest.functions["hello"];
    let image = Image::open(&function.image).unwrap();
    let kvm = unikernel_vmm::open_kvm().unwrap();
    let config = VmConfig {
        memory_mib: function.memory_mib,
        ..VmConfig::default()
    };
    let mut request = vec![0; 256];
    let length = encode_request(&mut request, "GET", "/hello", [], b"").unwrap();
    request.truncate(length);
    let timeout = Duration::from_secs(60);

    let dir = tempfile::tempdir().unwrap();
    {
        let mut vm = Vm::new(&kvm, &image, &config).unwrap();
        let channel = Channel::new();
        vm.serve_function(channel.server()).unwrap();
        vm.run_until_waiting(&channel, timeout).unwrap();
        vm.snapshot(dir.path(), channel.mailbox()).unwrap();
    }
    let snapshot = std::sync::Arc::new(Snapshot::load(dir.path()).unwrap());
    let pool = Pool::for_snapshot(std::sync::Arc::clone(&snapshot), VMS).unwrap();
    pool.refill().unwrap();
    let fields_shared = ["Shared_Clean", "Shared_Dirty"];
    let fields_private = ["Private_Clean", "Private_Dirty"];
    let (shared_before, private_before) = (smaps_kib(&fields_shared), smaps_kib(&fields_private));
    let mut restored = Vec::new();
    let mut restore_times = Vec::new();
    for _ in 0..VMS {
        let start = Instant::now();
        let channel = Channel::parked_at(snapshot.state.mailbox.unwrap());
        let mut vm = Vm::restore(&snapshot, pool.take().unwrap(), Some(channel.server())).unwrap();
        restore_times.push(start.elapsed());
        vm.call(&channel, &request, timeout).unwrap();
        restored.push(vm);
    }
    let shared = smaps_kib(&fields_shared).saturating_sub(shared_before);
    let private = smaps_kib(&fields_private).saturating_sub(private_before);
    restore_times.sort();
    println!(
        "restore: median {:.3} ms, max {:.3} ms; per VM after a request: {} KiB private, {} KiB shared with the other VMs ({VMS} VMs)",
        restore_times[VMS / 2].as_secs_f64() * 1e3,
        restore_times[VMS - 1].as_secs_f64() * 1e3,
        private / VMS as u64,
        shared / VMS as u64
    );
    drop(restored);

    let (shared_before, private_before) = (smaps_kib(&fields_shared), smaps_kib(&fields_private));
    let mut booted = Vec::new();
    let mut boot_times = Vec::new();
    for _ in 0..VMS {
        let start = Instant::now();
        let mut vm = Vm::new(&kvm, &image, &config).unwrap();
        let channel = Channel::new();
        vm.serve_function(channel.server()).unwrap();
        vm.run_until_waiting(&channel, timeout).unwrap();
        boot_times.push(start.elapsed());
        vm.call(&channel, &request, timeout).unwrap();
        booted.push(vm);
    }
    let shared = smaps_kib(&fields_shared).saturating_sub(shared_before);
    let private = smaps_kib(&fields_private).saturating_sub(private_before);
    boot_times.sort();
    println!(
        "boot: median {:.3} ms, max {:.3} ms; per VM after a request: {} KiB private, {} KiB shared ({VMS} VMs)",
        boot_times[VMS / 2].as_secs_f64() * 1e3,
        boot_times[VMS - 1].as_secs_f64() * 1e3,
        private / VMS as u64,
        shared / VMS as u64
    );
}

/// A snapshot is untrusted input: a damaged one is refused with the reason, and a good
/// one restores.
#[test]
fn a_damaged_snapshot_is_refused_with_a_reason() {
    use unikernel_vmm::snapshot::{MEMORY_FILE, STATE_FILE};
    use unikernel_vmm::{Channel, Image, Snapshot, Vm, VmConfig};
    if !common::kvm_usable() {
        return;
    }
    let manifest = runner::functions::Manifest::read(manifest()).unwrap();
    let function = &manifest.functions["hello"];
    let image = Image::open(&function.image).unwrap();
    let kvm = unikernel_vmm::open_kvm().unwrap();
    let config = VmConfig {
        memory_mib: function.memory_mib,
        ..VmConfig::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let mut vm = Vm::new(&kvm, &image, &config).unwrap();
    let channel = Channel::new();
    vm.serve_function(channel.server()).unwrap();
    vm.run_until_waiting(&channel, Duration::from_secs(60))
        .unwrap();
    vm.snapshot(dir.path(), channel.mailbox()).unwrap();
    drop(vm);
    let snapshot = Snapshot::load(dir.path()).unwrap();
    assert_eq!(snapshot.memory_size(), u64::from(function.memory_mib) << 20);

    let refused = |dir: &Path| Snapshot::load(dir).unwrap_err().to_string();
    let state = std::fs::read_to_string(dir.path().join(STATE_FILE)).unwrap();
    let memory = std::fs::read(dir.path().join(MEMORY_FILE)).unwrap();
    let damaged = tempfile::tempdir().unwrap();
    let write = |state: &str, memory: &[u8]| {
        std::fs::write(damaged.path().join(STATE_FILE), state).unwrap();
        std::fs::write(damaged.path().join(MEMORY_FILE), memory).unwrap();
    };
    write(&state, &memory[..memory.len() / 2]);
    assert!(refused(damaged.path()).contains("the memory file has"));
    write(&state.replace("\"format\":1", "\"format\":99"), &memory);
    assert!(refused(damaged.path()).contains("snapshot format 99"));
    write(&state[..state.len() / 2], &memory);
    assert!(refused(damaged.path()).contains("is not a snapshot's state"));
    write("{}", &memory);
    assert!(refused(damaged.path()).contains("is not a snapshot's state"));
    write(&state, &memory);
    assert!(Snapshot::load(damaged.path()).is_ok());
}
