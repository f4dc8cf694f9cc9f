//! `cargo uk bench`: boot figures of the floor kernel and of the `empty` and `hello` examples,
//! measured in one run and given as ratios to the floor.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::boot::Boot;
use crate::error::Result;
use crate::qemu::{AccelRequest, Machine};
use crate::timeline;

/// Options of `cargo uk bench`.
#[derive(Debug, Clone)]
pub(crate) struct BenchOptions {
    /// Boots per image (default 20).
    pub runs: usize,
    /// The floor kernel (default [`crate::build::floor_path`]: examples/floor, built).
    pub floor: Option<PathBuf>,
    /// Guest memory for every image, MiB (default 32: hello's heap needs more than 8).
    pub memory_mib: u32,
    /// The examples to compare with the floor.
    pub examples: Vec<String>,
    pub quiet: bool,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            runs: 20,
            floor: None,
            memory_mib: 32,
            examples: vec!["empty".into(), "hello".into()],
            quiet: false,
        }
    }
}

/// QEMU's `-icount` setting for the deterministic figure: each guest instruction advances
/// the virtual clock, and so the TSC the guest stamps its timeline with, by 2^0 ns.
const ICOUNT: &str = "shift=0";

/// Median, minimum and 90th percentile of a sample, in ms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Stats {
    pub median_ms: f64,
    pub min_ms: f64,
    pub p90_ms: f64,
}

/// The statistics of `samples` (ms); `None` when empty.
pub(crate) fn stats(samples: &[f64]) -> Option<Stats> {
    if samples.is_empty() {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let median = if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    };
    // Nearest rank.
    let p90 = sorted[((0.9 * n as f64).ceil() as usize).clamp(1, n) - 1];
    Some(Stats {
        median_ms: median,
        min_ms: sorted[0],
        p90_ms: p90,
    })
}

/// The order of the images in round `round`: forwards, then backwards, alternately, so that
/// no image always follows the same one.
pub(crate) fn round_order(images: usize, round: usize) -> Vec<usize> {
    if round.is_multiple_of(2) {
        (0..images).collect()
    } else {
        (0..images).rev().collect()
    }
}

/// The size of `elf` after `objcopy --strip-all` (or `strip`), in bytes; the error says why
/// it could not be measured.
pub(crate) fn stripped_size(elf: &Path) -> Result<u64, String> {
    // Removed when dropped, and by `cleanup` after a crash.
    let copy = crate::cleanup::temp_file(".stripped")
        .map_err(|err| format!("cannot create a temporary file: {err}"))?
        .into_temp_path();
    let mut tried = Vec::new();
    for tool in ["objcopy", "strip"] {
        let mut command = Command::new(tool);
        command.arg("--strip-all").arg(elf);
        if tool == "objcopy" {
            command.arg(&copy);
        } else {
            command.arg("-o").arg(&copy);
        }
        let status = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        tried.push(tool);
        if status.is_ok_and(|status| status.success()) {
            return std::fs::metadata(&copy)
                .map(|meta| meta.len())
                .map_err(|err| err.to_string());
        }
    }
    Err(format!("{} unavailable or failed", tried.join(" and ")))
}

struct Image {
    name: String,
    path: Result<PathBuf, String>,
    samples: Vec<f64>,
    failure: Option<String>,
}

/// Runs the benchmark and prints its table; returns the text it printed.
pub(crate) fn run(options: &BenchOptions) -> Result<String> {
    let floor = match &options.floor {
        Some(path) => path.clone(),
        None => crate::build::floor_path(true)?,
    };
    unikernel_vmm::elf::validate(&floor)?;
    let mut images = vec![Image {
        name: "floor".into(),
        path: Ok(floor.clone()),
        samples: Vec::new(),
        failure: None,
    }];
    for name in &options.examples {
        if !options.quiet {
            eprintln!("cargo uk: building example `{name}` (release)");
        }
        images.push(Image {
            name: name.clone(),
            path: crate::build::build_example_with(name, true).map_err(|err| err.to_string()),
            samples: Vec::new(),
            failure: None,
        });
    }
    let boot = |path: &Path| {
        Boot::new(path)
            .accel(AccelRequest::Tcg)
            .machine(Machine::Microvm)
            .memory(options.memory_mib)
            .timeout(Duration::from_secs(30))
    };
    let check = |outcome: &crate::BootOutcome| -> Result<(), String> {
        match outcome.status {
            Some(0) => Ok(()),
            _ => Err(outcome
                .summary()
                .unwrap_or_else(|| "it did not exit with status 0".into())),
        }
    };

    if !options.quiet {
        eprintln!(
            "cargo uk: booting {} image(s) {} times each under microvm + TCG",
            images.iter().filter(|i| i.path.is_ok()).count(),
            options.runs
        );
    }
    // One boot each first, untimed, so that no image pays for a cold page cache.
    for image in &mut images {
        if let Ok(path) = &image.path {
            match boot(path).run() {
                Ok(outcome) => image.failure = check(&outcome).err(),
                Err(err) => image.failure = Some(err.to_string()),
            }
        }
    }
    for round in 0..options.runs {
        for index in round_order(images.len(), round) {
            let image = &mut images[index];
            let (Ok(path), None) = (&image.path, &image.failure) else {
                continue;
            };
            match boot(path).run() {
                Ok(outcome) => match check(&outcome) {
                    Ok(()) => image.samples.push(outcome.wall.as_secs_f64() * 1e3),
                    Err(reason) => image.failure = Some(reason),
                },
                Err(err) => image.failure = Some(err.to_string()),
            }
        }
    }

    // PVH entry -> main, from one timeline boot of each example.
    let tsc_hz = timeline::measure_tsc_hz();
    let entry_to_main: Vec<Option<String>> = images
        .iter()
        .map(|image| {
            if image.name == "floor" || image.failure.is_some() {
                return None;
            }
            let hz = tsc_hz?;
            let path = image.path.as_ref().ok()?;
            let outcome = boot(path).timeline(true).run().ok()?;
            Some(match timeline::entry_to_main_us(&outcome.timeline, hz) {
                Some(us) => format!("{us:.0} us"),
                None => "no stamps".into(),
            })
        })
        .collect();

    // The deterministic figure: guest instructions per boot stage, under -icount shift=0.
    let instructions: Vec<String> = images
        .iter()
        .filter(|image| image.failure.is_none())
        .filter_map(|image| {
            let path = image.path.as_ref().ok()?;
            let outcome = boot(path)
                .timeline(true)
                .qemu_arg("-icount")
                .qemu_arg(ICOUNT)
                .run();
            let line = match outcome {
                Ok(outcome) => timeline::instructions_line(&outcome.timeline)
                    .unwrap_or_else(|| "no boot timeline".into()),
                Err(err) => format!("failed: {err}"),
            };
            Some(format!("{}: {line}", image.name))
        })
        .collect();

    let mut out = String::new();
    let _ = writeln!(
        out,
        "boot benchmark: {} boots per image, order alternating; microvm + TCG (-cpu max), -m {}; wall time from starting QEMU to its exit",
        options.runs, options.memory_mib
    );
    let floor_median = stats(&images[0].samples).map(|s| s.median_ms);
    let _ = writeln!(
        out,
        "{:<8} {:>12} {:>10} {:>10} {:>10} {:>9} {:>12}",
        "image", "stripped", "median", "min", "p90", "vs floor", "entry->main"
    );
    for (image, entry) in images.iter().zip(&entry_to_main) {
        let size = match &image.path {
            Ok(path) => match stripped_size(path) {
                Ok(bytes) => format!("{:.1} KiB", bytes as f64 / 1024.0),
                Err(_) => "n/a".into(),
            },
            Err(_) => "-".into(),
        };
        let entry = entry.clone().unwrap_or_else(|| "-".into());
        match (&image.path, &image.failure, stats(&image.samples)) {
            (Err(reason), _, _) => {
                let _ = writeln!(out, "{:<8} not built: {reason}", image.name);
            }
            (_, Some(reason), _) => {
                let _ = writeln!(out, "{:<8} {size:>12} failed: {reason}", image.name);
            }
            (_, None, Some(s)) => {
                let ratio = floor_median
                    .map(|floor| format!("{:.2}x", s.median_ms / floor))
                    .unwrap_or_else(|| "-".into());
                let _ = writeln!(
                    out,
                    "{:<8} {size:>12} {:>7.1} ms {:>7.1} ms {:>7.1} ms {ratio:>9} {entry:>12}",
                    image.name, s.median_ms, s.min_ms, s.p90_ms
                );
            }
            (_, None, None) => {
                let _ = writeln!(out, "{:<8} {size:>12} no boots", image.name);
            }
        }
    }
    if let Some(floor) = floor_median {
        let _ = writeln!(out, "floor: {:.1} boots/s (1000 / median)", 1000.0 / floor);
    }
    if stripped_size(&floor).is_err() {
        let _ = writeln!(
            out,
            "stripped sizes: objcopy and strip are unavailable (apt-get install -y binutils)"
        );
    }
    if tsc_hz.is_none() {
        let _ = writeln!(out, "entry->main: no TSC on this host");
    }
    let _ = writeln!(
        out,
        "guest instructions per boot stage (TCG, -icount {ICOUNT}: one instruction is one ns of guest time; the same on every run):"
    );
    for line in &instructions {
        let _ = writeln!(out, "  {line}");
    }

    // One boot under KVM, forced.
    let kvm_image = images
        .iter()
        .rev()
        .find(|image| image.path.is_ok())
        .expect("the floor is always there");
    let kvm_line = match boot(kvm_image.path.as_ref().expect("checked"))
        .accel(AccelRequest::Kvm)
        .timeout(Duration::from_secs(60))
        .run()
    {
        Ok(outcome) if outcome.status == Some(0) => {
            format!("yes, {:.0} ms", outcome.wall.as_secs_f64() * 1e3)
        }
        Ok(outcome) => format!(
            "no ({})",
            outcome.summary().unwrap_or_else(|| "no status".into())
        ),
        Err(err) => format!("no ({err})"),
    };
    let _ = writeln!(
        out,
        "{} boots under KVM (forced, -cpu host,-arch-capabilities): {kvm_line}",
        kvm_image.name
    );
    print!("{out}");
    Ok(out)
}

/// Which VMMs `cargo uk bench --vmm` compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PairedVmms {
    /// The monitor only.
    Monitor,
    /// The monitor and QEMU microvm + KVM, boot for boot.
    Both,
}

/// Options of the paired benchmark (`cargo uk bench --vmm monitor|both`).
#[derive(Debug, Clone)]
pub(crate) struct PairedOptions {
    pub runs: usize,
    pub floor: Option<PathBuf>,
    pub memory_mib: u32,
    pub examples: Vec<String>,
    pub vmms: PairedVmms,
    /// The runner binary that runs `boot --vmm monitor` (default: this executable).
    pub runner_exe: Option<PathBuf>,
    pub quiet: bool,
}

impl Default for PairedOptions {
    fn default() -> Self {
        let base = BenchOptions::default();
        PairedOptions {
            runs: base.runs,
            floor: base.floor,
            memory_mib: base.memory_mib,
            examples: base.examples,
            vmms: PairedVmms::Both,
            runner_exe: None,
            quiet: false,
        }
    }
}

/// One measured process: wall time from spawn to reaped, its exit status, its peak RSS.
#[derive(Debug, Clone)]
pub(crate) struct Measured {
    pub wall: Duration,
    pub code: Option<i32>,
    pub max_rss_kib: u64,
    pub stderr: String,
}

/// Spawns `command` (stdout discarded, stderr captured) and reaps it with wait4, for its
/// peak RSS.
pub(crate) fn measure(command: &mut Command) -> Result<Measured> {
    use std::io::Read;
    let start = std::time::Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| crate::Error::new(format!("cannot start {command:?}: {err}")))?;
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = pipe.read_to_string(&mut stderr);
    }
    // wait4 reaps the child with its resource usage (std's wait discards it).
    let reaped = wait4::Wait4::wait4(&mut child)
        .map_err(|err| crate::Error::new(format!("waiting for {command:?} failed: {err}")))?;
    let wall = start.elapsed();
    Ok(Measured {
        wall,
        code: reaped.status.code(),
        max_rss_kib: reaped.rusage.maxrss / 1024,
        stderr,
    })
}

#[derive(Default)]
struct Side {
    walls: Vec<f64>,
    rss: Vec<f64>,
    guest: Vec<f64>,
    setup: Vec<f64>,
    teardown: Vec<f64>,
    failure: Option<String>,
}

/// Boot-to-exit of the floor kernel and the examples on the monitor and on QEMU microvm
/// with KVM, alternating boot for boot in one run, each as a process measured from spawn
/// to exit. Prints the table and returns it.
pub(crate) fn run_paired(options: &PairedOptions) -> Result<String> {
    let runner = match &options.runner_exe {
        Some(exe) => exe.clone(),
        None => std::env::current_exe()
            .map_err(|err| crate::Error::new(format!("cannot find the runner: {err}")))?,
    };
    let qemu = crate::setup::qemu_path();
    let both = options.vmms == PairedVmms::Both;
    if both && qemu.is_none() {
        return Err(crate::setup::qemu_missing());
    }
    unikernel_vmm::open_kvm()?;
    let floor = match &options.floor {
        Some(path) => path.clone(),
        None => crate::build::floor_path(true)?,
    };
    let mut images: Vec<(String, PathBuf)> = vec![("floor".into(), floor)];
    for name in &options.examples {
        if !options.quiet {
            eprintln!("cargo uk: building example `{name}` (release)");
        }
        images.push((name.clone(), crate::build::build_example_with(name, true)?));
    }
    // QEMU boots a copy with the multiboot magic masked, as `cargo uk boot` does (PVH);
    // temporary files, removed however this ends (see `cleanup`).
    let mut qemu_kernels = Vec::new();
    for (_, path) in &images {
        let info = unikernel_vmm::elf::validate(path)?;
        qemu_kernels.push(match info.multiboot_header {
            Some(at) => Some(crate::boot::MaskedCopy::new(path, at)?),
            None => None,
        });
    }
    let qemu_kernel = |index: usize| -> PathBuf {
        qemu_kernels[index]
            .as_ref()
            .map_or_else(|| images[index].1.clone(), |copy| copy.path.clone())
    };
    let stats_temp = crate::cleanup::temp_file(".stats.json")
        .map_err(|err| crate::Error::new(format!("cannot create a temporary file: {err}")))?
        .into_temp_path();
    let stats_file = stats_temp.to_path_buf();
    let monitor_command = |path: &Path| {
        let mut command = Command::new(&runner);
        command
            .args(["boot", "--vmm", "monitor", "--quiet", "--stats-json"])
            .arg(&stats_file)
            .arg("--memory")
            .arg(options.memory_mib.to_string())
            .arg(path);
        command
    };
    // The stats the monitor process wrote, typed.
    let read_stats = || -> Option<unikernel_vmm::Stats> {
        let json = std::fs::read(&stats_file).ok()?;
        let _ = std::fs::remove_file(&stats_file);
        serde_json::from_slice(&json).ok()
    };
    let qemu_command = |path: &Path| {
        let mut config = crate::qemu::QemuConfig::new(path, crate::qemu::Accel::Kvm);
        config.memory_mib = options.memory_mib;
        config.cmdline = crate::qemu::kernel_cmdline(&[], false);
        let mut command = Command::new(qemu.clone().unwrap_or_default());
        command.args(config.args());
        command
    };
    let mut monitor: Vec<Side> = images.iter().map(|_| Side::default()).collect();
    let mut qemu_side: Vec<Side> = images.iter().map(|_| Side::default()).collect();
    if !options.quiet {
        eprintln!(
            "cargo uk: {} boots of each image on the monitor{}",
            options.runs,
            if both {
                " and on QEMU microvm + KVM, alternating"
            } else {
                ""
            }
        );
    }
    // One untimed boot of each first, for the page cache.
    for round in 0..=options.runs {
        for index in round_order(images.len(), round) {
            let timed = round > 0;
            let side = &mut monitor[index];
            if side.failure.is_none() {
                let m = measure(&mut monitor_command(&images[index].1))?;
                match (m.code, read_stats()) {
                    (Some(0), Some(stats)) => {
                        if timed {
                            let ms = |d: Duration| d.as_secs_f64() * 1e3;
                            side.walls.push(ms(m.wall));
                            side.rss.push(m.max_rss_kib as f64);
                            side.setup.push(ms(stats.setup));
                            side.guest.push(ms(stats.guest));
                            side.teardown.push(ms(stats.teardown));
                        }
                    }
                    _ => {
                        side.failure =
                            Some(format!("exit status {:?}: {}", m.code, m.stderr.trim()))
                    }
                }
            }
            if !both {
                continue;
            }
            let side = &mut qemu_side[index];
            if side.failure.is_none() {
                let m = measure(&mut qemu_command(&qemu_kernel(index)))?;
                // isa-debug-exit: status 0 is exit code 1.
                if m.code == Some(1) {
                    if timed {
                        side.walls.push(m.wall.as_secs_f64() * 1e3);
                        side.rss.push(m.max_rss_kib as f64);
                    }
                } else {
                    side.failure = Some(format!("exit status {:?}: {}", m.code, m.stderr.trim()));
                }
            }
        }
    }
    drop(qemu_kernels);
    drop(stats_temp);

    let median = |samples: &[f64]| stats(samples).map(|s| s.median_ms);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "paired boot benchmark: {} boots per image and VMM, alternating; -m {} MiB; wall time from spawning the process to reaping it (`cargo uk boot --vmm monitor` vs `{} -M microvm -enable-kvm`); peak RSS from wait4",
        options.runs,
        options.memory_mib,
        crate::qemu::QEMU
    );
    let _ = writeln!(
        out,
        "{:<7} {:>22} {:>22} {:>8} {:>30} {:>16}",
        "image",
        "monitor med/min/p90",
        "QEMU+KVM med/min/p90",
        "speedup",
        "monitor setup/guest/teardown",
        "peak RSS mon/QEMU"
    );
    for (index, (name, _)) in images.iter().enumerate() {
        let m = &monitor[index];
        let q = &qemu_side[index];
        let cell = |side: &Side| match (&side.failure, stats(&side.walls)) {
            (Some(_), _) => "failed".to_string(),
            (None, Some(s)) => format!("{:.1}/{:.1}/{:.1} ms", s.median_ms, s.min_ms, s.p90_ms),
            (None, None) => "-".to_string(),
        };
        let speedup = match (median(&m.walls), median(&q.walls)) {
            (Some(mon), Some(qemu)) if mon > 0.0 => format!("{:.1}x", qemu / mon),
            _ => "-".into(),
        };
        let parts = match (median(&m.setup), median(&m.guest), median(&m.teardown)) {
            (Some(s), Some(g), Some(t)) => format!("{s:.2}/{g:.2}/{t:.2} ms"),
            _ => "-".into(),
        };
        let rss = |side: &Side| {
            median(&side.rss)
                .map(|kib| format!("{:.1}", kib / 1024.0))
                .unwrap_or_else(|| "-".into())
        };
        let _ = writeln!(
            out,
            "{name:<7} {:>22} {:>22} {speedup:>8} {parts:>30} {:>11}/{} MiB",
            cell(m),
            cell(q),
            rss(m),
            rss(q)
        );
        for (vmm, side) in [("monitor", m), ("QEMU", q)] {
            if let Some(failure) = &side.failure {
                let _ = writeln!(out, "  {name} on {vmm} failed: {failure}");
            }
        }
    }
    // What a process costs before any VM: the same binary printing its help.
    let mut baseline = Vec::new();
    for _ in 0..options.runs.min(20) {
        let mut command = Command::new(&runner);
        command.arg("help");
        baseline.push(measure(&mut command)?.wall.as_secs_f64() * 1e3);
    }
    if let Some(base) = stats(&baseline) {
        let _ = writeln!(
            out,
            "process baseline: `cargo uk help` takes {:.1} ms (median) from spawn to reaped; guest = first KVM_RUN to the exit port, i.e. the guest's own instructions and its exits",
            base.median_ms
        );
    }
    print!("{out}");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use crate::bench::{round_order, stats};

    #[test]
    fn statistics() {
        assert_eq!(stats(&[]), None);
        let s = stats(&[5.0, 1.0, 3.0]).unwrap();
        assert_eq!((s.median_ms, s.min_ms, s.p90_ms), (3.0, 1.0, 5.0));
        let ten: Vec<f64> = (1..=10).map(f64::from).collect();
        let s = stats(&ten).unwrap();
        assert_eq!((s.median_ms, s.min_ms, s.p90_ms), (5.5, 1.0, 9.0));
    }

    #[test]
    fn alternating_order() {
        assert_eq!(round_order(3, 0), vec![0, 1, 2]);
        assert_eq!(round_order(3, 1), vec![2, 1, 0]);
        assert_eq!(round_order(3, 2), vec![0, 1, 2]);
    }
}
