//! The command line, `cargo uk <command>`: one clap definition for every command, the
//! hidden `density-worker` included.

use std::ffi::OsString;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use clap::error::ErrorKind;
use clap::parser::ValueSource;
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

use crate::boot::Boot;
use crate::build::{self, CargoBuild, RunTarget};
use crate::error::{Error, Result};
use crate::monitor::Vmm;
use crate::net::{Forward, NetChoice};
use crate::qemu::{AccelRequest, Machine, Protocol};
use crate::setup::{self, Needs};
use crate::timeline;
use crate::values::{defaults, parse_secs, positive};

/// What `--help` adds after the options: the exit statuses.
const EXIT_STATUS: &str = "\
Exit status:
  the guest's own (what main returned: 0 success; 101 panic, 102 CPU exception,
  103 boot error), 123 the guest halted for good (monitor), 124 the guest did not exit
  in time, 125 the guest reset without reporting (a triple fault under the monitor),
  126 QEMU failed or the monitor had to stop the guest, 128+n stopped by signal n,
  141 stdout was closed, 1 the runner could not build or boot, 2 a usage error.";

/// `cargo uk`: builds unikernel images and boots them in QEMU or on the project's KVM monitor.
#[derive(Debug, Parser)]
#[command(
    name = "cargo uk",
    bin_name = "cargo uk",
    version,
    after_help = EXIT_STATUS,
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Debug, Subcommand)]
enum Commands {
    /// Build examples/<name> (release), or the app at --manifest-path, and boot it
    Run(RunArgs),
    /// Boot a built ELF; every argument after the ELF goes to the kernel (what cargo's
    /// `runner` setting calls, with `cargo run -- <args>` after the ELF)
    Boot(BootArgs),
    /// Set up, check formatting and lints of both workspaces, then `cargo test --workspace`
    Test(TestArgs),
    /// Create an app outside the repository; `cargo run` in it builds and boots
    New(NewArgs),
    /// Boot figures of the floor kernel and the empty and hello examples, as ratios to the
    /// floor, and their boot timelines in guest instructions
    Bench(BenchArgs),
    /// Start idle VMs on the monitor until --max, the time limit or host memory runs out;
    /// report how many it held, host memory per VM and boots per second
    Density(crate::density::DensityOptions),
    /// Where an image's bytes go: per section, crate and declared subsystem, and the
    /// largest functions
    Size(SizeArgs),
    /// Package an app as an OCI image (a layout folder, or an oci-archive .tar that
    /// `podman load` and `ctr images import` take) for the OCI runtime `uk-runtime`
    Pkg(PkgArgs),
    /// Disk images for `--disk`
    #[command(subcommand)]
    Disk(DiskCommand),
    /// Serverless functions: one image per `#[unikernel::function]` of a crate
    #[command(subcommand)]
    Functions(FunctionsCommand),
    /// The gateway: an HTTP server on loopback that answers each request with its
    /// function, in a VM of its own on the monitor (needs KVM)
    Serve(ServeArgs),
    /// Install the x86_64-unknown-none target and QEMU where missing
    Setup(SetupArgs),
    /// Remove what runners killed by SIGKILL left: network namespaces (uk-<pid>-<start>)
    /// and temporary image copies (cargo-uk-<pid>-<start>-*); `run` and `boot` do it too
    Clean,
    /// One worker process of `density` (started by it, not by people)
    #[command(hide = true)]
    DensityWorker(crate::density::WorkerOptions),
}

/// Options shared by `run` and `boot`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub(crate) struct BootOptions {
    /// qemu: every machine and accelerator; monitor: the project's own KVM monitor (PVH
    /// images, needs /dev/kvm)
    #[arg(long, value_enum, default_value_t)]
    pub vmm: Vmm,
    /// auto: KVM only where /dev/kvm works and the CPU shows vmx/svm, else TCG (-cpu max)
    #[arg(long, value_enum, default_value_t)]
    pub accel: AccelRequest,
    #[arg(long, value_enum, default_value_t)]
    pub machine: Machine,
    /// Guest memory
    #[arg(long = "memory", value_name = "MiB", default_value_t = 32,
          value_parser = clap::value_parser!(u32).range(2..))]
    pub memory_mib: u32,
    /// vCPUs, on either VMM (QEMU's -smp) [default: the app's `sched(cpus = N)`, else 1];
    /// fewer than the app declares runs it on fewer
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub cpus: Option<u16>,
    /// (root) Run the vCPU threads under SCHED_FIFO at PRIO (1-98) and QEMU's other threads,
    /// its main loop that runs the guest's timers, one above: a guest's timer is then not
    /// queued behind other host work (benches/rt.sh measures it)
    #[arg(long, value_name = "PRIO", value_parser = clap::value_parser!(u8).range(1..=98))]
    pub realtime: Option<u8>,
    /// Stop a guest that has not exited by then
    #[arg(long, value_name = "SECS", default_value = "30", value_parser = parse_secs)]
    pub timeout: Duration,
    /// The image's boot header QEMU uses
    #[arg(long = "boot", value_enum, default_value_t)]
    pub protocol: Protocol,
    /// Ask the guest for its boot timeline and print it as a table (under QEMU TCG: in guest
    /// instructions per stage, with `-icount shift=0`, the same on every run)
    #[arg(long)]
    pub timeline: bool,
    /// Write the boot timeline as an SVG chart, one bar per stage (implies --timeline)
    #[arg(long, value_name = "FILE")]
    pub timeline_svg: Option<PathBuf>,
    /// Log levels for the guest's `log` records, one for all (`debug`) or per module with a
    /// default (`net=debug,smoltcp=warn,info`): the kernel flag `unikernel.log=LEVELS`
    #[arg(long, value_name = "LEVELS")]
    pub log: Option<String>,
    /// Write the guest's serial output to FILE as well as to the terminal
    #[arg(long, value_name = "FILE", conflicts_with = "tap")]
    pub serial_log: Option<PathBuf>,
    /// Stop the guest at its first instruction and wait for gdb on 127.0.0.1:PORT; prints
    /// the gdb command that attaches with the image's symbols (the guest is not stopped
    /// for --timeout before an hour)
    #[arg(long, value_name = "PORT", num_args = 0..=1, default_missing_value = "1234",
          conflicts_with_all = ["tap", "timeline", "timeline_svg"])]
    pub gdb: Option<u16>,
    /// Pass an argument to QEMU (repeatable)
    #[arg(long = "qemu-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub qemu_args: Vec<String>,
    /// User-mode network (QEMU's NAT; the guest is 10.0.2.15/24, gateway 10.0.2.2) with
    /// 127.0.0.1:HOST forwarded to the guest's port (repeatable) [default for an image that
    /// links `net`: 8080:80; an image without it gets no network]
    #[arg(long = "forward", value_name = "[tcp:|udp:]HOST:GUEST")]
    pub forwards: Vec<Forward>,
    /// (root) A tap device in a network namespace the runner creates (uk-<pid>, host side
    /// 10.0.2.2/24) and deletes at exit; reach the guest with
    /// `ip netns exec uk-<pid> curl http://10.0.2.15/`
    #[arg(long, conflicts_with_all = ["forwards", "no_net"])]
    pub tap: bool,
    /// No network device
    #[arg(long, conflicts_with = "forwards")]
    pub no_net: bool,
    /// Files for the guest's `fs`: a folder, packed into a newc cpio initrd, or a ready
    /// archive (in the app's Cargo.toml: relative to the app's folder)
    #[arg(long, value_name = "DIR|CPIO")]
    pub files: Option<PathBuf>,
    /// A raw disk image attached as a virtio-blk device (`cargo uk disk create` makes one)
    #[arg(long, value_name = "IMAGE")]
    pub disk: Option<PathBuf>,
    /// Open the disk with O_DIRECT: the guest's I/O bypasses the host's page cache (QEMU's
    /// cache=none; a file system without O_DIRECT or with blocks over 512 bytes is refused)
    #[arg(long, requires = "disk")]
    pub disk_direct: bool,
    /// No progress messages, no cargo output
    #[arg(short, long)]
    pub quiet: bool,
    /// Print the QEMU command line
    #[arg(short, long)]
    pub verbose: bool,
    /// (monitor) Print setup, guest and teardown times and exit counts
    #[arg(long)]
    pub stats: bool,
    /// (monitor) Write the stats as JSON into this file, for the paired benchmark
    #[arg(long, hide = true, value_name = "FILE")]
    pub stats_json: Option<PathBuf>,
    /// Arguments for the app (after `--` for `run`)
    #[arg(skip)]
    pub kernel_args: Vec<String>,
    /// The app's Cargo.toml when the app's `cargo run` started the runner (`boot
    /// --manifest-path`): messages then say how to change an option from there.
    #[arg(skip)]
    pub app_manifest: Option<PathBuf>,
}

impl Default for BootOptions {
    /// The options of a bare `cargo uk boot`: clap's defaults, from the one definition.
    fn default() -> Self {
        defaults::<BootOptions>()
    }
}

impl BootOptions {
    /// `--forward`, `--tap`, `--no-net`; `None`: as the image needs (see `net::plan`).
    pub fn network(&self) -> Option<NetChoice> {
        if self.tap {
            Some(NetChoice::Tap)
        } else if self.no_net {
            Some(NetChoice::Off)
        } else if !self.forwards.is_empty() {
            Some(NetChoice::Forward(self.forwards.clone()))
        } else {
            None
        }
    }

    /// The combinations the monitor cannot honour, as one sentence.
    fn monitor_conflict(&self) -> Option<String> {
        if self.vmm != Vmm::Monitor {
            return None;
        }
        if self.accel == AccelRequest::Tcg {
            return Some(
                "--vmm monitor runs on KVM: it cannot take --accel tcg (use --vmm qemu for TCG)"
                    .into(),
            );
        }
        if self.machine != Machine::Microvm {
            return Some(format!(
                "--vmm monitor has one machine model: it cannot take --machine {} (use --vmm qemu for pc and q35)",
                self.machine
                    .to_possible_value()
                    .map(|v| v.get_name().to_string())
                    .unwrap_or_default()
            ));
        }
        None
    }
}

/// What `run` and `size` work on: an example, a built ELF, or an app's manifest.
#[derive(Debug, Args)]
struct TargetArgs {
    /// An example's name (examples/<name>) or the path of a built ELF
    #[arg(
        required_unless_present = "manifest_path",
        conflicts_with = "manifest_path"
    )]
    target: Option<String>,
    /// The app to build, outside examples/
    #[arg(long, value_name = "Cargo.toml")]
    manifest_path: Option<PathBuf>,
    /// The package to build, with --manifest-path
    #[arg(short, long, requires = "manifest_path", conflicts_with = "target")]
    package: Option<String>,
}

#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    app: TargetArgs,
    #[command(flatten)]
    boot: BootOptions,
    /// Arguments for the app
    #[arg(last = true, value_name = "KERNEL ARGS")]
    kernel_args: Vec<String>,
}

#[derive(Debug, Args)]
struct BootArgs {
    #[command(flatten)]
    boot: BootOptions,
    /// The app's Cargo.toml: its [package.metadata.unikernel] table sets options the
    /// command line does not (what the app's `cargo run` passes)
    #[arg(long, value_name = "Cargo.toml")]
    manifest_path: Option<PathBuf>,
    /// The kernel ELF, then the app's arguments: everything after the ELF, options too
    #[arg(
        value_name = "ELF [KERNEL ARGS]",
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    command_line: Vec<String>,
}

#[derive(Debug, Args)]
struct TestArgs {
    /// Skip `cargo fmt --check` and `cargo clippy` (tests only)
    #[arg(long)]
    no_lint: bool,
    /// Passed to `cargo test`
    #[arg(last = true, value_name = "CARGO TEST ARGS")]
    cargo_args: Vec<String>,
}

#[derive(Debug, Args)]
struct NewArgs {
    /// Where to create the app (a new folder)
    path: PathBuf,
    /// The crate's name [default: the folder's name]
    #[arg(long)]
    name: Option<String>,
    /// A crate of serverless functions (`#[unikernel::function]`) instead of an app
    #[arg(long)]
    functions: bool,
}

/// Which VMMs `cargo uk bench` measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
enum BenchVmm {
    /// QEMU microvm under TCG: wall times as ratios to the floor, and boot timelines
    #[default]
    Qemu,
    /// The monitor alone, boot for boot
    Monitor,
    /// The monitor and QEMU microvm + KVM, paired in one run
    Both,
}

#[derive(Debug, Args)]
struct BenchArgs {
    /// Boots per image
    #[arg(long, value_name = "N", default_value_t = 20, value_parser = positive)]
    runs: usize,
    /// The floor kernel [default: examples/floor, built]
    #[arg(long, value_name = "ELF")]
    floor: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t)]
    vmm: BenchVmm,
    /// No progress messages
    #[arg(short, long)]
    quiet: bool,
}

#[derive(Debug, Subcommand)]
enum DiskCommand {
    /// Create a FAT disk image (a raw file any FAT tool reads), optionally holding a folder
    Create {
        /// The image to create (an existing file is left alone)
        image: PathBuf,
        /// Its size: 64MiB, 1GiB, ... (1 MiB to 2 TiB)
        #[arg(long, value_parser = crate::disk::parse_size, default_value = "64MiB")]
        size: u64,
        /// A folder whose files and folders are copied in
        #[arg(long, value_name = "DIR")]
        from: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum FunctionsCommand {
    /// Build one image per function of the crate (a library) and write
    /// <target>/uk-functions/functions.json, the manifest `cargo uk serve` reads
    Build {
        /// The crate's folder or Cargo.toml [default: the current folder]
        #[arg(default_value = ".")]
        path: PathBuf,
        /// No cargo progress, only the list of images
        #[arg(short, long)]
        quiet: bool,
    },
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// The crate of functions (built first) or its functions.json [default: the current folder]
    #[arg(default_value = ".")]
    path: PathBuf,
    /// The address to listen on (port 0: any free port, printed at start)
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: std::net::SocketAddr,
    /// Serve every function in this mode instead of its own: fresh, snapshot or warm
    #[arg(long, value_parser = parse_mode)]
    mode: Option<crate::functions::Mode>,
    /// VMs per function at once
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Requests per function waiting beyond those (more get 503)
    #[arg(long, default_value_t = 64)]
    queue: usize,
    /// VMs prepared ahead per snapshot function
    #[arg(long, default_value_t = 4)]
    pool: usize,
    /// Seconds without requests after which a function drops its VMs and snapshot
    #[arg(long, value_name = "SECONDS", value_parser = crate::values::parse_secs, default_value = "60")]
    idle: std::time::Duration,
}

fn parse_mode(text: &str) -> std::result::Result<crate::functions::Mode, String> {
    use crate::functions::Mode;
    match text {
        "fresh" => Ok(Mode::Fresh),
        "snapshot" => Ok(Mode::Snapshot),
        "warm" => Ok(Mode::Warm),
        other => Err(format!("`{other}`: fresh, snapshot or warm")),
    }
}

#[derive(Debug, Args)]
struct SizeArgs {
    #[command(flatten)]
    app: TargetArgs,
    /// How many of the largest functions and statics to list
    #[arg(long, value_name = "N", default_value_t = 20)]
    top: usize,
    /// No cargo output
    #[arg(short, long)]
    quiet: bool,
}

#[derive(Debug, Args)]
struct PkgArgs {
    #[command(flatten)]
    app: TargetArgs,
    /// The image's name and version [default: <app>:latest]
    #[arg(long, value_name = "NAME:VERSION")]
    tag: Option<String>,
    /// A folder for the image layout, or FILE.tar for an archive of it [default:
    /// target/oci/<name>-<version>.tar in the repository]
    #[arg(long, value_name = "DIR|FILE.tar")]
    output: Option<PathBuf>,
    /// Guest memory [default: the app's `memory` setting, else 32]
    #[arg(long = "memory", value_name = "MiB", value_parser = clap::value_parser!(u32).range(2..))]
    memory_mib: Option<u32>,
    /// Files for the guest's `fs` [default: the app's `files` setting]
    #[arg(long, value_name = "DIR")]
    files: Option<PathBuf>,
    /// A TCP port the guest listens on, for an image that links `net` (repeatable)
    /// [default: 80]
    #[arg(long = "port", value_name = "PORT")]
    ports: Vec<u16>,
    /// No cargo output
    #[arg(short, long)]
    quiet: bool,
    /// Arguments for the app, stored in the image
    #[arg(last = true, value_name = "KERNEL ARGS")]
    kernel_args: Vec<String>,
}

#[derive(Debug, Args)]
struct SetupArgs {
    /// No messages
    #[arg(short, long)]
    quiet: bool,
}

/// Runs `cargo uk` with `args` (the program name first); returns the exit status.
pub fn main(args: Vec<OsString>) -> i32 {
    if args.len() <= 1 {
        // A bare `cargo uk` is a question, not a mistake.
        let _ = Cli::command().print_help();
        return 0;
    }
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return err.exit_code();
        }
    };
    let cli = match with_app_settings(cli, &args) {
        Ok(cli) => cli,
        Err(err) => {
            eprintln!("cargo uk: {err}");
            return 2;
        }
    };
    let boot_options = match &cli.command {
        Commands::Run(RunArgs { boot, .. }) => Some(("run", boot)),
        Commands::Boot(BootArgs { boot, .. }) => Some(("boot", boot)),
        _ => None,
    };
    if let Some((name, boot)) = boot_options
        && let Some(conflict) = boot.monitor_conflict()
    {
        let mut command = Cli::command();
        command.build();
        let subcommand = command
            .find_subcommand_mut(name)
            .expect("run and boot are subcommands");
        let err = subcommand.error(ErrorKind::ArgumentConflict, conflict);
        let _ = err.print();
        return err.exit_code();
    }
    // SIGTERM/SIGINT/SIGHUP kill QEMU, delete namespaces and temporary files, then exit
    // with 128 + the signal; the gateway instead shuts down gracefully on its own.
    if !matches!(cli.command, Commands::Serve(_)) {
        crate::cleanup::install_signal_handlers();
    }
    match execute(cli.command) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("cargo uk: {err}");
            1
        }
    }
}

/// The app's Cargo.toml for `run` and `boot`, whose `[package.metadata.unikernel]` table
/// holds its runner options.
fn app_manifest(command: &Commands) -> Option<(&'static str, PathBuf)> {
    match command {
        Commands::Boot(BootArgs {
            manifest_path: Some(manifest),
            ..
        }) => Some(("boot", manifest.clone())),
        Commands::Run(RunArgs {
            app:
                TargetArgs {
                    manifest_path: Some(manifest),
                    ..
                },
            ..
        }) => Some(("run", manifest.clone())),
        Commands::Run(RunArgs {
            app: TargetArgs {
                target: Some(target),
                ..
            },
            ..
        }) => match build::classify_target(target) {
            RunTarget::Example(name) => {
                let manifest = build::repo_root()
                    .join("examples")
                    .join(name)
                    .join("Cargo.toml");
                manifest.is_file().then_some(("run", manifest))
            }
            _ => None,
        },
        _ => None,
    }
}

/// `cli` with the options of the app's `[package.metadata.unikernel]` that `args` does
/// not give (see `app_config`); `args` parsed as `cli` already.
fn with_app_settings(cli: Cli, args: &[OsString]) -> Result<Cli> {
    let Some((name, manifest)) = app_manifest(&cli.command) else {
        return Ok(cli);
    };
    let mut table = crate::app_config::read_table(&manifest)?;
    if let Some(app_dir) = manifest.parent() {
        crate::app_config::resolve_paths(&mut table, app_dir);
    }
    let mut cli = if table.is_empty() {
        cli
    } else {
        let mut command = Cli::command();
        command.build();
        // `boot`'s options are the settings (`run` shares them, and has its own besides).
        let boot = command
            .find_subcommand("boot")
            .expect("boot is a subcommand");
        let matches = Cli::command()
            .try_get_matches_from(args)
            .map_err(|err| Error::new(err.to_string()))?;
        let given = matches.subcommand_matches(name);
        let given =
            |id: &str| given.is_some_and(|m| m.value_source(id) == Some(ValueSource::CommandLine));
        let table_in = format!("{} in {}", crate::app_config::TABLE, manifest.display());
        let words = crate::app_config::words(&table, boot, given)
            .map_err(|reason| Error::new(format!("{table_in}: {reason}")))?;
        // The table's words alone first, so that a bad value is reported as the table's.
        let mut alone: Vec<OsString> = vec!["cargo uk".into(), "boot".into()];
        alone.extend(words.iter().map(OsString::from));
        alone.push("image.elf".into());
        if let Err(err) = Cli::try_parse_from(alone) {
            let message = err.render().to_string();
            let message = message.lines().next().unwrap_or_default();
            return Err(Error::new(format!(
                "{table_in}: {}",
                message.trim_start_matches("error: ")
            )));
        }
        let at = args
            .iter()
            .position(|arg| arg == name)
            .expect("the subcommand is among the arguments");
        let mut merged: Vec<OsString> = args[..=at].to_vec();
        merged.extend(words.iter().map(OsString::from));
        merged.extend(args[at + 1..].iter().cloned());
        Cli::try_parse_from(merged).map_err(|err| Error::new(err.to_string()))?
    };
    if let Commands::Boot(boot) = &mut cli.command {
        boot.boot.app_manifest = Some(manifest);
    }
    Ok(cli)
}

fn execute(command: Commands) -> Result<i32> {
    match command {
        Commands::Setup(SetupArgs { quiet }) => {
            setup::ensure(Needs::ALL, quiet)?;
            if !quiet {
                eprintln!(
                    "cargo uk: ready (the {} target and {} are installed)",
                    setup::TARGET,
                    crate::qemu::QEMU
                );
            }
            Ok(0)
        }
        Commands::Run(RunArgs {
            app,
            mut boot,
            kernel_args,
        }) => {
            boot.kernel_args = kernel_args;
            let elf = image_of(app, |build| boot_needs(&boot, build), boot.quiet)?;
            self::boot(elf, &boot)
        }
        Commands::Boot(BootArgs {
            mut boot,
            command_line,
            ..
        }) => {
            let mut words = command_line.into_iter();
            let elf = PathBuf::from(words.next().expect("clap requires the ELF"));
            let mut kernel_args: Vec<String> = words.collect();
            if kernel_args.first().is_some_and(|first| first == "--") {
                kernel_args.remove(0);
            }
            boot.kernel_args = kernel_args;
            setup::ensure(boot_needs(&boot, false), boot.quiet)?;
            self::boot(elf, &boot)
        }
        Commands::Test(TestArgs {
            no_lint,
            cargo_args,
        }) => {
            setup::ensure(Needs::ALL, false)?;
            if !no_lint && let Some(failed) = crate::lint::run()? {
                eprintln!("cargo uk: {failed}");
                return Ok(1);
            }
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let status = Command::new(cargo)
                .args(["test", "--workspace", "--no-fail-fast"])
                .args(&cargo_args)
                .current_dir(build::repo_root())
                .stdin(Stdio::null())
                .status()
                .map_err(|err| Error::new(format!("cannot run cargo: {err}")))?;
            Ok(status.code().unwrap_or(1))
        }
        Commands::New(NewArgs {
            path,
            name,
            functions: false,
        }) => {
            let (path, name) = crate::new::create(&path, name.as_deref(), false)?;
            println!("created `{name}` in {}", path.display());
            println!("boot it with: cd {} && cargo run", path.display());
            Ok(0)
        }
        Commands::New(NewArgs {
            path,
            name,
            functions: true,
        }) => {
            let (path, name) = crate::new::create_from(
                crate::new::Template::Functions,
                &path,
                name.as_deref(),
                false,
            )?;
            println!("created `{name}` in {}", path.display());
            println!(
                "build its images with: cd {} && cargo uk functions build {}",
                build::repo_root().display(),
                path.display()
            );
            Ok(0)
        }
        Commands::Functions(FunctionsCommand::Build { path, quiet }) => {
            setup::ensure(
                Needs {
                    target: true,
                    qemu: false,
                },
                quiet,
            )?;
            let built = crate::functions::build(&path, quiet, &mut |line| println!("{line}"))?;
            println!("manifest: {}", built.manifest_path.display());
            Ok(0)
        }
        Commands::Serve(args) => {
            crate::functions::serve::serve(crate::functions::serve::ServeOptions {
                path: args.path,
                listen: args.listen,
                mode: args.mode,
                concurrency: args.concurrency,
                queue: args.queue,
                pool: args.pool,
                idle: args.idle,
            })?;
            Ok(0)
        }
        Commands::Disk(DiskCommand::Create { image, size, from }) => {
            let copied = crate::disk::create_image(&image, size, from.as_deref())?;
            println!(
                "created {} ({}, FAT{})",
                image.display(),
                human_size(size),
                match from {
                    Some(from) => format!(", {copied} entries from {}", from.display()),
                    None => String::new(),
                }
            );
            Ok(0)
        }
        Commands::Clean => {
            let swept = crate::cleanup::sweep();
            for path in &swept.files {
                println!("removed {}", path.display());
            }
            for name in &swept.netns {
                println!("deleted network namespace {name}");
            }
            Ok(0)
        }
        Commands::Size(SizeArgs { app, top, quiet }) => {
            let needs = |build| Needs {
                target: build,
                qemu: false,
            };
            let elf = image_of(app, needs, quiet)?;
            let name = elf.file_name().map_or_else(
                || elf.display().to_string(),
                |name| name.to_string_lossy().into_owned(),
            );
            let report = crate::size::analyze(&elf)?;
            let stripped = crate::bench::stripped_size(&elf).ok();
            print!("{}", crate::size::render(&report, &name, stripped, top));
            Ok(0)
        }
        Commands::Pkg(args) => pkg(args),
        Commands::Density(options) => {
            crate::density::run(&options)?;
            Ok(0)
        }
        Commands::DensityWorker(options) => {
            crate::density::worker(&options)?;
            Ok(0)
        }
        Commands::Bench(BenchArgs {
            runs,
            floor,
            vmm,
            quiet,
        }) => {
            let paired = match vmm {
                BenchVmm::Qemu => None,
                BenchVmm::Monitor => Some(crate::bench::PairedVmms::Monitor),
                BenchVmm::Both => Some(crate::bench::PairedVmms::Both),
            };
            let needs = Needs {
                target: true,
                qemu: paired != Some(crate::bench::PairedVmms::Monitor),
            };
            setup::ensure(needs, quiet)?;
            match paired {
                Some(vmms) => {
                    let mut options = crate::bench::PairedOptions {
                        runs,
                        vmms,
                        quiet,
                        ..Default::default()
                    };
                    options.floor = floor;
                    crate::bench::run_paired(&options)?;
                }
                None => {
                    let mut options = crate::bench::BenchOptions {
                        runs,
                        quiet,
                        ..Default::default()
                    };
                    options.floor = floor;
                    crate::bench::run(&options)?;
                }
            }
            Ok(0)
        }
    }
}

/// `cargo uk pkg`: builds the app, reads its settings (`memory`, `files`) and writes the
/// OCI image.
fn pkg(args: PkgArgs) -> Result<i32> {
    let manifest = match (&args.app.target, &args.app.manifest_path) {
        (_, Some(manifest)) => Some(manifest.clone()),
        (Some(target), None) => match build::classify_target(target) {
            RunTarget::Example(name) => Some(
                build::repo_root()
                    .join("examples")
                    .join(name)
                    .join("Cargo.toml"),
            ),
            _ => None,
        },
        (None, None) => None,
    };
    let mut table = match manifest.as_deref().filter(|manifest| manifest.is_file()) {
        Some(manifest) => crate::app_config::read_table(manifest)?,
        None => Default::default(),
    };
    if let Some(app_dir) = manifest.as_deref().and_then(|manifest| manifest.parent()) {
        crate::app_config::resolve_paths(&mut table, app_dir);
    }
    let needs = |build| Needs {
        target: build,
        qemu: false,
    };
    let quiet = args.quiet;
    let elf = image_of(args.app, needs, quiet)?;
    let app = elf
        .file_stem()
        .map_or_else(|| "app".into(), |stem| stem.to_string_lossy().into_owned())
        .to_ascii_lowercase()
        .replace('_', "-");
    let tag = args.tag.unwrap_or_else(|| format!("{app}:latest"));
    let output = args.output.unwrap_or_else(|| {
        build::repo_root().join("target/oci").join(format!(
            "{}.tar",
            tag.rsplit('/').next().unwrap_or(&tag).replace(':', "-")
        ))
    });
    let memory_mib = match args.memory_mib {
        Some(mib) => mib,
        None => match table.get("memory") {
            Some(value) => value
                .as_u64()
                .and_then(|mib| u32::try_from(mib).ok())
                .ok_or_else(|| Error::new(format!("memory = {value}: expected MiB")))?,
            None => BootOptions::default().memory_mib,
        },
    };
    let files = args.files.or_else(|| {
        table
            .get("files")
            .and_then(|value| value.as_str())
            .map(PathBuf::from)
    });
    if let Some(files) = files.as_deref().filter(|files| !files.is_dir()) {
        return Err(Error::new(format!(
            "files {}: `cargo uk pkg` takes a folder (the runtime packs it into the initrd)",
            files.display()
        )));
    }
    let tcp_ports = if args.ports.is_empty() {
        vec![80]
    } else {
        args.ports
    };
    let packaged = crate::pkg::package(&crate::pkg::PkgOptions {
        elf,
        tag: tag.clone(),
        output: output.clone(),
        files,
        memory_mib,
        args: args.kernel_args,
        kernel_flags: Vec::new(),
        tcp_ports,
    })?;
    println!(
        "{tag} ({}; layer {} bytes; {} MiB; {}) in {}",
        packaged.manifest_digest,
        packaged.layer_size,
        packaged.metadata.memory_mib,
        packaged.metadata.subsystems.join(" "),
        output.display()
    );
    Ok(0)
}

/// `67108864` as `64 MiB`.
fn human_size(bytes: u64) -> String {
    match bytes.trailing_zeros() {
        40.. => format!("{} TiB", bytes >> 40),
        30.. => format!("{} GiB", bytes >> 30),
        20.. => format!("{} MiB", bytes >> 20),
        _ => format!("{bytes} bytes"),
    }
}

/// The image `run` and `size` work on: a built ELF as it is, or an example or the app at
/// `manifest_path` built in release mode, after `needs(built)` is installed.
fn image_of(app: TargetArgs, needs: impl Fn(bool) -> Needs, quiet: bool) -> Result<PathBuf> {
    let TargetArgs {
        target,
        manifest_path,
        package,
    } = app;
    let target = match (target, manifest_path) {
        (_, Some(manifest)) => RunTarget::Manifest(manifest, package),
        (Some(target), None) => build::classify_target(&target),
        (None, None) => unreachable!("clap requires a target or --manifest-path"),
    };
    match target {
        RunTarget::Elf(path) => {
            setup::ensure(needs(false), quiet)?;
            Ok(path)
        }
        RunTarget::Example(name) => {
            setup::ensure(needs(true), quiet)?;
            build::build_example_with(&name, quiet)
        }
        RunTarget::Manifest(manifest, package) => {
            setup::ensure(needs(true), quiet)?;
            CargoBuild {
                manifest_path: manifest,
                package,
                release: true,
                quiet,
            }
            .run()
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
    use crate::net;
    // What runners killed by SIGKILL left behind.
    crate::cleanup::sweep();
    let choice = opts.network();
    let network = net::plan(choice.as_ref(), &elf);
    if network == Some(NetChoice::Tap) && opts.vmm == Vmm::Qemu {
        return boot_on_tap(elf, opts);
    }
    if opts.gdb.is_some() && opts.vmm == Vmm::Monitor {
        let mut serial = String::new();
        let status = crate::gdb::boot_on_monitor(&elf, opts, &mut serial)?;
        after_boot(&elf, opts, &serial)?;
        return Ok(status);
    }
    let timeline = opts.timeline || opts.timeline_svg.is_some();
    // Under TCG the timeline counts guest instructions: deterministic, unlike TCG's times.
    let count_instructions = timeline
        && opts.vmm == Vmm::Qemu
        && crate::qemu::detect_accel(opts.accel)? == crate::qemu::Accel::Tcg;
    let timeout = match opts.gdb {
        Some(_) => opts.timeout.max(crate::gdb::SESSION_TIMEOUT),
        None => opts.timeout,
    };
    // Kept until the guest is gone: a packed folder is a temporary file.
    let initrd = opts
        .files
        .as_deref()
        .map(crate::disk::Initrd::from_path)
        .transpose()?;
    let mut boot = Boot::new(&elf)
        .vmm(opts.vmm)
        .accel(opts.accel)
        .machine(opts.machine)
        .memory(opts.memory_mib)
        .timeout(timeout)
        .args(opts.kernel_args.iter().cloned())
        .timeline(timeline)
        .protocol(opts.protocol)
        .echo(true)
        .verbose(opts.verbose);
    if let Some(cpus) = opts.cpus {
        boot = boot.cpus(cpus);
    }
    if let Some(priority) = opts.realtime {
        boot = boot.realtime(priority);
    }
    for arg in &opts.qemu_args {
        boot = boot.qemu_arg(arg);
    }
    if let Some(levels) = &opts.log {
        boot = boot.kernel_flag(format!("unikernel.log={levels}"));
    }
    if count_instructions {
        boot = boot.qemu_arg("-icount").qemu_arg("shift=0");
    }
    if let Some(port) = opts.gdb {
        for arg in crate::gdb::prepare(&elf, port) {
            boot = boot.qemu_arg(arg);
        }
        if crate::qemu::detect_accel(opts.accel)? == crate::qemu::Accel::Kvm {
            eprintln!("{}", crate::gdb::KVM_BREAKPOINT_NOTE);
        }
    }
    if let Some(initrd) = &initrd {
        boot = boot.initrd(initrd.path());
    }
    if let Some(disk) = &opts.disk {
        boot = boot
            .disk(existing_disk(disk)?)
            .disk_direct(opts.disk_direct);
    }
    // The monitor's network back ends, kept until the guest is gone.
    let (boot, _passt, _netns) =
        net::monitor_network(boot, opts.vmm, network.as_ref(), opts.quiet)?;
    let mut boot = boot;
    if let (Some(NetChoice::Forward(forwards)), Vmm::Qemu) = (&network, opts.vmm) {
        let cpus = boot.vcpus();
        for arg in net::qemu_args(opts.machine, &net::Network::User(forwards.clone()), cpus) {
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
                "cargo uk: network: QEMU user mode, {} (the guest stops after --timeout {} s)",
                list.join(", "),
                opts.timeout.as_secs_f64()
            );
        }
    }
    // The TSC is measured while the guest runs, so that it costs no time.
    let tsc =
        (timeline && !count_instructions).then(|| std::thread::spawn(timeline::measure_tsc_hz));
    let outcome = boot.run()?;
    if outcome.exit == crate::boot::Exit::OutputClosed {
        // Whoever read the output went away (`| head`): end quietly.
        return Ok(outcome.exit_code());
    }
    if outcome.serial_ends_mid_line() {
        // What follows goes to stderr; start it on a line of its own.
        let _ = writeln!(std::io::stdout());
    }
    after_boot(&elf, opts, &outcome.serial)?;
    if timeline {
        let hz = tsc.and_then(|handle| handle.join().ok()).flatten();
        let scale = match hz {
            _ if outcome.timeline.is_empty() => {
                eprintln!(
                    "cargo uk: the guest printed no timeline (does its kernel know `{}`?)",
                    timeline::CMDLINE_FLAG
                );
                None
            }
            _ if count_instructions => {
                eprint!("{}", timeline::render_instructions(&outcome.timeline));
                Some(timeline::Scale::Instructions)
            }
            Some(hz) => {
                eprint!("{}", timeline::render(&outcome.timeline, hz));
                Some(timeline::Scale::Time { tsc_hz: hz })
            }
            None => {
                eprintln!("cargo uk: cannot convert the timeline: this host has no TSC");
                None
            }
        };
        if let (Some(path), Some(scale)) = (&opts.timeline_svg, scale) {
            std::fs::write(path, timeline::svg(&outcome.timeline, scale))
                .map_err(|err| Error::new(format!("cannot write {}: {err}", path.display())))?;
            if !opts.quiet {
                eprintln!("cargo uk: wrote the timeline chart to {}", path.display());
            }
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
            Some(run) => eprintln!("cargo uk: {}", run.stats.line()),
            None => eprintln!(
                "cargo uk: --stats: QEMU ran for {:.2} ms",
                outcome.wall.as_secs_f64() * 1e3
            ),
        }
    }
    if let (Some(path), Some(run)) = (&opts.stats_json, &outcome.monitor) {
        let json = serde_json::to_vec(&run.stats)
            .map_err(|err| Error::new(format!("cannot encode the stats: {err}")))?;
        std::fs::write(path, json)
            .map_err(|err| Error::new(format!("cannot write {}: {err}", path.display())))?;
    }
    if let Some(summary) = outcome.summary() {
        eprintln!("cargo uk: {summary}");
        if let Some(manifest) = &opts.app_manifest
            && let Some(hint) =
                crate::app_config::hint(&outcome.exit, &outcome.serial, opts.memory_mib, manifest)
        {
            eprintln!("cargo uk: {hint}");
        }
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
            eprintln!("cargo uk: {note}");
        }
    }
    Ok(outcome.exit_code())
}

/// What follows every boot's output: the serial log file, the named backtrace.
fn after_boot(elf: &std::path::Path, opts: &BootOptions, serial: &str) -> Result<()> {
    if let Some(path) = &opts.serial_log {
        std::fs::write(path, serial)
            .map_err(|err| Error::new(format!("cannot write {}: {err}", path.display())))?;
    }
    if crate::symbolize::has_report(serial) {
        match crate::symbolize::Symbolizer::open(elf) {
            Ok(symbolizer) => eprint!("{}", symbolizer.render(serial).unwrap_or_default()),
            Err(err) => eprintln!("cargo uk: no names for the backtrace: {err}"),
        }
    }
    Ok(())
}

/// `--disk`'s image, which must exist (QEMU's own message would name its option syntax).
fn existing_disk(path: &std::path::Path) -> Result<&std::path::Path> {
    match std::fs::metadata(path) {
        Ok(metadata) if metadata.is_file() => Ok(path),
        Ok(_) => Err(Error::new(format!("--disk {}: not a file", path.display()))),
        Err(err) => Err(Error::new(format!(
            "--disk {}: {err} (`cargo uk disk create {}` makes one)",
            path.display(),
            path.display()
        ))),
    }
}

/// Boots on a tap device in a network namespace of the runner's own, deleted at exit (and
/// on SIGTERM/SIGINT, or by the next run after a crash: see `cleanup`).
fn boot_on_tap(elf: PathBuf, opts: &BootOptions) -> Result<i32> {
    use crate::net::{self, Guest, Netns};
    let name = crate::cleanup::netns_name();
    let netns = Netns::create(&name, "tap0")?;
    if !opts.quiet {
        eprintln!(
            "cargo uk: network: tap0 in namespace {name} (host side {}/24); the guest is {}: \
             ip netns exec {name} curl http://{}/",
            net::HOST_IP,
            net::GUEST_IP,
            net::GUEST_IP
        );
    }
    let initrd = opts
        .files
        .as_deref()
        .map(crate::disk::Initrd::from_path)
        .transpose()?;
    let mut boot = Boot::new(&elf)
        .machine(opts.machine)
        .memory(opts.memory_mib)
        .timeout(opts.timeout)
        .args(opts.kernel_args.iter().cloned());
    if let Some(initrd) = &initrd {
        boot = boot.initrd(initrd.path());
    }
    if let Some(disk) = &opts.disk {
        boot = boot
            .disk(existing_disk(disk)?)
            .disk_direct(opts.disk_direct);
    }
    let mut guest = Guest::spawn(&boot, &elf, opts.accel, opts.machine, &netns.network())?;
    if opts.verbose {
        eprintln!("cargo uk: {}", guest.command);
    }
    let exit = guest.echo_until_exit(opts.timeout);
    let output = guest.stop();
    drop(netns);
    // The same sentences and statuses as a boot without --tap.
    let outcome = crate::boot::BootOutcome::of_background(exit, output, &boot);
    if let Some(summary) = outcome.summary() {
        eprintln!("cargo uk: {summary}");
    }
    Ok(outcome.exit_code())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> std::result::Result<Commands, clap::Error> {
        Cli::try_parse_from(std::iter::once("cargo-uk").chain(line.split_whitespace()))
            .map(|cli| cli.command)
    }

    fn error_kind(line: &str) -> ErrorKind {
        parse(line).expect_err(line).kind()
    }

    #[test]
    fn the_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn run_an_example_with_options_and_kernel_args() {
        let Ok(Commands::Run(run)) = parse(
            "run hello --accel tcg --machine=q35 --memory 64 --cpus 2 --timeout 5 --timeline --boot multiboot --qemu-arg -smp --qemu-arg 2 -q -- a -b",
        ) else {
            panic!("run parses")
        };
        assert_eq!(run.app.target.as_deref(), Some("hello"));
        assert_eq!(run.kernel_args, ["a", "-b"]);
        let expected = BootOptions {
            accel: AccelRequest::Tcg,
            machine: Machine::Q35,
            memory_mib: 64,
            cpus: Some(2),
            timeout: Duration::from_secs(5),
            timeline: true,
            protocol: Protocol::Multiboot,
            qemu_args: vec!["-smp".into(), "2".into()],
            quiet: true,
            ..BootOptions::default()
        };
        assert_eq!(run.boot, expected);
    }

    #[test]
    fn the_defaults_are_the_documented_ones() {
        let options = BootOptions::default();
        assert_eq!(
            (
                options.vmm,
                options.accel,
                options.machine,
                options.protocol
            ),
            (
                Vmm::Qemu,
                AccelRequest::Auto,
                Machine::Microvm,
                Protocol::Pvh
            )
        );
        assert_eq!(options.memory_mib, 32);
        assert_eq!(options.timeout, Duration::from_secs(30));
        assert_eq!(options.network(), None);
    }

    #[test]
    fn network_options() {
        let network = |line: &str| match parse(line).unwrap() {
            Commands::Run(run) => run.boot.network(),
            other => panic!("{other:?}"),
        };
        assert_eq!(network("run http"), None);
        assert_eq!(
            network("run http --forward 8080:80 --forward=udp:7007:7"),
            Some(NetChoice::Forward(vec![
                "8080:80".parse::<Forward>().unwrap(),
                "udp:7007:7".parse().unwrap()
            ]))
        );
        assert_eq!(network("run http --tap"), Some(NetChoice::Tap));
        assert_eq!(network("run http --no-net"), Some(NetChoice::Off));
        assert_eq!(
            error_kind("run http --tap --no-net"),
            ErrorKind::ArgumentConflict
        );
        assert_eq!(
            error_kind("run http --forward 1:2 --tap"),
            ErrorKind::ArgumentConflict
        );
        assert_eq!(
            error_kind("run http --forward 80"),
            ErrorKind::ValueValidation
        );
        assert_eq!(error_kind("run http --tap=1"), ErrorKind::TooManyValues);
    }

    #[test]
    fn run_targets() {
        let Ok(Commands::Run(run)) = parse("run --manifest-path app/Cargo.toml -p app") else {
            panic!("run parses")
        };
        assert_eq!(run.app.manifest_path, Some(PathBuf::from("app/Cargo.toml")));
        assert_eq!(run.app.package.as_deref(), Some("app"));
        assert_eq!(error_kind("run"), ErrorKind::MissingRequiredArgument);
        assert_eq!(error_kind("run a b"), ErrorKind::UnknownArgument);
        assert_eq!(error_kind("run hello --frob"), ErrorKind::UnknownArgument);
        assert_eq!(error_kind("run hello -p x"), ErrorKind::ArgumentConflict);
        assert_eq!(error_kind("run -p x"), ErrorKind::MissingRequiredArgument);
        assert_eq!(
            error_kind("run hello --manifest-path a/Cargo.toml"),
            ErrorKind::ArgumentConflict
        );
        assert_eq!(
            error_kind("run hello --accel fast"),
            ErrorKind::InvalidValue
        );
        assert_eq!(error_kind("run hello --timeout"), ErrorKind::InvalidValue);
        assert_eq!(
            error_kind("run hello --memory 1"),
            ErrorKind::ValueValidation
        );
    }

    #[test]
    fn a_timeout_is_a_positive_number_of_seconds_up_to_a_year() {
        for bad in ["-1", "0", "nan", "inf", "1e30", "18446744073709551615", "x"] {
            assert!(parse_secs(bad).is_err(), "{bad}");
            let Ok(Commands::Boot(boot)) = parse(&format!("boot k.elf --timeout={bad}")) else {
                panic!("everything after the ELF is the kernel's")
            };
            assert_eq!(
                boot.command_line,
                ["k.elf".to_string(), format!("--timeout={bad}")]
            );
            assert_eq!(
                error_kind(&format!("boot --timeout={bad} k.elf")),
                ErrorKind::ValueValidation,
                "{bad}"
            );
        }
        assert_eq!(parse_secs("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_secs("31536000"), Ok(Duration::from_secs(31_536_000)));
    }

    #[test]
    fn boot_passes_everything_after_the_elf_to_the_kernel() {
        // What cargo's runner setting produces for `cargo run -- --x y`.
        let Ok(Commands::Boot(boot)) = parse("boot --timeout 3 target/app --x y") else {
            panic!("boot parses")
        };
        assert_eq!(boot.command_line, ["target/app", "--x", "y"]);
        assert_eq!(boot.boot.timeout, Duration::from_secs(3));
        let Ok(Commands::Boot(boot)) = parse("boot k.elf --timeout 5 a") else {
            panic!("boot parses")
        };
        assert_eq!(boot.command_line, ["k.elf", "--timeout", "5", "a"]);
        assert_eq!(boot.boot.timeout, Duration::from_secs(30));
        assert_eq!(error_kind("boot"), ErrorKind::MissingRequiredArgument);
    }

    #[test]
    fn the_monitor_refuses_tcg_and_the_pc_machines_in_one_sentence() {
        let conflict = |line: &str| match parse(line).unwrap() {
            Commands::Run(run) => run.boot.monitor_conflict(),
            other => panic!("{other:?}"),
        };
        assert_eq!(conflict("run hello --vmm monitor"), None);
        assert_eq!(conflict("run hello --accel tcg"), None);
        let tcg = conflict("run hello --vmm monitor --accel tcg").unwrap();
        assert!(tcg.contains("--accel tcg") && !tcg.contains('\n'), "{tcg}");
        let q35 = conflict("run hello --machine q35 --vmm monitor").unwrap();
        assert!(q35.contains("--machine q35"), "{q35}");
        assert!(conflict("run hello --machine pc --vmm monitor").is_some());
    }

    #[test]
    fn other_commands() {
        let Ok(Commands::Test(test)) = parse("test -- -p runner") else {
            panic!("test parses")
        };
        assert_eq!(
            (test.no_lint, test.cargo_args),
            (false, vec!["-p".into(), "runner".into()])
        );
        let Ok(Commands::New(new)) = parse("new ../app --name=my-app") else {
            panic!("new parses")
        };
        assert_eq!(
            (new.path, new.name),
            ("../app".into(), Some("my-app".into()))
        );
        let Ok(Commands::Bench(bench)) = parse("bench --runs 3 --floor f.elf --vmm both") else {
            panic!("bench parses")
        };
        assert_eq!(
            (bench.runs, bench.floor, bench.vmm),
            (3, Some("f.elf".into()), BenchVmm::Both)
        );
        assert_eq!(error_kind("bench --runs 0"), ErrorKind::ValueValidation);
        assert!(matches!(
            parse("setup -q"),
            Ok(Commands::Setup(SetupArgs { quiet: true }))
        ));
        assert_eq!(error_kind("frob"), ErrorKind::InvalidSubcommand);
        assert_eq!(error_kind("--version"), ErrorKind::DisplayVersion);
        assert_eq!(error_kind("run --help"), ErrorKind::DisplayHelp);
    }

    #[test]
    fn debugging_options() {
        let boot = |line: &str| match parse(line).unwrap() {
            Commands::Run(run) => run.boot,
            other => panic!("{other:?}"),
        };
        assert_eq!(boot("run hello --gdb").gdb, Some(1234));
        assert_eq!(boot("run hello --gdb 4000").gdb, Some(4000));
        assert_eq!(boot("run hello").gdb, None);
        let options =
            boot("run hello --timeline-svg t.svg --serial-log s.txt --log net=debug,info");
        assert_eq!(options.timeline_svg, Some(PathBuf::from("t.svg")));
        assert_eq!(options.serial_log, Some(PathBuf::from("s.txt")));
        assert_eq!(options.log.as_deref(), Some("net=debug,info"));
        assert_eq!(
            error_kind("run hello --gdb --tap"),
            ErrorKind::ArgumentConflict
        );
        assert_eq!(error_kind("run hello --gdb x"), ErrorKind::ValueValidation);

        let Ok(Commands::Size(size)) = parse("size hello --top 5") else {
            panic!("size parses")
        };
        assert_eq!((size.app.target.as_deref(), size.top), (Some("hello"), 5));
        assert_eq!(error_kind("size"), ErrorKind::MissingRequiredArgument);
        // The same target rules as `run`'s (one `TargetArgs`).
        let Ok(Commands::Size(size)) = parse("size --manifest-path app/Cargo.toml -p app") else {
            panic!("size parses an app's manifest")
        };
        assert_eq!(size.app.package.as_deref(), Some("app"));
        assert_eq!(error_kind("size hello -p x"), ErrorKind::ArgumentConflict);
        assert_eq!(error_kind("size -p x"), ErrorKind::MissingRequiredArgument);
    }

    #[test]
    fn a_near_miss_gets_a_suggestion_and_the_name_users_type() {
        let message = parse("bot k.elf").unwrap_err().render().to_string();
        assert!(
            message.contains("similar subcommand exists: 'boot'"),
            "{message}"
        );
        let usage = Cli::command().render_usage().to_string();
        assert!(usage.contains("cargo uk <COMMAND>"), "{usage}");
    }

    #[test]
    fn density_and_its_workers_share_one_definition() {
        let Ok(Commands::Density(options)) = parse("density --max 5 --hold 0.5 --memory 8 -q")
        else {
            panic!("density parses")
        };
        assert_eq!(options.max, 5);
        assert_eq!(options.hold, Duration::from_millis(500));
        assert_eq!(options.memory_mib, 8);
        assert!(options.quiet);
        assert_eq!(options.image, "empty");
        assert_eq!(error_kind("density --max 0"), ErrorKind::ValueValidation);
        assert_eq!(
            error_kind("density --time-limit 1e30"),
            ErrorKind::ValueValidation
        );

        let worker = crate::density::WorkerOptions {
            image: "/tmp/k.elf".into(),
            count: 7,
            memory_mib: 4,
            parallel: 2,
            time_limit: Duration::from_millis(1500),
            reserve_mib: 512,
        };
        let line = format!("density-worker {}", worker.args().join(" "));
        let Ok(Commands::DensityWorker(parsed)) = parse(&line) else {
            panic!("{line} parses")
        };
        assert_eq!(parsed, worker);
    }

    #[test]
    fn an_apps_cargo_toml_sets_options_the_command_line_does_not() {
        let app = tempfile::tempdir().unwrap();
        std::fs::create_dir(app.path().join("src")).unwrap();
        std::fs::write(app.path().join("src/main.rs"), "fn main() {}\n").unwrap();
        let manifest = app.path().join("Cargo.toml");
        std::fs::write(
            &manifest,
            "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n\
             [package.metadata.unikernel]\ntimeout = 5\nmemory = 64\nforward = [\"9000:80\", \"udp:9001:7\"]\n\n\
             [workspace]\n",
        )
        .unwrap();
        let with_app = |line: &str| {
            let args: Vec<OsString> = std::iter::once("cargo-uk")
                .chain(line.split_whitespace())
                .map(OsString::from)
                .collect();
            let cli = Cli::try_parse_from(&args).expect(line);
            with_app_settings(cli, &args).map(|cli| cli.command)
        };
        let manifest = manifest.display();
        let Ok(Commands::Boot(boot)) = with_app(&format!(
            "boot --manifest-path {manifest} --timeout 7 k.elf --memory 1"
        )) else {
            panic!("boot parses")
        };
        // The command line wins; everything after the ELF is the app's.
        assert_eq!(boot.boot.timeout, Duration::from_secs(7));
        assert_eq!(boot.boot.memory_mib, 64);
        assert_eq!(boot.boot.forwards.len(), 2);
        assert_eq!(boot.command_line, ["k.elf", "--memory", "1"]);
        assert!(boot.boot.app_manifest.is_some());
        let Ok(Commands::Boot(boot)) =
            with_app(&format!("boot --manifest-path {manifest} --no-net k.elf"))
        else {
            panic!("boot parses")
        };
        assert!(boot.boot.no_net && boot.boot.forwards.is_empty());
        let Ok(Commands::Run(run)) = with_app(&format!("run --manifest-path {manifest}")) else {
            panic!("run parses")
        };
        assert_eq!(run.boot.timeout, Duration::from_secs(5));
        // Messages for `cargo uk run` speak of its own options.
        assert_eq!(run.boot.app_manifest, None);
        // Without the table, nothing changes.
        let Ok(Commands::Boot(boot)) = with_app("boot k.elf") else {
            panic!("boot parses")
        };
        assert_eq!(boot.boot, BootOptions::default());
    }
}
