//! Boot tests of several CPUs (issue 16): examples/smp declares `sched(cpus = 4)` and
//! runs a parallel sum, jobs pinned to each CPU and a counter under the `Mutex` from every
//! CPU; it checks each result itself and exits non-zero on a wrong one. Booted with 1, 2
//! and 4 vCPUs under multi-threaded TCG on microvm, pc and q35; every boot has a timeout.
//! Also with 2 vCPUs under QEMU's KVM where it can be used (on this project's machine a
//! nested KVM that emulates ring 0: slow, but the start-up protocol is the hardware's).
//! The same image on the project's KVM monitor (one vCPU thread each): `monitor_smp.rs`.

mod common;

use std::time::Duration;

use runner::{AccelRequest, Boot, BootOutcome, Machine};

fn boot(cpus: u16, machine: Machine) -> BootOutcome {
    Boot::new(runner::example_elf("smp"))
        .accel(AccelRequest::Tcg)
        .machine(machine)
        .cpus(cpus)
        .timeout(Duration::from_secs(120))
        .run()
        .expect("the boot starts")
}

/// Asserts a clean exit and the lines of a run on `cpus` CPUs.
fn assert_ran_on(outcome: &BootOutcome, cpus: usize) {
    let serial = &outcome.serial;
    assert_eq!(outcome.status, Some(0), "{serial}\n{}", outcome.stderr);
    assert!(
        serial.contains(&format!("cpus: {cpus} of 4 declared, main on CPU 0")),
        "{serial}"
    );
    assert!(
        serial.contains(&format!(
            "sum: 8000002000000 from {cpus} CPUs, each part on its own CPU"
        )),
        "{serial}"
    );
    assert!(
        serial.contains(&format!("pinned: {} jobs, each on its CPU", cpus * 8)),
        "{serial}"
    );
    assert!(
        serial.contains(&format!(
            "mutex: {} increments from {cpus} CPUs, none lost",
            cpus as u64 * 20_000
        )),
        "{serial}"
    );
}

#[test]
fn four_cpus_on_microvm() {
    assert_ran_on(&boot(4, Machine::Microvm), 4);
}

#[test]
fn two_cpus_on_q35_say_that_fewer_run_than_declared() {
    let outcome = boot(2, Machine::Q35);
    assert_ran_on(&outcome, 2);
    assert!(
        outcome
            .serial
            .contains("smp: the app declares 4 CPUs and the VM has 2: running on 2"),
        "{}",
        outcome.serial
    );
}

/// Under KVM the trampoline's page is read-only once paging is on, as on hardware (TCG
/// does not check the descriptor writes that would fault there).
#[test]
fn two_cpus_under_kvm() {
    if !common::kvm_usable() {
        return;
    }
    let outcome = Boot::new(runner::example_elf("smp"))
        .accel(AccelRequest::Kvm)
        .cpus(2)
        .timeout(Duration::from_secs(300))
        .run()
        .expect("the boot starts");
    assert_ran_on(&outcome, 2);
}

#[test]
fn four_cpus_on_pc() {
    assert_ran_on(&boot(4, Machine::Pc), 4);
}

#[test]
fn one_cpu_runs_everything_on_cpu_0() {
    let outcome = boot(1, Machine::Microvm);
    assert_ran_on(&outcome, 1);
    assert!(
        outcome
            .serial
            .contains("smp: the app declares 4 CPUs and the VM has 1: running on 1"),
        "{}",
        outcome.serial
    );
}

/// A job on CPU 1 overflows its stack: the guard page of that AP's stack turns it into a
/// report that names the CPU and the stack, and the VM exits with the exception status.
#[test]
fn a_fault_on_another_cpu_is_reported_with_the_cpu() {
    let outcome = Boot::new(runner::example_elf("smp"))
        .accel(AccelRequest::Tcg)
        .cpus(2)
        .arg("--overflow")
        .timeout(Duration::from_secs(120))
        .run()
        .expect("the boot starts");
    let serial = &outcome.serial;
    assert_eq!(
        outcome.status,
        Some(i32::from(runner::status::EXCEPTION)),
        "{serial}"
    );
    assert!(
        serial.contains(
            "on CPU 1: exception: stack overflow: an AP's boot stack ran into its guard page"
        ),
        "{serial}"
    );
}
