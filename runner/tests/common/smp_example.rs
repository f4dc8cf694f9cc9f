//! What examples/smp prints, for the tests that boot it under QEMU (`smp.rs`) and on the
//! monitor (`monitor_smp.rs`), which include it with
//! `#[path = "common/smp_example.rs"] mod smp_example;`.

use runner::BootOutcome;

/// The CPUs examples/smp declares (`sched(cpus = 4)`).
const DECLARED: usize = 4;

/// Asserts a clean exit and the lines of examples/smp run on `cpus` CPUs: its parallel
/// sum, pinned jobs and `Mutex` counter (each checked by the app itself) and, on fewer
/// CPUs than it declares, the kernel's note that it runs on those.
pub fn assert_ran_on(outcome: &BootOutcome, cpus: usize) {
    let serial = &outcome.serial;
    let report = outcome.report();
    assert_eq!(outcome.status, Some(0), "{report}");
    let mut lines = vec![
        format!("cpus: {cpus} of {DECLARED} declared, main on CPU 0"),
        format!("sum: 8000002000000 from {cpus} CPUs, each part on its own CPU"),
        format!("pinned: {} jobs, each on its CPU", cpus * 8),
        format!(
            "mutex: {} increments from {cpus} CPUs, none lost",
            cpus as u64 * 20_000
        ),
    ];
    if cpus < DECLARED {
        lines.push(format!(
            "smp: the app declares {DECLARED} CPUs and the VM has {cpus}: running on {cpus}"
        ));
    }
    for line in lines {
        assert!(serial.contains(&line), "no `{line}` in\n{report}");
    }
}
