//! Networking for guests: QEMU's user-mode network with port forwards from the host's
//! loopback, or a tap device inside a network namespace of the runner's own; and a guest
//! that runs in the background while a test or a benchmark talks to it.
//!
//! - **User mode** (`--forward 8080:80`, the default for an image that links the `net`
//!   subsystem): QEMU's built-in NAT (slirp). The guest is 10.0.2.15/24 behind the gateway
//!   10.0.2.2, and each forward makes `127.0.0.1:<host port>` reach `<guest port>`. No
//!   privileges needed; every packet crosses QEMU's user-space TCP/IP stack, so it is
//!   slow-ish (a few thousand requests per second).
//! - **Tap** (`--tap`, as root): the runner creates a network namespace `uk-<pid>` with a
//!   tap device whose host side is 10.0.2.2/24, and runs QEMU inside it; programs run in
//!   the same namespace (`ip netns exec uk-<pid> curl http://10.0.2.15/`) reach the guest
//!   directly. Nothing outside the namespace is addressed, and it is deleted at exit.
//!
//! On microvm the network device is virtio-mmio, announced on the kernel command line;
//! QEMU does that only with ACPI off (with ACPI on, devices are described in the DSDT), so
//! a network turns it off. pc and q35 get virtio-net-pci.

use std::ffi::OsString;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::boot::{Boot, Exit, MaskedCopy, OUTPUT_TAIL, Tail, map_exit};
use crate::error::{Error, Result};
use crate::qemu::{self, AccelRequest, Machine};

/// The guest's address on both kinds of network.
pub const GUEST_IP: &str = "10.0.2.15";
/// The host's (gateway's) address on both kinds of network.
pub const HOST_IP: &str = "10.0.2.2";
/// The forward used when an image that links `net` is booted without network options.
pub const DEFAULT_FORWARD: Forward = Forward {
    protocol: Protocol4::Tcp,
    host_port: 8080,
    guest_port: 80,
};

/// TCP or UDP, for a forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol4 {
    Tcp,
    Udp,
}

/// One host port forwarded to a guest port: `[tcp:|udp:]HOST:GUEST`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forward {
    pub protocol: Protocol4,
    pub host_port: u16,
    pub guest_port: u16,
}

impl FromStr for Forward {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::new("expected [tcp:|udp:]HOST_PORT:GUEST_PORT, such as 8080:80");
        let (protocol, ports) = match s.split_once(':') {
            Some(("tcp", rest)) => (Protocol4::Tcp, rest),
            Some(("udp", rest)) => (Protocol4::Udp, rest),
            _ => (Protocol4::Tcp, s),
        };
        let (host, guest) = ports.split_once(':').ok_or_else(bad)?;
        let port = |text: &str| text.parse::<u16>().ok().filter(|&port| port != 0);
        Ok(Forward {
            protocol,
            host_port: port(host).ok_or_else(bad)?,
            guest_port: port(guest).ok_or_else(bad)?,
        })
    }
}

impl fmt::Display for Forward {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let protocol = match self.protocol {
            Protocol4::Tcp => "tcp",
            Protocol4::Udp => "udp",
        };
        write!(f, "{protocol}:{}:{}", self.host_port, self.guest_port)
    }
}

/// What the command line asked for (`--forward`, `--tap`, `--no-net`); `None` in
/// `BootOptions` (the `run` and `boot` options) means "as the image needs".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetChoice {
    /// User-mode networking with these forwards.
    Forward(Vec<Forward>),
    /// A tap device in a network namespace of the runner's own.
    Tap,
    /// No network device.
    Off,
}

/// The network of a boot: what was asked, else a forward of [`DEFAULT_FORWARD`] for an
/// image that links the `net` subsystem, else none. `Tap` means a namespace is to be made.
pub fn plan(choice: Option<&NetChoice>, elf: &Path) -> Option<NetChoice> {
    match choice {
        Some(NetChoice::Off) => None,
        Some(choice) => Some(choice.clone()),
        None if declares_net(elf) => Some(NetChoice::Forward(vec![DEFAULT_FORWARD])),
        None => None,
    }
}

/// How a guest is networked.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Network {
    /// No network device.
    #[default]
    None,
    /// QEMU's user-mode network with these forwards from 127.0.0.1.
    User(Vec<Forward>),
    /// A tap device of this name inside the network namespace of this name.
    Tap { netns: String, ifname: String },
}

/// The QEMU arguments that attach `network` to a guest of `machine` with `cpus` vCPUs.
pub fn qemu_args(machine: Machine, network: &Network, cpus: u16) -> Vec<OsString> {
    let backend = match network {
        Network::None => return Vec::new(),
        Network::User(forwards) => {
            let mut backend = "user,id=net0".to_string();
            for forward in forwards {
                let protocol = match forward.protocol {
                    Protocol4::Tcp => "tcp",
                    Protocol4::Udp => "udp",
                };
                backend.push_str(&format!(
                    ",hostfwd={protocol}:127.0.0.1:{}-:{}",
                    forward.host_port, forward.guest_port
                ));
            }
            backend
        }
        Network::Tap { ifname, .. } => {
            format!("tap,id=net0,ifname={ifname},script=no,downscript=no")
        }
    };
    let device = match machine {
        Machine::Microvm => "virtio-net-device,netdev=net0",
        Machine::Pc | Machine::Q35 => "virtio-net-pci,netdev=net0",
    };
    let mut args: Vec<OsString> = Vec::new();
    if machine == Machine::Microvm && cpus == 1 {
        // QEMU puts `virtio_mmio.device=` on the kernel command line only without ACPI.
        // Several CPUs are found through ACPI's MADT, so they keep it, and the guest finds
        // the device by probing microvm's virtio-mmio windows instead.
        args.extend(["-machine".into(), "acpi=off".into()]);
    }
    args.extend([
        "-netdev".into(),
        backend.into(),
        "-device".into(),
        device.into(),
    ]);
    args
}

/// Whether the image at `path` starts the `net` subsystem (its manifest note says so).
pub fn declares_net(path: &Path) -> bool {
    crate::elf::validate(path).is_ok_and(|info| info.declares("net"))
}

/// The Debian package of passt.
pub const PASST_PACKAGE: &str = "passt";

/// Where `passt` is: `$RUNNER_PASST` if set, else the first on `PATH`.
pub fn passt_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("RUNNER_PASST") {
        return Some(PathBuf::from(path));
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join("passt"))
        .find(|path| path.is_file())
}

/// The arguments that make passt serve one guest on `socket`: in the foreground, quiet,
/// IPv4 only, gone when the guest's connection closes; the guest's address and gateway
/// as QEMU's user-mode network has them; each forward bound on the host's loopback only.
pub fn passt_args(socket: &Path, forwards: &[Forward]) -> Vec<OsString> {
    let mut args: Vec<OsString> = [
        "--foreground",
        "--quiet",
        "--one-off",
        "--ipv4-only",
        "--address",
        GUEST_IP,
        "--netmask",
        "24",
        "--gateway",
        HOST_IP,
    ]
    .into_iter()
    .map(OsString::from)
    .collect();
    args.push("--socket".into());
    args.push(socket.as_os_str().to_owned());
    for forward in forwards {
        let option = match forward.protocol {
            Protocol4::Tcp => "--tcp-ports",
            Protocol4::Udp => "--udp-ports",
        };
        args.push(option.into());
        args.push(format!("127.0.0.1/{}:{}", forward.host_port, forward.guest_port).into());
    }
    if forwards.iter().all(|f| f.protocol != Protocol4::Tcp) {
        args.extend(["--tcp-ports".into(), "none".into()]);
    }
    if forwards.iter().all(|f| f.protocol != Protocol4::Udp) {
        args.extend(["--udp-ports".into(), "none".into()]);
    }
    args
}

/// passt serving one guest of the monitor (user-mode networking without root, with the
/// same forwards as QEMU's): started in the foreground, tied to the runner, listening on
/// a unix socket among the runner's temporary files; stopped and removed when dropped.
#[derive(Debug)]
pub struct Passt {
    child: Child,
    /// The socket the monitor connects to.
    pub socket: PathBuf,
    _registered: crate::cleanup::Registered,
}

impl Passt {
    /// Starts passt with `forwards` and waits until its socket is there.
    pub fn start(forwards: &[Forward]) -> Result<Self> {
        let passt = match passt_path() {
            Some(path) => path,
            None => {
                crate::setup::ensure_package("passt", PASST_PACKAGE)?;
                passt_path().ok_or_else(passt_missing)?
            }
        };
        // A name of this process's temporary files (swept after a crash), free for passt
        // to bind: in the sticky, world-writable temporary directory, so that passt can
        // make it also as `nobody` (as root, passt goes on as nobody before it binds).
        let socket = crate::cleanup::temp_file(".sock")
            .and_then(|file| {
                let path = file.path().to_path_buf();
                file.close()?;
                Ok(path)
            })
            .map_err(|err| Error::new(format!("cannot name passt's socket: {err}")))?;
        let mut child = crate::cleanup::tied_command(&passt)
            .args(passt_args(&socket, forwards))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|err| Error::new(format!("cannot start {}: {err}", passt.display())))?;
        let registered = crate::cleanup::child(child.id());
        let deadline = Instant::now() + Duration::from_secs(10);
        // Not the file's existence: passt binds, then listens, and a connection in between
        // is refused. Not a test connection either: passt serves one client, then quits.
        while !listening(&socket) {
            if let Ok(Some(status)) = child.try_wait() {
                let mut stderr = String::new();
                if let Some(mut pipe) = child.stderr.take() {
                    let _ = pipe.read_to_string(&mut stderr);
                }
                return Err(Error::new(format!(
                    "passt exited ({status}) before it listened: {}",
                    passt_complaint(&stderr)
                )));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Error::new("passt did not make its socket within 10 s"));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(Passt {
            child,
            socket,
            _registered: registered,
        })
    }

    /// The monitor's back end on this passt.
    pub fn backend(&self) -> unikernel_vmm::NetBackend {
        unikernel_vmm::NetBackend::Stream {
            socket: self.socket.clone(),
        }
    }
}

/// What passt said when it gave up, without its notes about syslog (absent in containers)
/// and about leaving root, which bury the reason.
fn passt_complaint(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|line| {
            let syslog = line.starts_with("Failed to send ") && line.ends_with(" to syslog");
            let noise = line.is_empty() || syslog || line.starts_with("Don't run as root");
            !noise
        })
        .collect();
    if lines.is_empty() {
        "it printed nothing".into()
    } else {
        lines.join("; ")
    }
}

impl Drop for Passt {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// Gives a boot on the monitor its network: passt for forwards, a tap device in a
/// namespace of the runner's own for `--tap`. Returns the boot and what must live as long
/// as the guest. Under QEMU it changes nothing (QEMU's own network options do it).
pub fn monitor_network(
    boot: Boot,
    vmm: crate::monitor::Vmm,
    network: Option<&NetChoice>,
    quiet: bool,
) -> Result<(Boot, Option<Passt>, Option<Netns>)> {
    if vmm != crate::monitor::Vmm::Monitor {
        return Ok((boot, None, None));
    }
    match network {
        Some(NetChoice::Forward(forwards)) => {
            let passt = Passt::start(forwards)?;
            if !quiet {
                let list: Vec<String> = forwards
                    .iter()
                    .map(|f| format!("127.0.0.1:{} -> {GUEST_IP}:{}", f.host_port, f.guest_port))
                    .collect();
                eprintln!("cargo uk: network: passt, {}", list.join(", "));
            }
            let boot = boot.monitor_net(passt.backend());
            Ok((boot, Some(passt), None))
        }
        Some(NetChoice::Tap) => {
            let name = crate::cleanup::netns_name();
            let netns = Netns::create(&name, "tap0")?;
            if !quiet {
                eprintln!(
                    "cargo uk: network: tap0 in namespace {name} (host side {HOST_IP}/24); the guest is {GUEST_IP}: \
                     ip netns exec {name} curl http://{GUEST_IP}/"
                );
            }
            let boot = boot.monitor_net(netns.backend());
            Ok((boot, None, Some(netns)))
        }
        Some(NetChoice::Off) | None => Ok((boot, None, None)),
    }
}

/// Whether a unix socket listens at `path` (`/proc/net/unix` lists it with
/// `__SO_ACCEPTCON`, 0x10000, in its flags).
fn listening(path: &Path) -> bool {
    let Ok(table) = std::fs::read_to_string("/proc/net/unix") else {
        return path.exists();
    };
    listed_as_listening(&table, path)
}

fn listed_as_listening(table: &str, path: &Path) -> bool {
    table.lines().skip(1).any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        fields.len() >= 8
            && Path::new(fields[7]) == path
            && u32::from_str_radix(fields[3], 16).is_ok_and(|flags| flags & 0x1_0000 != 0)
    })
}

fn passt_missing() -> Error {
    Error::new(
        "the monitor's user-mode network needs passt: install it (apt-get install passt), or use --tap as root, or --vmm qemu",
    )
}

/// A network namespace with a tap device, deleted when dropped (or on SIGTERM/SIGINT, or
/// by the next run after a crash when its name comes from [`crate::cleanup::netns_name`]).
#[derive(Debug)]
pub struct Netns {
    pub name: String,
    pub ifname: String,
    _registered: crate::cleanup::Registered,
}

impl Netns {
    /// Creates namespace `name` with tap device `ifname` (host side `HOST_IP/24`, up) and
    /// loopback up. Needs root.
    pub fn create(name: &str, ifname: &str) -> Result<Self> {
        if !crate::setup::is_root() {
            return Err(Error::new(
                "--tap needs root (it creates a network namespace and a tap device); use --forward instead",
            ));
        }
        ip(&["netns", "add", name])?;
        let netns = Netns {
            name: name.to_string(),
            ifname: ifname.to_string(),
            _registered: crate::cleanup::netns(name),
        };
        netns.exec_ip(&["link", "set", "lo", "up"])?;
        netns.exec_ip(&["tuntap", "add", "dev", ifname, "mode", "tap"])?;
        netns.exec_ip(&["addr", "add", &format!("{HOST_IP}/24"), "dev", ifname])?;
        netns.exec_ip(&["link", "set", ifname, "up"])?;
        Ok(netns)
    }

    fn exec_ip(&self, args: &[&str]) -> Result<()> {
        let mut full = vec!["netns", "exec", &self.name, "ip"];
        full.extend_from_slice(args);
        ip(&full)
    }

    /// `ip netns exec <name>`: the prefix that runs a program inside the namespace.
    pub fn exec_prefix(&self) -> Vec<OsString> {
        ["ip", "netns", "exec", self.name.as_str()]
            .into_iter()
            .map(OsString::from)
            .collect()
    }

    /// The monitor's back end on this namespace's tap device.
    pub fn backend(&self) -> unikernel_vmm::NetBackend {
        unikernel_vmm::NetBackend::Tap {
            ifname: self.ifname.clone(),
            netns: Some(PathBuf::from("/run/netns").join(&self.name)),
        }
    }

    /// The network of a guest on this namespace's tap device.
    pub fn network(&self) -> Network {
        Network::Tap {
            netns: self.name.clone(),
            ifname: self.ifname.clone(),
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.name]);
    }
}

fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|err| Error::new(format!("cannot run `ip` (iproute2): {err}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::new(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// The output of a background guest: its tail, and while someone echoes it, how far they
/// got (the readers wait for them rather than let the output grow).
#[derive(Debug)]
struct Output {
    tail: Tail,
    /// Stream offset echoed so far, while [`Guest::echo_until_exit`] runs.
    echoed: Option<u64>,
}

type Shared = Arc<(Mutex<Output>, Condvar)>;

fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, Output> {
    shared
        .0
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A guest running in the background: QEMU with the tail of its serial output kept
/// (see [`OUTPUT_TAIL`]), stopped (killed) when dropped, and by the kernel if the runner
/// dies (see [`crate::cleanup`]).
#[derive(Debug)]
pub struct Guest {
    child: Child,
    output: Shared,
    readers: Vec<std::thread::JoinHandle<()>>,
    /// The image with its multiboot magic masked, removed when the guest is dropped.
    _masked: Option<MaskedCopy>,
    _registered: crate::cleanup::Registered,
    /// The QEMU command line, for messages.
    pub command: String,
}

impl Guest {
    /// Starts the guest `boot` describes (its image, memory, kernel arguments) on `machine`
    /// with `network`, through PVH, with the accelerator `accel` chooses.
    pub fn spawn(
        boot: &Boot,
        kernel: &Path,
        accel: AccelRequest,
        machine: Machine,
        network: &Network,
    ) -> Result<Self> {
        let image = crate::elf::validate(kernel)?;
        let accel = qemu::detect_accel(accel)?;
        let qemu_path = crate::setup::qemu_path().ok_or_else(crate::setup::qemu_missing)?;
        let mut config = boot.qemu_config(accel);
        config.machine = machine;
        let masked = match image.multiboot_header {
            Some(header) => Some(MaskedCopy::new(kernel, header)?),
            None => None,
        };
        if let Some(copy) = &masked {
            config.kernel = copy.path.clone();
        }
        config
            .extra
            .extend(qemu_args(machine, network, config.cpus));
        let mut program: Vec<OsString> = match network {
            Network::Tap { netns, .. } => ["ip", "netns", "exec", netns.as_str()]
                .into_iter()
                .map(OsString::from)
                .collect(),
            _ => Vec::new(),
        };
        program.push(qemu_path.into_os_string());
        let command = format!(
            "{} {}",
            crate::cleanup::tied_prefix()
                .iter()
                .chain(&program)
                .map(|arg| arg.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(" "),
            config
                .display()
                .split_once(' ')
                .map_or("", |(_, rest)| rest)
        );
        let mut child = crate::cleanup::tied_command(&program[0])
            .args(&program[1..])
            .args(config.args())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|err| Error::new(format!("cannot start QEMU: {err}")))?;
        let registered = crate::cleanup::child(child.id());
        qemu::make_realtime(&mut child, config.cpus, boot.realtime_priority())?;
        let output: Shared = Arc::new((
            Mutex::new(Output {
                tail: Tail::new(OUTPUT_TAIL),
                echoed: None,
            }),
            Condvar::new(),
        ));
        let mut readers = Vec::new();
        for stream in [
            Box::new(child.stdout.take().expect("piped")) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().expect("piped")),
        ] {
            let output = Arc::clone(&output);
            readers.push(std::thread::spawn(move || {
                let mut stream = stream;
                let mut buf = [0u8; 4096];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let mut state = lock(&output);
                    // While echoing, wait for the echo to catch up instead of dropping
                    // what it has not shown yet.
                    while let Some(echoed) = state.echoed
                        && state.tail.total() - echoed > (OUTPUT_TAIL - buf.len()) as u64
                    {
                        state = output
                            .1
                            .wait_timeout(state, Duration::from_millis(100))
                            .unwrap_or_else(|poisoned| poisoned.into_inner())
                            .0;
                    }
                    state.tail.push(&buf[..n]);
                    drop(state);
                    output.1.notify_all();
                }
            }));
        }
        Ok(Guest {
            child,
            output,
            readers,
            _masked: masked,
            _registered: registered,
            command,
        })
    }

    /// The process id of QEMU.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the guest printed (and QEMU's stderr), with `\n` line ends: all of it, or past
    /// [`OUTPUT_TAIL`] bytes a line that says how much was left out and the last ones.
    pub fn output(&self) -> String {
        lock(&self.output).tail.text()
    }

    /// Waits until the output contains `needle`; an error (with the output) if the guest
    /// exits or `timeout` passes first.
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let mut guard = lock(&self.output);
        loop {
            if String::from_utf8_lossy(guard.tail.kept()).contains(needle) {
                return Ok(());
            }
            let now = Instant::now();
            let exited = matches!(self.child.try_wait(), Ok(Some(_)));
            if exited || now >= deadline {
                drop(guard);
                return Err(Error::new(format!(
                    "the guest {} before printing {needle:?}\n--- output ---\n{}\n--- command ---\n{}",
                    if exited {
                        "exited"
                    } else {
                        "did not get far enough in time"
                    },
                    self.output(),
                    self.command
                )));
            }
            let wait = (deadline - now).min(Duration::from_millis(100));
            guard = self
                .output
                .1
                .wait_timeout(guard, wait)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
    }

    /// Waits for the guest to exit by itself, at most `timeout`; its status (as the
    /// runner maps it: the guest's own for isa-debug-exit) or `None` if it was stopped.
    pub fn wait(&mut self, timeout: Duration) -> Option<i32> {
        match self.wait_exit(timeout) {
            Exit::Status(status) => Some(status),
            _ => None,
        }
    }

    /// Waits for the guest to exit by itself, at most `timeout` (then it is stopped), and
    /// says how it ended, as [`Boot::run`] does: its status, a reset, QEMU's failure or
    /// the timeout.
    pub fn wait_exit(&mut self, timeout: Duration) -> Exit {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return self.exit_of(status);
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return Exit::TimedOut(timeout);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn exit_of(&mut self, status: std::process::ExitStatus) -> Exit {
        use std::os::unix::process::ExitStatusExt;
        // The readers end with QEMU's pipes: then its stderr is all there.
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        map_exit(status.code(), status.signal(), &self.output())
    }

    /// Prints the guest's output as it comes until it exits or `timeout` passes (then it
    /// is stopped); says how it ended, as [`Guest::wait_exit`] does. A closed stdout
    /// stops the guest: [`Exit::OutputClosed`].
    pub fn echo_until_exit(&mut self, timeout: Duration) -> Exit {
        use std::io::Write;
        let deadline = Instant::now() + timeout;
        {
            let mut state = lock(&self.output);
            let (_, lost) = state.tail.since(0);
            state.echoed = Some(lost);
        }
        let mut out = std::io::stdout();
        loop {
            let exited = self.child.try_wait().ok().flatten();
            let chunk = {
                let mut state = lock(&self.output);
                let from = state.echoed.unwrap_or(0);
                let (bytes, _) = state.tail.since(from);
                let chunk = bytes.to_vec();
                state.echoed = Some(state.tail.total());
                chunk
            };
            self.output.1.notify_all();
            if !chunk.is_empty() && out.write_all(&chunk).and_then(|()| out.flush()).is_err() {
                lock(&self.output).echoed = None;
                self.output.1.notify_all();
                let _ = self.child.kill();
                let _ = self.child.wait();
                return Exit::OutputClosed;
            }
            if let Some(status) = exited {
                let from = lock(&self.output).echoed.take().unwrap_or(0);
                self.output.1.notify_all();
                let exit = self.exit_of(status);
                // What came between the last look and the end of QEMU's pipes.
                let rest = lock(&self.output).tail.since(from).0.to_vec();
                let _ = out.write_all(&rest).and_then(|()| out.flush());
                return exit;
            }
            if Instant::now() >= deadline {
                lock(&self.output).echoed = None;
                self.output.1.notify_all();
                return match self.wait_exit(Duration::ZERO) {
                    Exit::TimedOut(_) => Exit::TimedOut(timeout),
                    exit => exit,
                };
            }
            let (text, changed) = &*self.output;
            let guard = text.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let _ = changed.wait_timeout(guard, Duration::from_millis(100));
        }
    }

    /// Stops the guest and returns its output.
    pub fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.output()
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passts_complaint_is_its_reason() {
        let stderr = "Failed to send 47 bytes to syslog\nDon't run as root. Changing to nobody...\n\
                      Failed to send 66 bytes to syslog\nFailed to bind port 8080 (Address in use) for option '-t 8080:80'\n";
        assert_eq!(
            passt_complaint(stderr),
            "Failed to bind port 8080 (Address in use) for option '-t 8080:80'"
        );
        assert_eq!(passt_complaint(""), "it printed nothing");
    }

    #[test]
    fn a_socket_listens_once_proc_net_unix_says_so() {
        let table = "Num       RefCount Protocol Flags    Type St Inode Path\n\
                     0000000000000000: 00000002 00000000 00010000 0001 01 4242 /tmp/a.sock\n\
                     0000000000000000: 00000002 00000000 00000000 0001 01 4243 /tmp/b.sock\n";
        assert!(listed_as_listening(table, Path::new("/tmp/a.sock")));
        assert!(
            !listed_as_listening(table, Path::new("/tmp/b.sock")),
            "bound, not listening"
        );
        assert!(!listed_as_listening(table, Path::new("/tmp/c.sock")));
    }

    #[test]
    fn passt_serves_one_guest_on_loopback_forwards() {
        let forwards = [
            "8080:80".parse::<Forward>().unwrap(),
            "udp:7007:7".parse().unwrap(),
        ];
        let args: Vec<String> = passt_args(Path::new("/tmp/x.sock"), &forwards)
            .iter()
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect();
        let line = args.join(" ");
        assert!(line.contains("--one-off"), "{line}");
        assert!(
            line.contains("--address 10.0.2.15 --netmask 24 --gateway 10.0.2.2"),
            "{line}"
        );
        assert!(line.contains("--socket /tmp/x.sock"), "{line}");
        assert!(line.contains("--tcp-ports 127.0.0.1/8080:80"), "{line}");
        assert!(line.contains("--udp-ports 127.0.0.1/7007:7"), "{line}");
        let tcp_only = passt_args(Path::new("/s"), &forwards[..1]);
        let tcp_only: Vec<_> = tcp_only.iter().map(|a| a.to_string_lossy()).collect();
        assert!(tcp_only.join(" ").ends_with("--udp-ports none"));
    }

    #[test]
    fn forwards_parse_with_an_optional_protocol() {
        assert_eq!("8080:80".parse::<Forward>().unwrap(), DEFAULT_FORWARD);
        let udp: Forward = "udp:7007:7".parse().unwrap();
        assert_eq!(
            (udp.protocol, udp.host_port, udp.guest_port),
            (Protocol4::Udp, 7007, 7)
        );
        assert_eq!(udp.to_string(), "udp:7007:7");
        for bad in ["80", "x:80", "8080:0", "sctp:1:2", "8080:80:1", "70000:80"] {
            assert!(bad.parse::<Forward>().is_err(), "{bad}");
        }
    }

    #[test]
    fn several_cpus_on_microvm_keep_acpi_for_their_madt() {
        let args = qemu_args(Machine::Microvm, &Network::User(vec![DEFAULT_FORWARD]), 2);
        assert!(!args.iter().any(|arg| arg == "acpi=off"), "{args:?}");
        assert!(
            args.iter()
                .any(|arg| arg == "virtio-net-device,netdev=net0")
        );
    }

    #[test]
    fn user_mode_on_microvm_turns_acpi_off_and_forwards_from_loopback() {
        let args = qemu_args(
            Machine::Microvm,
            &Network::User(vec![DEFAULT_FORWARD, "udp:7007:7".parse().unwrap()]),
            1,
        );
        let args: Vec<String> = args.iter().map(|a| a.to_string_lossy().into()).collect();
        assert_eq!(
            args,
            [
                "-machine",
                "acpi=off",
                "-netdev",
                "user,id=net0,hostfwd=tcp:127.0.0.1:8080-:80,hostfwd=udp:127.0.0.1:7007-:7",
                "-device",
                "virtio-net-device,netdev=net0"
            ]
        );
    }

    #[test]
    fn pci_machines_get_virtio_net_pci_and_tap_needs_no_script() {
        let network = Network::Tap {
            netns: "uk-1".into(),
            ifname: "tap0".into(),
        };
        let args: Vec<String> = qemu_args(Machine::Q35, &network, 1)
            .iter()
            .map(|a| a.to_string_lossy().into())
            .collect();
        assert_eq!(
            args,
            [
                "-netdev",
                "tap,id=net0,ifname=tap0,script=no,downscript=no",
                "-device",
                "virtio-net-pci,netdev=net0"
            ]
        );
        assert!(qemu_args(Machine::Pc, &Network::None, 1).is_empty());
    }

    #[test]
    fn an_explicit_choice_wins_and_off_means_none() {
        let elf = Path::new("/nonexistent");
        assert_eq!(plan(Some(&NetChoice::Off), elf), None);
        assert_eq!(plan(Some(&NetChoice::Tap), elf), Some(NetChoice::Tap));
        assert_eq!(plan(None, elf), None, "an image without net gets no device");
    }

    #[test]
    fn a_file_that_is_not_an_image_declares_no_net() {
        assert!(!declares_net(Path::new("/nonexistent")));
    }
}
