//! The commands on a unikernel container, as runc does them.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Read as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use liboci_cli::Create;
use oci_spec::runtime::{ContainerState, LinuxNamespaceType, Spec, StateBuilder};
use runner::pkg::ImageMetadata;
use rustix::process::{Pid, Signal};

use crate::init::{LAUNCH, Launch, Vmm};
use crate::state::{self, Record, START_FIFO, Status};
use crate::{Log, Result, network};

/// Annotations that override the image's metadata.
pub const ANNOTATION_MEMORY: &str = "org.unikernel.memory";
pub const ANNOTATION_VMM: &str = "org.unikernel.vmm";
/// Host memory the VMM itself takes besides the guest's (measured: see the README).
const VMM_OVERHEAD_MIB: u64 = 8;
/// How long `start` waits for the container's process to take the fifo, and `delete
/// --force` for it to die.
const WAIT: Duration = Duration::from_secs(10);

/// `create`: reads the bundle, hands a non-unikernel to runc, prepares the network and
/// starts the container's process, held until `start`.
pub fn create(create: &Create, root: &Path, log: &Log, args: &[OsString]) -> Result<i32> {
    let bundle = std::fs::canonicalize(&create.bundle)
        .map_err(|err| format!("bundle {}: {err}", create.bundle.display()))?;
    let spec = Spec::load(bundle.join("config.json"))
        .map_err(|err| format!("{}: {err}", bundle.join("config.json").display()))?;
    let rootfs = spec
        .root()
        .as_ref()
        .map_or_else(|| bundle.join("rootfs"), |root| bundle.join(root.path()));
    let Some(metadata) = ImageMetadata::read(&rootfs).map_err(|err| err.to_string())? else {
        return crate::delegate(args);
    };
    let id = &create.container_id;
    let dir = state::dir(root, id);
    if dir.exists() {
        return Err(format!("container with id {id} already exists"));
    }
    let annotations: BTreeMap<String, String> = spec
        .annotations()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let memory_mib = memory(&metadata, &annotations, &spec)?;
    let cpus = cpus(&spec)?;
    let vmm = vmm(&annotations)?;
    let process = spec.process().as_ref();
    let terminal = process.is_some_and(|process| process.terminal().unwrap_or(false));
    if terminal && create.console_socket.is_none() {
        return Err("config.json asks for a terminal but no --console-socket was given".into());
    }
    // The app's arguments: the container's command after the kernel, else the image's.
    let args_given: Vec<String> = process
        .and_then(|process| process.args().clone())
        .unwrap_or_default()
        .into_iter()
        .skip(1)
        .collect();
    let app_args = if args_given.is_empty() {
        metadata.args.clone()
    } else {
        args_given
    };

    std::fs::create_dir_all(&dir)
        .map_err(|err| format!("cannot create {}: {err}", dir.display()))?;
    let cleanup_dir = |err: String| {
        let _ = std::fs::remove_dir_all(&dir);
        err
    };
    let (netns, own_netns) = match &metadata.network {
        None => (None, false),
        Some(needs) => {
            let named = spec.linux().as_ref().and_then(|linux| {
                linux.namespaces().as_ref().and_then(|namespaces| {
                    namespaces
                        .iter()
                        .find(|ns| ns.typ() == LinuxNamespaceType::Network)
                        .and_then(|ns| ns.path().clone())
                })
            });
            let (netns, own) = match named {
                Some(path) => (path, false),
                // A new namespace without a name, or the host's: the guest gets one of
                // its own rather than a tap among the host's interfaces.
                None => (network::create_own(id).map_err(cleanup_dir)?, true),
            };
            if let Err(err) = network::set_up(&netns, needs) {
                network::tear_down(&netns);
                if own {
                    network::delete_own(id);
                }
                return Err(cleanup_dir(format!(
                    "cannot give the guest the container's network: {err}"
                )));
            }
            (Some(netns), own)
        }
    };
    let undo = |err: String| {
        if let Some(netns) = &netns {
            network::tear_down(netns);
        }
        if own_netns {
            network::delete_own(id);
        }
        cleanup_dir(err)
    };

    let initrd = match &metadata.files {
        Some(files) => {
            let folder = rootfs.join(files.trim_start_matches('/'));
            let path = dir.join("initrd.cpio");
            let file = std::fs::File::create(&path)
                .map_err(|err| undo(format!("cannot create {}: {err}", path.display())))?;
            runner::disk::write_archive(&folder, file).map_err(|err| undo(err.to_string()))?;
            Some(path)
        }
        None => None,
    };
    let launch = Launch {
        kernel: rootfs.join(metadata.kernel.trim_start_matches('/')),
        memory_mib,
        args: app_args,
        kernel_flags: metadata.kernel_flags.clone(),
        initrd,
        net: netns.clone().map(|netns| (netns, network::TAP.to_string())),
        vmm,
        cpus,
    };
    let launch_path = dir.join(LAUNCH);
    std::fs::write(
        &launch_path,
        serde_json::to_vec_pretty(&launch).expect("plain data"),
    )
    .map_err(|err| undo(format!("cannot write {}: {err}", launch_path.display())))?;
    let fifo = dir.join(START_FIFO);
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
    )
    .map_err(|err| undo(format!("cannot create {}: {err}", fifo.display())))?;

    // The container's process: this binary's `init`, with our stdio (the container's), or
    // a new terminal whose other end goes to the console socket.
    let exe = std::env::current_exe().map_err(|err| undo(format!("cannot find myself: {err}")))?;
    let mut command = Command::new(exe);
    command.arg("init").arg(&dir).current_dir(&dir);
    if terminal && let Some(socket) = &create.console_socket {
        let console = console(socket).map_err(|err| undo(format!("console: {err}")))?;
        let dup = |fd: &std::os::fd::OwnedFd| fd.try_clone().map(std::process::Stdio::from);
        let (stdin, stdout) = (dup(&console), dup(&console));
        let (stdin, stdout) = stdin
            .and_then(|stdin| stdout.map(|stdout| (stdin, stdout)))
            .map_err(|err| undo(format!("console: {err}")))?;
        command
            .stdin(stdin)
            .stdout(stdout)
            .stderr(std::process::Stdio::from(console));
    }
    let child = command
        .spawn()
        .map_err(|err| undo(format!("cannot start the container's process: {err}")))?;
    let pid = child.id() as i32;
    // It outlives us: whoever started the runtime (conmon, the shim) reaps it.
    drop(child);
    let pid_start = state::process(pid).map_or(0, |(start, _)| start);
    let record = Record {
        id: id.clone(),
        bundle,
        rootfs,
        pid,
        pid_start,
        created: state::now_rfc3339(),
        annotations,
        netns: netns.clone(),
        own_netns,
        tap: metadata.network.is_some().then(|| network::TAP.to_string()),
    };
    state::write(root, &record).map_err(undo)?;
    if let Some(pid_file) = &create.pid_file {
        std::fs::write(pid_file, pid.to_string())
            .map_err(|err| format!("cannot write {}: {err}", pid_file.display()))?;
    }
    log.info(&format!("created {id}: pid {pid}, {launch:?}"));
    Ok(0)
}

/// A new pseudo-terminal: its controlling side is sent over the unix socket at `socket`
/// (as runc does for `--console-socket`), its terminal side returned for the container.
fn console(socket: &Path) -> Result<std::os::fd::OwnedFd> {
    use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
    use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
    use std::os::fd::AsFd as _;
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)
        .map_err(|err| format!("cannot open a pseudo-terminal: {err}"))?;
    grantpt(&master).map_err(|err| format!("grantpt: {err}"))?;
    unlockpt(&master).map_err(|err| format!("unlockpt: {err}"))?;
    let name = ptsname(&master, Vec::new()).map_err(|err| format!("ptsname: {err}"))?;
    let terminal = rustix::fs::open(
        name.as_c_str(),
        rustix::fs::OFlags::RDWR | rustix::fs::OFlags::NOCTTY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|err| format!("cannot open {name:?}: {err}"))?;
    let stream = std::os::unix::net::UnixStream::connect(socket)
        .map_err(|err| format!("cannot connect to {}: {err}", socket.display()))?;
    let fds = [master.as_fd()];
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    control.push(SendAncillaryMessage::ScmRights(&fds));
    // runc sends the terminal's name as the message.
    let name_bytes = name.to_bytes();
    rustix::net::sendmsg(
        &stream,
        &[std::io::IoSlice::new(name_bytes)],
        &mut control,
        SendFlags::empty(),
    )
    .map_err(|err| format!("cannot send the terminal to {}: {err}", socket.display()))?;
    Ok(terminal)
}

/// The guest's memory: the image's, or the `org.unikernel.memory` annotation's; refused
/// when it and the VMM do not fit in the container's memory limit.
fn memory(
    metadata: &ImageMetadata,
    annotations: &BTreeMap<String, String>,
    spec: &Spec,
) -> Result<u32> {
    let memory_mib = match annotations.get(ANNOTATION_MEMORY) {
        Some(value) => value
            .trim_end_matches("MiB")
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|&mib| mib >= 2)
            .ok_or_else(|| {
                format!("annotation {ANNOTATION_MEMORY}={value}: expected MiB (2 or more)")
            })?,
        None => metadata.memory_mib,
    };
    let limit = spec
        .linux()
        .as_ref()
        .and_then(|linux| linux.resources().as_ref())
        .and_then(|resources| resources.memory().as_ref())
        .and_then(|memory| memory.limit())
        .filter(|&limit| limit > 0);
    if let Some(limit) = limit {
        let needed = (u64::from(memory_mib) + VMM_OVERHEAD_MIB) << 20;
        if needed > limit as u64 {
            return Err(format!(
                "the memory limit ({} MiB) is below what the VM takes: {memory_mib} MiB of guest memory and {VMM_OVERHEAD_MIB} MiB for the VMM; raise the limit to {} MiB or set a smaller {ANNOTATION_MEMORY}",
                limit >> 20,
                needed >> 20
            ));
        }
    }
    Ok(memory_mib)
}

/// The CPUs the VM may use; a CPU quota below one CPU is refused (the VM has one vCPU and
/// the runtime sets no cgroup limits that would enforce a fraction).
fn cpus(spec: &Spec) -> Result<Vec<usize>> {
    let Some(cpu) = spec
        .linux()
        .as_ref()
        .and_then(|linux| linux.resources().as_ref())
        .and_then(|resources| resources.cpu().as_ref())
    else {
        return Ok(Vec::new());
    };
    if let (Some(quota), Some(period)) = (cpu.quota(), cpu.period())
        && quota > 0
        && (quota as u64) < period
    {
        return Err(format!(
            "a CPU quota of {quota} per {period} us (less than one CPU) is not enforced by uk-runtime: the VM has one vCPU; allow at least one CPU"
        ));
    }
    match cpu.cpus() {
        Some(list) if !list.is_empty() => parse_cpu_list(list),
        _ => Ok(Vec::new()),
    }
}

/// `0-2,5` as `[0, 1, 2, 5]`.
fn parse_cpu_list(list: &str) -> Result<Vec<usize>> {
    let bad = || format!("cpus {list}: expected a list like 0-2,5");
    let mut cpus = Vec::new();
    for part in list.split(',').map(str::trim) {
        match part.split_once('-') {
            Some((first, last)) => {
                let (first, last): (usize, usize) = (
                    first.parse().map_err(|_| bad())?,
                    last.parse().map_err(|_| bad())?,
                );
                cpus.extend(first..=last);
            }
            None => cpus.push(part.parse().map_err(|_| bad())?),
        }
    }
    Ok(cpus)
}

/// The monitor where KVM opens, else QEMU; `org.unikernel.vmm` chooses.
fn vmm(annotations: &BTreeMap<String, String>) -> Result<Vmm> {
    match annotations.get(ANNOTATION_VMM).map(String::as_str) {
        Some("monitor") => Ok(Vmm::Monitor),
        Some("qemu") => Ok(Vmm::Qemu),
        Some(other) => Err(format!(
            "annotation {ANNOTATION_VMM}={other}: expected monitor or qemu"
        )),
        None if unikernel_vmm::open_kvm().is_ok() => Ok(Vmm::Monitor),
        None => Ok(Vmm::Qemu),
    }
}

/// `start`: lets the container's process go on to boot the guest.
pub fn start(record: &Record, root: &Path) -> Result<i32> {
    match state::status(root, record) {
        Status::Created => {}
        status => {
            return Err(format!(
                "cannot start a container that is {}",
                status.as_str()
            ));
        }
    }
    let fifo = state::dir(root, &record.id).join(START_FIFO);
    // Opened without blocking: if the process died, the wait below ends it.
    let mut file = std::fs::File::from(
        rustix::fs::open(
            &fifo,
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map_err(|err| format!("cannot open {}: {err}", fifo.display()))?,
    );
    let deadline = Instant::now() + WAIT;
    let mut byte = [0u8; 1];
    loop {
        match file.read(&mut byte) {
            Ok(1) => break,
            Ok(_) => {}
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(err) => return Err(format!("cannot read {}: {err}", fifo.display())),
        }
        if !state::alive(record) {
            let _ = std::fs::remove_file(&fifo);
            return Err("the container's process exited before it started".into());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the container's process did not take {} within {} s",
                fifo.display(),
                WAIT.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    std::fs::remove_file(&fifo)
        .map_err(|err| format!("cannot remove {}: {err}", fifo.display()))?;
    Ok(0)
}

/// `state`: the JSON runc prints: the runtime spec's state and runc's `rootfs`, `created`
/// and `owner`.
pub fn state(record: &Record, root: &Path) -> Result<i32> {
    let status = state::status(root, record);
    let oci_status = match status {
        Status::Created => ContainerState::Created,
        Status::Running => ContainerState::Running,
        Status::Stopped => ContainerState::Stopped,
    };
    let state = StateBuilder::default()
        .version("1.0.2")
        .id(record.id.clone())
        .status(oci_status)
        .pid(if status == Status::Stopped {
            0
        } else {
            record.pid
        })
        .bundle(record.bundle.clone())
        .annotations(
            record
                .annotations
                .clone()
                .into_iter()
                .collect::<std::collections::HashMap<_, _>>(),
        )
        .build()
        .map_err(|err| err.to_string())?;
    let mut json = serde_json::to_value(&state).map_err(|err| err.to_string())?;
    json["rootfs"] = record.rootfs.display().to_string().into();
    json["created"] = record.created.clone().into();
    json["owner"] = "".into();
    println!(
        "{}",
        serde_json::to_string_pretty(&json).map_err(|err| err.to_string())?
    );
    Ok(0)
}

/// A signal by name (`SIGTERM`, `TERM`) or number.
pub fn parse_signal(name: &str) -> Result<Signal> {
    let name = name.trim();
    if let Ok(number) = name.parse::<i32>() {
        return Signal::from_named_raw(number).ok_or_else(|| format!("invalid signal {name}"));
    }
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    Ok(match bare {
        "TERM" => Signal::TERM,
        "KILL" => Signal::KILL,
        "INT" => Signal::INT,
        "HUP" => Signal::HUP,
        "QUIT" => Signal::QUIT,
        "USR1" => Signal::USR1,
        "USR2" => Signal::USR2,
        "STOP" => Signal::STOP,
        "CONT" => Signal::CONT,
        "WINCH" => Signal::WINCH,
        _ => return Err(format!("invalid signal {name}")),
    })
}

/// `kill`: signals the container's process (the VMM); SIGTERM and SIGKILL stop the VM.
pub fn kill(record: &Record, root: &Path, signal: &str) -> Result<i32> {
    let signal = parse_signal(signal)?;
    if state::status(root, record) == Status::Stopped {
        return Err("container not running".into());
    }
    let pid = Pid::from_raw(record.pid).ok_or("no pid")?;
    rustix::process::kill_process(pid, signal)
        .map_err(|err| format!("cannot signal pid {}: {err}", record.pid))?;
    Ok(0)
}

/// `delete`: removes a stopped container (`--force`: stops it first): its process, its
/// tap, the namespace the runtime made for it, its state directory.
pub fn delete(record: &Record, root: &Path, force: bool) -> Result<i32> {
    let status = state::status(root, record);
    if status != Status::Stopped {
        if !force {
            return Err(format!(
                "cannot delete container {} that is not stopped: {}",
                record.id,
                status.as_str()
            ));
        }
        if let Some(pid) = Pid::from_raw(record.pid) {
            let _ = rustix::process::kill_process(pid, Signal::KILL);
        }
        let deadline = Instant::now() + WAIT;
        while state::alive(record) {
            if Instant::now() > deadline {
                return Err(format!(
                    "pid {} did not die within {} s of SIGKILL",
                    record.pid,
                    WAIT.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    if let Some(netns) = &record.netns {
        network::tear_down(netns);
    }
    if record.own_netns {
        network::delete_own(&record.id);
    }
    let dir = state::dir(root, &record.id);
    std::fs::remove_dir_all(&dir)
        .map_err(|err| format!("cannot remove {}: {err}", dir.display()))?;
    Ok(0)
}

/// `ps`: the container's one process (the VMM; the guest has no Linux processes).
pub fn ps(record: &Record, format: &str) -> Result<i32> {
    let pids: Vec<i32> = if state::alive(record) {
        vec![record.pid]
    } else {
        Vec::new()
    };
    match format {
        "json" => println!(
            "{}",
            serde_json::to_string(&pids).map_err(|err| err.to_string())?
        ),
        "table" => {
            println!("PID");
            for pid in pids {
                println!("{pid}");
            }
        }
        other => {
            return Err(format!(
                "invalid format option {other}: expected json or table"
            ));
        }
    }
    Ok(0)
}

/// `features`: what the runtime supports, as `runc features` prints it.
pub fn features() -> Result<i32> {
    use oci_spec::runtime::{FeaturesBuilder, LinuxFeatureBuilder};
    let annotations: std::collections::HashMap<String, String> = [
        (
            "org.unikernel.runtime".to_string(),
            "uk-runtime".to_string(),
        ),
        (
            "org.unikernel.vmm".to_string(),
            "monitor (KVM), qemu".to_string(),
        ),
    ]
    .into_iter()
    .collect();
    let features = FeaturesBuilder::default()
        .oci_version_min("1.0.0")
        .oci_version_max("1.2.0")
        .hooks(Vec::<String>::new())
        .mount_options(Vec::<String>::new())
        .linux(
            LinuxFeatureBuilder::default()
                .namespaces(vec![LinuxNamespaceType::Network])
                .capabilities(Vec::<String>::new())
                .build()
                .map_err(|err| err.to_string())?,
        )
        .annotations(annotations)
        .build()
        .map_err(|err| err.to_string())?;
    println!(
        "{}",
        serde_json::to_string_pretty(&features).map_err(|err| err.to_string())?
    );
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_expand() {
        assert_eq!(parse_cpu_list("0-2,5").unwrap(), vec![0, 1, 2, 5]);
        assert_eq!(parse_cpu_list("3").unwrap(), vec![3]);
        assert!(parse_cpu_list("a-b").is_err());
    }

    #[test]
    fn signals_by_name_and_number() {
        assert_eq!(parse_signal("SIGTERM").unwrap(), Signal::TERM);
        assert_eq!(parse_signal("kill").unwrap(), Signal::KILL);
        assert_eq!(parse_signal("9").unwrap(), Signal::KILL);
        assert!(parse_signal("SIGNOPE").is_err());
    }

    fn spec_with(json: serde_json::Value) -> Spec {
        let mut base = serde_json::to_value(Spec::default()).unwrap();
        if let (Some(base), Some(extra)) = (base.as_object_mut(), json.as_object()) {
            for (key, value) in extra {
                base.insert(key.clone(), value.clone());
            }
        }
        serde_json::from_value(base).unwrap()
    }

    fn metadata(memory_mib: u32) -> ImageMetadata {
        ImageMetadata {
            version: 1,
            kernel: "/unikernel/kernel.elf".into(),
            files: None,
            memory_mib,
            args: Vec::new(),
            kernel_flags: Vec::new(),
            subsystems: vec!["console".into()],
            network: None,
        }
    }

    #[test]
    fn the_annotation_overrides_the_memory_and_the_limit_is_checked() {
        let spec =
            spec_with(serde_json::json!({"linux": {"resources": {"memory": {"limit": 64 << 20}}}}));
        let none = BTreeMap::new();
        assert_eq!(memory(&metadata(32), &none, &spec).unwrap(), 32);
        let mut more = BTreeMap::new();
        more.insert(ANNOTATION_MEMORY.to_string(), "48".to_string());
        assert_eq!(memory(&metadata(32), &more, &spec).unwrap(), 48);
        more.insert(ANNOTATION_MEMORY.to_string(), "60".to_string());
        let refused = memory(&metadata(32), &more, &spec).unwrap_err();
        assert!(refused.contains("raise the limit to 68 MiB"), "{refused}");
    }

    #[test]
    fn a_fraction_of_a_cpu_is_refused_and_a_cpuset_kept() {
        let fraction = spec_with(
            serde_json::json!({"linux": {"resources": {"cpu": {"quota": 50000, "period": 100000}}}}),
        );
        assert!(cpus(&fraction).unwrap_err().contains("less than one CPU"));
        let pinned = spec_with(
            serde_json::json!({"linux": {"resources": {"cpu": {"quota": 200000, "period": 100000, "cpus": "0-1"}}}}),
        );
        assert_eq!(cpus(&pinned).unwrap(), vec![0, 1]);
    }
}
