//! `cargo uk density`: how many idle VMs this host holds on the monitor.
//!
//! Starts VMs of one image (default `examples/empty`) with the kernel flag
//! `unikernel.idle`, under which the kernel halts with interrupts masked instead of
//! exiting: the VM has booted and sits idle. A halted vCPU's thread sleeps on a condition
//! variable (the monitor has nothing that could wake the guest), so idle VMs cost no CPU.
//!
//! The VMs live in a few worker processes (`--processes`, each `cargo uk density-worker`),
//! each VM a thread with its own KVM VM, vCPU and guest memory. Several processes rather
//! than one, and at most [`VMS_PER_WORKER`] VMs in each by default: creating a KVM VM
//! registers an MMU notifier on the process's address space, which takes a lock on every
//! mapping of that address space (`mm_take_all_locks`), and every later change to a
//! mapping (a thread's stack, the next VM's memory) calls every VM's notifier; so a VM's
//! creation costs time linear in the VMs already in its process, and filling one process
//! is quadratic (`perf` while booting 6,000 VMs in 2 processes: 17% of all host time in
//! `mm_take_all_locks`, 14% in `interval_tree_iter_first`, the notifiers after them).
//! With 10,000 VMs in 4 processes the last thousand took 9.6 s to boot, the first 1.4 s;
//! in 100 processes 1.7 s and 1.5 s. Each worker adds VMs, one booting at a time by default, until its
//! share of `--max`, the time limit, the host's free memory (`--reserve`) or the
//! file-descriptor limit stops it; then all are held for `--hold` seconds while the
//! coordinator measures, and stopped.
//!
//! Process ids: each VM is two tasks of its worker, its vCPU thread and the
//! `kvm-nx-lpage-recovery` task KVM starts in the VM's process (Linux 6.13 and later), so
//! the default `kernel.pid_max` of 32,768 stops a run near 16,000 VMs; the run says so at
//! its start (30,000 VMs held here with `sysctl -w kernel.pid_max=131072`).
//!
//! Boot rate: flat as the count grows, except in bands where the host's first write to
//! each new page is dearer (on a host that is itself a VM whose balloon hands freed memory
//! back to its hypervisor): `--progress` shows the rate and the CPU time per VM for every N
//! VMs, and README.md's section on the monitor has the measurements.
//!
//! Isolation: the VMs of one worker share its address space. Each VM thread runs under the
//! monitor's seccomp filter and, as root, the worker gives up root once /dev/kvm is open;
//! but a guest that took over its vCPU thread through a monitor bug could read and write
//! the memory of every VM in the same worker. `--isolate` runs one worker per VM, so
//! that it reaches only its own (at the cost of a process per VM: about 0.6 MiB more PSS
//! per VM).
//!
//! Cleanup: a worker dies with its parent (PR_SET_PDEATHSIG = SIGKILL, and it exits when
//! its stdin closes), and the kernel frees a dead process's VMs and memory; so nothing is
//! left behind however the coordinator ends (Ctrl-C, SIGKILL). There are no files to remove.
//!
//! Host memory per VM, measured three ways:
//! - PSS growth: the workers' proportional set size (`/proc/<pid>/smaps_rollup`) while
//!   holding, minus the same before their first VM, divided by the VMs;
//! - total PSS / VMs: the workers' whole PSS (binary, heap and all) divided by the VMs;
//! - MemAvailable: the host's drop in /proc/meminfo MemAvailable divided by the VMs, which
//!   also counts what PSS cannot see: KVM's kernel memory per VM (vCPU state, the host-side
//!   page tables of the guest) and the threads' kernel stacks.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use unikernel_vmm::{self as monitor, Control, Image, Vm, VmConfig, VmExit};

use crate::boot::Tail;
use crate::error::{Error, Result};
use crate::values::{parse_secs, positive};

/// Options of `cargo uk density`.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct DensityOptions {
    /// The most VMs to start
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = positive)]
    pub max: usize,
    /// How long adding VMs may take in all
    #[arg(long, value_name = "SECS", default_value = "120", value_parser = parse_secs)]
    pub time_limit: Duration,
    /// How long to hold them all, measuring, before stopping them
    #[arg(long, value_name = "SECS", default_value = "2", value_parser = parse_secs)]
    pub hold: Duration,
    /// Guest memory per VM (only what the guest touches is allocated)
    #[arg(long = "memory", value_name = "MiB", default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(2..))]
    pub memory_mib: u32,
    /// Worker processes the VMs are spread over [default: twice the cores, or more so that
    /// none holds more than 100 VMs]
    #[arg(long, value_name = "N", value_parser = positive)]
    pub processes: Option<usize>,
    /// How many VMs boot at the same time in each worker
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = positive)]
    pub parallel: usize,
    /// Stop adding VMs when the host's MemAvailable falls below this
    #[arg(long = "reserve", value_name = "MiB", default_value_t = 1024)]
    pub reserve_mib: u64,
    /// The image: an example's name or an ELF
    #[arg(long, value_name = "EXAMPLE|ELF", default_value = "empty")]
    pub image: String,
    /// One worker process per VM (for images you do not trust: a guest that broke into
    /// its vCPU thread would reach only its own process's memory, not its neighbours');
    /// overrides --processes
    #[arg(long)]
    pub isolate: bool,
    /// The runner binary that runs the workers [default: this executable]
    #[arg(skip)]
    pub worker_exe: Option<PathBuf>,
    /// A progress line every N VMs, with the boot rate over those N and the host's free
    /// memory (where the rate changes, and with what)
    #[arg(long = "progress", value_name = "N", default_value_t = 1000, value_parser = positive)]
    pub progress_every: usize,
    /// No progress messages
    #[arg(short, long)]
    pub quiet: bool,
}

/// The most VMs a worker holds unless `--processes` says otherwise: past a few hundred, the
/// notifiers of the VMs already in a process make each new one slower (see the module's
/// documentation).
pub const VMS_PER_WORKER: usize = 100;

/// Twice the cores, or more so that no worker holds more than [`VMS_PER_WORKER`] VMs.
fn default_processes(max: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores * 2).max(max.div_ceil(VMS_PER_WORKER))
}

impl Default for DensityOptions {
    /// clap's defaults, from the one definition above.
    fn default() -> Self {
        crate::values::defaults()
    }
}

/// What a density run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct DensityReport {
    /// VMs booted and idle at the same time (all of them alive through the hold).
    pub held: usize,
    /// VMs asked for.
    pub max: usize,
    /// Why it stopped adding VMs.
    pub limit: String,
    /// Booted VMs per second while adding them (from the start of the run to the last boot).
    pub boots_per_sec: f64,
    /// Median time of one VM from creation to its idle halt, ms.
    pub boot_median_ms: f64,
    /// PSS growth per VM, KiB.
    pub pss_per_vm_kib: f64,
    /// The workers' whole PSS per VM, KiB.
    pub total_pss_per_vm_kib: f64,
    /// The host's MemAvailable drop per VM, KiB.
    pub mem_available_per_vm_kib: f64,
    /// CPU time of the workers while holding, as a share of one core.
    pub hold_cpu_share: f64,
    /// Time to stop every VM and end the workers, ms.
    pub teardown_ms: f64,
    /// Failures while booting, with their reasons (the first few).
    pub failures: Vec<String>,
}

/// Reads a `Key: <n> kB` field of a /proc file, in KiB.
pub(crate) fn proc_kib(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(key)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

fn self_pss_kib() -> Option<u64> {
    proc_kib(
        &std::fs::read_to_string("/proc/self/smaps_rollup").ok()?,
        "Pss",
    )
}

fn mem_available_kib() -> Option<u64> {
    proc_meminfo_kib("MemAvailable")
}

fn proc_meminfo_kib(key: &str) -> Option<u64> {
    proc_kib(&std::fs::read_to_string("/proc/meminfo").ok()?, key)
}

/// Raises the soft limit on open files to the hard one; returns the soft limit now.
fn raise_fd_limit() -> u64 {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let Some(current) = limit.current else {
        return u64::MAX;
    };
    match limit.maximum {
        Some(maximum) if current >= maximum => current,
        maximum => {
            let raised = Rlimit {
                current: maximum,
                maximum,
            };
            match setrlimit(Resource::Nofile, raised) {
                Ok(()) => maximum.unwrap_or(u64::MAX),
                Err(_) => current,
            }
        }
    }
}

/// A counting semaphore: how many VMs may boot at once.
struct Slots {
    free: Mutex<usize>,
    changed: Condvar,
}

impl Slots {
    fn new(count: usize) -> Self {
        Slots {
            free: Mutex::new(count),
            changed: Condvar::new(),
        }
    }

    /// Takes a slot, waiting until `deadline` at most; `None` if none came free.
    fn take(self: &Arc<Self>, deadline: Instant) -> Option<Slot> {
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        while *free == 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            free = self
                .changed
                .wait_timeout(free, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        *free -= 1;
        Some(Slot(Some(Arc::clone(self))))
    }

    fn give(&self) {
        *self.free.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        self.changed.notify_one();
    }
}

/// A taken boot slot: given back when released or dropped, so a VM thread that fails or
/// panics never keeps it.
struct Slot(Option<Arc<Slots>>);

impl Slot {
    fn release(&mut self) {
        if let Some(slots) = self.0.take() {
            slots.give();
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.release();
    }
}

/// How much of a VM's output a worker keeps for its failure report; the rest is counted.
const VM_OUTPUT_KEPT: usize = 4096;

/// How long one VM may take from creation to its idle halt before the worker stops adding
/// VMs (it holds a boot slot meanwhile).
const VM_BOOT_LIMIT: Duration = Duration::from_secs(20);

/// Options of one worker (`cargo uk density-worker`, started by `density`).
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub(crate) struct WorkerOptions {
    #[arg(long)]
    pub image: PathBuf,
    #[arg(long)]
    pub count: usize,
    #[arg(long = "memory")]
    pub memory_mib: u32,
    #[arg(long)]
    pub parallel: usize,
    #[arg(long, value_parser = parse_secs)]
    pub time_limit: Duration,
    #[arg(long = "reserve")]
    pub reserve_mib: u64,
}

impl WorkerOptions {
    /// The worker's command-line arguments (after `density-worker`), which the one clap
    /// definition parses back.
    pub fn args(&self) -> Vec<String> {
        vec![
            "--image".into(),
            self.image.display().to_string(),
            "--count".into(),
            self.count.to_string(),
            "--memory".into(),
            self.memory_mib.to_string(),
            "--parallel".into(),
            self.parallel.to_string(),
            "--time-limit".into(),
            self.time_limit.as_secs_f64().to_string(),
            "--reserve".into(),
            self.reserve_mib.to_string(),
        ]
    }
}

enum Report {
    Idle(Duration),
    Failed(usize, String),
}

struct Running {
    control: Arc<Control>,
    thread: std::thread::JoinHandle<()>,
    pthread: Arc<Mutex<Option<libc::pthread_t>>>,
}

/// One worker: boots its VMs, reports each on stdout (`baseline <PSS KiB>`, then
/// `idle <us>` or `failed <reason>` per VM, `limit <reason>` if it stopped early,
/// `ready <n>`), holds them until `stop` (or the end of stdin), stops them all and prints
/// `stopped <ms>`.
pub(crate) fn worker(options: &WorkerOptions) -> Result<()> {
    // Die with the coordinator, however it ends.
    let _ = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
    if rustix::process::getppid().is_none_or(|parent| parent.as_raw_nonzero().get() == 1) {
        return Err(Error::new("density-worker: the coordinator is gone"));
    }
    say(format!("baseline {}", self_pss_kib().unwrap_or(0)));
    let image = Image::open(&options.image)?;
    image.require_one_cpu(None, DENSITY, DENSITY_INSTEAD)?;
    let image = Arc::new(image);
    let kvm = Arc::new(monitor::open_kvm()?);
    monitor::control::install_kick_handler();
    let config = Arc::new(VmConfig {
        memory_mib: options.memory_mib,
        cmdline: "unikernel.idle --".into(),
        ..VmConfig::default()
    });
    let fd_limit = raise_fd_limit();
    // Everything is open (/dev/kvm, the image): as root, the worker and the VM threads it
    // starts go on as `nobody`. That clears the parent-death signal: set it again.
    monitor::sandbox::drop_root()?;
    let _ = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
    if rustix::process::getppid().is_none_or(|parent| parent.as_raw_nonzero().get() == 1) {
        return Err(Error::new("density-worker: the coordinator is gone"));
    }
    // Each VM holds two descriptors (the VM and its vCPU); keep some for the rest.
    let fd_max = (fd_limit.saturating_sub(64) / 2) as usize;
    let slots = Arc::new(Slots::new(options.parallel.max(1)));
    let (tx, rx) = mpsc::channel::<Report>();
    let mut running: Vec<Running> = Vec::new();
    let (mut booted, mut failed) = (0usize, 0usize);
    let start = Instant::now();
    let handle = |report: Report, booted: &mut usize, failed: &mut usize| match report {
        Report::Idle(time) => {
            *booted += 1;
            say(format!("idle {}", time.as_micros()));
        }
        Report::Failed(index, reason) => {
            *failed += 1;
            say(format!("failed VM {index}: {reason}"));
        }
    };
    for index in 0..options.count {
        while let Ok(report) = rx.try_recv() {
            handle(report, &mut booted, &mut failed);
        }
        let limit = if failed > 0 {
            Some("a VM failed to boot".to_string())
        } else if start.elapsed() >= options.time_limit {
            Some(format!(
                "the time limit ({} s)",
                options.time_limit.as_secs_f64()
            ))
        } else if index >= fd_max {
            Some(format!("the open-file limit ({fd_limit}; two per VM)"))
        } else if index % 16 == 0
            && mem_available_kib().is_some_and(|kib| kib < options.reserve_mib * 1024)
        {
            Some(format!(
                "host memory (MemAvailable below --reserve {} MiB)",
                options.reserve_mib
            ))
        } else {
            None
        };
        if let Some(limit) = limit {
            say(format!("limit {limit}"));
            break;
        }
        let slot_deadline = (Instant::now() + VM_BOOT_LIMIT).min(start + options.time_limit);
        let Some(slot) = slots.take(slot_deadline) else {
            say(format!(
                "limit a VM that did not reach its idle halt within {} s",
                VM_BOOT_LIMIT.as_secs()
            ));
            break;
        };
        let control = Arc::new(Control::new());
        let pthread = Arc::new(Mutex::new(None));
        let spawned = {
            let (kvm, image, config, tx) = (
                Arc::clone(&kvm),
                Arc::clone(&image),
                Arc::clone(&config),
                tx.clone(),
            );
            let (control, pthread) = (Arc::clone(&control), Arc::clone(&pthread));
            std::thread::Builder::new()
                .name(format!("vm-{index}"))
                .stack_size(128 * 1024)
                .spawn(move || {
                    *pthread.lock().unwrap_or_else(|p| p.into_inner()) =
                        Some(monitor::control::current_thread());
                    // Reported even if the VM's thread panics: the worker never waits for it.
                    let report = Reported {
                        index,
                        tx: tx.clone(),
                        sent: false,
                    };
                    // Finished even on a panic, so that stopping it does not kick forever.
                    let finished = Finished(&control);
                    run_vm(report, &kvm, &image, &config, &control, slot);
                    drop(finished);
                })
        };
        match spawned {
            Ok(thread) => running.push(Running {
                control,
                thread,
                pthread,
            }),
            Err(err) => {
                say(format!(
                    "limit cannot start a VM thread: {err} (each VM takes two process ids: \
                     see kernel.pid_max)"
                ));
                break;
            }
        }
    }
    // Every started VM boots or fails; 30 s at most for the stragglers.
    let deadline = Instant::now() + Duration::from_secs(30);
    while booted + failed < running.len() {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(report) => handle(report, &mut booted, &mut failed),
            Err(_) => break,
        }
    }
    say(format!("ready {booted}"));

    // Hold until told to stop (or the coordinator is gone).
    let mut line = String::new();
    let stdin = std::io::stdin();
    loop {
        line.clear();
        match stdin.lock().read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) if line.trim() == "stop" => break,
            Ok(_) => {}
        }
    }
    let teardown = Instant::now();
    for vm in &running {
        vm.control.request_stop();
    }
    for vm in &running {
        let pthread = *vm.pthread.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(pthread) = pthread
            && !vm.thread.is_finished()
        {
            vm.control.stop_and_kick(pthread);
        }
    }
    for vm in running {
        let _ = vm.thread.join();
    }
    say(format!("stopped {}", teardown.elapsed().as_millis()));
    Ok(())
}

/// Writes one line of the worker protocol.
fn say(line: String) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", line.replace('\n', " "));
    let _ = out.flush();
}

/// Tells the VM's [`Control`] that its thread is done with KVM_RUN, when dropped.
struct Finished<'a>(&'a Control);

impl Drop for Finished<'_> {
    fn drop(&mut self) {
        self.0.finish();
    }
}

/// The one report of a VM's thread: sent once, or on drop (a panic) as a failure.
struct Reported {
    index: usize,
    tx: mpsc::Sender<Report>,
    sent: bool,
}

impl Reported {
    fn send(mut self, report: Report) {
        self.sent = true;
        let _ = self.tx.send(report);
    }
}

impl Drop for Reported {
    fn drop(&mut self) {
        if !self.sent {
            let _ = self.tx.send(Report::Failed(
                self.index,
                "the VM's thread panicked (a bug in the monitor)".into(),
            ));
        }
    }
}

/// One VM's thread: boot, report, sleep while idle, tear down when stopped. Its output is
/// kept up to [`VM_OUTPUT_KEPT`] bytes for a failure report; a VM that prints more is
/// reported with its output cut.
fn run_vm(
    report: Reported,
    kvm: &monitor::Kvm,
    image: &Image,
    config: &VmConfig,
    control: &Control,
    mut slot: Slot,
) {
    let created = Instant::now();
    let index = report.index;
    let mut vm = match create_vm(kvm, image, config) {
        Ok(vm) => vm,
        Err(err) => {
            slot.release();
            report.send(Report::Failed(index, err.to_string()));
            return;
        }
    };
    // From here on the thread faces the guest: the monitor's seccomp filter (and, as root,
    // no root), as on `cargo uk boot --vmm monitor`.
    if let Err(err) = monitor::sandbox::confine_vcpu_thread() {
        slot.release();
        report.send(Report::Failed(index, err.to_string()));
        return;
    }
    let mut output = Tail::new(VM_OUTPUT_KEPT);
    let exit = vm.run(control, &mut |bytes| {
        output.push(bytes);
        true
    });
    slot.release();
    match exit {
        VmExit::Halted { .. } => {
            report.send(Report::Idle(created.elapsed()));
            control.park();
        }
        other => report.send(Report::Failed(index, describe(&other, &output))),
    }
}

/// How long a VM's creation waits, in all, for the host to free memory when KVM says it has
/// none: near the end of a large run the host's free memory is at its low watermark, and
/// KVM's larger allocations (a vCPU's state) fail while reclaim catches up (two of 30,000
/// VMs failed so with 300 MiB free and 5 GiB of page cache). `--reserve` still stops the run.
const OUT_OF_MEMORY_WAIT: [Duration; 4] = [
    Duration::from_millis(20),
    Duration::from_millis(80),
    Duration::from_millis(320),
    Duration::from_millis(1280),
];

/// Creates a VM, trying again after a wait while KVM fails for want of memory.
fn create_vm(kvm: &monitor::Kvm, image: &Image, config: &VmConfig) -> monitor::Result<Vm> {
    let mut waits = OUT_OF_MEMORY_WAIT.iter();
    loop {
        match Vm::new(kvm, image, config) {
            Err(err) if is_out_of_memory(&err) => match waits.next() {
                Some(&wait) => std::thread::sleep(wait),
                None => return Err(err),
            },
            other => return other,
        }
    }
}

fn is_out_of_memory(err: &monitor::Error) -> bool {
    matches!(err, monitor::Error::Kvm { source, .. } if source.errno() == libc::ENOMEM)
}

/// CPU time (user + system) of the workers still running.
fn workers_cpu(workers: &[Worker]) -> Duration {
    workers
        .iter()
        .filter(|w| !w.stopped)
        .filter_map(|w| process_cpu(w.child.id()))
        .sum()
}

/// CPU time (user + system) of process `pid`, from /proc/<pid>/stat.
fn process_cpu(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let hz = rustix::param::clock_ticks_per_second().max(1);
    Some(Duration::from_secs_f64(ticks as f64 / hz as f64))
}

fn pss_kib(pid: u32) -> Option<u64> {
    proc_kib(
        &std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?,
        "Pss",
    )
}

/// How long the workers may take to stop their VMs and exit.
const WORKER_STOP_LIMIT: Duration = Duration::from_secs(30);

/// Waits for `child` until `deadline`, then kills it; how it ended, unless it exited
/// with 0.
fn wait_or_kill(child: &mut std::process::Child, deadline: Instant) -> Option<String> {
    use std::os::unix::process::ExitStatusExt;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                return match (status.code(), status.signal()) {
                    (Some(0), _) => None,
                    (_, Some(31)) => Some(
                        "was killed by SIGSYS: a VM thread made a system call the monitor's seccomp filter does not allow".into(),
                    ),
                    (_, Some(signal)) => Some(format!("was killed by signal {signal}")),
                    (Some(code), None) => Some(format!("exited with status {code}")),
                    (None, None) => Some("ended".into()),
                };
            }
            Err(err) => return Some(format!("could not be waited for: {err}")),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Some(format!(
                    "did not stop within {} s and was killed",
                    WORKER_STOP_LIMIT.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// Process ids a VM takes: its vCPU thread and KVM's `kvm-nx-lpage-recovery` task.
const PIDS_PER_VM: usize = 2;

fn read_pid_max() -> Option<usize> {
    std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// A sentence when `max` VMs would need more process ids than `pid_max` leaves (with 1,000
/// for the rest of the host).
fn pid_warning(max: usize, pid_max: Option<usize>) -> Option<String> {
    let pid_max = pid_max?;
    let room = pid_max.saturating_sub(1_000) / PIDS_PER_VM;
    (max > room).then(|| {
        format!(
            "{max} VMs need about {} process ids (two per VM) and kernel.pid_max is {pid_max}, \
             so expect to stop near {room} VMs; raise it with `sysctl -w kernel.pid_max={}`",
            max * PIDS_PER_VM,
            (max * PIDS_PER_VM + 1_000).next_power_of_two().max(pid_max),
        )
    })
}

/// Splits `max` VMs over `processes` workers as evenly as possible.
pub fn shares(max: usize, processes: usize) -> Vec<usize> {
    let processes = processes.clamp(1, max.max(1));
    (0..processes)
        .map(|i| max / processes + usize::from(i < max % processes))
        .filter(|&n| n > 0)
        .collect()
}

struct Worker {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    baseline_pss: u64,
    ready: bool,
    stopped: bool,
}

/// Density holds idle VMs of one vCPU each: a VM's vCPU thread is all its CPU cost.
const DENSITY: &str = "`cargo uk density`";
const DENSITY_INSTEAD: &str = "measure an image of one CPU";

/// Runs the density measurement and prints its report.
pub fn run(options: &DensityOptions) -> Result<DensityReport> {
    let kernel = resolve_image(&options.image, options.quiet)?;
    Image::open(&kernel)?.require_one_cpu(None, DENSITY, DENSITY_INSTEAD)?;
    monitor::open_kvm()?;
    let exe = match &options.worker_exe {
        Some(exe) => exe.clone(),
        None => std::env::current_exe()
            .map_err(|err| Error::new(format!("cannot find the runner executable: {err}")))?,
    };
    let shares = worker_shares(options);
    if let Some(warning) = pid_warning(options.max, read_pid_max()) {
        eprintln!("cargo uk: density: {warning}");
    }
    if !options.quiet {
        eprintln!(
            "cargo uk: density: up to {} VMs of {} ({} MiB guest memory each) in {} worker processes, {} booting at a time in each",
            options.max,
            kernel.display(),
            options.memory_mib,
            shares.len(),
            options.parallel
        );
    }
    let baseline_available = mem_available_kib().unwrap_or(0);
    let start = Instant::now();
    // Each line with the time it arrived: the coordinator reads them only after it has
    // started every worker, and VMs boot meanwhile.
    let (tx, rx) = mpsc::channel::<(usize, Option<String>, Instant)>();
    let mut workers = Vec::new();
    for (index, &count) in shares.iter().enumerate() {
        let args = WorkerOptions {
            image: kernel.clone(),
            count,
            memory_mib: options.memory_mib,
            parallel: options.parallel,
            time_limit: options.time_limit,
            reserve_mib: options.reserve_mib,
        }
        .args();
        let mut child = Command::new(&exe)
            .arg("density-worker")
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|err| Error::new(format!("cannot start {}: {err}", exe.display())))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send((index, Some(line), Instant::now())).is_err() {
                    return;
                }
            }
            let _ = tx.send((index, None, Instant::now()));
        });
        let stdin = child.stdin.take();
        workers.push(Worker {
            child,
            stdin,
            baseline_pss: 0,
            ready: false,
            stopped: false,
        });
    }
    drop(tx);

    let mut booted = 0usize;
    let mut boot_times: Vec<f64> = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    let mut limits: Vec<String> = Vec::new();
    let mut last_boot = start;
    let deadline = start + options.time_limit + Duration::from_secs(60);
    let mut next_progress = options.progress_every;
    let mut last_progress = (0usize, start, Duration::ZERO);
    while workers.iter().any(|w| !w.ready) {
        let Ok((index, line, arrived)) =
            rx.recv_timeout(deadline.saturating_duration_since(Instant::now()))
        else {
            limits.push("workers that did not report in time".into());
            break;
        };
        let Some(line) = line else {
            // A worker ended early: its own error is on stderr.
            workers[index].ready = true;
            workers[index].stopped = true;
            continue;
        };
        let (word, rest) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        match word {
            "baseline" => workers[index].baseline_pss = rest.parse().unwrap_or(0),
            "idle" => {
                booted += 1;
                last_boot = arrived;
                boot_times.push(rest.parse::<f64>().unwrap_or(0.0) / 1e3);
                if !options.quiet && booted >= next_progress {
                    // CPU time per VM is what a busy host changes least: it tells a dearer
                    // boot from a boot that waited for a core.
                    let now = arrived;
                    let cpu = workers_cpu(&workers);
                    let count = booted - last_progress.0;
                    let interval = now.duration_since(last_progress.1).as_secs_f64();
                    let cpu_per_vm =
                        cpu.saturating_sub(last_progress.2).as_secs_f64() / count as f64;
                    let free = proc_meminfo_kib("MemFree").unwrap_or(0) / 1024;
                    eprintln!(
                        "cargo uk: density: {booted} VMs idle after {:.1} s ({:.0} boots/s and {:.2} ms of worker CPU per VM over the last {count}; host MemFree {free} MiB)",
                        arrived.duration_since(start).as_secs_f64(),
                        count as f64 / interval.max(1e-9),
                        cpu_per_vm * 1e3,
                    );
                    last_progress = (booted, now, cpu);
                    next_progress += options.progress_every;
                }
            }
            "failed" if failures.len() < 5 => failures.push(rest.to_string()),
            "limit" if !limits.iter().any(|l| l == rest) => limits.push(rest.to_string()),
            "ready" => workers[index].ready = true,
            _ => {}
        }
    }
    let boot_window = last_boot.duration_since(start).as_secs_f64();

    // Hold: every booted VM sleeps in its halt; measure memory and CPU.
    let pids: Vec<u32> = workers
        .iter()
        .filter(|w| !w.stopped)
        .map(|w| w.child.id())
        .collect();
    let cpu = |pids: &[u32]| -> Duration { pids.iter().filter_map(|&p| process_cpu(p)).sum() };
    let cpu_before = cpu(&pids);
    let hold_start = Instant::now();
    std::thread::sleep(options.hold);
    let hold_cpu = cpu(&pids).saturating_sub(cpu_before);
    let hold_wall = hold_start.elapsed();
    let pss: u64 = pids.iter().filter_map(|&p| pss_kib(p)).sum();
    let baseline_pss: u64 = workers.iter().map(|w| w.baseline_pss).sum();
    let available = mem_available_kib().unwrap_or(0);
    // Still alive after the hold: every worker that reported ready is running.
    let held = booted;

    // Stop them all.
    let teardown_start = Instant::now();
    for worker in &mut workers {
        if let Some(mut stdin) = worker.stdin.take() {
            let _ = stdin.write_all(b"stop\n");
        }
    }
    // Workers end within seconds; one that does not is killed (it must not hang the run).
    let teardown_deadline = Instant::now() + WORKER_STOP_LIMIT;
    for (index, worker) in workers.iter_mut().enumerate() {
        if let Some(how) = wait_or_kill(&mut worker.child, teardown_deadline)
            && !worker.stopped
        {
            failures.push(format!("worker {index} {how}"));
        }
    }
    let teardown = teardown_start.elapsed();

    let limit = if limits.is_empty() {
        format!("--max {}", options.max)
    } else {
        limits.join("; ")
    };
    let per_vm = |kib: f64| if held > 0 { kib / held as f64 } else { 0.0 };
    boot_times.sort_by(f64::total_cmp);
    let report = DensityReport {
        held,
        max: options.max,
        limit,
        boots_per_sec: if boot_window > 0.0 {
            held as f64 / boot_window
        } else {
            0.0
        },
        boot_median_ms: boot_times.get(boot_times.len() / 2).copied().unwrap_or(0.0),
        pss_per_vm_kib: per_vm(pss.saturating_sub(baseline_pss) as f64),
        total_pss_per_vm_kib: per_vm(pss as f64),
        mem_available_per_vm_kib: per_vm(baseline_available.saturating_sub(available) as f64),
        hold_cpu_share: hold_cpu.as_secs_f64() / hold_wall.as_secs_f64(),
        teardown_ms: teardown.as_secs_f64() * 1e3,
        failures,
    };
    // A closed stdout is not an error of the measurement.
    let _ = std::io::stdout().write_all(render(&report, options, shares_len(options)).as_bytes());
    Ok(report)
}

fn shares_len(options: &DensityOptions) -> usize {
    worker_shares(options).len()
}

/// The VMs of each worker: spread over `--processes`, or one each with `--isolate`.
fn worker_shares(options: &DensityOptions) -> Vec<usize> {
    if options.isolate {
        vec![1; options.max]
    } else {
        let processes = options
            .processes
            .unwrap_or_else(|| default_processes(options.max));
        shares(options.max, processes)
    }
}

fn describe(exit: &VmExit, output: &Tail) -> String {
    let printed = String::from_utf8_lossy(output.kept());
    let printed = printed.trim();
    let what = match exit {
        VmExit::Status(status) => format!(
            "it exited with status {status} instead of idling (does its kernel know `unikernel.idle`?)"
        ),
        VmExit::Reset => "it reset".into(),
        VmExit::Fault { report, .. } => report.clone(),
        VmExit::Stopped => "it was stopped before it booted".into(),
        VmExit::Halted { .. } => "it halted".into(),
    };
    if printed.is_empty() {
        what
    } else if output.dropped() > 0 {
        format!(
            "{what}; it printed {} bytes, cut to the last {}: {printed}",
            output.total(),
            output.kept().len()
        )
    } else {
        format!("{what}; it printed: {printed}")
    }
}

/// The image to boot: an existing file, or an example built in release mode.
fn resolve_image(image: &str, quiet: bool) -> Result<PathBuf> {
    match crate::build::classify_target(image) {
        crate::build::RunTarget::Elf(path) => Ok(path),
        _ => {
            crate::setup::ensure(
                crate::setup::Needs {
                    target: true,
                    qemu: false,
                },
                quiet,
            )?;
            crate::build::build_example_with(image, quiet)
        }
    }
}

/// The report as printed.
pub(crate) fn render(report: &DensityReport, options: &DensityOptions, processes: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "density: {} of {} idle VMs held at once on the monitor ({} MiB guest memory each); stopped adding at {}",
        report.held, report.max, options.memory_mib, report.limit
    );
    let _ = writeln!(
        out,
        "  boots: {:.0} per second ({} at a time in each of {processes} processes), median {:.1} ms from VM creation to its idle halt",
        report.boots_per_sec, options.parallel, report.boot_median_ms
    );
    let _ = writeln!(
        out,
        "  host memory per VM: {:.0} KiB PSS growth ({:.0} KiB of the {processes} worker processes' total PSS / VMs; VMs are threads of those processes), {:.0} KiB of MemAvailable (with KVM's kernel memory)",
        report.pss_per_vm_kib, report.total_pss_per_vm_kib, report.mem_available_per_vm_kib
    );
    let _ = writeln!(
        out,
        "  while holding for {:.1} s: {:.2}% of one core for all VMs together; stopping them all took {:.0} ms",
        options.hold.as_secs_f64(),
        report.hold_cpu_share * 100.0,
        report.teardown_ms
    );
    for failure in &report.failures {
        let _ = writeln!(out, "  failure: {failure}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_vm_thread_gives_its_slot_back_and_is_reported() {
        let slots = Arc::new(Slots::new(1));
        let (tx, rx) = mpsc::channel();
        let slot = slots.take(Instant::now()).expect("one slot is free");
        let report = Reported {
            index: 3,
            tx,
            sent: false,
        };
        let thread = std::thread::spawn(move || {
            let (_slot, _report) = (slot, report);
            panic!("a bug in a VM's thread");
        });
        assert!(thread.join().is_err());
        let deadline = Instant::now() + Duration::from_secs(1);
        assert!(slots.take(deadline).is_some(), "the slot came back");
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(Report::Failed(3, reason)) => assert!(reason.contains("panicked"), "{reason}"),
            _ => panic!("the panic was not reported"),
        }
    }

    #[test]
    fn isolate_gives_each_vm_a_worker_of_its_own() {
        let options = DensityOptions {
            max: 3,
            processes: Some(2),
            ..DensityOptions::default()
        };
        assert_eq!(worker_shares(&options), [2, 1]);
        let isolated = DensityOptions {
            isolate: true,
            ..options
        };
        assert_eq!(worker_shares(&isolated), [1, 1, 1]);
    }

    /// By default no worker holds more than VMS_PER_WORKER VMs (and there are at least
    /// twice the cores); `--processes` overrides it.
    #[test]
    fn large_runs_spread_over_more_workers() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let options = |max| DensityOptions {
            max,
            ..DensityOptions::default()
        };
        assert_eq!(worker_shares(&options(10)).len(), 10.min(2 * cores));
        let shares = worker_shares(&options(30_000));
        assert_eq!(shares.len(), 300.max(2 * cores));
        assert!(shares.iter().all(|&n| n <= VMS_PER_WORKER));
        assert_eq!(shares.iter().sum::<usize>(), 30_000);
        let chosen = DensityOptions {
            processes: Some(4),
            ..options(30_000)
        };
        assert_eq!(worker_shares(&chosen), [7_500; 4]);
    }

    #[test]
    fn too_few_process_ids_are_said_up_front() {
        assert_eq!(pid_warning(10_000, Some(32_768)), None);
        let warning = pid_warning(30_000, Some(32_768)).unwrap();
        assert!(warning.contains("stop near 15884 VMs"), "{warning}");
        assert!(warning.contains("kernel.pid_max=65536"), "{warning}");
        assert_eq!(pid_warning(30_000, None), None);
    }

    #[test]
    fn only_kvm_running_out_of_memory_is_tried_again() {
        let kvm_error = |errno| monitor::Error::Kvm {
            ioctl: "KVM_CREATE_VCPU",
            source: kvm_ioctls::Error::new(errno),
        };
        assert!(is_out_of_memory(&kvm_error(libc::ENOMEM)));
        assert!(!is_out_of_memory(&kvm_error(libc::EINVAL)));
        assert!(!is_out_of_memory(&monitor::Error::MemorySize(1)));
    }

    #[test]
    fn waiting_for_a_slot_ends_at_its_deadline() {
        let slots = Arc::new(Slots::new(1));
        let _held = slots.take(Instant::now()).unwrap();
        let start = Instant::now();
        assert!(slots.take(start + Duration::from_millis(50)).is_none());
        let waited = start.elapsed();
        assert!(waited >= Duration::from_millis(50) && waited < Duration::from_secs(5));
    }

    #[test]
    fn a_chatty_vms_output_is_cut_and_says_so() {
        let mut output = Tail::new(VM_OUTPUT_KEPT);
        for _ in 0..1000 {
            output.push(&[b'x'; 1000]);
        }
        let text = describe(&VmExit::Reset, &output);
        assert!(
            text.starts_with("it reset; it printed 1000000 bytes, cut to the last 4096: xxx"),
            "{}",
            &text[..80]
        );
        assert!(text.len() < VM_OUTPUT_KEPT + 200);
    }
}
