//! Files for apps in a booted guest. `examples/files` runs the file-API body that
//! `libs/fs`'s unit tests run against `std::fs` over the same tree; its lines must be
//! `examples/files/expected.txt`, which those tests check is what std gives. So the guest,
//! reading the tree from a newc initrd through QEMU's `-initrd` and the PVH module list,
//! behaves as std does. A corrupt initrd is a boot error naming the cause; a missing one an
//! empty root and a warning.

use std::path::PathBuf;
use std::time::Duration;

use runner::disk::Initrd;
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

fn boot_files(machine: Machine) -> BootOutcome {
    let initrd = Initrd::from_path(&example_dir().join("tree")).unwrap();
    Boot::new(runner::example_elf("files"))
        .machine(machine)
        .timeout(TIMEOUT)
        .initrd(initrd.path())
        .run()
        .unwrap()
}

fn assert_as_std(outcome: &BootOutcome) {
    outcome.assert_status(0);
    let expected = std::fs::read_to_string(example_dir().join("expected.txt")).unwrap();
    let expected: Vec<&str> = expected.lines().collect();
    let got = body_lines(outcome);
    assert_eq!(got.len(), expected.len(), "{}", outcome.report());
    for (got, expected) in got.iter().zip(&expected) {
        assert_eq!(got, expected);
    }
}

#[test]
fn the_file_api_in_a_guest_gives_what_std_gives_on_microvm() {
    assert_as_std(&boot_files(Machine::Microvm));
}

#[test]
fn the_file_api_in_a_guest_gives_what_std_gives_on_q35() {
    assert_as_std(&boot_files(Machine::Q35));
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
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
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

#[test]
fn http_serves_the_initrd_under_static_with_types_404s_and_no_way_out() {
    use runner::net::{Forward, Guest, Network, Protocol4};
    let root = runner::repo_root().join("examples/http/static");
    let initrd = Initrd::from_path(&root).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let elf = runner::example_elf("http");
    let boot = Boot::new(&elf).memory(64).initrd(initrd.path());
    let forward = Forward {
        protocol: Protocol4::Tcp,
        host_port: port,
        guest_port: 80,
    };
    let mut guest = Guest::spawn(
        &boot,
        &elf,
        runner::AccelRequest::Auto,
        Machine::Microvm,
        &Network::User(vec![forward]),
    )
    .unwrap();
    guest.wait_for("http: listening", TIMEOUT).unwrap();

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
