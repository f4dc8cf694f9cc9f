//! `uk-runtime`: an OCI runtime that boots the images `cargo uk pkg` makes as VMs, with
//! runc's command line, so that podman (`--runtime`), containerd (the runc v2 shim's
//! `BinaryName`, `ctr run --runc-binary`) and Kubernetes (a RuntimeClass) run unikernels
//! as containers.
//!
//! A container whose rootfs holds `/unikernel/image.json` is a unikernel: `create` starts
//! the container's process (this binary's hidden `init`), which waits on a fifo until
//! `start`, then boots the kernel on the project's KVM monitor (QEMU where KVM is
//! unusable) with the container's stdio as the console, and exits with the guest's
//! status. Every other container (the pod sandbox's pause container, say) and every
//! command on a container this runtime did not create go to runc, arguments unchanged.

#![forbid(unsafe_code)]

mod commands;
mod init;
mod network;
mod state;

use std::ffi::OsString;
use std::io::Write as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use liboci_cli::{CommonCmd, GlobalOpts, StandardCmd};

/// Errors are sentences for the log and stderr.
pub type Result<T> = std::result::Result<T, String>;

/// Where state lives without `--root` (runc's is /run/runc).
const DEFAULT_ROOT: &str = "/run/uk-runtime";
/// The runtime non-unikernel containers go to; `UK_RUNTIME_RUNC` names another.
const RUNC: &str = "runc";

#[derive(Debug, Parser)]
#[command(
    name = "uk-runtime",
    version,
    about = "An OCI runtime that boots unikernel images as VMs; other containers go to runc"
)]
struct Cli {
    #[command(flatten)]
    global: GlobalOpts,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    #[command(flatten)]
    Standard(StandardCmd),
    #[command(flatten)]
    Common(Box<CommonCmd>),
    /// The container's process (started by `create`, not by people)
    #[command(hide = true)]
    Init { state_dir: PathBuf },
}

/// Where errors go: stderr, and the `--log` file as runc writes it (one JSON object per
/// line with `--log-format json`, which containerd's shim reads back).
#[derive(Debug, Clone)]
pub struct Log {
    path: Option<PathBuf>,
    json: bool,
}

impl Log {
    pub fn error(&self, message: &str) {
        eprintln!("uk-runtime: {message}");
        self.write("error", message);
    }

    pub fn info(&self, message: &str) {
        self.write("info", message);
    }

    fn write(&self, level: &str, message: &str) {
        let Some(path) = &self.path else { return };
        let time = state::now_rfc3339();
        let line = if self.json {
            serde_json::json!({"level": level, "msg": message, "time": time}).to_string()
        } else {
            format!("time=\"{time}\" level={level} msg=\"{message}\"")
        };
        if let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(file, "{line}");
        }
    }
}

fn main() {
    let args: Vec<OsString> = std::env::args_os().collect();
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(err) => err.exit(),
    };
    let log = Log {
        path: cli.global.log.clone(),
        json: cli.global.log_format.as_deref() == Some("json"),
    };
    let root = cli
        .global
        .root
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT));
    let code = match run(cli.command, &root, &log, &args) {
        Ok(code) => code,
        Err(message) => {
            log.error(&message);
            1
        }
    };
    std::process::exit(code);
}

fn run(command: Command, root: &Path, log: &Log, args: &[OsString]) -> Result<i32> {
    use commands as c;
    let ours = |id: &str| state::read(root, id);
    match command {
        Command::Init { state_dir } => Ok(init::run(&state_dir)),
        Command::Standard(StandardCmd::Create(create)) => c::create(&create, root, log, args),
        Command::Standard(StandardCmd::Start(start)) => match ours(&start.container_id) {
            Some(record) => c::start(&record, root),
            None => delegate(args),
        },
        Command::Standard(StandardCmd::State(query)) => match ours(&query.container_id) {
            Some(record) => c::state(&record, root),
            None => delegate(args),
        },
        Command::Standard(StandardCmd::Kill(kill)) => match ours(&kill.container_id) {
            Some(record) => c::kill(&record, root, &kill.signal),
            None => delegate(args),
        },
        Command::Standard(StandardCmd::Delete(delete)) => match ours(&delete.container_id) {
            Some(record) => c::delete(&record, root, delete.force),
            None => delegate(args),
        },
        Command::Common(common) => match *common {
            CommonCmd::Ps(ps) => match ours(&ps.container_id) {
                Some(record) => c::ps(&record, &ps.format),
                None => delegate(args),
            },
            CommonCmd::Features(_) => c::features(),
            // exec, pause, update, ...: runc's containers only (for ours runc says there
            // is no such container).
            _ => delegate(args),
        },
    }
}

/// Replaces this process with runc, given the same arguments.
pub fn delegate(args: &[OsString]) -> Result<i32> {
    let runc = std::env::var_os("UK_RUNTIME_RUNC").unwrap_or_else(|| RUNC.into());
    let err = std::process::Command::new(&runc).args(&args[1..]).exec();
    Err(format!(
        "cannot run {} for a container that is not a unikernel: {err}",
        Path::new(&runc).display()
    ))
}
