//! Files for apps in a booted guest. `examples/files` runs the file-API body that
//! `libs/fs`'s unit tests run against `std::fs` over the same tree; its lines must be
//! `examples/files/expected.txt`, which those tests check is what std gives. So the guest,
//! reading the tree from a newc initrd through QEMU's `-initrd` and the PVH module list,
//! behaves as std does. A corrupt initrd is a boot error naming the cause; a missing one an
//! empty root and a warning.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use runner::disk::Initrd;
use runner::monitor::Vmm;
use runner::net::{Forward, Guest, Network, Protocol4};
use runner::{Boot, BootOutcome, Machine, status};

const TIMEOUT: Duration = Duration::from_secs(60);

fn example_dir() -> PathBuf {
    runner::repo_root().join("examples/files")
}

/// The lines the guest printed between its markers, without the serial port's `\r`.
fn body_lines(outcome: &BootOutcome) -> Vec<String> {
    let serial = outcome.serial.replace('\r', "");
    let lines: Vec<&str> = serial.lines().collect();
    let begin = lines.iter().position(|l| *l == "files: begin");
    let end = lines.iter().position(|l| *l == "files: end");
    match (begin, end) {
        (Some(begin), Some(end)) if begin < end => lines[begin + 1..end]
            .iter()
            .map(|l| l.to_string())
            .collect(),
        _ => panic!("the guest printed no body:\n{}", outcome.report()),
    }
}

/// examples/files on `vmm` and `machine` with `tree/` as its initrd: its lines are what
/// std gives.
fn the_file_api_gives_what_std_gives(vmm: Vmm, machine: Machine) {
    let initrd = Initrd::from_path(&example_dir().join("tree")).unwrap();
    let outcome = Boot::new(runner::example_elf("files"))
        .vmm(vmm)
        .machine(machine)
        .timeout(TIMEOUT)
        .initrd(initrd.path())
        .run()
        .unwrap();
    outcome.assert_status(0);
    let expected = std::fs::read_to_string(example_dir().join("expected.txt")).unwrap();
    let expected: Vec<&str> = expected.lines().collect();
    let got = body_lines(&outcome);
    assert_eq!(got.len(), expected.len(), "{}", outcome.report());
    for (got, expected) in got.iter().zip(&expected) {
        assert_eq!(got, expected);
    }
}

#[test]
fn the_file_api_in_a_guest_gives_what_std_gives_on_microvm() {
    the_file_api_gives_what_std_gives(Vmm::Qemu, Machine::Microvm);
}

#[test]
fn the_file_api_in_a_guest_gives_what_std_gives_on_q35() {
    the_file_api_gives_what_std_gives(Vmm::Qemu, Machine::Q35);
}

/// Through the monitor's initrd (placed in guest memory and listed in the PVH start info's
/// module list).
#[test]
fn the_file_api_on_the_monitor_gives_what_std_gives() {
    if common::kvm_usable() {
        the_file_api_gives_what_std_gives(Vmm::Monitor, Machine::Microvm);
    }
}

#[test]
fn without_an_initrd_the_root_is_empty_and_a_warning_says_how_to_give_files() {
    let outcome = Boot::new(runner::example_elf("files"))
        .timeout(TIMEOUT)
        .run()
        .unwrap();
    outcome
        .assert_status(0)
        .assert_serial_contains("fs: the VMM passed no initrd, so there are no files")
        .assert_serial_contains("--files <dir>");
    let lines = body_lines(&outcome);
    assert!(lines.contains(&"read hello.txt: Err(NotFound)".to_string()));
    assert!(lines.contains(&"read_dir \"/\": Ok([])".to_string()));
}

/// A newc header for `name` claiming `size` bytes of data, of which `data` follows.
fn entry(name: &str, size: u32, data: &[u8]) -> Vec<u8> {
    let mut out = b"070701".to_vec();
    let fields = [
        1,
        0o100644,
        0,
        0,
        1,
        0,
        size,
        0,
        0,
        0,
        0,
        name.len() as u32 + 1,
        0,
    ];
    for value in fields {
        out.extend_from_slice(format!("{value:08X}").as_bytes());
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
    out.extend_from_slice(data);
    out
}

fn boot_with_archive(bytes: &[u8]) -> BootOutcome {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), bytes).unwrap();
    Boot::new(runner::example_elf("files"))
        .timeout(TIMEOUT)
        .initrd(file.path())
        .run()
        .unwrap()
}

#[test]
fn a_corrupt_initrd_is_a_boot_error_naming_the_offset_not_a_fault() {
    // A file whose size runs 1 MiB past the end of the archive.
    let mut bytes = entry("ok.txt", 2, b"ok\0\0");
    let second = bytes.len();
    bytes.extend(entry("liar.bin", 1 << 20, b"short"));
    let outcome = boot_with_archive(&bytes);
    outcome
        .assert_status(status::BOOT_ERROR.into())
        .assert_serial_contains(&format!(
            "boot error: fs: the initrd: corrupt cpio archive at offset {second}: the archive ends inside this entry"
        ));

    // Not a cpio archive at all.
    let outcome = boot_with_archive(&[0x7f; 4096]);
    outcome
        .assert_status(status::BOOT_ERROR.into())
        .assert_serial_contains("corrupt cpio archive at offset 0: not a newc cpio header");

    // A name that climbs out of the root.
    let mut bytes = entry("../etc/passwd", 1, b"x\0\0\0");
    bytes.extend(entry("TRAILER!!!", 0, b""));
    let outcome = boot_with_archive(&bytes);
    outcome
        .assert_status(status::BOOT_ERROR.into())
        .assert_serial_contains(
            "corrupt cpio archive at offset 0: the name climbs out of the root",
        );
}

/// One request on a fresh connection (`Connection: close`): status, headers, body.
fn http_get(port: u16, method: &str, path: &str) -> (u16, String, Vec<u8>) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    // One write: through the user-mode forward, a head sent in pieces by clients that
    // connect at once may lose its first piece on the host (see tests/net.rs); heads in
    // pieces are tested on the tap (net_hostile.rs).
    let request = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a whole head");
    let head = String::from_utf8(response[..split].to_vec()).unwrap();
    let status = head[9..12].parse().unwrap();
    (
        status,
        head.to_ascii_lowercase(),
        response[split + 4..].to_vec(),
    )
}

/// examples/`name` on QEMU microvm with 64 MiB, set up further by `setup`, with
/// 127.0.0.1:`host_port` forwarded to the guest's `guest_port`, once it printed `ready`.
fn spawn_forwarded(
    name: &str,
    setup: impl FnOnce(Boot) -> Boot,
    (protocol, host_port, guest_port): (Protocol4, u16, u16),
    ready: &str,
) -> Guest {
    let elf = runner::example_elf(name);
    let boot = setup(Boot::new(&elf).memory(64));
    let forward = Forward {
        protocol,
        host_port,
        guest_port,
    };
    let mut guest = Guest::spawn(
        &boot,
        &elf,
        runner::AccelRequest::Auto,
        Machine::Microvm,
        &Network::User(vec![forward]),
    )
    .unwrap();
    guest.wait_for(ready, TIMEOUT).unwrap();
    guest
}

/// examples/http with the folder `root` as its initrd, listening behind the returned
/// port of 127.0.0.1.
fn start_http(root: &std::path::Path) -> (Guest, u16) {
    let initrd = Initrd::from_path(root).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let guest = spawn_forwarded(
        "http",
        |boot| boot.initrd(initrd.path()),
        (Protocol4::Tcp, port, 80),
        "http: listening",
    );
    (guest, port)
}

#[test]
fn http_serves_the_initrd_under_static_with_types_404s_and_no_way_out() {
    let root = runner::repo_root().join("examples/http/static");
    let (guest, port) = start_http(&root);

    for (path, file, content_type) in [
        (
            "/static/index.html",
            "index.html",
            "text/html; charset=utf-8",
        ),
        ("/static/", "index.html", "text/html; charset=utf-8"),
        (
            "/static/css/site.css",
            "css/site.css",
            "text/css; charset=utf-8",
        ),
        (
            "/static/docs/data.json?v=2",
            "docs/data.json",
            "application/json",
        ),
    ] {
        let (status, head, body) = http_get(port, "GET", path);
        assert_eq!(status, 200, "{path}: {head}");
        assert!(
            head.contains(&format!("content-type: {content_type}\r\n")),
            "{path}: {head}"
        );
        assert_eq!(body, std::fs::read(root.join(file)).unwrap(), "{path}");
    }
    let (status, head, body) = http_get(port, "HEAD", "/static/css/site.css");
    assert_eq!(status, 200);
    assert!(head.contains("content-length: 34"), "{head}");
    assert!(body.is_empty(), "HEAD has no body");

    for path in [
        "/static/missing.html",
        "/static/docs",
        "/static/../Cargo.toml",
        "/static/css/../index.html",
        "/static/./index.html",
        "/static/%2e%2e/Cargo.toml",
        "/static/..%2fCargo.toml",
        "/static/css\\..\\index.html",
    ] {
        let (status, _, body) = http_get(port, "GET", path);
        assert_eq!(
            (status, body.as_slice()),
            (404, &b"not found\n"[..]),
            "{path}"
        );
    }
    // The handler's own routes are still there.
    assert_eq!(http_get(port, "GET", "/").0, 200);
    drop(guest.stop());
}

/// A 2 MiB file (far beyond a connection's budget of about 107 KiB) to 8 clients at once:
/// each gets every byte, and the heap stays within the connections' budget, as the body is
/// sent from the initrd's pages as the socket drains (before: copied whole into each
/// connection's output, 16 MiB against a 16 MiB heap).
#[test]
fn http_streams_a_large_static_file_to_many_clients_within_the_heap_budget() {
    let root = tempfile::tempdir().unwrap();
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let data: Vec<u8> = (0..2 << 20)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    std::fs::write(root.path().join("big.bin"), &data).unwrap();
    let (mut guest, port) = start_http(root.path());
    let _ = guest.wait_for("heap)", Duration::from_secs(2));
    // "... (<budget> KiB of a <heap> KiB heap)": what the connections may take at most.
    let budget_kib: u64 = guest
        .output()
        .lines()
        .find(|line| line.contains("http: listening"))
        .and_then(|line| {
            line.rsplit_once(" KiB of a ")?
                .0
                .rsplit_once('(')?
                .1
                .parse()
                .ok()
        })
        .expect("the guest prints its budget");
    let bodies: Vec<Vec<u8>> = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..8)
            .map(|_| scope.spawn(|| http_get(port, "GET", "/static/big.bin")))
            .collect();
        clients
            .into_iter()
            .map(|client| {
                let (status, head, body) = client.join().unwrap();
                assert_eq!(status, 200, "{head}");
                body
            })
            .collect()
    });
    for body in &bodies {
        assert!(
            body == &data,
            "a client got {} bytes, not the file",
            body.len()
        );
    }
    let (status, _, stats) = http_get(port, "GET", "/stats");
    assert_eq!(status, 200);
    let stats = String::from_utf8(stats).unwrap();
    let high: u64 = stats
        .lines()
        .find_map(|line| line.strip_prefix("heap_high_water ")?.parse().ok())
        .unwrap();
    eprintln!(
        "8 x 2 MiB: heap high-water {} KiB, budget {budget_kib} KiB",
        high / 1024
    );
    assert!(
        high / 1024 < budget_kib,
        "the heap went past the connections' budget: {stats}"
    );
    assert!(
        !guest.output().contains("memory allocation"),
        "{}",
        guest.output()
    );
    drop(guest.stop());
}

/// A kv guest on `image` with UDP `host_port` forwarded to its port 7070, listening.
fn start_kv(image: &std::path::Path, host_port: u16) -> Guest {
    spawn_forwarded(
        "kv",
        |boot| boot.disk(image),
        (Protocol4::Udp, host_port, 7070),
        "kv: listening",
    )
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A UDP client of kv: one request, one answer (or `None` after `timeout`).
struct KvClient {
    socket: std::net::UdpSocket,
}

impl KvClient {
    fn new(port: u16, timeout: Duration) -> Self {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.connect(("127.0.0.1", port)).unwrap();
        socket.set_read_timeout(Some(timeout)).unwrap();
        KvClient { socket }
    }

    fn ask(&self, request: &str) -> Option<String> {
        let mut buf = [0u8; 2048];
        self.socket.send(request.as_bytes()).ok()?;
        let n = self.socket.recv(&mut buf).ok()?;
        Some(String::from_utf8_lossy(&buf[..n]).into_owned())
    }

    /// `ask`, retried: a lost datagram is not a lost write (PUT and GET are idempotent).
    fn ask_until_answered(&self, request: &str) -> String {
        for _ in 0..5 {
            if let Some(answer) = self.ask(request) {
                return answer;
            }
        }
        panic!("no answer to {request:?}");
    }
}

fn value_of(key: &str) -> String {
    // 40 to 400 bytes, so that records straddle sectors and clusters.
    let len = 40 + key.len() * 37 % 360;
    format!("{key}:{}", "v".repeat(len))
}

#[test]
fn kv_keeps_every_acknowledged_write_across_20_sigkills() {
    use std::collections::BTreeSet;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("kv.img");
    runner::disk::create_image(&image, 32 << 20, None).unwrap();
    let mut acked: Vec<String> = Vec::new();
    let mut unacked: BTreeSet<String> = BTreeSet::new();
    let mut torn_tails = 0;
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64
        | 1;
    let mut random = move |below: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % below
    };
    const KILLS: usize = 20;
    for round in 0..=KILLS {
        let port = free_udp_port();
        let guest = start_kv(&image, port);
        let output = guest.output();
        if output.contains("dropped a torn tail of") && !output.contains("torn tail of 0 bytes") {
            torn_tails += 1;
        }
        let client = KvClient::new(port, Duration::from_secs(5));
        // Every acknowledged write is there, whole: the last round's all, and a sample of
        // the older ones (all of them at the end).
        let recent = acked.len().saturating_sub(800);
        let check: Vec<&String> = if round == KILLS {
            acked.iter().collect()
        } else {
            let mut keys: Vec<&String> = acked[recent..].iter().collect();
            for _ in 0..50.min(recent) {
                keys.push(&acked[random(recent as u64) as usize]);
            }
            keys
        };
        for key in check {
            let answer = client.ask_until_answered(&format!("GET {key}"));
            assert_eq!(
                answer,
                format!("VALUE {}", value_of(key)),
                "round {round}: acknowledged {key} is lost or damaged\n{}",
                guest.output()
            );
        }
        // A write the guest may have taken without answering is whole or absent.
        for key in std::mem::take(&mut unacked) {
            let answer = client.ask_until_answered(&format!("GET {key}"));
            assert!(
                answer == "NOTFOUND" || answer == format!("VALUE {}", value_of(&key)),
                "round {round}: unacknowledged {key} is half there: {answer:?}"
            );
            if answer != "NOTFOUND" {
                acked.push(key);
            }
        }
        let stats = client.ask_until_answered("STATS");
        let keys: usize = stats.split(' ').nth(1).unwrap().parse().unwrap();
        assert_eq!(keys, acked.len(), "round {round}: {stats}");
        if round == KILLS {
            break;
        }

        // A writer puts fresh keys while this thread kills QEMU at a random moment.
        let stop = Arc::new(AtomicBool::new(false));
        let written = Arc::new(Mutex::new((Vec::new(), BTreeSet::new())));
        let writer = {
            let (stop, written) = (Arc::clone(&stop), Arc::clone(&written));
            std::thread::spawn(move || {
                let client = KvClient::new(port, Duration::from_millis(500));
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let key = format!("r{round}k{i}");
                    written.lock().unwrap().1.insert(key.clone());
                    match client.ask(&format!("PUT {key} {}", value_of(&key))) {
                        Some(answer) if answer == "OK" => {
                            let mut written = written.lock().unwrap();
                            written.1.remove(&key);
                            written.0.push(key);
                        }
                        Some(answer) => panic!("PUT {key}: {answer}"),
                        None => break,
                    }
                    i += 1;
                }
            })
        };
        std::thread::sleep(Duration::from_millis(200 + random(1500)));
        drop(guest.stop()); // SIGKILL
        stop.store(true, Ordering::Relaxed);
        writer.join().unwrap();
        let (new_acked, maybe) = std::mem::take(&mut *written.lock().unwrap());
        acked.extend(new_acked);
        unacked = maybe;
    }
    eprintln!(
        "kv: {} acknowledged writes kept across {KILLS} SIGKILLs; {torn_tails} boots cut a torn tail",
        acked.len()
    );
    assert!(acked.len() > KILLS * 10, "the writer got too few writes in");
}

/// One record of examples/kv's log (see examples/kv/src/log.rs).
fn kv_record(key: &str, value: &str) -> Vec<u8> {
    let mut payload = vec![1u8];
    payload.extend_from_slice(&(key.len() as u16).to_le_bytes());
    payload.extend_from_slice(key.as_bytes());
    payload.extend_from_slice(value.as_bytes());
    let mut record = (payload.len() as u32).to_le_bytes().to_vec();
    record.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    record.extend_from_slice(&payload);
    record
}

#[test]
fn kv_cuts_a_torn_last_record_and_compacts_a_long_log() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("kv.img");
    runner::disk::create_image(&image, 16 << 20, None).unwrap();
    // The log a crash left: 1,000 overwrites of one key, one other key, half a record.
    let mut log = Vec::new();
    for i in 0..1000 {
        log.extend(kv_record("same", &format!("{i:0>300}")));
    }
    log.extend(kv_record("other", "kept"));
    let whole = log.len();
    let torn = kv_record("lost", "never acknowledged");
    log.extend_from_slice(&torn[..torn.len() - 5]);
    {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&image)
            .unwrap();
        let fs = fatfs::FileSystem::new(file, fatfs::FsOptions::new()).unwrap();
        {
            let kv = fs.root_dir().create_dir("kv").unwrap();
            kv.create_file("log").unwrap().write_all(&log).unwrap();
        }
        fs.unmount().unwrap();
    }

    let port = free_udp_port();
    let guest = start_kv(&image, port);
    let output = guest.output();
    assert!(
        output.contains(&format!(
            "kv: replayed 1001 records, 2 keys; dropped a torn tail of {} bytes",
            log.len() - whole
        )),
        "{output}"
    );
    assert!(
        output.contains(&format!("kv: compacted the log from {whole} to")),
        "{output}"
    );
    let client = KvClient::new(port, Duration::from_secs(5));
    assert_eq!(
        client.ask_until_answered("GET same"),
        format!("VALUE {:0>300}", 999)
    );
    assert_eq!(client.ask_until_answered("GET other"), "VALUE kept");
    assert_eq!(client.ask_until_answered("GET lost"), "NOTFOUND");
    assert_eq!(client.ask_until_answered("PUT after compaction"), "OK");
    assert_eq!(client.ask_until_answered("DELETE other"), "OK");
    assert_eq!(client.ask_until_answered("GET other"), "NOTFOUND");
    drop(guest.stop());

    // The compacted log, read by the host's FAT tool, then by the next boot.
    let file = std::fs::File::open(&image).unwrap();
    let fs = fatfs::FileSystem::new(file, fatfs::FsOptions::new()).unwrap();
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut fs.root_dir().open_file("kv/log").unwrap(), &mut bytes)
        .unwrap();
    assert!(bytes.len() < 2_000, "compacted: {} bytes", bytes.len());
    assert!(
        fs.root_dir().open_file("kv/log.new").is_err(),
        "no leftover"
    );
    drop(fs);
    let guest = start_kv(&image, port);
    assert!(
        guest
            .output()
            .contains("kv: replayed 4 records, 2 keys; dropped a torn tail of 0 bytes"),
        "{}",
        guest.output()
    );
    let client = KvClient::new(port, Duration::from_secs(5));
    assert_eq!(client.ask_until_answered("GET after"), "VALUE compaction");
    assert_eq!(client.ask_until_answered("GET other"), "NOTFOUND");
    drop(guest.stop());
}

/// examples/disk-io with `image` as its disk.
fn disk_io(image: &std::path::Path) -> Boot {
    Boot::new(runner::example_elf("disk-io"))
        .memory(64)
        .disk(image)
}

fn boot_disk_io(image: &std::path::Path, args: &[&str], timeout: Duration) -> BootOutcome {
    disk_io(image)
        .timeout(timeout)
        .args(args.iter().copied())
        .run()
        .unwrap()
}

#[test]
fn a_100_mb_file_written_in_the_guest_reads_back_whole_in_the_guest_and_on_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("big.img");
    runner::disk::create_image(&image, 128 << 20, None).unwrap();
    let outcome = boot_disk_io(&image, &["--roundtrip", "100"], Duration::from_secs(300));
    outcome.assert_status(0);
    let line = outcome
        .serial
        .lines()
        .find(|l| l.starts_with("disk-io: roundtrip 100 MiB"))
        .unwrap_or_else(|| panic!("{}", outcome.report()))
        .trim_end();
    assert!(line.ends_with(", 104857600 bytes"), "{line}");
    let crc = line.split("crc32 written ").nth(1).unwrap()[..8].to_string();
    assert!(line.contains(&format!("read {crc}")), "{line}");

    // The host's FAT tool reads the same bytes.
    let file = std::fs::File::open(&image).unwrap();
    let fs = fatfs::FileSystem::new(file, fatfs::FsOptions::new()).unwrap();
    let mut data = Vec::new();
    std::io::Read::read_to_end(
        &mut fs.root_dir().open_file("roundtrip.bin").unwrap(),
        &mut data,
    )
    .unwrap();
    assert_eq!(data.len(), 100 << 20);
    assert_eq!(format!("{:08x}", crc32fast::hash(&data)), crc);
}

#[test]
fn a_full_disk_is_a_clear_error_in_the_guest_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("small.img");
    runner::disk::create_image(&image, 4 << 20, None).unwrap();
    let outcome = boot_disk_io(&image, &["--fill"], TIMEOUT);
    outcome
        .assert_status(0)
        .assert_serial_contains("the disk is full (no space left on volume)")
        .assert_serial_contains("disk-io: /keep intact, removed ok, writing again ok");
    // And the host sees a consistent volume with /keep in it.
    let file = std::fs::File::open(&image).unwrap();
    let fs = fatfs::FileSystem::new(file, fatfs::FsOptions::new()).unwrap();
    let mut keep = String::new();
    std::io::Read::read_to_string(&mut fs.root_dir().open_file("keep").unwrap(), &mut keep)
        .unwrap();
    assert_eq!(keep, "precious");
}

#[test]
fn a_corrupt_or_missing_disk_is_a_boot_error_not_a_fault() {
    let dir = tempfile::tempdir().unwrap();
    let zeros = dir.path().join("zeros.img");
    std::fs::write(&zeros, vec![0u8; 4 << 20]).unwrap();
    boot_disk_io(&zeros, &["--small", "1"], TIMEOUT)
        .assert_status(status::BOOT_ERROR.into())
        .assert_serial_contains("boot error: disk: the disk holds no usable FAT file system")
        .assert_serial_contains("cargo uk disk create");

    // A FAT image whose boot sector was overwritten with noise.
    let noisy = dir.path().join("noisy.img");
    runner::disk::create_image(&noisy, 4 << 20, None).unwrap();
    let mut bytes = std::fs::read(&noisy).unwrap();
    for (i, byte) in bytes[11..64].iter_mut().enumerate() {
        *byte = (i as u8).wrapping_mul(97).wrapping_add(13);
    }
    std::fs::write(&noisy, &bytes).unwrap();
    boot_disk_io(&noisy, &["--small", "1"], TIMEOUT)
        .assert_status(status::BOOT_ERROR.into())
        .assert_serial_contains("boot error: disk: the disk holds no usable FAT file system");

    Boot::new(runner::example_elf("disk-io"))
        .timeout(TIMEOUT)
        .run()
        .unwrap()
        .assert_status(status::BOOT_ERROR.into())
        .assert_serial_contains("boot error: disk: no virtio-blk device")
        .assert_serial_contains("--disk data.img");
}

/// The requests completed by interrupts, not by polling: the guest counted them.
fn assert_interrupt_driven(outcome: &BootOutcome) {
    let count: u64 = outcome
        .serial
        .lines()
        .find_map(|l| {
            l.trim_end()
                .strip_prefix("disk-io: ")?
                .strip_suffix(" interrupts")
        })
        .unwrap_or_else(|| panic!("{}", outcome.report()))
        .trim()
        .parse()
        .unwrap();
    assert!(count > 0, "{}", outcome.report());
    outcome.assert_serial_contains("interrupt driven");
}

#[test]
fn the_disk_is_interrupt_driven_on_microvm_and_on_pci() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("pci.img");
    runner::disk::create_image(&image, 8 << 20, None).unwrap();
    for machine in [Machine::Microvm, Machine::Q35, Machine::Pc] {
        let outcome = disk_io(&image)
            .machine(machine)
            .timeout(TIMEOUT)
            .args(["--roundtrip", "2"])
            .run()
            .unwrap();
        outcome
            .assert_status(0)
            .assert_serial_contains("disk-io: roundtrip 2 MiB");
        assert_interrupt_driven(&outcome);
    }
}

#[test]
fn the_writable_file_api_in_a_guest_gives_what_std_gives() {
    the_writable_file_api_gives_what_std_gives(Vmm::Qemu, false);
}

/// On the monitor's virtio-blk (virtio-mmio, irqfd).
#[test]
fn the_writable_file_api_on_the_monitor_gives_what_std_gives() {
    if common::kvm_usable() {
        the_writable_file_api_gives_what_std_gives(Vmm::Monitor, false);
    }
}

/// On the monitor's disk with O_DIRECT (`--disk-direct`).
#[test]
fn the_writable_file_api_on_the_monitor_with_o_direct_gives_what_std_gives() {
    if common::kvm_usable() {
        the_writable_file_api_gives_what_std_gives(Vmm::Monitor, true);
    }
}

/// examples/disk-io `--conformance` on a fresh image on `vmm` (with O_DIRECT if `direct`):
/// its lines are what std gives, and the host's FAT tool reads what it left.
fn the_writable_file_api_gives_what_std_gives(vmm: Vmm, direct: bool) {
    // Under the target folder: a disk-backed file system (a tmpfs /tmp may lack O_DIRECT).
    let dir = tempfile::tempdir_in(runner::repo_root().join("target")).unwrap();
    let image = dir.path().join("conformance.img");
    runner::disk::create_image(&image, 8 << 20, None).unwrap();
    let outcome = disk_io(&image)
        .vmm(vmm)
        .timeout(TIMEOUT)
        .disk_direct(direct)
        .args(["--conformance"])
        .run()
        .unwrap();
    outcome.assert_status(0);
    let serial = outcome.serial.replace('\r', "");
    let body: Vec<&str> = serial
        .lines()
        .skip_while(|l| *l != "disk-io: begin")
        .skip(1)
        .take_while(|l| *l != "disk-io: end")
        .collect();
    let expected =
        std::fs::read_to_string(runner::repo_root().join("examples/disk-io/expected.txt")).unwrap();
    let expected: Vec<&str> = expected.lines().collect();
    assert_eq!(body.len(), expected.len(), "{}", outcome.report());
    for (got, expected) in body.iter().zip(&expected) {
        assert_eq!(got, expected);
    }
    // The host's FAT tool sees what the body left: t/sub/x and t/f.
    let file = std::fs::File::open(&image).unwrap();
    let fs = fatfs::FileSystem::new(file, fatfs::FsOptions::new()).unwrap();
    let mut names: Vec<String> = fs
        .root_dir()
        .open_dir("t")
        .unwrap()
        .iter()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != "." && n != "..")
        .collect();
    names.sort();
    assert_eq!(names, ["f", "sub"]);
}
