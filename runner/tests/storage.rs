//! Files for apps in a booted guest. `examples/files` runs the file-API body that
//! `libs/fs`'s unit tests run against `std::fs` over the same tree; its lines must be
//! `examples/files/expected.txt`, which those tests check is what std gives. So the guest,
//! reading the tree from a newc initrd through QEMU's `-initrd` and the PVH module list,
//! behaves as std does. A missing or corrupt initrd is a boot error naming the cause.

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
fn no_initrd_is_a_boot_error_that_says_how_to_give_files() {
    let outcome = Boot::new(runner::example_elf("files"))
        .timeout(TIMEOUT)
        .run()
        .unwrap();
    outcome
        .assert_status(status::BOOT_ERROR.into())
        .assert_serial_contains("boot error: fs: the VMM passed no initrd")
        .assert_serial_contains("--files <dir>");
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
