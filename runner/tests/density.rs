//! `runner density` in small: VMs boot, are held idle, cost little memory, and all stop.
//! (The CPU the idle VMs cost is a figure `cargo uk density` prints, not a check.)
//! Needs a usable /dev/kvm; without one the test says so and passes, or fails under
//! `UK_REQUIRE_KVM=1` (see `common`).

mod common;

use std::time::Duration;

use runner::density::{DensityOptions, shares};

#[test]
fn vms_are_spread_evenly_over_the_workers() {
    assert_eq!(shares(10, 4), [3, 3, 2, 2]);
    assert_eq!(shares(2, 4), [1, 1]);
    assert_eq!(shares(1000, 4), [250, 250, 250, 250]);
}

#[test]
fn idle_vms_are_held_cheaply_and_stopped() {
    if !common::kvm_usable() {
        return;
    }
    let image = runner::build_example("empty").expect("empty builds");
    let options = DensityOptions {
        max: 24,
        processes: Some(2),
        hold: Duration::from_millis(500),
        time_limit: Duration::from_secs(60),
        image: image.display().to_string(),
        worker_exe: Some(env!("CARGO_BIN_EXE_runner").into()),
        quiet: true,
        ..DensityOptions::default()
    };
    let report = runner::density::run(&options).expect("density runs");
    assert_eq!(report.held, 24, "{report:?}");
    assert!(report.failures.is_empty(), "{report:?}");
    assert_eq!(report.limit, "--max 24");
    assert!(report.boots_per_sec > 0.0, "{report:?}");
    // The target is 3 MiB per VM; PSS growth is far below it.
    assert!(report.pss_per_vm_kib < 3.0 * 1024.0, "{report:?}");
    assert!(report.pss_per_vm_kib > 0.0, "{report:?}");
}
