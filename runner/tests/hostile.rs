//! The host tool against a hostile guest and against signals: a guest's output never grows
//! the runner's memory, stopping the runner leaves no QEMU, namespace or temporary file
//! behind, a reset on a tap is a reset, a closed stdout ends the runner quietly.
//!
//! Each test runs `cargo uk` (the runner binary) as a child process on the `hostile`
//! guest (tests/guests/hostile), under QEMU with TCG unless it says otherwise; the tap
//! tests need root and skip without it.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const RUNNER: &str = env!("CARGO_BIN_EXE_runner");

fn hostile() -> &'static Path {
    static IMAGE: OnceLock<PathBuf> = OnceLock::new();
    IMAGE.get_or_init(|| {
        runner::build::CargoBuild {
            manifest_path: Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/guests/hostile/Cargo.toml"),
            package: None,
            release: true,
            quiet: true,
        }
        .run()
        .expect("the hostile guest builds")
    })
}

fn kvm_usable() -> bool {
    match runner::qemu::probe_dev_kvm() {
        Ok(()) => true,
        Err(reason) => {
            eprintln!("skipped: /dev/kvm is not usable here ({reason})");
            false
        }
    }
}

fn is_root() -> bool {
    if rustix::process::geteuid().is_root() {
        true
    } else {
        eprintln!("skipped: the tap tests need root");
        false
    }
}

/// `cargo uk boot <options> <hostile> <args>` with stdout and stderr piped.
fn spawn(options: &[&str], args: &[&str]) -> Child {
    Command::new(RUNNER)
        .arg("boot")
        .args(options)
        .arg(hostile())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the runner starts")
}

/// A runner child that is killed if the test fails half-way.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits for `child` at most `timeout`; its exit code (`None`: killed by a signal).
fn wait(child: &mut Child, timeout: Duration) -> Option<i32> {
    wait_status(child, timeout).code()
}

/// Waits for `child` at most `timeout`; how it ended.
fn wait_status(child: &mut Child, timeout: Duration) -> ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "the runner did not end in {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Reads the child's stdout until a line contains `needle` (at most `timeout`).
fn wait_for_line(child: &mut Child, needle: &str, timeout: Duration) {
    let stdout = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = std::sync::mpsc::channel();
    let needle = needle.to_string();
    std::thread::spawn(move || {
        let mut found = false;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if !found && line.contains(&needle) {
                found = true;
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(timeout)
        .unwrap_or_else(|_| panic!("the guest did not print its line within {timeout:?}"));
}

/// A field of /proc/<pid>/status in KiB.
fn status_kib(pid: u32, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines().find_map(|line| {
        line.strip_prefix(key)?
            .strip_prefix(':')?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    })
}

/// The processes whose parent is `parent`.
fn children_of(parent: u32) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|ppid| ppid.parse::<u32>().ok());
        if ppid == Some(parent) {
            pids.push(pid);
        }
    }
    pids
}

/// Whether process `pid` is gone (or a zombie nobody reaped).
fn is_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

fn wait_gone(pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if is_gone(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    is_gone(pid)
}

/// The runner's temporary files of process `pid` (cargo-uk-<pid>-<start>-*).
fn temp_files_of(pid: u32) -> Vec<PathBuf> {
    let prefix = format!("{}{pid}-", runner::cleanup::TEMP_PREFIX);
    std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().starts_with(&prefix))
        .map(|entry| entry.path())
        .collect()
}

/// The network namespaces of process `pid` (uk-<pid>-<start>).
fn netns_of(pid: u32) -> Vec<String> {
    let prefix = format!("{}{pid}-", runner::cleanup::NETNS_PREFIX);
    std::fs::read_dir("/run/netns")
        .map(|entries| {
            entries
                .flatten()
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .filter(|name| name.starts_with(&prefix))
                .collect()
        })
        .unwrap_or_default()
}

/// Runs the flood and returns the runner's peak RSS (VmHWM) in KiB and its exit code.
fn peak_rss_under_flood(options: &[&str], mib: u32, timeout: Duration) -> (u64, Option<i32>) {
    let mut runner = Running(spawn(options, &["flood", &mib.to_string()]));
    let pid = runner.0.id();
    // Take the output as fast as it comes, as a terminal would.
    let mut stdout = runner.0.stdout.take().unwrap();
    let drain = std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        let mut total = 0u64;
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            total += n as u64;
        }
        total
    });
    let deadline = Instant::now() + timeout;
    let mut peak = 0;
    let code = loop {
        if let Some(kib) = status_kib(pid, "VmHWM") {
            peak = peak.max(kib);
        }
        if let Some(status) = runner.0.try_wait().unwrap() {
            break status.code();
        }
        assert!(
            Instant::now() < deadline,
            "the flood did not end in {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let echoed = drain.join().unwrap();
    assert!(
        echoed >= u64::from(mib) << 20,
        "the output streamed through: {echoed} bytes"
    );
    (peak, code)
}

/// Point 5 of issue 10 on the monitor: 512 MiB of output; the runner keeps a tail.
#[test]
fn a_flood_on_the_monitor_does_not_grow_the_runner() {
    if !kvm_usable() {
        return;
    }
    let (peak_kib, code) = peak_rss_under_flood(
        &["--vmm", "monitor", "--timeout", "120"],
        512,
        Duration::from_secs(150),
    );
    eprintln!("monitor, 512 MiB of output: the runner's VmHWM was {peak_kib} KiB");
    assert_eq!(code, Some(0));
    assert!(peak_kib < 64 * 1024, "the runner grew to {peak_kib} KiB");
}

/// The same under QEMU (TCG prints about 1 MiB/s through the emulated UART, so less).
#[test]
fn a_flood_under_qemu_does_not_grow_the_runner() {
    let (peak_kib, code) = peak_rss_under_flood(
        &["--accel", "tcg", "--timeout", "150"],
        16,
        Duration::from_secs(180),
    );
    eprintln!("QEMU, 16 MiB of output: the runner's VmHWM was {peak_kib} KiB");
    assert_eq!(code, Some(0));
    assert!(peak_kib < 16 * 1024, "the runner grew to {peak_kib} KiB");
}

/// Point 5 in `density`: VMs that print 64 MiB each before they idle cost their worker
/// no more memory than quiet ones (a VM's output is kept up to 4 KiB); with `--isolate`
/// each VM has a worker of its own.
#[test]
fn chatty_vms_in_density_cost_their_worker_no_memory() {
    if !kvm_usable() {
        return;
    }
    for isolate in [false, true] {
        let options = runner::density::DensityOptions {
            max: 2,
            processes: Some(1),
            isolate,
            hold: Duration::from_millis(300),
            time_limit: Duration::from_secs(90),
            image: hostile().display().to_string(),
            worker_exe: Some(RUNNER.into()),
            quiet: true,
            ..Default::default()
        };
        let start = Instant::now();
        let report = runner::density::run(&options).expect("density runs");
        eprintln!(
            "density, 2 VMs of 64 MiB output each (isolate {isolate}): {:.0} KiB of worker PSS per VM, {:?}",
            report.total_pss_per_vm_kib,
            start.elapsed()
        );
        assert_eq!(report.held, 2, "{report:?}");
        assert!(report.failures.is_empty(), "{report:?}");
        assert!(
            report.total_pss_per_vm_kib < 16.0 * 1024.0,
            "a chatty VM grew its worker: {report:?}"
        );
    }
}

/// Point 9: `cargo uk boot ... | head -c 10` ends the runner quietly, with 141.
#[test]
fn a_closed_stdout_ends_the_runner_quietly() {
    let mut vmms: Vec<&[&str]> = vec![&["--accel", "tcg", "--timeout", "60"]];
    if kvm_usable() {
        vmms.push(&["--vmm", "monitor", "--timeout", "60"]);
    }
    for options in vmms {
        let mut runner = Running(spawn(options, &["flood", "64"]));
        let mut stdout = runner.0.stdout.take().unwrap();
        let mut first = [0u8; 10];
        stdout.read_exact(&mut first).unwrap();
        drop(stdout);
        let status = wait_status(&mut runner.0, Duration::from_secs(60));
        let mut stderr = String::new();
        runner
            .0
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        assert_eq!(
            status.code(),
            Some(141),
            "{options:?}: killed by signal {:?}; {stderr}",
            status.signal()
        );
        assert!(!stderr.contains("panic"), "{options:?}: {stderr}");
        assert!(temp_files_of(runner.0.id()).is_empty());
    }
}

/// Point 6: SIGTERM (and SIGINT) stop QEMU and remove the temporary image copy; the
/// runner exits with 128 + the signal.
#[test]
fn a_signal_stops_qemu_and_leaves_no_file() {
    for (signal, name) in [(15, "TERM"), (2, "INT")] {
        let mut runner = Running(spawn(&["--accel", "tcg", "--timeout", "120"], &["halt"]));
        let pid = runner.0.id();
        wait_for_line(&mut runner.0, "halting", Duration::from_secs(60));
        let qemu = children_of(pid);
        assert_eq!(qemu.len(), 1, "one QEMU: {qemu:?}");
        assert_eq!(
            temp_files_of(pid).len(),
            1,
            "the masked image copy exists while it runs"
        );
        kill(pid, name);
        let code = wait(&mut runner.0, Duration::from_secs(10));
        assert_eq!(code, Some(128 + signal), "SIG{name}");
        assert!(
            wait_gone(qemu[0], Duration::from_secs(5)),
            "QEMU outlived SIG{name}"
        );
        assert!(temp_files_of(pid).is_empty(), "{:?}", temp_files_of(pid));
    }
}

/// Point 6: after a SIGKILL the kernel kills QEMU (its parent-death signal) and the next
/// `cargo uk clean` removes the temporary file.
#[test]
fn after_a_sigkill_no_qemu_is_left_and_clean_removes_the_file() {
    let mut runner = Running(spawn(&["--accel", "tcg", "--timeout", "120"], &["halt"]));
    let pid = runner.0.id();
    wait_for_line(&mut runner.0, "halting", Duration::from_secs(60));
    let qemu = children_of(pid);
    assert_eq!(qemu.len(), 1, "one QEMU: {qemu:?}");
    kill(pid, "KILL");
    assert_eq!(wait(&mut runner.0, Duration::from_secs(10)), None);
    assert!(
        wait_gone(qemu[0], Duration::from_secs(5)),
        "QEMU outlived the runner"
    );
    let left = temp_files_of(pid);
    assert_eq!(left.len(), 1, "a SIGKILL cannot clean up: {left:?}");
    let clean = Command::new(RUNNER).arg("clean").output().unwrap();
    assert!(clean.status.success());
    assert!(
        String::from_utf8_lossy(&clean.stdout).contains(&left[0].display().to_string()),
        "{}",
        String::from_utf8_lossy(&clean.stdout)
    );
    assert!(temp_files_of(pid).is_empty());
}

/// Point 6 with `--tap`: SIGTERM deletes the namespace; after SIGKILL `clean` does.
#[test]
fn the_tap_namespace_goes_with_the_runner() {
    if !is_root() {
        return;
    }
    let mut runner = Running(spawn(
        &["--tap", "--accel", "tcg", "--timeout", "120"],
        &["halt"],
    ));
    let pid = runner.0.id();
    wait_for_line(&mut runner.0, "halting", Duration::from_secs(60));
    assert_eq!(netns_of(pid).len(), 1, "the namespace exists while it runs");
    kill(pid, "TERM");
    assert_eq!(wait(&mut runner.0, Duration::from_secs(10)), Some(143));
    assert!(netns_of(pid).is_empty(), "{:?}", netns_of(pid));

    let mut runner = Running(spawn(
        &["--tap", "--accel", "tcg", "--timeout", "120"],
        &["halt"],
    ));
    let pid = runner.0.id();
    wait_for_line(&mut runner.0, "halting", Duration::from_secs(60));
    let qemu = children_of(pid);
    kill(pid, "KILL");
    assert_eq!(wait(&mut runner.0, Duration::from_secs(10)), None);
    assert!(
        qemu.iter()
            .all(|&pid| wait_gone(pid, Duration::from_secs(5)))
    );
    assert_eq!(netns_of(pid).len(), 1, "a SIGKILL cannot clean up");
    let clean = Command::new(RUNNER).arg("clean").output().unwrap();
    assert!(clean.status.success());
    assert!(netns_of(pid).is_empty(), "{:?}", netns_of(pid));
}

/// Point 8: a guest reset on a tap is a reset (125), as without `--tap`.
#[test]
fn a_reset_on_a_tap_is_a_reset() {
    if !is_root() {
        return;
    }
    for options in [
        &["--tap", "--accel", "tcg", "--timeout", "60"][..],
        &["--no-net", "--accel", "tcg", "--timeout", "60"][..],
    ] {
        let mut runner = Running(spawn(options, &["reset"]));
        let code = wait(&mut runner.0, Duration::from_secs(90));
        let mut stderr = String::new();
        runner
            .0
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        assert_eq!(code, Some(125), "{options:?}: {stderr}");
        assert!(stderr.contains("the guest reset"), "{options:?}: {stderr}");
    }
}

fn kill(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}
