//! Boot tests: images booted in QEMU (the accelerator chosen as `--accel auto` does), each
//! with a timeout, so that a hung guest fails its test with the serial output so far.

use std::time::Duration;

use runner::Boot;

/// The floor kernel, built from examples/floor.
fn floor() -> std::path::PathBuf {
    runner::example_elf("floor")
}

/// The floor kernel prints `floor` and writes 0 to the exit port.
#[test]
fn floor_kernel_boots_and_exits_0() {
    let floor = floor();
    let outcome = Boot::new(&floor)
        .timeout(Duration::from_secs(30))
        .run()
        .expect("the boot starts");
    outcome.assert_status(0).assert_serial_contains("floor");
}

/// A file that is not a kernel is refused before QEMU starts.
#[test]
fn a_non_kernel_is_refused() {
    let err = Boot::new(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .run()
        .unwrap_err();
    assert!(
        err.message()
            .ends_with("is not a bootable unikernel image: it is not an ELF file"),
        "{err}"
    );
}

/// A guest that does not exit in time is stopped, with what it printed so far.
#[test]
fn a_guest_out_of_time_is_stopped() {
    let floor = floor();
    let outcome = Boot::new(&floor)
        .timeout(Duration::from_millis(1))
        .run()
        .expect("the boot starts");
    assert!(outcome.timed_out);
    assert_eq!(outcome.status, None);
    assert_eq!(outcome.exit_code(), runner::boot::STATUS_TIMEOUT);
}
