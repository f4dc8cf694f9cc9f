//! The `rand` subsystem in a booted guest: two boots of examples/rand print different
//! random values, and their TCP connections start from different sequence numbers and
//! local ports, read off the wire (QEMU's `filter-dump` of the guest's network device).
//! The guest connects to the gateway, which QEMU's user-mode network maps to the host's
//! 127.0.0.1, where this test listens: the only address it talks to.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use runner::net::{Network, qemu_args};
use runner::{AccelRequest, Boot, BootOutcome, Machine};

const TIMEOUT: Duration = Duration::from_secs(60);

/// What one boot showed: the values it printed and its SYN as captured.
#[derive(Debug)]
struct Draw {
    word: String,
    bytes: String,
    printed_port: u16,
    syn: Syn,
}

/// The first SYN the guest sent: its source port and initial sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Syn {
    port: u16,
    sequence: u32,
}

/// A capture file no other test run uses.
fn capture_path(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("runner-rand-{}-{tag}.pcap", std::process::id()))
}

/// Boots examples/rand with a user-mode network, `--connect` to a listener of this test,
/// capturing the guest's frames; `cpu` replaces the CPU model when given.
fn boot_and_connect(tag: &str, cpu: Option<&str>) -> (BootOutcome, Option<Syn>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().ok()?;
        stream.set_read_timeout(Some(TIMEOUT)).ok()?;
        let mut greeting = String::new();
        stream.read_to_string(&mut greeting).ok()?;
        Some(greeting)
    });

    let capture = capture_path(tag);
    let _ = std::fs::remove_file(&capture);
    let mut boot = Boot::new(runner::example_elf("rand"))
        .timeout(TIMEOUT)
        // A CPU model is chosen below, so the accelerator is too.
        .accel(AccelRequest::Tcg)
        .args(["--connect".to_string(), port.to_string()]);
    for arg in qemu_args(Machine::Microvm, &Network::User(Vec::new()), 1) {
        boot = boot.qemu_arg(arg);
    }
    boot = boot.qemu_arg("-object").qemu_arg(format!(
        "filter-dump,id=dump,netdev=net0,file={}",
        capture.display()
    ));
    if let Some(cpu) = cpu {
        boot = boot.qemu_arg("-cpu").qemu_arg(cpu);
    }
    let outcome = boot.run();
    // Read and removed before any assertion, so that a failing run leaves no file behind.
    let syn = first_guest_syn(&capture);
    let _ = std::fs::remove_file(&capture);
    let outcome = outcome.expect("the boot starts");
    outcome.assert_status(0);
    let greeting = accepted.join().unwrap();
    assert_eq!(greeting.as_deref(), Some("hello\n"), "{}", outcome.report());
    (outcome, syn)
}

/// The text after `prefix` on the line of the guest's output that starts with it.
fn printed<'a>(outcome: &'a BootOutcome, prefix: &str) -> &'a str {
    outcome
        .serial
        .lines()
        .find_map(|line| line.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no `{prefix}` line\n{}", outcome.report()))
}

fn draw(tag: &str) -> Draw {
    let (outcome, syn) = boot_and_connect(tag, None);
    let syn = syn.unwrap_or_else(|| panic!("no SYN from the guest captured\n{}", outcome.report()));
    Draw {
        word: printed(&outcome, "rand: u64 ").to_string(),
        bytes: printed(&outcome, "rand: bytes ").to_string(),
        printed_port: printed(&outcome, "rand: connected from port ")
            .parse()
            .unwrap(),
        syn,
    }
}

#[test]
fn two_boots_draw_different_numbers_sequence_numbers_and_ports() {
    let first = draw("a");
    let second = draw("b");
    for one in [&first, &second] {
        assert_eq!(one.word.len(), 16, "{one:?}");
        assert_eq!(one.bytes.len(), 32, "{one:?}");
        assert_eq!(one.syn.port, one.printed_port, "{one:?}");
        assert!(one.syn.port >= 49152, "not a dynamic port: {one:?}");
    }
    assert_ne!(first.word, second.word);
    assert_ne!(first.bytes, second.bytes);
    assert_ne!(
        first.syn.sequence, second.syn.sequence,
        "{first:?} {second:?}"
    );
    // Two ports drawn from 16,384 collide once in 16,384 runs: rare enough to assert.
    assert_ne!(first.syn.port, second.syn.port, "{first:?} {second:?}");
}

/// A CPU model without RDRAND or RDSEED: the seed the runner puts on the command line is
/// what the generator has, and it is enough.
#[test]
fn without_rdrand_the_vmm_seed_is_used() {
    let (outcome, syn) = boot_and_connect("qemu64", Some("qemu64"));
    outcome.assert_serial_contains("rand: seeded from the VMM's seed\n");
    assert!(syn.is_some(), "{}", outcome.report());
}

/// A malformed seed (here one the app's command line sets after the runner's, which the
/// guest takes, the last one winning) ends the boot with a message rather than a weak
/// generator.
#[test]
fn a_malformed_seed_is_a_boot_error() {
    let outcome = Boot::new(runner::example_elf("rand"))
        .timeout(TIMEOUT)
        .kernel_flag("unikernel.seed=0123")
        .run()
        .expect("the boot starts");
    outcome
        .assert_status(103)
        .assert_serial_contains("boot error: rand: `unikernel.seed=` must be 64 hex digits");
}

/// The first TCP SYN (without ACK) from 10.0.2.15 in a pcap file of Ethernet frames.
fn first_guest_syn(capture: &Path) -> Option<Syn> {
    let file = std::fs::read(capture).ok()?;
    // The global header: magic (little-endian microseconds), versions, zone, sigfigs,
    // snaplen, link type 1 (Ethernet).
    if file.len() < 24 || file[..4] != [0xd4, 0xc3, 0xb2, 0xa1] {
        return None;
    }
    let u16_be = |b: &[u8]| u16::from_be_bytes([b[0], b[1]]);
    let mut rest = &file[24..];
    while rest.len() >= 16 {
        let captured = u32::from_le_bytes(rest[8..12].try_into().unwrap()) as usize;
        let frame = rest.get(16..16 + captured)?;
        rest = &rest[16 + captured..];
        // Ethernet II carrying IPv4.
        if frame.len() < 14 + 20 || u16_be(&frame[12..14]) != 0x0800 {
            continue;
        }
        let ip = &frame[14..];
        let header = usize::from(ip[0] & 0x0f) * 4;
        if ip[9] != 6 || ip[12..16] != [10, 0, 2, 15] || ip.len() < header + 20 {
            continue;
        }
        let tcp = &ip[header..];
        let (syn, ack) = (tcp[13] & 0x02 != 0, tcp[13] & 0x10 != 0);
        if syn && !ack {
            return Some(Syn {
                port: u16_be(&tcp[0..2]),
                sequence: u32::from_be_bytes(tcp[4..8].try_into().unwrap()),
            });
        }
    }
    None
}
