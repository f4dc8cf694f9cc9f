//! Boot tests on the runner's own KVM monitor (`--vmm monitor`): the floor kernel and every
//! example, the faults the monitor reports itself, its timeout, its paravirtual devices,
//! and that the same image boots on QEMU and on the monitor.
//!
//! They need a usable /dev/kvm; where there is none each test says so and passes, or fails
//! under `UK_REQUIRE_KVM=1` (see `common`).

mod common;
#[path = "common/pvh.rs"]
mod pvh;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use runner::boot::Exit;
use runner::monitor::{FaultKind, Vmm};
use runner::{Boot, BootOutcome};

const TIMEOUT: Duration = Duration::from_secs(60);

fn example(name: &str) -> PathBuf {
    runner::example_elf(name)
}

fn monitor(kernel: &Path) -> Boot {
    Boot::new(kernel).vmm(Vmm::Monitor).timeout(TIMEOUT)
}

fn boot(name: &str, args: &[&str]) -> BootOutcome {
    monitor(&example(name))
        .args(args.iter().copied())
        .run()
        .unwrap_or_else(|err| panic!("booting {name} on the monitor: {err}"))
}

fn stats(outcome: &BootOutcome) -> &runner::monitor::Stats {
    &outcome
        .monitor
        .as_ref()
        .expect("a monitor boot has stats")
        .stats
}

#[test]
fn the_floor_kernel_boots_on_the_monitor() {
    if !common::kvm_usable() {
        return;
    }
    let outcome = monitor(&example("floor")).run().expect("the boot starts");
    outcome.assert_status(0).assert_serial_contains("floor");
    // The floor kernel knows nothing of the monitor: it talks to COM1, a byte per exit.
    assert!(stats(&outcome).serial_bytes >= 5, "{:?}", stats(&outcome));
}

#[test]
fn hello_prints_with_one_exit_per_line_and_exits_0() {
    if !common::kvm_usable() {
        return;
    }
    let outcome = boot("hello", &[]);
    outcome
        .assert_status(0)
        .assert_serial_contains("hello from a unikernel\n")
        .assert_serial_contains("squares: [1, 4, 9, 16, 25, 36, 49, 64, 81, 100]\n")
        .assert_serial_contains("the=3\n");
    let stats = stats(&outcome);
    assert_eq!(stats.serial_bytes, 0, "it found the monitor: {stats:?}");
    assert_eq!(stats.console_writes, 3, "one write per println!: {stats:?}");
    assert_eq!(
        stats.exits,
        stats.console_writes + 1,
        "and one to exit: {stats:?}"
    );
}

#[test]
fn empty_exits_0_with_one_exit_and_prints_nothing() {
    if !common::kvm_usable() {
        return;
    }
    let outcome = boot("empty", &[]);
    outcome.assert_status(0);
    assert_eq!(outcome.serial, "", "{}", outcome.report());
    assert_eq!(stats(&outcome).exits, 1, "{:?}", stats(&outcome));
}

#[test]
fn faults_report_the_same_on_the_monitor() {
    if !common::kvm_usable() {
        return;
    }
    boot("faults", &["exit", "7"]).assert_status(7);
    boot("faults", &["exit", "3", "ignored"]).assert_status(3);
    boot("faults", &["panic"])
        .assert_status(101)
        .assert_serial_contains("panicked at faults/src/main.rs:")
        .assert_serial_contains("the app gave up");
    boot("faults", &["null"])
        .assert_status(102)
        .assert_serial_contains(
            "page fault at address 0x0: read from an unmapped page (null pointer dereference)",
        );
    boot("faults", &["write-code"])
        .assert_status(102)
        .assert_serial_contains("write to a read-only page (in the kernel's code)");
    boot("faults", &["exec-data"])
        .assert_status(102)
        .assert_serial_contains(
            "instruction fetch from a no-execute page (in the kernel's read-only data)",
        );
    boot("faults", &["overflow"])
        .assert_status(102)
        .assert_serial_contains(
            "exception: stack overflow: the main stack ran into its guard page",
        );
    boot("faults", &["alloc-fail"])
        .assert_status(101)
        .assert_serial_contains("out of memory: the app asked for 1048576 bytes");
}

#[test]
fn a_heap_larger_than_the_vm_is_a_boot_error_on_the_monitor() {
    if !common::kvm_usable() {
        return;
    }
    monitor(&example("hello"))
        .memory(2)
        .run()
        .expect("the boot starts")
        .assert_status(103)
        .assert_serial_contains("boot error: heap: 1 MiB does not fit");
}

#[test]
fn the_timeline_works_on_the_monitor() {
    if !common::kvm_usable() {
        return;
    }
    let outcome = monitor(&example("hello"))
        .timeline(true)
        .run()
        .expect("the boot starts");
    outcome.assert_status(0);
    let stages: Vec<&str> = outcome.timeline.iter().map(|s| s.stage.as_str()).collect();
    assert!(
        stages.contains(&"entry") && stages.contains(&"main"),
        "{stages:?}"
    );
    assert!(
        !outcome.serial.contains("unikernel.timeline"),
        "{}",
        outcome.serial
    );
}

/// A guest that halts for good (the `unikernel.idle` flag: interrupts masked, no interrupt
/// controller) can never go on: the monitor reports it at once, with its own status,
/// rather than holding it until the timeout.
#[test]
fn a_guest_halted_for_good_is_reported_at_once() {
    if !common::kvm_usable() {
        return;
    }
    let kernel = example("empty");
    let start = Instant::now();
    let outcome = monitor(&kernel)
        .kernel_flag("unikernel.idle")
        .timeout(Duration::from_secs(30))
        .run()
        .expect("the boot starts");
    let wall = start.elapsed();
    assert!(!outcome.timed_out, "{}", outcome.report());
    assert!(
        matches!(outcome.exit, Exit::Halted { .. }),
        "{:?}\n{}",
        outcome.exit,
        outcome.report()
    );
    assert_eq!(outcome.exit_code(), runner::boot::STATUS_HALTED);
    let summary = outcome.summary().unwrap();
    assert!(summary.contains("halted for good"), "{summary}");
    assert!(
        outcome.stderr.contains("halted") && outcome.stderr.contains("interrupts masked"),
        "{}",
        outcome.stderr
    );
    assert!(wall < Duration::from_secs(10), "{wall:?}");
}

/// A guest that spins is stopped by the timeout (the vCPU is kicked out of KVM_RUN).
#[test]
fn a_spinning_guest_is_stopped_by_the_timeout() {
    if !common::kvm_usable() {
        return;
    }
    // jmp $
    let kernel = pvh::elf("spin", &[0xeb, 0xfe], None);
    let start = Instant::now();
    let outcome = monitor(&kernel)
        .timeout(Duration::from_millis(300))
        .run()
        .expect("the boot starts");
    assert!(outcome.timed_out, "{}", outcome.report());
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_triple_fault_is_reported_with_the_registers() {
    if !common::kvm_usable() {
        return;
    }
    // mov eax, 0x1234; ud2 -- with no IDT the #UD becomes a triple fault.
    let kernel = pvh::elf("triple", &[0xb8, 0x34, 0x12, 0x00, 0x00, 0x0f, 0x0b], None);
    let outcome = monitor(&kernel).run().expect("the boot starts");
    let Exit::Fault { kind, report } = &outcome.exit else {
        panic!("expected a fault: {}", outcome.report());
    };
    assert_eq!(*kind, FaultKind::TripleFault);
    assert_eq!(outcome.exit_code(), runner::boot::STATUS_RESET);
    assert!(
        report.starts_with("the monitor stopped the guest: the guest shut down: a triple fault"),
        "{report}"
    );
    assert!(report.contains("rax 0x1234"), "{report}");
    assert!(
        report.contains("32-bit protected mode, paging off"),
        "{report}"
    );
    assert!(!report.contains('\n'), "one paragraph: {report}");
    assert_eq!(outcome.summary().as_deref(), Some(report.as_str()));
}

/// `int3` with no IDT: a triple fault on hardware KVM; here, where KVM emulates the guest's
/// ring 0 and its emulator lacks `int3`, a KVM internal error. Either way one paragraph.
#[test]
fn an_instruction_kvm_cannot_run_is_reported() {
    if !common::kvm_usable() {
        return;
    }
    let kernel = pvh::elf("int3", &[0xcc, 0xeb, 0xfe], None);
    let outcome = monitor(&kernel).run().expect("the boot starts");
    let Exit::Fault { kind, report } = &outcome.exit else {
        panic!("expected a fault: {}", outcome.report());
    };
    match kind {
        FaultKind::InternalError => {
            assert!(report.contains("KVM internal error"), "{report}");
            assert_eq!(outcome.exit_code(), runner::boot::STATUS_QEMU_FAILED);
        }
        FaultKind::TripleFault => assert!(report.contains("triple fault"), "{report}"),
        other => panic!("unexpected {other:?}: {report}"),
    }
    assert!(report.contains("rip 0x100100"), "{report}");
    assert!(!report.contains('\n'), "one paragraph: {report}");
}

#[test]
fn mmio_without_a_device_is_reported() {
    if !common::kvm_usable() {
        return;
    }
    // mov dword ptr [0xfee000b0], 0 -- the local APIC's EOI register, which is not there.
    let kernel = pvh::elf(
        "mmio",
        &[
            0xc7, 0x05, 0xb0, 0x00, 0xe0, 0xfe, 0x00, 0x00, 0x00, 0x00, 0xeb, 0xfe,
        ],
        None,
    );
    let outcome = monitor(&kernel).run().expect("the boot starts");
    let Exit::Fault { kind, report } = &outcome.exit else {
        panic!("expected a fault: {}", outcome.report());
    };
    assert_eq!(*kind, FaultKind::Unhandled);
    assert_eq!(outcome.exit_code(), runner::boot::STATUS_QEMU_FAILED);
    assert!(report.contains("MMIO write at 0xfee000b0"), "{report}");
    assert!(report.contains("local APIC"), "{report}");
}

#[test]
fn a_console_write_outside_memory_is_reported() {
    if !common::kvm_usable() {
        return;
    }
    // mov eax, 0x7fff0000; mov dx, 0x0fe0; out dx, eax
    let kernel = pvh::elf(
        "console",
        &[
            0xb8, 0x00, 0x00, 0xff, 0x7f, 0x66, 0xba, 0xe0, 0x0f, 0xef, 0xeb, 0xfe,
        ],
        None,
    );
    let outcome = monitor(&kernel).run().expect("the boot starts");
    let Exit::Fault { kind, report } = &outcome.exit else {
        panic!("expected a fault: {}", outcome.report());
    };
    assert_eq!(*kind, FaultKind::BadRequest);
    assert!(
        report.contains("console request at 0x7fff0000 lies outside its memory"),
        "{report}"
    );
}

#[test]
fn the_exit_port_gives_the_status_as_written() {
    if !common::kvm_usable() {
        return;
    }
    // mov eax, 42; out 0xf4, eax
    let kernel = pvh::elf("exit42", &[0xb8, 42, 0, 0, 0, 0xe7, 0xf4], None);
    monitor(&kernel)
        .run()
        .expect("the boot starts")
        .assert_status(42);
}

#[test]
fn an_image_without_a_pvh_note_is_refused() {
    let err = monitor(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/Cargo.toml"
    )))
    .run()
    .unwrap_err();
    assert!(
        err.message().contains("is not a bootable unikernel image"),
        "{err}"
    );
}

/// The same image on both VMMs: under QEMU the kernel finds no monitor and has no clock
/// page; under the monitor it reads the clock without exits.
#[test]
fn the_probe_finds_the_monitor_and_reads_its_clock_without_exits() {
    let probe = runner::build::CargoBuild {
        manifest_path: Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/guests/monitor-probe/Cargo.toml"),
        package: None,
        release: true,
        quiet: true,
    }
    .run()
    .expect("the probe builds");
    let qemu = Boot::new(&probe)
        .timeout(TIMEOUT)
        .run()
        .expect("QEMU boots it");
    qemu.assert_status(0)
        .assert_serial_contains("vmm: Other\n")
        .assert_serial_contains("clock: none\n");
    if !common::kvm_usable() {
        return;
    }
    let host_before = unix_ns();
    let outcome = monitor(&probe).run().expect("the monitor boots it");
    let host_after = unix_ns();
    outcome
        .assert_status(0)
        .assert_serial_contains("vmm: Monitor\n");
    let line = outcome
        .serial
        .lines()
        .find(|l| l.starts_with("clock: t0="))
        .unwrap_or_else(|| panic!("no clock line\n{}", outcome.report()));
    let field = |name: &str| -> u64 {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(name)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {line}"))
    };
    let (t0, t1, wall, hz, reads) = (
        field("t0"),
        field("t1"),
        field("wall"),
        field("tsc_hz"),
        field("reads"),
    );
    assert!(t1 >= t0 + 2_000_000, "{line}");
    assert!(
        t1 < outcome.wall.as_nanos() as u64 + 1_000_000,
        "the clock ran ahead of the host: {line}"
    );
    assert!(
        wall + 1_000_000_000 > host_before && wall < host_after + 1_000_000_000,
        "{line}: host {host_before}..{host_after}"
    );
    assert!(hz > 100_000_000, "{line}");
    let stats = stats(&outcome);
    // Console writes, one exit to register the clock page, one to end: the reads cost none.
    assert!(reads > 1, "{line}");
    assert_eq!(stats.exits, stats.console_writes + 2, "{stats:?} ({line})");
}

fn unix_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_nanos() as u64
}
