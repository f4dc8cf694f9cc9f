//! Booting an image: spawn QEMU (or run the monitor, see [`crate::monitor`]), stream the
//! serial output, enforce the timeout, map the exit.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use unikernel_abi::status;
use unikernel_vmm as vmm;

use crate::error::{Error, Result};
use crate::monitor::{FaultKind, Vmm};
use crate::qemu::{self, Accel, AccelRequest, Machine, Protocol, QemuConfig};
use crate::timeline::{self, Stamp};

// The statuses of `unikernel_abi::status` as the `i32`s [`BootOutcome::exit_code`] returns.
/// [`status::PANIC`].
pub const STATUS_PANIC: i32 = status::PANIC as i32;
/// [`status::EXCEPTION`].
pub const STATUS_EXCEPTION: i32 = status::EXCEPTION as i32;
/// [`status::BOOT_ERROR`].
pub const STATUS_BOOT_ERROR: i32 = status::BOOT_ERROR as i32;
/// [`status::HALTED`].
pub const STATUS_HALTED: i32 = status::HALTED as i32;
/// What the runner exits with when its output was closed (`| head`): 128 + SIGPIPE, as a
/// program killed by that signal would.
pub const STATUS_OUTPUT_CLOSED: i32 = 128 + 13;
/// [`status::TIMEOUT`].
pub const STATUS_TIMEOUT: i32 = status::TIMEOUT as i32;
/// [`status::RESET`].
pub const STATUS_RESET: i32 = status::RESET as i32;
/// [`status::VMM_FAILED`]: QEMU failed, or the monitor had to stop the guest.
pub const STATUS_QEMU_FAILED: i32 = status::VMM_FAILED as i32;

/// How a boot ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// The guest wrote this status to the isa-debug-exit port.
    Status(i32),
    /// The guest did not exit within the timeout and QEMU was stopped.
    TimedOut(Duration),
    /// QEMU exited 0: with `-no-reboot` that is a guest reset (a triple fault?) or a
    /// shutdown that did not go through the exit port.
    Reset,
    /// QEMU failed by itself: an error status (its stderr says why) or a signal.
    QemuFailed {
        code: Option<i32>,
        signal: Option<i32>,
    },
    /// The guest halted where nothing can wake it (the monitor sees that at once): with
    /// interrupts masked, or without an interrupt controller.
    Halted { rip: u64 },
    /// The runner's stdout was closed (`cargo uk run hello | head`): the guest was stopped
    /// and the runner ends quietly.
    OutputClosed,
    /// The monitor stopped the guest: a triple fault, a KVM internal error, an exit it does
    /// not handle; `report` is one paragraph with the guest's registers.
    Fault { kind: FaultKind, report: String },
}

/// Maps QEMU's exit to the guest's.
///
/// isa-debug-exit makes QEMU exit with `(S << 1) | 1`, so an odd status carries the guest's
/// `S`. Status 1 is ambiguous: the guest's 0, or QEMU's own error exit; QEMU's errors print
/// `qemu-system-x86_64: <message>` (not a `warning:`) on stderr, which tells them apart.
pub(crate) fn map_exit(code: Option<i32>, signal: Option<i32>, stderr: &str) -> Exit {
    match code {
        Some(0) => Exit::Reset,
        Some(1) if qemu_error_line(stderr).is_some() => Exit::QemuFailed { code, signal },
        Some(code) if code & 1 == 1 => Exit::Status(code >> 1),
        _ => Exit::QemuFailed { code, signal },
    }
}

/// The first line of QEMU's stderr that is an error (not a warning), if any.
pub(crate) fn qemu_error_line(stderr: &str) -> Option<&str> {
    stderr.lines().find(|line| {
        line.starts_with(qemu::QEMU)
            && !line.contains("warning:")
            && !line.contains("terminating on signal")
    })
}

/// A boot to run: build it with the setters, then [`Boot::run`].
///
/// ```no_run
/// use std::time::Duration;
/// let outcome = runner::Boot::new(runner::floor_elf())
///     .timeout(Duration::from_secs(10))
///     .run()
///     .unwrap();
/// outcome.assert_status(0);
/// assert!(outcome.serial.contains("floor"));
/// ```
#[derive(Debug, Clone)]
pub struct Boot {
    kernel: PathBuf,
    accel: AccelRequest,
    machine: Machine,
    memory_mib: u32,
    timeout: Duration,
    args: Vec<String>,
    timeline: bool,
    qemu_args: Vec<OsString>,
    echo: bool,
    verbose: bool,
    protocol: Protocol,
    vmm: Vmm,
    flags: Vec<String>,
    /// The monitor's devices: a network back end, disks, an initrd.
    monitor_net: Option<vmm::NetBackend>,
    disks: Vec<PathBuf>,
    /// The disks bypass the host's page cache (O_DIRECT).
    disk_direct: bool,
    initrd: Option<PathBuf>,
    /// vCPUs, when not the image's own `cpus=N` (a VM with fewer CPUs than declared).
    cpus: Option<u16>,
    /// The vCPU threads' SCHED_FIFO priority (`--realtime`).
    realtime: Option<u8>,
}

/// Whether the image at `path` starts the `rand` subsystem (its manifest note says so).
fn declares_rand(path: &Path) -> bool {
    vmm::elf::validate(path).is_ok_and(|info| info.declares("rand"))
}

/// `unikernel.seed=<64 hex digits>` from the host's `getrandom`: the guest mixes it into
/// its generator's seed, and it is all the guest has on a CPU model without RDRAND.
pub fn seed_flag() -> String {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).expect("the host's getrandom gives bytes");
    let hex: String = seed.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("unikernel.seed={hex}")
}

impl Boot {
    /// A boot of the ELF at `kernel` with the defaults: auto accelerator, microvm, 32 MiB,
    /// 30 s timeout, no kernel args, output captured but not echoed.
    pub fn new(kernel: impl AsRef<Path>) -> Self {
        Boot {
            kernel: kernel.as_ref().to_path_buf(),
            accel: AccelRequest::Auto,
            machine: Machine::Microvm,
            memory_mib: 32,
            timeout: Duration::from_secs(30),
            args: Vec::new(),
            timeline: false,
            qemu_args: Vec::new(),
            echo: false,
            verbose: false,
            protocol: Protocol::Pvh,
            vmm: Vmm::Qemu,
            flags: Vec::new(),
            monitor_net: None,
            disks: Vec::new(),
            disk_direct: false,
            initrd: None,
            cpus: None,
            realtime: None,
        }
    }

    /// Gives the VM `cpus` vCPUs, whatever the image's manifest declares (default: as
    /// many as it declares): QEMU's `-smp`, the monitor's vCPU threads (`--cpus`).
    pub fn cpus(mut self, cpus: u16) -> Self {
        self.cpus = Some(cpus.max(1));
        self
    }

    /// Runs the VM's vCPU threads under SCHED_FIFO at `priority` and, under QEMU, its other
    /// threads (the main loop, which runs the guest's timers) one above (see
    /// [`vmm::realtime`]). Needs root or CAP_SYS_NICE.
    pub fn realtime(mut self, priority: u8) -> Self {
        self.realtime = Some(priority);
        self
    }

    /// The vCPU threads' SCHED_FIFO priority, if [`Boot::realtime`] set one.
    pub(crate) fn realtime_priority(&self) -> Option<u8> {
        self.realtime
    }

    /// Gives the guest a virtio-net device on `backend` under the monitor (a tap device,
    /// or passt: see [`crate::net::Passt`]).
    pub fn monitor_net(mut self, backend: vmm::NetBackend) -> Self {
        self.monitor_net = Some(backend);
        self
    }

    /// Gives the guest a virtio-blk device on the file at `path` under the monitor (one
    /// device per call, in order).
    pub fn disk(mut self, path: impl Into<PathBuf>) -> Self {
        self.disks.push(path.into());
        self
    }

    /// Opens the disks with O_DIRECT: the guest's reads and writes bypass the host's page
    /// cache (the monitor's back end; QEMU's `cache.direct=on`).
    pub fn disk_direct(mut self, direct: bool) -> Self {
        self.disk_direct = direct;
        self
    }

    /// Places the file at `path` in guest memory under the monitor, listed as the PVH
    /// start info's one module.
    pub fn initrd(mut self, path: impl Into<PathBuf>) -> Self {
        self.initrd = Some(path.into());
        self
    }

    /// Adds a kernel flag (a word before the `--` of the command line), e.g.
    /// `unikernel.idle`.
    pub fn kernel_flag(mut self, flag: impl Into<String>) -> Self {
        self.flags.push(flag.into());
        self
    }

    /// The kernel command line: a fresh seed for an image that starts `rand`, the flags
    /// (a `unikernel.seed=` among them overrides ours: the guest takes the last), then what
    /// `qemu::kernel_cmdline` makes.
    pub fn cmdline(&self) -> String {
        let line = qemu::kernel_cmdline(&self.args, self.timeline);
        let seed = declares_rand(&self.kernel).then(seed_flag);
        let words: Vec<&str> = seed.iter().chain(&self.flags).map(String::as_str).collect();
        if words.is_empty() {
            line
        } else {
            format!("{} {line}", words.join(" "))
        }
    }

    /// The VMM (default QEMU). The monitor boots PVH images on KVM; it ignores the machine
    /// model, the accelerator and QEMU arguments.
    pub fn vmm(mut self, vmm: Vmm) -> Self {
        self.vmm = vmm;
        self
    }

    /// The boot protocol (default PVH).
    pub fn protocol(mut self, protocol: Protocol) -> Self {
        self.protocol = protocol;
        self
    }

    /// The accelerator (default auto).
    pub fn accel(mut self, accel: AccelRequest) -> Self {
        self.accel = accel;
        self
    }

    /// The machine model (default microvm).
    pub fn machine(mut self, machine: Machine) -> Self {
        self.machine = machine;
        self
    }

    /// Guest memory in MiB (default 32).
    pub fn memory(mut self, mib: u32) -> Self {
        self.memory_mib = mib;
        self
    }

    /// How long the guest may run before QEMU is stopped (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Adds one kernel argument.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Adds kernel arguments (joined with spaces on the kernel command line).
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Asks the guest for its boot timeline (see [`crate::timeline`]).
    pub fn timeline(mut self, on: bool) -> Self {
        self.timeline = on;
        self
    }

    /// Passes one more argument to QEMU, verbatim.
    pub fn qemu_arg(mut self, arg: impl Into<OsString>) -> Self {
        self.qemu_args.push(arg.into());
        self
    }

    /// Streams the serial output to stdout while it arrives (default off; the CLI turns it
    /// on). It goes through `print!`, so `cargo test` captures it.
    pub fn echo(mut self, on: bool) -> Self {
        self.echo = on;
        self
    }

    /// Prints the QEMU command line on stderr before starting it.
    pub fn verbose(mut self, on: bool) -> Self {
        self.verbose = on;
        self
    }

    /// QEMU's confinement (see [`qemu::confinement`]) for the QEMU this host has.
    fn qemu_confinement(&self) -> Vec<OsString> {
        qemu::confinement(crate::setup::qemu_path().is_some_and(|path| qemu::has_seccomp(&path)))
    }

    /// The vCPUs the VM gets: [`cpus`](Self::cpus) if given, else as many as the image
    /// declares.
    pub fn vcpus(&self) -> u16 {
        self.cpus
            .unwrap_or_else(|| vmm::elf::validate(&self.kernel).map_or(1, |image| image.cpus()))
    }

    /// The QEMU configuration this boot uses with `accel`.
    pub fn qemu_config(&self, accel: Accel) -> QemuConfig {
        QemuConfig {
            machine: self.machine,
            accel,
            memory_mib: self.memory_mib,
            cpus: self.vcpus(),
            kernel: self.kernel.clone(),
            cmdline: self.cmdline(),
            extra: self
                .qemu_confinement()
                .into_iter()
                .chain(self.initrd.iter().flat_map(|path| qemu::initrd_args(path)))
                .chain(self.disks.iter().enumerate().flat_map(|(index, path)| {
                    qemu::disk_args(self.machine, path, index, self.disk_direct)
                }))
                // Names the vCPU threads ("CPU 0/TCG") for --realtime to find them.
                .chain(
                    self.realtime
                        .map(|_| ["-name".into(), "guest=unikernel,debug-threads=on".into()])
                        .into_iter()
                        .flatten(),
                )
                .chain(self.qemu_args.iter().cloned())
                .collect(),
        }
    }

    /// Validates the image, chooses the accelerator, boots and waits for the guest to exit
    /// or the timeout to pass.
    ///
    /// `Err` means the boot could not be attempted (not a bootable image, QEMU missing, KVM
    /// forced but unusable); everything that happens once QEMU runs is in the outcome.
    pub fn run(&self) -> Result<BootOutcome> {
        if self.vmm == Vmm::Monitor {
            return self.run_monitor();
        }
        let image = vmm::elf::validate(&self.kernel)?;
        let accel = qemu::detect_accel(self.accel)?;
        let qemu_path = crate::setup::qemu_path().ok_or_else(crate::setup::qemu_missing)?;
        let mut config = self.qemu_config(accel);
        let masked = match (self.protocol, image.pvh_entry, image.multiboot_header) {
            (Protocol::Pvh, Some(_), Some(header)) => Some(MaskedCopy::new(&self.kernel, header)?),
            (Protocol::Pvh, None, _) => {
                return Err(Error::new(format!(
                    "{} has no PVH note: boot it with --boot multiboot",
                    self.kernel.display()
                )));
            }
            (Protocol::Multiboot, _, None) => {
                return Err(Error::new(format!(
                    "{} has no multiboot header: boot it with --boot pvh",
                    self.kernel.display()
                )));
            }
            _ => None,
        };
        if let Some(copy) = &masked {
            config.kernel = copy.path.clone();
        }
        if self.verbose {
            eprintln!("cargo uk: {}", config.display());
        }

        let start = Instant::now();
        let mut child = crate::cleanup::tied_command(&qemu_path)
            .args(config.args())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|err| Error::new(format!("cannot start {}: {err}", qemu_path.display())))?;
        let _registered = crate::cleanup::child(child.id());
        qemu::make_realtime(&mut child, config.cpus, self.realtime)?;

        let mut stdout = child.stdout.take().expect("stdout is piped");
        let mut stderr = child.stderr.take().expect("stderr is piped");
        // Bounded: a guest that prints faster than the output is taken waits for it.
        let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(16);
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 16 * 1024];
            loop {
                match stdout.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tx.send(buf[..n].to_vec()).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        let stderr_reader = std::thread::spawn(move || read_bounded(&mut stderr));

        let mut sink = SerialSink::new(self.timeline, self.echo);
        let deadline = start + self.timeout;
        let mut timed_out = false;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(chunk) => {
                    sink.push(&chunk);
                    if sink.output_closed() {
                        let _ = child.kill();
                        break;
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    timed_out = true;
                    let _ = child.kill();
                    break;
                }
            }
        }
        // Unblock the reader if it waits to send (QEMU was stopped early).
        let output_closed = sink.output_closed();
        let status = child
            .wait()
            .map_err(|err| Error::new(format!("waiting for QEMU failed: {err}")))?;
        let wall = start.elapsed();
        // The pipe closes once QEMU is gone: take what is left.
        for chunk in rx.iter() {
            sink.push(&chunk);
        }
        let _ = reader.join();
        let (serial, stamps, serial_dropped) = sink.finish();
        let stderr = stderr_reader.join().unwrap_or_default();

        let exit = if output_closed {
            Exit::OutputClosed
        } else if timed_out {
            Exit::TimedOut(self.timeout)
        } else {
            let (code, signal) = code_and_signal(status);
            map_exit(code, signal, &stderr)
        };
        Ok(BootOutcome {
            status: match exit {
                Exit::Status(status) => Some(status),
                _ => None,
            },
            timed_out,
            exit,
            serial,
            serial_dropped,
            stderr,
            timeline: stamps,
            wall,
            accel,
            command: config.display(),
            vmm: Vmm::Qemu,
            monitor: None,
        })
    }

    /// The monitor's description of this boot, for messages (as a command line would be).
    pub(crate) fn monitor_display(&self) -> String {
        let cpus = self
            .cpus
            .map(|n| format!(" --cpus {n}"))
            .unwrap_or_default();
        let mut out = format!(
            "cargo uk boot --vmm monitor --memory {}{cpus} {}",
            self.memory_mib,
            self.kernel.display()
        );
        out.push_str(&format!(" (kernel command line: {})", self.cmdline()));
        out
    }

    /// Boots on the runner's own KVM monitor, in this process.
    fn run_monitor(&self) -> Result<BootOutcome> {
        if self.protocol == Protocol::Multiboot {
            return Err(Error::new(
                "the monitor boots through PVH only: drop --boot multiboot or use --vmm qemu",
            ));
        }
        if self.verbose {
            eprintln!("cargo uk: {}", self.monitor_display());
        }
        let config = vmm::VmConfig {
            memory_mib: self.memory_mib,
            cmdline: self.cmdline(),
            net: self.monitor_net.clone(),
            disks: self.disks.clone(),
            disk_direct: self.disk_direct,
            initrd: self.initrd.clone(),
            cpus: self.cpus,
            realtime: self.realtime,
        };
        let start = Instant::now();
        let mut sink = SerialSink::new(self.timeline, self.echo);
        let run = vmm::boot(&self.kernel, &config, self.timeout, &mut |bytes| {
            sink.push(bytes);
            // A closed stdout ends the boot.
            !sink.output_closed()
        })?;
        let wall = start.elapsed();
        let output_closed = sink.output_closed();
        let (serial, stamps, serial_dropped) = sink.finish();
        let exit = match &run.exit {
            vmm::VmExit::Status(status) => Exit::Status(*status),
            vmm::VmExit::Reset => Exit::Reset,
            vmm::VmExit::Fault { kind, report } => Exit::Fault {
                kind: *kind,
                report: report.clone(),
            },
            vmm::VmExit::Stopped if output_closed => Exit::OutputClosed,
            vmm::VmExit::Halted { rip, .. } => Exit::Halted { rip: *rip },
            vmm::VmExit::Stopped => Exit::TimedOut(self.timeout),
        };
        let mut notes = String::new();
        if let Some((interrupts, rip)) = run.halted {
            notes.push_str(&format!(
                "the guest halted at rip {rip:#x} with interrupts {} and the monitor has no interrupt source to wake it\n",
                if interrupts { "enabled" } else { "masked" }
            ));
        }
        for failure in &run.device_failures {
            notes.push_str(failure);
            notes.push('\n');
        }
        if run.stats.unclaimed_ports > 0 {
            notes.push_str(&format!(
                "the guest made {} accesses to I/O ports without a device (ignored)\n",
                run.stats.unclaimed_ports
            ));
        }
        Ok(BootOutcome {
            status: match exit {
                Exit::Status(status) => Some(status),
                _ => None,
            },
            timed_out: run.timed_out,
            exit,
            serial,
            serial_dropped,
            stderr: notes,
            timeline: stamps,
            wall,
            accel: Accel::Kvm,
            command: self.monitor_display(),
            vmm: Vmm::Monitor,
            monitor: Some(run),
        })
    }
}

/// A temporary copy of an image with its multiboot magic masked, so that QEMU boots it
/// through PVH. Removed when dropped (and by the next run after a crash: see
/// [`crate::cleanup`]).
pub(crate) struct MaskedCopy {
    file: tempfile::NamedTempFile,
    pub path: PathBuf,
}

impl MaskedCopy {
    pub(crate) fn new(kernel: &Path, multiboot_header: usize) -> Result<Self> {
        let mut bytes = std::fs::read(kernel)
            .map_err(|err| Error::new(format!("cannot read {}: {err}", kernel.display())))?;
        let magic = bytes
            .get_mut(multiboot_header..multiboot_header.saturating_add(4))
            .ok_or_else(|| Error::new(format!("{} changed while it was read", kernel.display())))?;
        magic.fill(0);
        let name = kernel.file_name().unwrap_or_default().to_string_lossy();
        let mut file = crate::cleanup::temp_file(&format!("-{name}.pvh"))
            .map_err(|err| Error::new(format!("cannot create a temporary file: {err}")))?;
        file.write_all(&bytes)
            .and_then(|()| file.flush())
            .map_err(|err| Error::new(format!("cannot write {}: {err}", file.path().display())))?;
        let path = file.path().to_path_buf();
        Ok(MaskedCopy { file, path })
    }
}

impl std::fmt::Debug for MaskedCopy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MaskedCopy")
            .field("path", &self.file.path())
            .finish()
    }
}

/// Reads a stream to its end, keeping its first [`OUTPUT_TAIL`] bytes (QEMU's stderr:
/// its messages come first).
pub(crate) fn read_bounded(stream: &mut impl Read) -> String {
    let mut text = Vec::new();
    let _ = stream.take(OUTPUT_TAIL as u64).read_to_end(&mut text);
    let _ = std::io::copy(stream, &mut std::io::sink());
    String::from_utf8_lossy(&text).into_owned()
}

#[cfg(unix)]
fn code_and_signal(status: ExitStatus) -> (Option<i32>, Option<i32>) {
    use std::os::unix::process::ExitStatusExt;
    (status.code(), status.signal())
}

#[cfg(not(unix))]
fn code_and_signal(status: ExitStatus) -> (Option<i32>, Option<i32>) {
    (status.code(), None)
}

/// What happened in a boot.
#[derive(Debug, Clone)]
pub struct BootOutcome {
    /// The guest's exit status, when it reported one.
    pub status: Option<i32>,
    /// Whether the timeout stopped it.
    pub timed_out: bool,
    /// How it ended, in detail.
    pub exit: Exit,
    /// What the guest printed on its serial port, with `\r\n` as `\n` (and without
    /// timeline lines when the timeline was asked for): all of it, or, past
    /// [`OUTPUT_TAIL`] bytes, a line saying how much was left out and the last
    /// [`OUTPUT_TAIL`] bytes.
    pub serial: String,
    /// Bytes of output not kept in `serial` (streamed through when echoing).
    pub serial_dropped: u64,
    /// QEMU's own stderr.
    pub stderr: String,
    /// The timeline stamps (empty unless asked for).
    pub timeline: Vec<Stamp>,
    /// Wall time from starting QEMU to its exit.
    pub wall: Duration,
    /// The accelerator used.
    pub accel: Accel,
    /// The QEMU command line (or the monitor's description), for messages.
    pub command: String,
    /// The VMM that booted it.
    pub vmm: Vmm,
    /// The monitor's counters and times (`None` under QEMU).
    pub monitor: Option<vmm::Run>,
}

impl BootOutcome {
    /// The outcome of a guest that ran in the background ([`crate::net::Guest`]): how it
    /// ended and its output (QEMU's stderr included).
    pub(crate) fn of_background(exit: Exit, output: String, boot: &Boot) -> BootOutcome {
        BootOutcome {
            status: match exit {
                Exit::Status(status) => Some(status),
                _ => None,
            },
            timed_out: matches!(exit, Exit::TimedOut(_)),
            exit,
            stderr: output
                .lines()
                .filter(|line| line.starts_with(qemu::QEMU))
                .map(|line| format!("{line}\n"))
                .collect(),
            serial: output,
            serial_dropped: 0,
            timeline: Vec::new(),
            wall: Duration::ZERO,
            accel: Accel::Tcg,
            command: boot.kernel.display().to_string(),
            vmm: Vmm::Qemu,
            monitor: None,
        }
    }

    /// The status the runner exits with: the guest's own, or 124 (timeout), 125 (reset, or
    /// a triple fault under the monitor), 126 (QEMU failed, or the monitor had to stop the
    /// guest).
    pub fn exit_code(&self) -> i32 {
        match self.exit {
            Exit::Status(status) => status,
            Exit::TimedOut(_) => STATUS_TIMEOUT,
            Exit::Halted { .. } => STATUS_HALTED,
            Exit::OutputClosed => STATUS_OUTPUT_CLOSED,
            Exit::Reset => STATUS_RESET,
            Exit::QemuFailed { .. } => STATUS_QEMU_FAILED,
            Exit::Fault { kind, .. } => i32::from(kind.exit_code()),
        }
    }

    /// One sentence about how the boot ended, or `None` when the guest exited with 0.
    pub fn summary(&self) -> Option<String> {
        match &self.exit {
            Exit::Status(0) => None,
            Exit::Status(status) => Some(format!(
                "the guest exited with status {status}{}",
                u8::try_from(*status)
                    .ok()
                    .filter(|&status| status::is_kernel(status))
                    .and_then(status::meaning)
                    .map(|meaning| format!(" ({meaning})"))
                    .unwrap_or_default()
            )),
            Exit::TimedOut(timeout) => Some(format!(
                "the guest did not exit within {} s; it was stopped (raise --timeout if it needs longer)",
                format_secs(*timeout)
            )),
            Exit::Halted { rip } => Some(format!(
                "the guest halted for good at rip {rip:#x}: nothing can wake it (interrupts masked, or no interrupt controller), so it was stopped at once"
            )),
            Exit::OutputClosed => None,
            Exit::Reset => {
                Some("the guest reset (a triple fault?) before reporting an exit status".into())
            }
            Exit::QemuFailed { code, signal } => {
                let how = match (code, signal) {
                    (_, Some(signal)) => format!("was killed by signal {signal}"),
                    (Some(code), None) => format!("failed with status {code}"),
                    (None, None) => "failed".to_string(),
                };
                let why = qemu_error_line(&self.stderr)
                    .or_else(|| self.stderr.lines().find(|line| !line.trim().is_empty()))
                    .map(|line| format!(": {}", line.trim()))
                    .unwrap_or_default();
                Some(format!("QEMU {how}{why}"))
            }
            Exit::Fault { report, .. } => Some(report.clone()),
        }
    }

    /// Panics, showing the serial output so far and QEMU's stderr, unless the guest exited
    /// with `expected`. For tests.
    #[track_caller]
    pub fn assert_status(&self, expected: i32) -> &Self {
        if self.status != Some(expected) {
            panic!(
                "expected the guest to exit with status {expected}, but {}\n{}",
                self.summary()
                    .unwrap_or_else(|| "the guest exited with status 0".into()),
                self.report()
            );
        }
        self
    }

    /// Panics with the serial output unless it contains `needle`. For tests.
    #[track_caller]
    pub fn assert_serial_contains(&self, needle: &str) -> &Self {
        if !self.serial.contains(needle) {
            panic!(
                "the serial output does not contain {needle:?}\n{}",
                self.report()
            );
        }
        self
    }

    /// Whether the serial output ends in the middle of a line (so a message printed after
    /// it should start on a new line).
    pub fn serial_ends_mid_line(&self) -> bool {
        !self.serial.is_empty() && !self.serial.ends_with('\n')
    }

    /// The serial output, QEMU's stderr and the command line, for failure messages.
    pub fn report(&self) -> String {
        let mut out = format!("--- serial output ---\n{}", self.serial);
        if !self.serial.ends_with('\n') {
            out.push('\n');
        }
        if !self.stderr.trim().is_empty() {
            out.push_str(match self.vmm {
                Vmm::Qemu => "--- QEMU stderr ---\n",
                Vmm::Monitor => "--- monitor notes ---\n",
            });
            out.push_str(&self.stderr);
            if !self.stderr.ends_with('\n') {
                out.push('\n');
            }
        }
        out.push_str(&format!("--- command ---\n{}\n", self.command));
        out
    }
}

fn format_secs(duration: Duration) -> String {
    let secs = duration.as_secs_f64();
    if secs.fract() == 0.0 {
        format!("{secs:.0}")
    } else {
        format!("{secs}")
    }
}

/// How much of a guest's output the runner keeps for reports and assertions: the last
/// 64 KiB. The rest streams through (to the terminal when echoing) and is counted, so a
/// guest that prints without end costs the runner no more memory than this.
pub const OUTPUT_TAIL: usize = 64 * 1024;

/// The last `capacity` bytes of a stream, and how many came before them.
#[derive(Debug, Clone)]
pub(crate) struct Tail {
    bytes: Vec<u8>,
    capacity: usize,
    /// Every byte pushed so far.
    total: u64,
}

impl Tail {
    pub(crate) fn new(capacity: usize) -> Self {
        Tail {
            bytes: Vec::new(),
            capacity,
            total: 0,
        }
    }

    pub(crate) fn push(&mut self, chunk: &[u8]) {
        self.total += chunk.len() as u64;
        let chunk = &chunk[chunk.len().saturating_sub(self.capacity)..];
        // Shift out old bytes only once the buffer holds twice the capacity, so that the
        // copying costs O(1) per byte.
        if self.bytes.len() + chunk.len() > 2 * self.capacity {
            let keep = self.capacity - chunk.len();
            self.bytes.drain(..self.bytes.len() - keep);
        }
        self.bytes.extend_from_slice(chunk);
    }

    /// The kept bytes (at most `capacity`).
    pub(crate) fn kept(&self) -> &[u8] {
        &self.bytes[self.bytes.len().saturating_sub(self.capacity)..]
    }

    /// Bytes pushed but no longer kept.
    pub(crate) fn dropped(&self) -> u64 {
        self.total - self.kept().len() as u64
    }

    /// Every byte pushed so far.
    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    /// The kept bytes from stream offset `from` on, and how many bytes between `from` and
    /// them are no longer kept.
    pub(crate) fn since(&self, from: u64) -> (&[u8], u64) {
        let kept = self.kept();
        let kept_from = self.total - kept.len() as u64;
        let skip = from.saturating_sub(kept_from).min(kept.len() as u64);
        (&kept[skip as usize..], kept_from.saturating_sub(from))
    }

    /// The kept text, lossy UTF-8 with `\r\n` as `\n`, after a line that says how much
    /// was left out (if anything was).
    pub(crate) fn text(&self) -> String {
        let mut text = String::new();
        if self.dropped() > 0 {
            text.push_str(&format!(
                "[cargo uk: {} earlier bytes of output not kept; the last {} follow]\n",
                self.dropped(),
                self.kept().len()
            ));
        }
        text.push_str(&String::from_utf8_lossy(self.kept()).replace("\r\n", "\n"));
        text
    }
}

/// The longest line that may still be a timeline line (they are about 40 bytes).
const TIMELINE_LINE_MAX: usize = 256;

/// Takes the serial byte stream: keeps its tail, echoes it live and, when the timeline is
/// on, takes out the timeline lines.
#[derive(Debug)]
pub(crate) struct SerialSink {
    timeline: bool,
    echo: bool,
    /// The echo's stdout was closed (EPIPE): nothing more is printed.
    echo_closed: bool,
    captured: Tail,
    stamps: Vec<Stamp>,
    /// The current line while it might still be a timeline line.
    held: Vec<u8>,
    /// Whether the current line has already been passed on (it is not a timeline line).
    passing: bool,
    /// Bytes of a UTF-8 sequence cut by a chunk boundary, waiting for the rest.
    echo_tail: Vec<u8>,
}

impl SerialSink {
    /// A sink; `timeline` filters timeline lines, `echo` prints to stdout.
    pub fn new(timeline: bool, echo: bool) -> Self {
        SerialSink {
            timeline,
            echo,
            echo_closed: false,
            captured: Tail::new(OUTPUT_TAIL),
            stamps: Vec::new(),
            held: Vec::new(),
            passing: false,
            echo_tail: Vec::new(),
        }
    }

    /// Takes the next chunk of output.
    pub fn push(&mut self, chunk: &[u8]) {
        if !self.timeline {
            self.emit(chunk);
            return;
        }
        let mut rest = chunk;
        while !rest.is_empty() {
            let line_end = rest.iter().position(|&b| b == b'\n').map(|i| i + 1);
            let (part, after) = rest.split_at(line_end.unwrap_or(rest.len()));
            rest = after;
            if self.passing {
                self.emit(part);
            } else {
                self.held.extend_from_slice(part);
                if line_end.is_none() && !self.could_be_timeline() {
                    let held = std::mem::take(&mut self.held);
                    self.emit(&held);
                    self.passing = true;
                }
            }
            if line_end.is_some() {
                if !self.passing {
                    self.end_held_line();
                }
                self.passing = false;
            }
        }
        self.flush_echo();
    }

    /// Whether the held bytes may still turn out to be a timeline line.
    fn could_be_timeline(&self) -> bool {
        let prefix = timeline::LINE_PREFIX.as_bytes();
        let n = self.held.len().min(prefix.len());
        // A timeline line is short; a longer one is passed on rather than held.
        self.held.len() <= TIMELINE_LINE_MAX && self.held[..n] == prefix[..n]
    }

    fn end_held_line(&mut self) {
        let held = std::mem::take(&mut self.held);
        match std::str::from_utf8(&held)
            .ok()
            .and_then(timeline::parse_line)
        {
            Some(stamp) => self.stamps.push(stamp),
            None => self.emit(&held),
        }
    }

    fn emit(&mut self, bytes: &[u8]) {
        self.captured.push(bytes);
        if !self.echo || self.echo_closed {
            return;
        }
        self.echo_tail.extend_from_slice(bytes);
        let valid_up_to = match std::str::from_utf8(&self.echo_tail) {
            Ok(_) => self.echo_tail.len(),
            // An incomplete sequence at the end waits for the next chunk.
            Err(err) if err.error_len().is_none() => err.valid_up_to(),
            Err(_) => self.echo_tail.len(),
        };
        let ready: Vec<u8> = self.echo_tail.drain(..valid_up_to).collect();
        let text = String::from_utf8_lossy(&ready);
        self.write_out(text.as_bytes());
    }

    /// Writes to stdout; a closed stdout (`| head`) ends the echo instead of panicking as
    /// `print!` would.
    fn write_out(&mut self, bytes: &[u8]) {
        if std::io::stdout().lock().write_all(bytes).is_err() {
            self.echo_closed = true;
        }
    }

    fn flush_echo(&mut self) {
        if self.echo && !self.echo_closed && std::io::stdout().flush().is_err() {
            self.echo_closed = true;
        }
    }

    /// Whether the echo's stdout was closed (the reader went away): the boot should end.
    pub fn output_closed(&self) -> bool {
        self.echo_closed
    }

    /// Ends the stream: the kept serial text (see [`Tail::text`]), the stamps and how
    /// many bytes of output were not kept.
    pub fn finish(mut self) -> (String, Vec<Stamp>, u64) {
        if !self.held.is_empty() {
            self.end_held_line();
        }
        if self.echo && !self.echo_closed && !self.echo_tail.is_empty() {
            let tail = std::mem::take(&mut self.echo_tail);
            let text = String::from_utf8_lossy(&tail).into_owned();
            self.write_out(text.as_bytes());
        }
        self.flush_echo();
        (self.captured.text(), self.stamps, self.captured.dropped())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn seeds_are_64_hex_digits_and_fresh() {
        let first = crate::boot::seed_flag();
        let hex = first.strip_prefix("unikernel.seed=").expect("the flag");
        assert_eq!(hex.len(), 64);
        assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()), "{hex}");
        assert_ne!(first, crate::boot::seed_flag());
    }

    #[test]
    fn only_an_image_that_starts_rand_gets_a_seed() {
        // Not an image: no manifest, so no seed, and the line is as before.
        let boot = crate::Boot::new("/nonexistent.elf").kernel_flag("unikernel.idle");
        assert_eq!(boot.cmdline(), "unikernel.idle --");
    }

    mod exit {
        use crate::boot::{Exit, map_exit};

        #[test]
        fn odd_statuses_carry_the_guests_status() {
            assert_eq!(map_exit(Some(1), None, ""), Exit::Status(0));
            assert_eq!(map_exit(Some(15), None, ""), Exit::Status(7));
            assert_eq!(map_exit(Some((101 << 1) | 1), None, ""), Exit::Status(101));
            assert_eq!(map_exit(Some((102 << 1) | 1), None, ""), Exit::Status(102));
            assert_eq!(map_exit(Some(255), None, ""), Exit::Status(127));
        }

        #[test]
        fn qemu_warnings_do_not_hide_status_zero() {
            let stderr = "qemu-system-x86_64: warning: host doesn't support requested feature\n";
            assert_eq!(map_exit(Some(1), None, stderr), Exit::Status(0));
        }

        #[test]
        fn qemu_errors_are_not_status_zero() {
            let stderr = "qemu-system-x86_64: -bogus: invalid option\n";
            assert_eq!(
                map_exit(Some(1), None, stderr),
                Exit::QemuFailed {
                    code: Some(1),
                    signal: None
                }
            );
        }

        #[test]
        fn zero_is_a_reset() {
            assert_eq!(map_exit(Some(0), None, ""), Exit::Reset);
        }

        #[test]
        fn even_statuses_and_signals_are_qemu_failures() {
            assert!(matches!(
                map_exit(Some(2), None, ""),
                Exit::QemuFailed { .. }
            ));
            assert_eq!(
                map_exit(None, Some(9), ""),
                Exit::QemuFailed {
                    code: None,
                    signal: Some(9)
                }
            );
        }
    }

    mod serial {
        use crate::boot::{OUTPUT_TAIL, SerialSink, Tail};
        use crate::timeline::Stamp;

        fn feed(timeline: bool, chunks: &[&[u8]]) -> (String, Vec<Stamp>) {
            let mut sink = SerialSink::new(timeline, false);
            for chunk in chunks {
                sink.push(chunk);
            }
            let (text, stamps, _) = sink.finish();
            (text, stamps)
        }

        #[test]
        fn timeline_lines_are_taken_out_across_chunks() {
            let (text, stamps) = feed(
                true,
                &[
                    b"boot\nunikernel.time",
                    b"line pvh 10\r\nhel",
                    b"lo\nunikernel.timeline main 30\n",
                    b"bye",
                ],
            );
            assert_eq!(text, "boot\nhello\nbye");
            let (text, _) = feed(false, &[b"a\r", b"\nb\r\n"]);
            assert_eq!(text, "a\nb\n");
            assert_eq!(stamps.len(), 2);
            assert_eq!(stamps[1].stage, "main");
            assert_eq!(stamps[1].tsc, 30);
        }

        #[test]
        fn look_alikes_stay() {
            let (text, stamps) = feed(
                true,
                &[
                    b"unikernel.timeline is on\nunikernel.\n",
                    b"unikernel.timeline x 1",
                ],
            );
            assert_eq!(text, "unikernel.timeline is on\nunikernel.\n");
            assert_eq!(stamps.len(), 1);
        }

        #[test]
        fn a_flood_keeps_only_the_tail_and_says_how_much_went() {
            let mut sink = SerialSink::new(true, false);
            let line = [b'y'; 1023];
            for _ in 0..4096 {
                sink.push(&line);
                sink.push(b"\n");
            }
            // A would-be timeline line without an end is not held without bound.
            sink.push(b"unikernel.timeline ");
            for _ in 0..1024 {
                sink.push(&line);
            }
            sink.push(b"\nlast line\n");
            let (text, stamps, dropped) = sink.finish();
            assert!(stamps.is_empty());
            assert_eq!(
                dropped,
                4096 * 1024 + 19 + 1024 * 1023 + 11 - OUTPUT_TAIL as u64
            );
            assert!(text.starts_with("[cargo uk: "), "{}", &text[..80]);
            assert!(text.ends_with("yyy\nlast line\n"));
            assert!(text.len() < OUTPUT_TAIL + 100);
        }

        #[test]
        fn a_tail_tells_what_it_no_longer_has() {
            let mut tail = Tail::new(4);
            tail.push(b"abc");
            assert_eq!((tail.kept(), tail.dropped()), (&b"abc"[..], 0));
            tail.push(b"defgh");
            tail.push(b"ij");
            assert_eq!(
                (tail.kept(), tail.dropped(), tail.total()),
                (&b"ghij"[..], 6, 10)
            );
            assert_eq!(tail.since(8), (&b"ij"[..], 0));
            assert_eq!(tail.since(2), (&b"ghij"[..], 4));
            assert_eq!(
                tail.text(),
                "[cargo uk: 6 earlier bytes of output not kept; the last 4 follow]\nghij"
            );
        }

        #[test]
        fn without_timeline_everything_stays() {
            let (text, stamps) = feed(false, &[b"unikernel.timeline pvh 1\n"]);
            assert_eq!(text, "unikernel.timeline pvh 1\n");
            assert!(stamps.is_empty());
        }
    }

    mod outcome {
        use std::time::Duration;

        use crate::boot::{BootOutcome, Exit};
        use crate::qemu::Accel;

        fn outcome(exit: Exit, stderr: &str) -> BootOutcome {
            BootOutcome {
                status: match exit {
                    Exit::Status(s) => Some(s),
                    _ => None,
                },
                timed_out: matches!(exit, Exit::TimedOut(_)),
                exit,
                serial: "so far\n".into(),
                serial_dropped: 0,
                stderr: stderr.into(),
                timeline: Vec::new(),
                wall: Duration::from_millis(30),
                accel: Accel::Tcg,
                command: "qemu-system-x86_64 ...".into(),
                vmm: crate::monitor::Vmm::Qemu,
                monitor: None,
            }
        }

        #[test]
        fn sentences_and_codes() {
            let ok = outcome(Exit::Status(0), "");
            assert_eq!(ok.exit_code(), 0);
            assert_eq!(ok.summary(), None);
            let seven = outcome(Exit::Status(7), "");
            assert_eq!(seven.exit_code(), 7);
            assert_eq!(seven.summary().unwrap(), "the guest exited with status 7");
            assert_eq!(
                outcome(Exit::Status(101), "").summary().unwrap(),
                "the guest exited with status 101 (it panicked)"
            );
            let hung = outcome(Exit::TimedOut(Duration::from_secs(30)), "");
            assert_eq!(hung.exit_code(), 124);
            assert_eq!(
                hung.summary().unwrap(),
                "the guest did not exit within 30 s; it was stopped (raise --timeout if it needs longer)"
            );
            let reset = outcome(Exit::Reset, "");
            assert_eq!(reset.exit_code(), 125);
            assert_eq!(
                reset.summary().unwrap(),
                "the guest reset (a triple fault?) before reporting an exit status"
            );
            let failed = outcome(
                Exit::QemuFailed {
                    code: Some(1),
                    signal: None,
                },
                "qemu-system-x86_64: -bogus: invalid option\n",
            );
            assert_eq!(failed.exit_code(), 126);
            assert_eq!(
                failed.summary().unwrap(),
                "QEMU failed with status 1: qemu-system-x86_64: -bogus: invalid option"
            );
            let killed = outcome(
                Exit::QemuFailed {
                    code: None,
                    signal: Some(9),
                },
                "",
            );
            assert_eq!(killed.summary().unwrap(), "QEMU was killed by signal 9");
        }

        #[test]
        #[should_panic(expected = "--- serial output ---\nso far\n")]
        fn assert_status_shows_the_serial_output() {
            outcome(Exit::TimedOut(Duration::from_secs(1)), "").assert_status(0);
        }
    }
}
