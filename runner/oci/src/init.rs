//! The container's process: waits until `start`, then boots the guest with the container's
//! stdio as its console and exits with the guest's status.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::state::START_FIFO;

/// What `create` decided and the container's process boots: `launch.json` in the state
/// directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Launch {
    pub kernel: PathBuf,
    pub memory_mib: u32,
    pub args: Vec<String>,
    pub kernel_flags: Vec<String>,
    pub initrd: Option<PathBuf>,
    /// The network namespace and the tap in it.
    pub net: Option<(PathBuf, String)>,
    pub vmm: Vmm,
    /// CPUs the VM's threads may run on (config.json's `linux.resources.cpu.cpus`).
    pub cpus: Vec<usize>,
}

/// Which VMM boots the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Vmm {
    Monitor,
    Qemu,
}

/// The file of [`Launch`] in the state directory.
pub const LAUNCH: &str = "launch.json";

/// A guest runs until it exits or is killed; the runner's boots want a deadline.
const NO_DEADLINE: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// Runs the container's process; returns its exit status.
pub fn run(state_dir: &Path) -> i32 {
    match boot(state_dir) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("uk-runtime: {message}");
            let _ = std::io::stderr().flush();
            1
        }
    }
}

fn boot(state_dir: &Path) -> crate::Result<i32> {
    let path = state_dir.join(LAUNCH);
    let launch: Launch = std::fs::read(&path)
        .map_err(|err| err.to_string())
        .and_then(|bytes| serde_json::from_slice(&bytes).map_err(|err| err.to_string()))
        .map_err(|err| format!("cannot read {}: {err}", path.display()))?;
    wait_for_start(&state_dir.join(START_FIFO))?;
    if !launch.cpus.is_empty() {
        let mut set = rustix::thread::CpuSet::new();
        for &cpu in &launch.cpus {
            set.set(cpu);
        }
        rustix::thread::sched_setaffinity(None, &set)
            .map_err(|err| format!("cannot pin the VM to CPUs {:?}: {err}", launch.cpus))?;
    }
    let mut boot = runner::Boot::new(&launch.kernel)
        .memory(launch.memory_mib)
        .timeout(NO_DEADLINE)
        .echo(true)
        .args(launch.args.iter().cloned());
    for flag in &launch.kernel_flags {
        boot = boot.kernel_flag(flag.clone());
    }
    if let Some(initrd) = &launch.initrd {
        boot = boot.initrd(initrd);
    }
    match launch.vmm {
        Vmm::Monitor => {
            boot = boot.vmm(runner::monitor::Vmm::Monitor);
            if let Some((netns, tap)) = &launch.net {
                boot = boot.monitor_net(unikernel_vmm::NetBackend::Tap {
                    ifname: tap.clone(),
                    netns: Some(netns.clone()),
                });
            }
        }
        Vmm::Qemu => {
            if let Some((netns, tap)) = &launch.net {
                // QEMU opens the tap in its own namespace: enter the container's first.
                let file = std::fs::File::open(netns)
                    .map_err(|err| format!("cannot open {}: {err}", netns.display()))?;
                rustix::thread::move_into_link_name_space(
                    std::os::fd::AsFd::as_fd(&file),
                    Some(rustix::thread::LinkNameSpaceType::Network),
                )
                .map_err(|err| format!("cannot enter {}: {err}", netns.display()))?;
                let network = runner::net::Network::Tap {
                    netns: String::new(),
                    ifname: tap.clone(),
                };
                let cpus = boot.vcpus();
                for arg in runner::net::qemu_args(runner::Machine::Microvm, &network, cpus) {
                    boot = boot.qemu_arg(arg);
                }
            }
        }
    }
    let outcome = boot.run().map_err(|err| err.to_string())?;
    // The guest's output is on stdout already; how it ended (a fault's report) goes to
    // stderr, into the container's log.
    if let Some(summary) = outcome.summary() {
        eprintln!("uk-runtime: {summary}");
    }
    // A fault's backtrace with function names, file and line: the image keeps its symbols
    // and debug info for this.
    if runner::symbolize::has_report(&outcome.serial)
        && let Ok(symbolizer) = runner::symbolize::Symbolizer::open(&launch.kernel)
    {
        eprint!("{}", symbolizer.render(&outcome.serial).unwrap_or_default());
    }
    let _ = std::io::stdout().flush();
    Ok(outcome.exit_code())
}

/// Blocks until `start` opens the fifo for reading, then tells it so with one byte.
fn wait_for_start(fifo: &Path) -> crate::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(fifo)
        .map_err(|err| format!("cannot open {}: {err}", fifo.display()))?;
    file.write_all(b"0")
        .map_err(|err| format!("cannot write {}: {err}", fifo.display()))
}
