//! Nothing the runner starts outlives it.
//!
//! - Children (QEMU) are started through `setpriv --pdeathsig KILL` (util-linux), so the
//!   kernel kills them when the runner dies, even by SIGKILL.
//! - SIGTERM, SIGINT and SIGHUP are handled: the runner kills its children, deletes its
//!   network namespaces and temporary files, and exits with 128 + the signal's number.
//! - What only a crash can leave (a namespace, a temporary image copy after a SIGKILL)
//!   carries the runner's pid and that process's start time in its name
//!   (`uk-<pid>-<start>`, `cargo-uk-<pid>-<start>-*`): the next run, or `cargo uk clean`,
//!   removes those whose process is gone. A pid alone could be reused; pid and start time
//!   together name one process.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

/// The prefix of the runner's temporary files.
pub const TEMP_PREFIX: &str = "cargo-uk-";
/// The prefix of the runner's network namespaces.
pub const NETNS_PREFIX: &str = "uk-";
/// Where `ip netns` keeps its namespaces.
const NETNS_DIR: &str = "/run/netns";

/// What a signal must clean up.
#[derive(Debug, Default)]
struct Registry {
    children: BTreeMap<u64, u32>,
    netns: BTreeMap<u64, String>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    children: BTreeMap::new(),
    netns: BTreeMap::new(),
});
static NEXT: AtomicU64 = AtomicU64::new(0);

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    REGISTRY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A child process or a namespace a signal must clean up; dropping it says it is gone.
#[derive(Debug)]
pub struct Registered(u64);

impl Drop for Registered {
    fn drop(&mut self) {
        let mut registry = registry();
        registry.children.remove(&self.0);
        registry.netns.remove(&self.0);
    }
}

/// Registers a child to kill on SIGTERM/SIGINT.
pub fn child(pid: u32) -> Registered {
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    registry().children.insert(id, pid);
    Registered(id)
}

/// Registers a network namespace to delete on SIGTERM/SIGINT.
pub fn netns(name: &str) -> Registered {
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    registry().netns.insert(id, name.to_string());
    Registered(id)
}

/// This process's tag: `<pid>-<start time in clock ticks since boot>`.
pub fn instance_tag() -> String {
    static TAG: OnceLock<String> = OnceLock::new();
    TAG.get_or_init(|| {
        let pid = std::process::id();
        format!("{pid}-{}", start_time(pid).unwrap_or(0))
    })
    .clone()
}

/// The start time of process `pid` (field 22 of /proc/<pid>/stat), in clock ticks.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name, which is in parentheses and may hold spaces;
    // the start time is the 20th of them.
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(19)?
        .parse()
        .ok()
}

/// Whether the tag `<pid>-<start>` names a process that still runs.
fn is_alive(tag: &str) -> bool {
    let Some((pid, start)) = tag.split_once('-') else {
        return true;
    };
    match (pid.parse::<u32>(), start.parse::<u64>()) {
        (Ok(pid), Ok(start)) => start_time(pid) == Some(start),
        // Not a name of ours: leave it alone.
        _ => true,
    }
}

/// The `<pid>-<start>` tag at the start of `rest` (what follows a prefix), if any.
fn tag_of(rest: &str) -> Option<&str> {
    let mut dashes = rest.match_indices('-').map(|(at, _)| at);
    let first = dashes.next()?;
    let end = dashes.next().unwrap_or(rest.len());
    let tag = &rest[..end];
    let (pid, start) = (&tag[..first], &tag[first + 1..]);
    (!pid.is_empty()
        && !start.is_empty()
        && pid.bytes().all(|b| b.is_ascii_digit())
        && start.bytes().all(|b| b.is_ascii_digit()))
    .then_some(tag)
}

/// A network namespace name for this process: `uk-<pid>-<start>`.
pub fn netns_name() -> String {
    format!("{NETNS_PREFIX}{}", instance_tag())
}

/// A temporary file of this process, removed when dropped (and by [`sweep`] after a
/// crash): `cargo-uk-<pid>-<start>-<random><suffix>` in the temporary directory.
pub fn temp_file(suffix: &str) -> std::io::Result<tempfile::NamedTempFile> {
    tempfile::Builder::new()
        .prefix(&format!("{TEMP_PREFIX}{}-", instance_tag()))
        .suffix(suffix)
        .tempfile()
}

/// What [`sweep`] removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Swept {
    pub files: Vec<PathBuf>,
    pub netns: Vec<String>,
}

/// Removes what runners that are gone left behind: temporary files in `temp_dir` and
/// network namespaces (where this process may delete them).
pub fn sweep() -> Swept {
    let mut swept = Swept {
        files: sweep_files(&std::env::temp_dir()),
        netns: Vec::new(),
    };
    if let Ok(entries) = std::fs::read_dir(NETNS_DIR) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(tag) = name.strip_prefix(NETNS_PREFIX).and_then(tag_of)
                && !is_alive(tag)
                && delete_netns(&name)
            {
                swept.netns.push(name);
            }
        }
    }
    swept
}

/// Removes the runner's temporary files in `dir` whose process is gone.
pub fn sweep_files(dir: &Path) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return removed;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if let Some(tag) = name.strip_prefix(TEMP_PREFIX).and_then(tag_of)
            && !is_alive(tag)
            && std::fs::remove_file(entry.path()).is_ok()
        {
            removed.push(entry.path());
        }
    }
    removed
}

/// `ip netns del <name>`; whether it worked.
pub fn delete_netns(name: &str) -> bool {
    Command::new("ip")
        .args(["netns", "del", name])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// A command for `program` that the kernel kills when the runner dies: run through
/// `setpriv --pdeathsig KILL` where util-linux's setpriv is installed (it sets the
/// parent-death signal, then executes `program`, keeping its pid).
pub fn tied_command(program: impl AsRef<OsStr>) -> Command {
    static SETPRIV: OnceLock<Option<PathBuf>> = OnceLock::new();
    let setpriv = SETPRIV.get_or_init(|| {
        ["/usr/bin/setpriv", "/bin/setpriv"]
            .into_iter()
            .map(PathBuf::from)
            .find(|path| path.exists())
    });
    match setpriv {
        Some(setpriv) => {
            let mut command = Command::new(setpriv);
            command.args([
                OsStr::new("--pdeathsig"),
                OsStr::new("KILL"),
                OsStr::new("--"),
            ]);
            command.arg(program);
            command
        }
        None => Command::new(program),
    }
}

/// The words of [`tied_command`] before the program, for messages.
pub fn tied_prefix() -> Vec<OsString> {
    let command = tied_command("x");
    if command.get_program() == "x" {
        Vec::new()
    } else {
        std::iter::once(command.get_program().to_os_string())
            .chain(command.get_args().map(OsStr::to_os_string))
            .take_while(|arg| arg != "x")
            .collect()
    }
}

/// Handles SIGTERM, SIGINT and SIGHUP for the rest of the process's life: kill the
/// registered children, delete the registered namespaces, then exit with 128 + the
/// signal (temporary files are removed by the exit's unlink below, or by the next
/// [`sweep`]). Also sweeps what earlier runners left.
pub fn install_signal_handlers() {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP]) else {
        return;
    };
    let _ = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                clean_up_now();
                std::process::exit(128 + signal);
            }
        });
}

/// Kills the registered children and deletes the registered namespaces and this
/// process's temporary files.
pub fn clean_up_now() {
    let registry = registry();
    for &pid in registry.children.values() {
        if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
    }
    for name in registry.netns.values() {
        delete_netns(name);
    }
    remove_own_files(&std::env::temp_dir());
}

/// Removes this process's temporary files in `dir`.
fn remove_own_files(dir: &Path) {
    let own = format!("{TEMP_PREFIX}{}-", instance_tag());
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(&own) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_pid_and_start_time() {
        assert_eq!(tag_of("12-345"), Some("12-345"));
        assert_eq!(tag_of("12-345-abc.pvh"), Some("12-345"));
        for bad in ["", "12", "12-", "-3", "a-1", "1-b-c", "net-1-2"] {
            assert_eq!(tag_of(bad), None, "{bad}");
        }
        let own = instance_tag();
        assert!(is_alive(&own), "{own}");
        let pid = std::process::id();
        assert!(!is_alive(&format!("{pid}-1")), "same pid, other start");
        assert!(is_alive("not-ours"));
    }

    #[test]
    fn a_dead_runners_files_are_swept_and_a_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        // A process that has exited: its pid with a start time no process has.
        let dead = dir
            .path()
            .join(format!("{TEMP_PREFIX}{}-1-x.pvh", u32::MAX / 2));
        let live = dir
            .path()
            .join(format!("{TEMP_PREFIX}{}-x.pvh", instance_tag()));
        let other = dir.path().join("runner-notes.txt");
        for path in [&dead, &live, &other] {
            std::fs::write(path, b"x").unwrap();
        }
        assert_eq!(sweep_files(dir.path()), std::slice::from_ref(&dead));
        assert!(!dead.exists() && live.exists() && other.exists());
        remove_own_files(dir.path());
        assert!(!live.exists() && other.exists());
    }

    #[test]
    fn temp_files_carry_the_tag_and_go_when_dropped() {
        let file = temp_file(".pvh").unwrap();
        let path = file.path().to_path_buf();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with(&format!("{TEMP_PREFIX}{}-", instance_tag())),
            "{name}"
        );
        drop(file);
        assert!(!path.exists());
    }
}
