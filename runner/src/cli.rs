//! The command line: `runner run | boot | test | new | setup | bench | help`.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::boot::Boot;
use crate::build::{self, CargoBuild};
use crate::error::{Error, Result};
use crate::monitor::Vmm;
use crate::qemu::{AccelRequest, Machine, Protocol};
use crate::setup::{self, Needs};
use crate::timeline;

/// The help text.
pub const HELP: &str = "\
runner: builds unikernel images and boots them in QEMU or on its own KVM monitor

USAGE:
    runner run <example | path/to/kernel.elf> [options] [-- kernel args]
    runner run --manifest-path <app/Cargo.toml> [-p <package>] [options] [-- kernel args]
    runner boot [options] <kernel.elf> [kernel args]
    runner test [-- cargo test args]
    runner new <path> [--name <crate>]
    runner bench [--runs N] [--floor <floor.elf>] [--vmm qemu|monitor|both]
    runner density [--max N] [--time-limit <secs>] [--hold <secs>] [--memory <MiB>]
                   [--processes N] [--parallel N] [--reserve <MiB>] [--image <example | elf>]
    runner setup

COMMANDS:
    run      build examples/<name> (release), or the app at --manifest-path, and boot it
    boot     boot a built ELF; every argument after the ELF goes to the kernel (this is
             what cargo's `runner` setting calls, with `cargo run -- <args>` after the ELF)
    test     setup, then `cargo test --workspace` in the repository
    new      create an app outside the repository; `cargo run` in it builds and boots
    bench    boot figures of the floor kernel and the empty and hello examples, as ratios;
             --vmm both: the monitor and QEMU microvm + KVM paired in one run
    density  start idle VMs on the monitor until --max, the time limit or host memory
             runs out; report how many it held, host memory per VM and boots per second
    setup    install the x86_64-unknown-none target and QEMU where missing

BOOT OPTIONS (run, boot):
    --vmm qemu|monitor     qemu: every machine and accelerator; monitor: the runner's own
                           KVM monitor (PVH images, needs /dev/kvm) [default: qemu]
    --accel auto|kvm|tcg   auto: KVM only where /dev/kvm works and the CPU shows vmx/svm,
                           else TCG (-cpu max) [default: auto]
    --machine microvm|pc|q35                          [default: microvm]
    --memory <MiB>                                    [default: 32]
    --timeout <secs>       stop a guest that has not exited by then [default: 30]
    --boot pvh|multiboot   the image's boot header QEMU uses [default: pvh]
    --timeline             ask the guest for its boot timeline and print it as a table
    --qemu-arg <arg>       pass an argument to QEMU (repeatable)
    --forward [tcp:|udp:]HOST:GUEST
                           user-mode network (QEMU's NAT; the guest is 10.0.2.15/24,
                           gateway 10.0.2.2) with 127.0.0.1:HOST forwarded to the guest's
                           port (repeatable) [default for an image that links `net`:
                           --forward 8080:80; an image without it gets no network]
    --tap                  (root) a tap device in a network namespace the runner creates
                           (uk-<pid>, host side 10.0.2.2/24) and deletes at exit; reach
                           the guest with `ip netns exec uk-<pid> curl http://10.0.2.15/`
    --no-net               no network device
    -q, --quiet            no progress messages, no cargo output
    -v, --verbose          print the QEMU command line
    --stats                (monitor) print setup, guest and teardown times and exit counts

EXIT STATUS:
    the guest's own (what main returned: 0 success; 101 panic, 102 CPU exception,
    103 boot error), 124 the guest did not exit in time, 125 the guest reset without
    reporting (a triple fault under the monitor), 126 QEMU failed or the monitor had to
    stop the guest, 1 the runner could not build or boot, 2 a usage error.
";

/// Runs the runner with `args` (without the program name); returns the exit status.
pub fn main(args: Vec<OsString>) -> i32 {
    let args: Result<Vec<String>> = args
        .into_iter()
        .map(|arg| {
            arg.into_string()
                .map_err(|arg| Error::new(format!("{} is not valid UTF-8", arg.to_string_lossy())))
        })
        .collect();
    let command = match args.and_then(|args| parse(&args)) {
        Ok(command) => command,
        Err(err) => {
            eprintln!("runner: {err}\n(see `runner help`)");
            return 2;
        }
    };
    match execute(command) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("runner: {err}");
            1
        }
    }
}

/// Options shared by `run` and `boot`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootOptions {
    pub accel: AccelRequest,
    pub machine: Machine,
    pub memory_mib: u32,
    pub timeout: Duration,
    pub timeline: bool,
    pub protocol: Protocol,
    pub qemu_args: Vec<String>,
    pub quiet: bool,
    pub verbose: bool,
    pub kernel_args: Vec<String>,
    pub vmm: Vmm,
    pub stats: bool,
    /// `--forward`, `--tap`, `--no-net`; `None`: as the image needs (see `net::plan`).
    pub network: Option<crate::net::NetChoice>,
}

impl Default for BootOptions {
    fn default() -> Self {
        BootOptions {
            accel: AccelRequest::Auto,
            machine: Machine::Microvm,
            memory_mib: 32,
            timeout: Duration::from_secs(30),
            timeline: false,
            protocol: Protocol::Pvh,
            qemu_args: Vec::new(),
            quiet: false,
            verbose: false,
            kernel_args: Vec::new(),
            vmm: Vmm::Qemu,
            stats: false,
            network: None,
        }
    }
}

/// What `runner run` boots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunTarget {
    /// `examples/<name>`.
    Example(String),
    /// A built ELF.
    Elf(PathBuf),
    /// An app's manifest, with `-p` if given.
    Manifest(PathBuf, Option<String>),
}

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cli {
    Run(RunTarget, BootOptions),
    Boot(PathBuf, BootOptions),
    Test(Vec<String>),
    New {
        path: PathBuf,
        name: Option<String>,
    },
    Bench {
        runs: usize,
        floor: Option<PathBuf>,
        quiet: bool,
    },
    Setup {
        quiet: bool,
    },
    Density(crate::density::DensityOptions),
    /// `bench --vmm monitor|both`: the monitor, or the monitor and QEMU + KVM, paired.
    BenchPaired {
        runs: usize,
        floor: Option<PathBuf>,
        vmms: crate::bench::PairedVmms,
        quiet: bool,
    },
    /// One worker process of `density` (not for people).
    DensityWorker(crate::density::WorkerOptions),
    Help,
}

/// Splits `--name=value` into its parts.
fn split_flag(arg: &str) -> (&str, Option<&str>) {
    match arg.split_once('=') {
        Some((flag, value)) if flag.starts_with("--") => (flag, Some(value)),
        _ => (arg, None),
    }
}

struct Args<'a> {
    items: &'a [String],
    pos: usize,
}

impl<'a> Args<'a> {
    fn next(&mut self) -> Option<&'a str> {
        let item = self.items.get(self.pos)?;
        self.pos += 1;
        Some(item)
    }

    fn rest(&mut self) -> Vec<String> {
        let rest = self.items[self.pos..].to_vec();
        self.pos = self.items.len();
        rest
    }

    fn value(&mut self, flag: &str, inline: Option<&'a str>) -> Result<&'a str> {
        inline
            .or_else(|| self.next())
            .ok_or_else(|| Error::new(format!("{flag} needs a value")))
    }
}

/// Takes one boot option; `Ok(false)` if `flag` is not one.
fn boot_option<'a>(
    opts: &mut BootOptions,
    flag: &str,
    inline: Option<&'a str>,
    args: &mut Args<'a>,
) -> Result<bool> {
    match flag {
        "--accel" => opts.accel = args.value(flag, inline)?.parse()?,
        "--machine" => opts.machine = args.value(flag, inline)?.parse()?,
        "--memory" => {
            let value = args.value(flag, inline)?;
            opts.memory_mib = value.parse().ok().filter(|&mib| mib >= 2).ok_or_else(|| {
                Error::new(format!(
                    "--memory {value}: expected a size in MiB (at least 2)"
                ))
            })?;
        }
        "--timeout" => {
            let value = args.value(flag, inline)?;
            let secs: f64 = value
                .parse()
                .ok()
                .filter(|secs: &f64| secs.is_finite() && *secs > 0.0)
                .ok_or_else(|| {
                    Error::new(format!("--timeout {value}: expected a number of seconds"))
                })?;
            opts.timeout = Duration::from_secs_f64(secs);
        }
        "--qemu-arg" => opts.qemu_args.push(args.value(flag, inline)?.to_string()),
        "--forward" => {
            let forward = args.value(flag, inline)?.parse()?;
            match &mut opts.network {
                Some(crate::net::NetChoice::Forward(forwards)) => forwards.push(forward),
                None => opts.network = Some(crate::net::NetChoice::Forward(vec![forward])),
                Some(_) => {
                    return Err(Error::new(
                        "--forward, --tap and --no-net exclude each other",
                    ));
                }
            }
        }
        "--tap" | "--no-net" if inline.is_some() => {
            return Err(Error::new(format!("{flag} takes no value")));
        }
        "--tap" | "--no-net" => {
            if opts.network.is_some() {
                return Err(Error::new(
                    "--forward, --tap and --no-net exclude each other",
                ));
            }
            opts.network = Some(if flag == "--tap" {
                crate::net::NetChoice::Tap
            } else {
                crate::net::NetChoice::Off
            });
        }
        "--boot" => opts.protocol = args.value(flag, inline)?.parse()?,
        "--vmm" => opts.vmm = args.value(flag, inline)?.parse()?,
        "--timeline" | "--quiet" | "-q" | "--verbose" | "-v" | "--stats" if inline.is_some() => {
            return Err(Error::new(format!("{flag} takes no value")));
        }
        "--timeline" => opts.timeline = true,
        "--quiet" | "-q" => opts.quiet = true,
        "--verbose" | "-v" => opts.verbose = true,
        "--stats" => opts.stats = true,
        _ => return Ok(false),
    }
    Ok(true)
}

/// Parses the arguments after the program name.
pub fn parse(items: &[String]) -> Result<Cli> {
    let mut args = Args { items, pos: 0 };
    let Some(command) = args.next() else {
        return Ok(Cli::Help);
    };
    match command {
        "help" | "--help" | "-h" => Ok(Cli::Help),
        "run" => {
            let mut opts = BootOptions::default();
            let mut target = None;
            let mut manifest = None;
            let mut package = None;
            while let Some(arg) = args.next() {
                if arg == "--" {
                    opts.kernel_args = args.rest();
                    break;
                }
                let (flag, inline) = split_flag(arg);
                if boot_option(&mut opts, flag, inline, &mut args)? {
                    continue;
                }
                match flag {
                    "--manifest-path" => manifest = Some(PathBuf::from(args.value(flag, inline)?)),
                    "-p" | "--package" => package = Some(args.value(flag, inline)?.to_string()),
                    _ if flag.starts_with('-') => {
                        return Err(Error::new(format!("runner run: unknown option {flag}")));
                    }
                    _ if target.is_some() => {
                        return Err(Error::new(format!(
                            "runner run: unexpected {arg}; kernel arguments go after `--`"
                        )));
                    }
                    _ => target = Some(arg.to_string()),
                }
            }
            let target = match (target, manifest) {
                (Some(_), Some(_)) => {
                    return Err(Error::new(
                        "runner run: give an example, an ELF or --manifest-path, not several",
                    ));
                }
                (None, Some(manifest)) => RunTarget::Manifest(manifest, package),
                (Some(_), None) if package.is_some() => {
                    return Err(Error::new("runner run: -p goes with --manifest-path"));
                }
                (Some(target), None) => classify_target(&target),
                (None, None) => {
                    return Err(Error::new(
                        "runner run: which example or ELF? (e.g. `runner run hello`)",
                    ));
                }
            };
            Ok(Cli::Run(target, opts))
        }
        "boot" => {
            let mut opts = BootOptions::default();
            while let Some(arg) = args.next() {
                let (flag, inline) = split_flag(arg);
                if boot_option(&mut opts, flag, inline, &mut args)? {
                    continue;
                }
                if flag.starts_with('-') {
                    return Err(Error::new(format!("runner boot: unknown option {flag}")));
                }
                let mut rest = args.rest();
                if rest.first().is_some_and(|first| first == "--") {
                    rest.remove(0);
                }
                opts.kernel_args = rest;
                return Ok(Cli::Boot(PathBuf::from(arg), opts));
            }
            Err(Error::new("runner boot: which ELF?"))
        }
        "test" => {
            let mut rest = args.rest();
            if rest.first().is_some_and(|first| first == "--") {
                rest.remove(0);
            }
            Ok(Cli::Test(rest))
        }
        "new" => {
            let mut path = None;
            let mut name = None;
            while let Some(arg) = args.next() {
                let (flag, inline) = split_flag(arg);
                match flag {
                    "--name" => name = Some(args.value(flag, inline)?.to_string()),
                    _ if flag.starts_with('-') => {
                        return Err(Error::new(format!("runner new: unknown option {flag}")));
                    }
                    _ if path.is_some() => {
                        return Err(Error::new(format!("runner new: unexpected {arg}")));
                    }
                    _ => path = Some(PathBuf::from(arg)),
                }
            }
            let path =
                path.ok_or_else(|| Error::new("runner new: where? (e.g. `runner new ../my-app`)"))?;
            Ok(Cli::New { path, name })
        }
        "bench" => {
            let mut runs = 20;
            let mut floor = None;
            let mut quiet = false;
            let mut vmms = None;
            while let Some(arg) = args.next() {
                let (flag, inline) = split_flag(arg);
                match flag {
                    "--runs" => {
                        let value = args.value(flag, inline)?;
                        runs = value.parse().ok().filter(|&runs| runs > 0).ok_or_else(|| {
                            Error::new(format!("--runs {value}: expected a positive number"))
                        })?;
                    }
                    "--floor" => floor = Some(PathBuf::from(args.value(flag, inline)?)),
                    "--quiet" | "-q" => quiet = true,
                    "--vmm" => {
                        vmms = match args.value(flag, inline)? {
                            "qemu" => None,
                            "monitor" => Some(crate::bench::PairedVmms::Monitor),
                            "both" => Some(crate::bench::PairedVmms::Both),
                            other => {
                                return Err(Error::new(format!(
                                    "--vmm {other}: expected qemu, monitor or both"
                                )));
                            }
                        }
                    }
                    _ => return Err(Error::new(format!("runner bench: unexpected {arg}"))),
                }
            }
            Ok(match vmms {
                None => Cli::Bench { runs, floor, quiet },
                Some(vmms) => Cli::BenchPaired {
                    runs,
                    floor,
                    vmms,
                    quiet,
                },
            })
        }
        "density-worker" => Ok(Cli::DensityWorker(crate::density::WorkerOptions::parse(
            &args.rest(),
        )?)),
        "density" => {
            let mut options = crate::density::DensityOptions::default();
            while let Some(arg) = args.next() {
                let (flag, inline) = split_flag(arg);
                let mut number = |what: &str| -> Result<f64> {
                    let value = args.value(flag, inline)?;
                    value
                        .parse::<f64>()
                        .ok()
                        .filter(|n| n.is_finite() && *n > 0.0)
                        .ok_or_else(|| Error::new(format!("{flag} {value}: expected {what}")))
                };
                match flag {
                    "--max" => options.max = number("a positive number of VMs")? as usize,
                    "--time-limit" => {
                        options.time_limit = Duration::from_secs_f64(number("a number of seconds")?)
                    }
                    "--hold" => {
                        options.hold = Duration::from_secs_f64(number("a number of seconds")?)
                    }
                    "--memory" => {
                        options.memory_mib = number("a size in MiB (at least 2)")?.max(2.0) as u32
                    }
                    "--parallel" => options.parallel = number("a positive number")? as usize,
                    "--processes" => options.processes = number("a positive number")? as usize,
                    "--reserve" => options.reserve_mib = number("a size in MiB")? as u64,
                    "--image" => options.image = args.value(flag, inline)?.to_string(),
                    "--quiet" | "-q" => options.quiet = true,
                    _ => return Err(Error::new(format!("runner density: unexpected {arg}"))),
                }
            }
            Ok(Cli::Density(options))
        }
        "setup" => {
            let mut quiet = false;
            for arg in args.rest() {
                match arg.as_str() {
                    "--quiet" | "-q" => quiet = true,
                    _ => return Err(Error::new(format!("runner setup: unexpected {arg}"))),
                }
            }
            Ok(Cli::Setup { quiet })
        }
        other => Err(Error::new(format!(
            "unknown command `{other}` (commands: run, boot, test, new, bench, density, setup, help)"
        ))),
    }
}

/// An existing file, or anything that looks like a path, is an ELF; otherwise an example.
pub fn classify_target(target: &str) -> RunTarget {
    let path = PathBuf::from(target);
    if path.is_file() || target.contains('/') || target.ends_with(".elf") {
        RunTarget::Elf(path)
    } else {
        RunTarget::Example(target.to_string())
    }
}

fn execute(cli: Cli) -> Result<i32> {
    match cli {
        Cli::Help => {
            print!("{HELP}");
            Ok(0)
        }
        Cli::Setup { quiet } => {
            setup::ensure(Needs::ALL, quiet)?;
            if !quiet {
                eprintln!(
                    "runner: ready (the {} target and {} are installed)",
                    setup::TARGET,
                    crate::qemu::QEMU
                );
            }
            Ok(0)
        }
        Cli::Run(target, opts) => {
            let elf = match target {
                RunTarget::Elf(path) => {
                    setup::ensure(boot_needs(&opts, false), opts.quiet)?;
                    path
                }
                RunTarget::Example(name) => {
                    setup::ensure(boot_needs(&opts, true), opts.quiet)?;
                    build::build_example_with(&name, opts.quiet)?
                }
                RunTarget::Manifest(manifest, package) => {
                    setup::ensure(boot_needs(&opts, true), opts.quiet)?;
                    CargoBuild {
                        manifest_path: manifest,
                        package,
                        release: true,
                        quiet: opts.quiet,
                    }
                    .run()?
                }
            };
            boot(elf, &opts)
        }
        Cli::Boot(elf, opts) => {
            setup::ensure(boot_needs(&opts, false), opts.quiet)?;
            boot(elf, &opts)
        }
        Cli::Test(cargo_args) => {
            setup::ensure(Needs::ALL, false)?;
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let status = Command::new(cargo)
                .args(["test", "--workspace"])
                .args(&cargo_args)
                .current_dir(build::repo_root())
                .stdin(Stdio::null())
                .status()
                .map_err(|err| Error::new(format!("cannot run cargo: {err}")))?;
            Ok(status.code().unwrap_or(1))
        }
        Cli::New { path, name } => {
            let (path, name) = crate::new::create(&path, name.as_deref())?;
            println!("created `{name}` in {}", path.display());
            println!("boot it with: cd {} && cargo run", path.display());
            Ok(0)
        }
        Cli::Density(options) => {
            crate::density::run(&options)?;
            Ok(0)
        }
        Cli::BenchPaired {
            runs,
            floor,
            vmms,
            quiet,
        } => {
            setup::ensure(
                Needs {
                    target: true,
                    qemu: vmms == crate::bench::PairedVmms::Both,
                },
                quiet,
            )?;
            let mut options = crate::bench::PairedOptions {
                runs,
                vmms,
                quiet,
                ..Default::default()
            };
            if let Some(floor) = floor {
                options.floor = floor;
            }
            crate::bench::run_paired(&options)?;
            Ok(0)
        }
        Cli::DensityWorker(options) => {
            crate::density::worker(&options)?;
            Ok(0)
        }
        Cli::Bench { runs, floor, quiet } => {
            setup::ensure(Needs::ALL, quiet)?;
            let mut options = crate::bench::BenchOptions {
                runs,
                quiet,
                ..Default::default()
            };
            if let Some(floor) = floor {
                options.floor = floor;
            }
            crate::bench::run(&options)?;
            Ok(0)
        }
    }
}

/// What a boot needs installed: the monitor needs no QEMU.
fn boot_needs(opts: &BootOptions, build: bool) -> Needs {
    Needs {
        target: build,
        qemu: opts.vmm == Vmm::Qemu,
    }
}

fn boot(elf: PathBuf, opts: &BootOptions) -> Result<i32> {
    use crate::net::{self, NetChoice};
    let network = match (net::plan(opts.network.as_ref(), &elf), opts.vmm) {
        (Some(_), Vmm::Monitor) if opts.network.is_some() => {
            return Err(Error::new(
                "the monitor has no network device: use --vmm qemu for --forward or --tap",
            ));
        }
        (_, Vmm::Monitor) => None,
        (network, Vmm::Qemu) => network,
    };
    if network == Some(NetChoice::Tap) {
        return boot_on_tap(elf, opts);
    }
    let mut boot = Boot::new(&elf)
        .vmm(opts.vmm)
        .accel(opts.accel)
        .machine(opts.machine)
        .memory(opts.memory_mib)
        .timeout(opts.timeout)
        .args(opts.kernel_args.iter().cloned())
        .timeline(opts.timeline)
        .protocol(opts.protocol)
        .echo(true)
        .verbose(opts.verbose);
    for arg in &opts.qemu_args {
        boot = boot.qemu_arg(arg);
    }
    if let Some(NetChoice::Forward(forwards)) = &network {
        for arg in net::qemu_args(opts.machine, &net::Network::User(forwards.clone())) {
            boot = boot.qemu_arg(arg);
        }
        if !opts.quiet {
            let list: Vec<String> = forwards
                .iter()
                .map(|f| {
                    format!(
                        "127.0.0.1:{} -> {}:{}",
                        f.host_port,
                        net::GUEST_IP,
                        f.guest_port
                    )
                })
                .collect();
            eprintln!(
                "runner: network: QEMU user mode, {} (the guest stops after --timeout {} s)",
                list.join(", "),
                opts.timeout.as_secs_f64()
            );
        }
    }
    // The TSC is measured while the guest runs, so that it costs no time.
    let tsc = opts
        .timeline
        .then(|| std::thread::spawn(timeline::measure_tsc_hz));
    let outcome = boot.run()?;
    if outcome.serial_ends_mid_line() {
        // What follows goes to stderr; start it on a line of its own.
        println!();
    }
    if opts.timeline {
        let hz = tsc.and_then(|handle| handle.join().ok()).flatten();
        match hz {
            _ if outcome.timeline.is_empty() => eprintln!(
                "runner: the guest printed no timeline (does its kernel know `{}`?)",
                timeline::CMDLINE_FLAG
            ),
            Some(hz) => eprint!("{}", timeline::render(&outcome.timeline, hz)),
            None => eprintln!("runner: cannot convert the timeline: this host has no TSC"),
        }
        match opts.vmm {
            Vmm::Qemu => eprintln!(
                "QEMU ran for {:.1} ms ({})",
                outcome.wall.as_secs_f64() * 1e3,
                outcome.accel
            ),
            Vmm::Monitor => eprintln!(
                "the monitor ran for {:.1} ms (KVM)",
                outcome.wall.as_secs_f64() * 1e3
            ),
        }
    }
    if opts.stats {
        match &outcome.monitor {
            Some(run) => eprintln!("runner: {}", run.stats.line(run.teardown)),
            None => eprintln!(
                "runner: --stats: QEMU ran for {:.2} ms",
                outcome.wall.as_secs_f64() * 1e3
            ),
        }
    }
    if let Some(summary) = outcome.summary() {
        eprintln!("runner: {summary}");
        let stderr_lines = outcome
            .stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .count();
        if matches!(outcome.exit, crate::boot::Exit::QemuFailed { .. }) && stderr_lines > 1 {
            eprint!("--- QEMU stderr ---\n{}", outcome.stderr);
            if !outcome.stderr.ends_with('\n') {
                eprintln!();
            }
        }
    }
    if opts.vmm == Vmm::Monitor {
        for note in outcome.stderr.lines().filter(|l| !l.trim().is_empty()) {
            eprintln!("runner: {note}");
        }
    }
    Ok(outcome.exit_code())
}

/// Boots on a tap device in a network namespace of the runner's own, deleted at exit.
fn boot_on_tap(elf: PathBuf, opts: &BootOptions) -> Result<i32> {
    use crate::net::{self, Guest, Netns};
    let name = format!("uk-{}", std::process::id());
    let netns = Netns::create(&name, "tap0")?;
    if !opts.quiet {
        eprintln!(
            "runner: network: tap0 in namespace {name} (host side {}/24); the guest is {}: \
             ip netns exec {name} curl http://{}/",
            net::HOST_IP,
            net::GUEST_IP,
            net::GUEST_IP
        );
    }
    let boot = Boot::new(&elf)
        .memory(opts.memory_mib)
        .args(opts.kernel_args.iter().cloned());
    let mut guest = Guest::spawn(&boot, &elf, opts.accel, opts.machine, &netns.network())?;
    if opts.verbose {
        eprintln!("runner: {}", guest.command);
    }
    let status = guest.echo_until_exit(opts.timeout);
    drop(guest);
    drop(netns);
    Ok(match status {
        Some(status) => status,
        None => {
            eprintln!(
                "runner: the guest did not exit within {} s; it was stopped",
                opts.timeout.as_secs_f64()
            );
            crate::boot::STATUS_TIMEOUT
        }
    })
}
