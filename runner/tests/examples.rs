//! Boot tests of the examples: each is built for x86_64-unknown-none and booted in QEMU
//! (the accelerator `--accel auto` picks), with a timeout, asserting on the serial output
//! and on the exit status the host sees.

use std::path::PathBuf;
use std::time::Duration;

use runner::{Boot, BootOutcome, Machine, Protocol};

const TIMEOUT: Duration = Duration::from_secs(60);

fn example(name: &str) -> PathBuf {
    runner::example_elf(name)
}

fn boot(name: &str, args: &[&str]) -> BootOutcome {
    Boot::new(example(name))
        .timeout(TIMEOUT)
        .args(args.iter().copied())
        .run()
        .unwrap_or_else(|err| panic!("booting {name}: {err}"))
}

#[test]
fn hello_prints_and_exits_0() {
    boot("hello", &[])
        .assert_status(0)
        .assert_serial_contains("hello from a unikernel\n")
        .assert_serial_contains("squares: [1, 4, 9, 16, 25, 36, 49, 64, 81, 100]\n")
        .assert_serial_contains("the=3\n");
}

#[test]
fn empty_exits_0_and_prints_nothing() {
    let outcome = boot("empty", &[]);
    outcome.assert_status(0);
    assert_eq!(outcome.serial, "", "{}", outcome.report());
}

#[test]
fn main_returning_7_makes_the_runner_exit_7() {
    let outcome = boot("faults", &["exit", "7"]);
    outcome.assert_status(7);
    assert_eq!(outcome.exit_code(), 7);
}

#[test]
fn a_panic_is_reported_with_its_message_and_location() {
    boot("faults", &["panic"])
        .assert_status(101)
        .assert_serial_contains("panicked at faults/src/main.rs:")
        .assert_serial_contains("the app gave up");
}

#[test]
fn a_null_pointer_read_is_a_page_fault_at_address_0() {
    boot("faults", &["null"])
        .assert_status(102)
        .assert_serial_contains("exception: page fault (#PF, vector 14)")
        .assert_serial_contains(
            "page fault at address 0x0: read from an unmapped page (null pointer dereference)",
        );
}

#[test]
fn a_write_into_the_kernels_code_faults() {
    boot("faults", &["write-code"])
        .assert_status(102)
        .assert_serial_contains("write to a read-only page (in the kernel's code)");
}

#[test]
fn executing_read_only_data_faults() {
    boot("faults", &["exec-data"])
        .assert_status(102)
        .assert_serial_contains(
            "instruction fetch from a no-execute page (in the kernel's read-only data)",
        );
}

#[test]
fn a_stack_overflow_is_reported_as_such() {
    boot("faults", &["overflow"])
        .assert_status(102)
        .assert_serial_contains(
            "exception: stack overflow: the main stack ran into its guard page",
        );
}

#[test]
fn running_out_of_heap_is_reported_as_out_of_memory_with_the_fix() {
    boot("faults", &["alloc-fail"])
        .assert_status(101)
        .assert_serial_contains(
            "out of memory: the app asked for 1048576 bytes, but the heap of 64 KiB has",
        )
        .assert_serial_contains("largest free block is ")
        .assert_serial_contains("`heap = \"2 MiB\"`");
}

#[test]
fn a_heap_larger_than_the_vm_is_a_boot_error() {
    let outcome = Boot::new(example("hello"))
        .timeout(TIMEOUT)
        .memory(2)
        .run()
        .expect("the boot starts");
    outcome
        .assert_status(103)
        .assert_serial_contains("boot error: heap: 1 MiB does not fit");
}

#[test]
fn the_app_gets_its_arguments_quoted_like_a_shell() {
    boot("faults", &["exit", "3", "ignored"]).assert_status(3);
}

#[test]
fn hello_boots_on_pc_and_q35() {
    for machine in [Machine::Pc, Machine::Q35] {
        Boot::new(example("hello"))
            .timeout(TIMEOUT)
            .machine(machine)
            .run()
            .expect("the boot starts")
            .assert_status(0)
            .assert_serial_contains("hello from a unikernel");
    }
}

/// The multiboot header (QEMU's loader prefers it when an image has both): its load
/// addresses, the rodata move in entry.s, and the command line without the kernel's path.
#[test]
fn hello_and_faults_boot_through_multiboot() {
    for machine in [Machine::Microvm, Machine::Pc] {
        Boot::new(example("hello"))
            .timeout(TIMEOUT)
            .machine(machine)
            .protocol(Protocol::Multiboot)
            .run()
            .expect("the boot starts")
            .assert_status(0)
            .assert_serial_contains(
                "words: brown=1 dog=1 end=1 fox=1 jumps=1 lazy=1 over=1 quick=1 the=3",
            );
    }
    Boot::new(example("faults"))
        .timeout(TIMEOUT)
        .protocol(Protocol::Multiboot)
        .args(["exit", "5"])
        .run()
        .expect("the boot starts")
        .assert_status(5);
}

/// The boot timeline: a stamp at the loader's entry, after the arch setup, after each
/// declared subsystem in boot order, and at `main`, in increasing TSC order.
#[test]
fn the_boot_timeline_has_every_stage_in_order() {
    let outcome = Boot::new(example("hello"))
        .timeout(TIMEOUT)
        .timeline(true)
        .run()
        .expect("the boot starts");
    outcome.assert_status(0);
    let stages: Vec<&str> = outcome
        .timeline
        .iter()
        .map(|stamp| stamp.stage.as_str())
        .collect();
    assert_eq!(
        stages,
        ["entry", "arch", "console", "heap", "main"],
        "{}",
        outcome.report()
    );
    assert!(
        outcome
            .timeline
            .windows(2)
            .all(|pair| pair[0].tsc <= pair[1].tsc),
        "{:?}",
        outcome.timeline
    );
    assert!(
        !outcome.serial.contains("unikernel.timeline"),
        "the runner strips the stamps"
    );
}
