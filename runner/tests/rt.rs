//! Boot tests of interrupts, time and scheduling (issue 3): each boots an example in QEMU
//! (the accelerator chosen as `--accel auto` does: TCG on machines whose KVM is emulated)
//! with a timeout, so that a hung guest fails its test with its serial output.
//!
//! The tests assert behaviour: statuses, order, counts. How long things take is measured
//! by benches/ (rt.sh, sleep.sh), not here: a busy host stretches any time. The tests whose
//! outcome depends on when timers fire against how long jobs run boot with `-icount`
//! (see [`boot_deterministic`]), where it cannot.
//!
//! The boots of this file run one at a time (`SERIAL`): two guests at once on a small host
//! would disturb each other's timing.

mod common;
#[path = "common/threads.rs"]
mod threads;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use runner::{AccelRequest, Boot, BootOutcome};
use threads::{SCHED_FIFO, thread_policies, watch};

static SERIAL: Mutex<()> = Mutex::new(());

fn build(example: &str) -> std::path::PathBuf {
    runner::example_elf(example)
}

/// Holds the file's boots to one at a time while the guard lives.
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs `boot`, one boot at a time.
fn run_alone(boot: Boot) -> BootOutcome {
    let _one_at_a_time = one_at_a_time();
    boot.run().expect("the boot starts")
}

/// Boots `example` with `args`, one boot at a time.
fn boot(example: &str, args: &[&str], timeout: Duration) -> BootOutcome {
    run_alone(
        Boot::new(build(example))
            .timeout(timeout)
            .args(args.iter().copied()),
    )
}

/// Boots `example` with `args` under TCG with `-icount shift=0,sleep=off`, one boot at a
/// time. Guest time is then the count of instructions run (one a nanosecond), and while
/// the guest halts it jumps to the next timer's deadline (`sleep=off`; with `sleep=on` it
/// would follow the host's clock there): a host that deschedules QEMU stretches no job and
/// delays no timer in the guest's eyes, so the run, and its output, are the same every
/// time, on every machine.
fn boot_deterministic(example: &str, args: &[&str]) -> BootOutcome {
    run_alone(
        Boot::new(build(example))
            .accel(AccelRequest::Tcg)
            .qemu_arg("-icount")
            .qemu_arg("shift=0,sleep=off")
            .timeout(Duration::from_secs(120))
            .args(args.iter().copied()),
    )
}

/// The number after `prefix` on the first line that has it.
fn number_after(serial: &str, prefix: &str) -> Option<f64> {
    let rest = &serial[serial.find(prefix)? + prefix.len()..];
    let digits: String = rest
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    digits.parse().ok()
}

/// Asserts that sleep `i`, as the guest measured it (its `sleep {i}: end after N us` line),
/// was not cut short and that its alarm ended it (a sleep that only a later event ended
/// would last far longer than this bound).
fn assert_slept_50_ms(serial: &str, i: u32) {
    let slept = number_after(serial, &format!("sleep {i}: end after"))
        .map(|us| Duration::from_secs_f64(us / 1e6))
        .unwrap_or_else(|| panic!("no `sleep {i}: end` line:\n{serial}"));
    assert!(
        slept >= Duration::from_millis(50) && slept < Duration::from_secs(1),
        "sleep {i} lasted {slept:?}:\n{serial}"
    );
}

/// `sleep(50 ms)` against the host's clock: the guest prints a line before and after each
/// of five sleeps, and the host timestamps the lines as they arrive on QEMU's stdout. The
/// sleeps are never short by the guest's clock, and the guest's clock runs at the host's
/// rate: the host sees the sleeps last 50 ms, not half or twice that (a mis-measured TSC).
/// How close to 50 ms they come is a figure of benches/sleep.sh.
#[test]
fn sleep_50_ms_takes_50_ms_of_host_time() {
    let elf = build("rt-threads");
    let _one_at_a_time = one_at_a_time();
    let accel = runner::qemu::detect_accel(AccelRequest::Auto).expect("an accelerator");
    let config = Boot::new(&elf).args(["--sleeps", "5"]).qemu_config(accel);
    let qemu = runner::setup::qemu_path().expect("QEMU is installed");
    let mut child = Command::new(qemu)
        .args(config.args())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("QEMU starts");
    let stdout = child.stdout.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send((Instant::now(), line)).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut lines = Vec::new();
    while let Ok((at, line)) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        lines.push((at, line));
    }
    let _ = child.kill();
    let _ = child.wait();
    let output: String = lines.iter().map(|(_, line)| format!("{line}\n")).collect();

    let mut host = Vec::new();
    for i in 0..5 {
        let at = |what: &str| {
            lines
                .iter()
                .find(|(_, line)| line.trim_end().starts_with(&format!("sleep {i}: {what}")))
                .unwrap_or_else(|| panic!("no `sleep {i}: {what}` line in:\n{output}"))
        };
        let (begin, _) = at("begin");
        let (end, _) = at("end");
        assert_slept_50_ms(&output, i);
        host.push(end.duration_since(*begin));
    }
    // The median: one line held up on its way to the host does not decide.
    let mut sorted = host.clone();
    sorted.sort();
    let median = sorted[2];
    assert!(
        median >= Duration::from_millis(45) && median < Duration::from_millis(100),
        "the host saw sleep(50 ms) last {host:?}: the guest's clock does not run at the host's rate:\n{output}"
    );
}

/// Cooperative threads interleave at their yields; the channel, the mutex and join work.
#[test]
fn cooperative_threads_interleave() {
    let outcome = boot("rt-threads", &["--sleeps", "1"], Duration::from_secs(60));
    outcome
        .assert_status(0)
        .assert_serial_contains("interleave: a0 b0 a1 b1 a2 b2 (joined 2)")
        .assert_serial_contains("channel: sum 5050")
        .assert_serial_contains("mutex: counter 4000")
        .assert_serial_contains("context switch (yield to yield):");
    assert_slept_50_ms(&outcome.serial, 0);
}

/// A thread that overflows its stack runs into the guard page below it, and the report
/// says so.
#[test]
fn a_thread_stack_overflow_is_reported_as_such() {
    let outcome = boot("rt-threads", &["--overflow"], Duration::from_secs(60));
    outcome
        .assert_status(runner::boot::STATUS_EXCEPTION)
        .assert_serial_contains(
            "exception: stack overflow: the stack of a spawned thread ran into its guard page",
        );
    assert!(!outcome.serial.contains("recursed:"));
}

/// The same, with the 8259 PIC as the interrupt controller and the PIT as the timer.
#[test]
fn threads_and_sleep_on_the_pic_and_the_pit() {
    let elf = build("rt-threads");
    let outcome = run_alone(
        Boot::new(&elf)
            .timeout(Duration::from_secs(60))
            .kernel_flag("unikernel.irq=pic")
            .args(["--sleeps", "2"]),
    );
    outcome
        .assert_status(0)
        .assert_serial_contains("interleave: a0 b0 a1 b1 a2 b2");
    assert_slept_50_ms(&outcome.serial, 0);
    assert_slept_50_ms(&outcome.serial, 1);
}

/// The PIT as the timer with the APICs as the controller: IRQ 0 routed through the I/O
/// APIC (pin 2).
#[test]
fn sleep_with_the_pit_through_the_io_apic() {
    let elf = build("rt-threads");
    let outcome = run_alone(
        Boot::new(&elf)
            .timeout(Duration::from_secs(60))
            .kernel_flag("unikernel.timer=pit")
            .args(["--sleeps", "2", "--quick"]),
    );
    outcome
        .assert_status(0)
        .assert_serial_contains("timer: PIT, mode 0")
        .assert_serial_contains("I/O APIC");
    assert_slept_50_ms(&outcome.serial, 0);
    assert_slept_50_ms(&outcome.serial, 1);
}

/// A handler registered on a local vector runs for each self-IPI; an interrupt on a
/// vector with no handler is reported once and counted each time.
#[test]
fn handlers_run_and_unexpected_vectors_are_reported() {
    let outcome = boot("rt-irq", &[], Duration::from_secs(60));
    outcome
        .assert_status(0)
        .assert_serial_contains("ran 3 times (counted 3)")
        .assert_serial_contains("irq: unexpected interrupt (no handler) on vector 0x99")
        .assert_serial_contains("unexpected interrupts: 2, spurious: 0, APIC errors: 0")
        .assert_serial_contains("raise(3): Err(NotAnInterruptVector(3))");
}

/// Fixed priorities preempt, share equal priorities in time slices, and inherit (see
/// examples/rt-fixed): the urgent thread wakes 20 times while a thread that never yields
/// spins, each wake a preemption; both equal threads run; and with inheritance `high` gets
/// the lock `low` holds before `middle`, more urgent than `low`, runs at all.
#[test]
fn fixed_priorities_preempt_slice_and_inherit() {
    let outcome = boot("rt-fixed", &[], Duration::from_secs(60));
    outcome
        .assert_status(0)
        .assert_serial_contains(
            "preemption: the urgent thread woke 20 times while the busy thread spun",
        )
        .assert_serial_contains("time slices: both equal threads ran: true")
        .assert_serial_contains("priority inheritance: high got the lock before middle ran: true");
    let preemptions = number_after(&outcome.serial, "while the busy thread spun (")
        .expect("the preemption count");
    assert!(preemptions >= 20.0, "{}", outcome.serial);
}

/// The counts in `order: EDF in 4 of 4 hyperperiods, RM in 0, 0 left out for host
/// stalls`: (EDF order, RM order, hyperperiods counted).
fn orders(serial: &str) -> (u32, u32, u32) {
    let edf = number_after(serial, "order: EDF in").expect("the order line") as u32;
    let rm = number_after(serial, "hyperperiods, RM in").expect("the order line") as u32;
    let counted =
        number_after(serial, &format!("order: EDF in {edf} of")).expect("the count") as u32;
    (edf, rm, counted)
}

/// Under EDF the job with the earlier deadline runs on when a job of the task with the
/// shorter period is released (see examples/rt-edf/src/order.rs); under RM the other way.
/// Under `-icount` no host stall eats into a job, so every one of the four hyperperiods
/// checked shows the policy's order.
#[test]
fn edf_order_is_observable_and_differs_from_rm() {
    for (app, expected) in [("rt-edf", (4, 0, 4)), ("rt-rm", (0, 4, 4))] {
        let outcome = boot_deterministic(app, &[]);
        outcome.assert_status(0);
        assert_eq!(
            orders(&outcome.serial),
            expected,
            "(EDF order, RM order, hyperperiods counted) of {app}:\n{}",
            outcome.serial
        );
    }
}

/// A task whose job 5 works 30 ms against a 20 ms deadline: that miss is logged and
/// counted, and that job counted as over its declared worst case; no other job of the task
/// misses or overruns (under `-icount`, where no host stall stretches a job).
#[test]
fn an_overrunning_task_misses_and_is_detected() {
    let outcome = boot_deterministic("rt-overrun", &[]);
    outcome.assert_status(0).assert_serial_contains(
        "task `overrunner` missed a deadline (miss 1 so far): job 5 was still running",
    );
    let line = outcome
        .serial
        .lines()
        .find(|line| line.starts_with("overrunner:"))
        .expect("the overrunner's line");
    assert!(
        line.ends_with("jobs, 1 missed, 1 over their worst case"),
        "{}",
        outcome.serial
    );
}

/// With `on_miss = panic` the first miss, job 5's, ends the VM with the panic's status.
#[test]
fn an_overrun_panics_with_on_miss_panic() {
    let outcome = boot_deterministic("rt-overrun-panic", &[]);
    outcome
        .assert_status(runner::boot::STATUS_PANIC)
        .assert_serial_contains("task `overrunner` missed a deadline: job 5, released ");
    assert!(!outcome.serial.contains("no deadline was missed"));
}

/// rt-periodic runs its three tasks for a second of guest time and prints the report: the
/// 1 kHz task ran a thousand jobs, and no job of the set (schedulable, as the macro
/// checked) missed its deadline.
#[test]
fn rt_periodic_reports_every_task() {
    let outcome = boot_deterministic("rt-periodic", &["--seconds", "1", "--warmup-ms", "100"]);
    outcome.assert_status(0);
    for needle in [
        "rt-periodic: Edf policy, 3 tasks",
        "release jitter",
        "control       1.00 ms   100 us |",
        "telemetry",
        "logger",
        "timer interrupt latency",
        "deadline misses:",
    ] {
        outcome.assert_serial_contains(needle);
    }
    let jobs = number_after(&outcome.serial, "control       1.00 ms   100 us |").expect("jobs");
    assert_eq!(jobs, 1000.0, "{}", outcome.serial);
    outcome.assert_serial_contains("deadline misses: 0\n");
}

/// The images boot under KVM too, where it can be used: there the clock is kvmclock and
/// the timer the LAPIC's TSC-deadline mode. (On this project's machine KVM emulates ring 0
/// in software, about 1300 times slower than TCG, so only a short run.)
#[test]
fn threads_and_timer_boot_under_kvm() {
    if !common::kvm_usable() {
        return;
    }
    let elf = build("rt-threads");
    let outcome = run_alone(
        Boot::new(&elf)
            .accel(AccelRequest::Kvm)
            .timeout(Duration::from_secs(120))
            .args(["--sleeps", "1", "--quick"]),
    );
    outcome
        .assert_status(0)
        .assert_serial_contains("interleave: a0 b0 a1 b1 a2 b2")
        .assert_serial_contains("mutex: counter 40");
    if std::fs::read_to_string("/proc/cpuinfo").is_ok_and(|c| c.contains("tsc_deadline_timer")) {
        outcome.assert_serial_contains("TSC-deadline mode");
    }
    outcome.assert_serial_contains("from kvmclock");
}

/// The QEMU this process started (one at a time here), once it runs.
fn our_qemu() -> Option<u32> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            let (name, rest) = stat.split_once(") ")?;
            let parent: u32 = rest.split_whitespace().nth(1)?.parse().ok()?;
            (name.ends_with("(qemu-system-x86") && parent == std::process::id()).then_some(pid)
        })
}

#[test]
fn realtime_runs_qemus_vcpus_under_sched_fifo_and_its_main_loop_one_above() {
    let _one_at_a_time = one_at_a_time();
    let boot = Boot::new(build("smp-jitter"))
        .accel(AccelRequest::Tcg)
        .cpus(2)
        .realtime(3)
        .timeout(Duration::from_secs(60))
        .args(["--seconds", "3"]);
    if !rustix::process::geteuid().is_root() {
        let err = boot.run().expect_err("SCHED_FIFO needs root here");
        assert!(err.to_string().contains("--realtime 3 needs root"), "{err}");
        return;
    }
    let running = std::thread::spawn(move || boot.run().expect("the boot starts"));
    let vcpus_set = |threads: &[(String, u32, u32)]| {
        threads
            .iter()
            // At 3, not only under SCHED_FIFO: a vCPU thread made after the main loop's
            // change starts at its 4 until the runner lowers it.
            .filter(|&(name, policy, priority)| {
                name.starts_with("CPU ") && (*policy, *priority) == (SCHED_FIFO, 3)
            })
            .count()
            == 2
    };
    let threads = watch(
        || our_qemu().map_or_else(Vec::new, thread_policies),
        vcpus_set,
    );
    let outcome = running.join().expect("the boot thread");
    assert_eq!(outcome.status, Some(0), "{}", outcome.serial);
    assert!(
        outcome.serial.contains("jitter: tick on CPU 0"),
        "{}",
        outcome.serial
    );
    for cpu in ["CPU 0/TCG", "CPU 1/TCG"] {
        assert!(
            threads.contains(&(cpu.to_owned(), SCHED_FIFO, 3)),
            "{cpu} at SCHED_FIFO 3: {threads:?}"
        );
    }
    // The main loop (the thread named like the process) runs the guest's timers.
    assert!(
        threads.contains(&("qemu-system-x86".to_owned(), SCHED_FIFO, 4)),
        "the main loop at SCHED_FIFO 4: {threads:?}"
    );
}
