//! `runner bench`: boot figures of the floor kernel and of the `empty` and `hello` examples,
//! measured in one run and given as ratios to the floor.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::boot::Boot;
use crate::error::Result;
use crate::qemu::{AccelRequest, Machine};
use crate::timeline;

/// Options of `runner bench`.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Boots per image (default 20).
    pub runs: usize,
    /// The floor kernel (default [`crate::build::floor_elf`]).
    pub floor: PathBuf,
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
            floor: crate::build::floor_elf(),
            memory_mib: 32,
            examples: vec!["empty".into(), "hello".into()],
            quiet: false,
        }
    }
}

/// Median, minimum and 90th percentile of a sample, in ms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    pub median_ms: f64,
    pub min_ms: f64,
    pub p90_ms: f64,
}

/// The statistics of `samples` (ms); `None` when empty.
pub fn stats(samples: &[f64]) -> Option<Stats> {
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
pub fn round_order(images: usize, round: usize) -> Vec<usize> {
    if round.is_multiple_of(2) {
        (0..images).collect()
    } else {
        (0..images).rev().collect()
    }
}

/// The size of `elf` after `objcopy --strip-all` (or `strip`), in bytes; the error says why
/// it could not be measured.
pub fn stripped_size(elf: &Path) -> Result<u64, String> {
    let copy = std::env::temp_dir().join(format!(
        "runner-strip-{}-{}",
        std::process::id(),
        elf.file_name().and_then(|n| n.to_str()).unwrap_or("image")
    ));
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
            let size = std::fs::metadata(&copy).map(|meta| meta.len());
            let _ = std::fs::remove_file(&copy);
            return size.map_err(|err| err.to_string());
        }
    }
    let _ = std::fs::remove_file(&copy);
    Err(format!("{} unavailable or failed", tried.join(" and ")))
}

struct Image {
    name: String,
    path: Result<PathBuf, String>,
    samples: Vec<f64>,
    failure: Option<String>,
}

/// Runs the benchmark and prints its table; returns the text it printed.
pub fn run(options: &BenchOptions) -> Result<String> {
    crate::elf::validate(&options.floor)?;
    let mut images = vec![Image {
        name: "floor".into(),
        path: Ok(options.floor.clone()),
        samples: Vec::new(),
        failure: None,
    }];
    for name in &options.examples {
        if !options.quiet {
            eprintln!("runner: building example `{name}` (release)");
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
            "runner: booting {} image(s) {} times each under microvm + TCG",
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
    if stripped_size(&options.floor).is_err() {
        let _ = writeln!(
            out,
            "stripped sizes: objcopy and strip are unavailable (apt-get install -y binutils)"
        );
    }
    if tsc_hz.is_none() {
        let _ = writeln!(out, "entry->main: no TSC on this host");
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
