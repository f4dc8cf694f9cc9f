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
#[path = "common/wait.rs"]
mod wait;

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
    /// The gateway with `args`; `None` where KVM is unusable (see `common`).
    fn start(args: &[&str]) -> Option<Gateway> {
        if !common::kvm_usable() {
            return None;
        }
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
        Some(Gateway {
            child,
            address,
            tmp,
            log,
        })
    }

    fn request(&self, method: &str, target: &str, body: &[u8]) -> Reply {
        request(self.address, method, target, body)
    }

    fn get(&self, target: &str) -> Reply {
        self.request("GET", target, b"")
    }

    /// `GET /hello` answers 200: the gateway serves on.
    fn assert_serving(&self) {
        let hello = self.get("/hello");
        assert_eq!(
            (hello.status, hello.body.as_str()),
            (200, "hello from a function\n"),
            "{hello:?}"
        );
    }

    /// The snapshots and other files the gateway has in its temporary folder.
    fn files_left(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.tmp.path().join("tmp"))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect()
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
        let mut status = None;
        wait::until(
            Duration::from_secs(60),
            Duration::from_millis(20),
            || {
                status = self.child.try_wait().unwrap();
                status.is_some()
            },
            || "the gateway did not stop".into(),
        );
        let log = self.log();
        assert!(status.unwrap().success(), "{status:?}; log:\n{log}");
        assert!(log.contains("serve: stopped"), "{log}");
        let left = self.files_left();
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
    for (mode, expected) in [
        ("snapshot", ["1", "1", "1"]),
        ("fresh", ["1", "1", "1"]),
        ("warm", ["1", "2", "3"]),
    ] {
        let Some(gateway) = Gateway::start(&["--mode", mode]) else {
            return;
        };
        gateway.assert_serving();
        assert_eq!(counts(&gateway), expected, "{mode}: the global counter");
        let echo = gateway.request("POST", "/echo", b"round trip");
        assert_eq!((echo.status, echo.body.as_str()), (200, "round trip"));
        let stats = gateway.request("POST", "/stats", br#"{"numbers": [5, -1, 3]}"#);
        assert_eq!(stats.status, 200, "{stats:?}");
        assert!(stats.body.contains(r#""sorted":[-1,3,5]"#), "{stats:?}");
        let define = gateway.get("/define?word=snapshot");
        assert!(define.body.starts_with("snapshot: "), "{define:?}");
        assert_eq!(gateway.get("/nowhere").status, 404);
        assert_eq!(gateway.request("POST", "/hello", b"").status, 404);
        let metrics = gateway.get("/metrics");
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
    let Some(gateway) = Gateway::start(&[]) else {
        return;
    };
    let panicked = gateway.get("/panic");
    assert_eq!(panicked.status, 502, "{panicked:?}");
    gateway.assert_serving();
    let start = Instant::now();
    let forever = gateway.get("/forever");
    assert_eq!(forever.status, 504, "{forever:?}");
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "its timeout is 1 s"
    );
    gateway.assert_serving();
    let too_large = gateway.request("POST", "/stats", &vec![b'1'; (1 << 20) + 1]);
    assert_eq!(too_large.status, 413, "{too_large:?}");
    gateway.assert_serving();
    // Serving does not accumulate descriptors (VMs, snapshot files, sockets).
    std::thread::sleep(Duration::from_millis(1000));
    let before = gateway.descriptors();
    for _ in 0..10 {
        gateway.assert_serving();
    }
    // The pool's refills and the VMs' teardowns finish after the responses.
    wait::until(
        Duration::from_secs(20),
        Duration::from_millis(100),
        || gateway.descriptors() <= before,
        || {
            format!(
                "descriptors after 10 requests: {} (before: {before})",
                gateway.descriptors()
            )
        },
    );
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
    let Some(gateway) = Gateway::start(&["--concurrency", "1", "--queue", "1"]) else {
        return;
    };
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
    gateway.assert_serving();
    gateway.stop();
}

#[test]
fn an_idle_function_scales_to_zero_and_back() {
    let Some(gateway) = Gateway::start(&["--idle", "0.5"]) else {
        return;
    };
    gateway.assert_serving();
    let deadline = Instant::now() + Duration::from_secs(30);
    wait::until(
        Duration::from_secs(30),
        Duration::from_millis(100),
        || gateway.log().contains("serve: hello scaled to zero"),
        || gateway.log(),
    );
    // Every function is idle: each drops its snapshot.
    wait::until(
        deadline.saturating_duration_since(Instant::now()),
        Duration::from_millis(100),
        || gateway.files_left().is_empty(),
        || "snapshots left after scaling to zero".into(),
    );
    gateway.assert_serving();
    let metrics = gateway.get("/metrics");
    assert!(
        metrics
            .body
            .contains(r#"uk_gateway_scaled_to_zero_total{function="hello"}"#),
        "{}",
        metrics.body
    );
    gateway.stop();
}

/// What a VM of one of examples/functions' functions needs.
struct FunctionImage {
    kvm: unikernel_vmm::Kvm,
    image: unikernel_vmm::Image,
    config: unikernel_vmm::VmConfig,
}

impl FunctionImage {
    /// `name`'s image, from the manifest of examples/functions.
    fn open(name: &str) -> Self {
        let manifest = runner::functions::Manifest::read(manifest()).unwrap();
        let function = &manifest.functions[name];
        FunctionImage {
            kvm: unikernel_vmm::open_kvm().unwrap(),
            image: unikernel_vmm::Image::open(&function.image).unwrap(),
            config: unikernel_vmm::VmConfig {
                memory_mib: function.memory_mib,
                ..unikernel_vmm::VmConfig::default()
            },
        }
    }

    /// A new VM of the image with its request channel, not started.
    fn vm(&self) -> (unikernel_vmm::Vm, unikernel_vmm::Channel) {
        let mut vm = unikernel_vmm::Vm::new(&self.kvm, &self.image, &self.config).unwrap();
        let channel = unikernel_vmm::Channel::new();
        vm.serve_function(channel.server()).unwrap();
        (vm, channel)
    }

    /// A VM booted to its first wait for a request.
    fn booted(&self, timeout: Duration) -> (unikernel_vmm::Vm, unikernel_vmm::Channel) {
        let (mut vm, channel) = self.vm();
        vm.run_until_waiting(&channel, timeout).unwrap();
        (vm, channel)
    }
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
    use unikernel_vmm::{Channel, Snapshot, Vm};
    if !common::kvm_usable() {
        return;
    }
    for (name, method, target, body) in [
        ("hello", "GET", "/hello", &b""[..]),
        (
            "stats",
            "POST",
            "/stats",
            &br#"{"numbers": [5, -1, 3, 8, 2]}"#[..],
        ),
    ] {
        let function = FunctionImage::open(name);
        let (mut vm, channel) = function.vm();
        let (boot, _) = vm.count_instructions(&channel, None, 1 << 30).unwrap();
        let dir = tempfile::tempdir().unwrap();
        vm.snapshot(dir.path(), channel.mailbox()).unwrap();
        drop(vm);
        let snapshot = Snapshot::load(dir.path()).unwrap();
        let prepared =
            unikernel_vmm::Prepared::new(&function.kvm, snapshot.state.interrupts).unwrap();
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
    use unikernel_vmm::{Channel, Pool, Snapshot, Vm};
    if !common::kvm_usable() {
        return;
    }
    const VMS: usize = 16;
    let function = FunctionImage::open("hello");
    let mut request = vec![0; 256];
    let length = encode_request(&mut request, "GET", "/hello", [], b"").unwrap();
    request.truncate(length);
    let timeout = Duration::from_secs(60);

    let dir = tempfile::tempdir().unwrap();
    {
        let (mut vm, channel) = function.booted(timeout);
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
        let (mut vm, channel) = function.booted(timeout);
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
    use unikernel_vmm::Snapshot;
    use unikernel_vmm::snapshot::{MEMORY_FILE, STATE_FILE};
    if !common::kvm_usable() {
        return;
    }
    let function = FunctionImage::open("hello");
    let dir = tempfile::tempdir().unwrap();
    let (mut vm, channel) = function.booted(Duration::from_secs(60));
    vm.snapshot(dir.path(), channel.mailbox()).unwrap();
    drop(vm);
    let snapshot = Snapshot::load(dir.path()).unwrap();
    assert_eq!(
        snapshot.memory_size(),
        u64::from(function.config.memory_mib) << 20
    );

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
