//! Several vCPUs on the runner's own KVM monitor (issue 16): examples/smp on 1, 2 and 4
//! vCPUs (its parallel sum, pinned jobs and the `Mutex` across CPUs check themselves),
//! faults on CPU 1 (the guest's own report, and the monitor's), an AP that hangs, an AP
//! that ends the VM, a guest that abuses its local APIC, and the refusals of what runs one
//! vCPU only (snapshots, density, the gdb stub).
//!
//! The small guests here are a few instructions each: CPU 0 (32-bit protected mode,
//! paging off, as the PVH entry leaves it) copies real-mode code for the AP to 0x9000 and
//! starts APIC ID 1 with INIT and a SIPI through KVM's local APIC at 0xfee00000.
//!
//! They need a usable /dev/kvm; where there is none each test says so and passes, or fails
//! under `UK_REQUIRE_KVM=1` (see `common`).

mod common;
#[path = "common/pvh.rs"]
mod pvh;
#[path = "common/smp_example.rs"]
mod smp_example;
#[path = "common/threads.rs"]
mod threads;

use std::path::Path;
use std::time::{Duration, Instant};

use runner::boot::Exit;
use runner::monitor::{FaultKind, Vmm};
use runner::{Boot, BootOutcome};
use smp_example::assert_ran_on;

/// examples/smp runs about a minute on 4 vCPUs under this project's emulating KVM.
const SMP_TIMEOUT: Duration = Duration::from_secs(600);

fn smp_on_monitor(cpus: u16) -> Boot {
    Boot::new(runner::example_elf("smp"))
        .vmm(Vmm::Monitor)
        .cpus(cpus)
        .timeout(SMP_TIMEOUT)
}

#[test]
fn smp_runs_on_four_vcpus() {
    if !common::kvm_usable() {
        return;
    }
    // The image's own count: its manifest says cpus=4.
    let outcome = Boot::new(runner::example_elf("smp"))
        .vmm(Vmm::Monitor)
        .timeout(SMP_TIMEOUT)
        .run()
        .expect("the boot starts");
    assert_ran_on(&outcome, 4);
    assert!(
        !outcome.serial.contains("did not start"),
        "{}",
        outcome.serial
    );
}

#[test]
fn smp_runs_on_two_vcpus_and_says_fewer_than_declared() {
    if !common::kvm_usable() {
        return;
    }
    let outcome = smp_on_monitor(2).run().expect("the boot starts");
    assert_ran_on(&outcome, 2);
}

#[test]
fn smp_runs_on_one_vcpu() {
    if !common::kvm_usable() {
        return;
    }
    let outcome = smp_on_monitor(1).run().expect("the boot starts");
    assert_ran_on(&outcome, 1);
}

/// A job on CPU 1 overflows its stack: the guest's own report names the CPU, and the VM
/// exits with the exception status while CPU 0 still runs.
#[test]
fn a_guest_fault_on_cpu_1_is_reported_with_the_cpu() {
    if !common::kvm_usable() {
        return;
    }
    let outcome = smp_on_monitor(2)
        .arg("--overflow")
        .run()
        .expect("the boot starts");
    assert_eq!(
        outcome.status,
        Some(i32::from(runner::status::EXCEPTION)),
        "{}",
        outcome.report()
    );
    assert!(
        outcome.serial.contains(
            "on CPU 1: exception: stack overflow: an AP's boot stack ran into its guard page"
        ),
        "{}",
        outcome.serial
    );
}

/// The AP's real-mode code loads an empty IDT and executes `ud2`: nothing can take the
/// exception, and the CPU shuts down (a KVM internal error where this host's KVM cannot
/// emulate the delivery). The monitor's report names CPU 1 and the VM exits non-zero.
#[test]
fn a_monitor_fault_on_cpu_1_names_cpu_1() {
    if !common::kvm_usable() {
        return;
    }
    // cli; lidt [0x9010] (six zero bytes); ud2
    let ap = [0xfa, 0x0f, 0x01, 0x1e, 0x10, 0x90, 0x0f, 0x0b];
    let kernel = two_cpu_elf("ap-fault", &ap, SPIN);
    let outcome = monitor(&kernel, Duration::from_secs(60));
    let Exit::Fault { kind, report } = &outcome.exit else {
        panic!("expected a fault: {}", outcome.report());
    };
    eprintln!("{kind:?}: {report}");
    assert!(
        matches!(kind, FaultKind::TripleFault | FaultKind::InternalError),
        "{kind:?}: {report}"
    );
    assert!(
        report.starts_with("the monitor stopped the guest: on CPU 1: "),
        "{report}"
    );
    assert!(report.contains("CPU 1 was at rip"), "{report}");
    assert!(report.contains("real mode"), "{report}");
    assert_ne!(outcome.exit_code(), 0);
    assert!(!outcome.timed_out);
}

/// The AP spins with interrupts off and CPU 0 spins too: the timeout stops both vCPUs and
/// the runner returns.
#[test]
fn a_hung_ap_does_not_hang_the_runner() {
    if !common::kvm_usable() {
        return;
    }
    // cli; jmp $
    let kernel = two_cpu_elf("ap-hang", &[0xfa, 0xeb, 0xfe], SPIN);
    let start = Instant::now();
    let outcome = monitor(&kernel, Duration::from_secs(2));
    assert!(outcome.timed_out, "{}", outcome.report());
    assert!(
        matches!(outcome.exit, Exit::TimedOut(_)),
        "{:?}",
        outcome.exit
    );
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
}

/// CPU 0 exits while the AP spins: the VM ends with CPU 0's status and the AP's thread
/// is stopped, not waited for.
#[test]
fn cpu_0_ends_the_vm_while_an_ap_spins() {
    if !common::kvm_usable() {
        return;
    }
    let kernel = two_cpu_elf("ap-spins", &[0xfa, 0xeb, 0xfe], &exit_with(5));
    let start = Instant::now();
    let outcome = monitor(&kernel, Duration::from_secs(60));
    outcome.assert_status(5);
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
}

/// The AP writes the exit port while CPU 0 spins: any vCPU's exit ends the VM.
#[test]
fn an_ap_ends_the_vm_with_its_status() {
    if !common::kvm_usable() {
        return;
    }
    // mov al, 7; out 0xf4, al; jmp $
    let kernel = two_cpu_elf("ap-exits", &[0xb0, 0x07, 0xe6, 0xf4, 0xeb, 0xfe], SPIN);
    let outcome = monitor(&kernel, Duration::from_secs(60));
    outcome.assert_status(7);
    assert!(!outcome.timed_out);
}

/// CPU 0 sends INIT and SIPIs to APIC IDs that do not exist, broadcasts INIT and writes
/// garbage to every writable register of its local APIC, including the interrupt command
/// register, then exits 42. KVM's local APIC takes it all: the VM ends as the guest says,
/// and the same process boots the next VM as usual.
#[test]
fn a_guest_abusing_its_local_apic_does_not_hurt_the_monitor() {
    if !common::kvm_usable() {
        return;
    }
    let mut code = Vec::new();
    let mut icr = |high: u32, low: u32| {
        code.extend(store(0xfee0_0310, high));
        code.extend(store(0xfee0_0300, low));
    };
    // INIT, then a SIPI (vector 0x09), to absent APIC IDs 7 and 200.
    for id in [7u32, 200] {
        icr(id << 24, 0x4500);
        icr(id << 24, 0x4609);
    }
    // INIT to all but itself (the AP, waiting anyway), and an all-ones command.
    icr(0, 0x000c_4500);
    icr(0xffff_ffff, 0xffff_ffff);
    // Garbage into the rest: ID, TPR, EOI, LDR, DFR, SVR, ESR, the LVTs, the timer's
    // count and divider, and the read-only version and ISR.
    for offset in [
        0x20u32, 0x80, 0xb0, 0xd0, 0xe0, 0xf0, 0x280, 0x320, 0x330, 0x340, 0x350, 0x360, 0x370,
        0x380, 0x3e0, 0x30, 0x100,
    ] {
        code.extend(store(0xfee0_0000 + offset, 0xffff_ffff));
    }
    code.extend(exit_with(42));
    // cli; hlt; jmp back to the hlt
    let kernel = two_cpu_elf("apic-abuse", &[0xfa, 0xf4, 0xeb, 0xfd], &code);
    let start = Instant::now();
    let outcome = monitor(&kernel, Duration::from_secs(60));
    outcome.assert_status(42);
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "{:?}",
        start.elapsed()
    );
    // The monitor is fine: the next VM of this process boots and exits as it should.
    let kernel = two_cpu_elf("after-abuse", &[0xfa, 0xf4, 0xeb, 0xfd], &exit_with(3));
    monitor(&kernel, Duration::from_secs(60)).assert_status(3);
}

/// Density holds VMs of one vCPU: it refuses an image on several CPUs in one sentence,
/// before it starts anything (and needs no KVM to say so).
#[test]
fn density_refuses_an_image_on_several_cpus() {
    let image = runner::example_elf("smp");
    let options = runner::density::DensityOptions {
        max: 2,
        image: image.display().to_string(),
        worker_exe: Some(env!("CARGO_BIN_EXE_runner").into()),
        quiet: true,
        ..runner::density::DensityOptions::default()
    };
    let message = runner::density::run(&options)
        .expect_err("density runs one vCPU per VM")
        .to_string();
    assert!(
        message.contains(
            "runs on 4 CPUs (`sched(cpus = 4)`), and `cargo uk density` takes images of one CPU only"
        ),
        "{message}"
    );
    assert!(!message.contains('\n'), "one sentence: {message}");
}

/// The monitor's gdb stub serves one vCPU: `--gdb` refuses an image on several CPUs
/// before it tells anyone to attach, and says how to debug it.
#[test]
fn the_gdb_stub_refuses_an_image_on_several_cpus() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_runner"))
        .args(["boot", "--vmm", "monitor", "--gdb", "0"])
        .arg(runner::example_elf("smp"))
        .stdin(std::process::Stdio::null())
        .output()
        .expect("the runner starts");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "runs on 4 CPUs (`sched(cpus = 4)`), and the monitor's gdb stub takes images of one CPU only; debug it under QEMU (--vmm qemu) or with --cpus 1"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("waits for gdb"), "{stderr}");
}

/// A snapshot saves one vCPU: a VM with several is refused before anything is written.
#[test]
fn a_snapshot_of_a_vm_with_several_vcpus_is_refused() {
    if !common::kvm_usable() {
        return;
    }
    use unikernel_vmm::{Image, Vm, VmConfig, open_kvm};
    let image = Image::open(&runner::example_elf("smp")).expect("smp is an image");
    let kvm = open_kvm().expect("KVM opens");
    let config = VmConfig {
        memory_mib: 32,
        cpus: Some(2),
        ..VmConfig::default()
    };
    let mut vm = Vm::new(&kvm, &image, &config).expect("the VM is made");
    assert_eq!(vm.cpus(), 2);
    let dir = tempfile::tempdir().expect("a temporary folder");
    let message = vm
        .snapshot(dir.path(), None)
        .expect_err("several vCPUs")
        .to_string();
    assert_eq!(
        message,
        "snapshot: a VM with 2 vCPUs cannot be snapshotted: a snapshot saves one vCPU"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).expect("the folder").count(),
        0,
        "nothing written"
    );
}

/// More vCPUs than the monitor gives is a boot error, not a VM.
#[test]
fn more_than_64_vcpus_are_refused() {
    if !common::kvm_usable() {
        return;
    }
    let message = smp_on_monitor(65).run().expect_err("65 vCPUs").to_string();
    assert!(
        message.contains("65 vCPUs asked for: the monitor gives a VM 1 to 64"),
        "{message}"
    );
}

/// `--realtime 5`: both vCPU threads run under SCHED_FIFO 5 while the guest spins on both
/// CPUs (the timeout stops it); the runner's own threads keep the default policy.
#[test]
fn realtime_runs_the_vcpu_threads_under_sched_fifo() {
    use threads::{SCHED_FIFO, thread_policies, watch};
    if !common::kvm_usable() || !rustix::process::geteuid().is_root() {
        return;
    }
    let kernel = two_cpu_elf("realtime", SPIN, SPIN);
    let boot = Boot::new(&kernel)
        .vmm(Vmm::Monitor)
        .realtime(5)
        .timeout(Duration::from_secs(3));
    let running = std::thread::spawn(move || boot.run().expect("the boot starts"));
    let ours = || thread_policies(std::process::id());
    let vcpus_set = |threads: &[(String, u32, u32)]| {
        threads
            .iter()
            .filter(|thread| {
                thread.0.starts_with("vcpu") && (thread.1, thread.2) == (SCHED_FIFO, 5)
            })
            .count()
            == 2
    };
    let threads = watch(ours, vcpus_set);
    let outcome = running.join().expect("the boot thread");
    assert!(outcome.timed_out, "{}", outcome.report());
    for vcpu in ["vcpu0", "vcpu1"] {
        assert!(
            threads.contains(&(vcpu.to_owned(), SCHED_FIFO, 5)),
            "{vcpu} at SCHED_FIFO 5: {threads:?}"
        );
    }
    // KVM's own worker (`kvm-nx-lpage-recovery`), started by the first KVM_RUN, inherits
    // the policy of the vCPU thread that started it.
    assert!(
        threads
            .iter()
            .filter(|thread| !thread.0.starts_with("vcpu") && !thread.0.starts_with("kvm-"))
            .all(|thread| thread.1 != SCHED_FIFO),
        "{threads:?}"
    );
}

fn monitor(kernel: &Path, timeout: Duration) -> BootOutcome {
    Boot::new(kernel)
        .vmm(Vmm::Monitor)
        .timeout(timeout)
        .run()
        .expect("the boot starts")
}

/// jmp $
const SPIN: &[u8] = &[0xeb, 0xfe];

/// mov al, status; out 0xf4, al; jmp $
fn exit_with(status: u8) -> Vec<u8> {
    vec![0xb0, status, 0xe6, 0xf4, 0xeb, 0xfe]
}

/// mov dword ptr [address], value
fn store(address: u32, value: u32) -> Vec<u8> {
    let mut code = vec![0xc7, 0x05];
    code.extend(address.to_le_bytes());
    code.extend(value.to_le_bytes());
    code
}

/// Where the AP's code goes: page 9, the SIPI's vector 0x09.
const AP_CODE: u32 = 0x9000;

/// CPU 0's code for a two-CPU guest: puts `ap` (real-mode code) at [`AP_CODE`], enables
/// its local APIC, starts APIC ID 1 with INIT and a SIPI, then runs `then`.
fn start_ap(ap: &[u8], then: &[u8]) -> Vec<u8> {
    let mut code = Vec::new();
    // The AP's code and 8 zero bytes after it (an empty IDT for `lidt`), four at a time.
    let mut bytes = ap.to_vec();
    bytes.resize(0x18.max(ap.len().next_multiple_of(4) + 8), 0);
    for (i, word) in bytes.chunks(4).enumerate() {
        let word = u32::from_le_bytes(word.try_into().expect("4 bytes"));
        code.extend(store(AP_CODE + 4 * i as u32, word));
    }
    // The spurious-interrupt register: software-enabled, vector 0xff.
    code.extend(store(0xfee0_00f0, 0x1ff));
    // Destination APIC ID 1; INIT (level assert), then the SIPI.
    code.extend(store(0xfee0_0310, 1 << 24));
    code.extend(store(0xfee0_0300, 0x4500));
    code.extend(store(0xfee0_0310, 1 << 24));
    code.extend(store(0xfee0_0300, 0x4600 | (AP_CODE >> 12)));
    code.extend_from_slice(then);
    code
}

/// A PVH image whose manifest says `irq cpus=2`, whose CPU 0 runs [`start_ap`]`(ap,
/// then)`; a temporary file, removed when dropped.
fn two_cpu_elf(name: &str, ap: &[u8], then: &[u8]) -> tempfile::TempPath {
    pvh::elf(name, &start_ap(ap, then), Some("irq cpus=2"))
}
