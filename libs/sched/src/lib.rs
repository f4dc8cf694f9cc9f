//! The `sched` subsystem: threads, a mutex and a channel, and periodic real-time tasks.
//!
//! The policy is chosen in the attribute (`sched = coop | fixed | edf | rm`):
//! - `coop`: threads switch only when one yields, sleeps, blocks or ends;
//! - `fixed`: preemptive fixed priorities (0 most urgent; `main` is 255, spawned threads
//!   128 unless told), round robin in 10 ms slices among equal priorities;
//! - `edf`, `rm`: the attribute's periodic `task(..)`s run above every thread, ordered by
//!   earliest deadline or by the rate-monotonic priority the macro computed; threads run
//!   below them as under `fixed`.
//!
//! After boot, `main` goes on as the lowest-priority thread; when nothing is ready the
//! idle context halts the CPU until an interrupt. The timer is one-shot and tickless.
//! With several CPUs (`cpus = N`) each CPU runs this scheduler on its own state, tasks
//! and timer (see `cpus.rs`); threads never move between CPUs.
//! See README.md for why threads (and not an async executor) and for the figures.
#![no_std]
#![forbid(unsafe_code)]
// Host builds (unit tests) have no contexts to switch; what only the kernel uses is
// unused there.
#![cfg_attr(not(target_os = "none"), allow(dead_code))]

extern crate alloc;

mod cpus;
mod rank;
mod report;
mod state;
mod sync;
mod task;

use alloc::sync::Arc;
use core::fmt;
use unikernel_arch::context::{Context, Stack, StackError};
use unikernel_arch::interrupts;
use unikernel_arch::wait::Blocker;
use unikernel_clock::{Clock, Duration, Hooks, Instant};

pub use cpus::CpusError;
pub use report::{Report, SchedStats, TaskStats};
pub use state::{MAX_THREADS, SLICE};
pub use sync::{Channel, Mutex, MutexGuard};

/// How threads and tasks share the CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// Cooperative: a thread runs until it yields, sleeps, blocks or ends.
    Coop,
    /// Preemptive fixed priorities.
    Fixed,
    /// Real-time tasks by earliest deadline first; threads below them by priority.
    Edf,
    /// Real-time tasks by rate-monotonic priority; threads below them by priority.
    Rm,
}

/// What a missed deadline does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnMiss {
    /// Count it (`TaskStats::misses`) and log it (the first, second, fourth... of a task).
    Log,
    /// Panic: the VM ends with the panic's status.
    Panic,
}

/// One periodic task of the attribute, as the macro writes it.
#[derive(Clone, Copy, Debug)]
pub struct TaskSpec {
    pub name: &'static str,
    /// Called once per release; runs to completion.
    pub job: fn(),
    pub period_ns: u64,
    pub deadline_ns: u64,
    pub wcet_ns: u64,
    /// The rate/deadline-monotonic priority (0 = most urgent), computed by the macro.
    pub priority: u32,
    /// The CPU the task runs on (0 = the boot CPU): written in the attribute
    /// (`task(f, .., cpu = 1)`) or chosen by the macro's partitioning.
    pub cpu: u16,
}

/// The scheduler's configuration, as the macro writes it.
#[derive(Clone, Copy, Debug)]
pub struct SchedConfig {
    pub policy: Policy,
    pub tasks: &'static [TaskSpec],
    pub on_miss: OnMiss,
    /// How many CPUs the app runs on: `sched(cpus = N)`, 1 when not written.
    pub cpus: u16,
}

/// Why the scheduler could not start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchedError {
    /// More tasks on one CPU than threads.
    TooManyTasks(usize),
    Stack(StackError),
    Memory(unikernel_arch::memory::MemoryError),
    /// The other CPUs could not be started.
    Cpus(CpusError),
    /// A periodic task is placed on a CPU the VM does not have (it has fewer than the app
    /// declares).
    TaskCpuMissing {
        task: &'static str,
        cpu: u16,
        online: usize,
    },
    /// A periodic task is placed on a CPU other than 0 and the timer is the PIT, which
    /// only CPU 0 has.
    NoTimerOnCpu {
        task: &'static str,
        cpu: u16,
    },
}

impl fmt::Display for SchedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooManyTasks(n) => write!(
                f,
                "{n} tasks on one CPU: at most {} fit beside main (or the job loop) and the idle context",
                MAX_THREADS - 2
            ),
            Self::Stack(error) => write!(f, "{error}"),
            Self::Memory(error) => write!(f, "task statistics: {error}"),
            Self::Cpus(error) => write!(f, "{error}"),
            Self::TaskCpuMissing { task, cpu, online } => write!(
                f,
                "task `{task}` is placed on CPU {cpu} and the VM runs {online} CPUs: give the VM at least {}",
                cpu + 1
            ),
            Self::NoTimerOnCpu { task, cpu } => write!(
                f,
                "task `{task}` is placed on CPU {cpu}, which has no timer: the timer is the PIT (the machine has no local APIC timer)"
            ),
        }
    }
}

/// The stack of each task's thread.
pub const TASK_STACK: usize = 32 * 1024;
/// The stack of a spawned thread unless told otherwise.
pub const DEFAULT_STACK: usize = 64 * 1024;
/// The priority of a spawned thread unless told otherwise.
pub const DEFAULT_PRIORITY: u8 = 128;
/// `main`'s priority: the lowest.
pub const MAIN_PRIORITY: u8 = 255;
const IDLE_STACK: usize = 16 * 1024;

/// How long after `init` the tasks release their first jobs (together).
pub const FIRST_RELEASE: Duration = Duration::from_millis(1);

/// Makes the scheduler: `main` becomes a thread, the idle context and one thread per task
/// are made, and the tasks' first jobs are due [`FIRST_RELEASE`] from now. Nothing runs
/// on them until the hooks are in place and [`Sched::start`] is called: the generated
/// boot code hands the scheduler [`Sched::clock_hooks`], [`Sched::after_interrupt`] and
/// [`Sched::blocker`], then starts it.
pub fn init(clock: &Clock, config: SchedConfig) -> Result<Sched, SchedError> {
    let online = if config.cpus > 1 {
        cpus::start(config.cpus, clock.tsc_hz()).map_err(SchedError::Cpus)?
    } else {
        1
    };
    let local_timer = !matches!(clock.event_timer(), unikernel_clock::EventTimer::Pit);
    for task in config.tasks {
        if usize::from(task.cpu) >= online {
            return Err(SchedError::TaskCpuMissing {
                task: task.name,
                cpu: task.cpu,
                online,
            });
        }
        if task.cpu != 0 && !local_timer {
            return Err(SchedError::NoTimerOnCpu {
                task: task.name,
                cpu: task.cpu,
            });
        }
    }
    let start = clock.now() + FIRST_RELEASE;
    for cpu in 0..online {
        install_cpu(cpu, &config, start)?;
    }
    Ok(Sched(()))
}

/// Makes CPU `cpu`'s scheduler: thread 0 is `main` (CPU 0) or the job loop (the others),
/// already running; 1 the idle context; 2.. the threads of the tasks placed on `cpu`.
fn install_cpu(cpu: usize, config: &SchedConfig, start: Instant) -> Result<(), SchedError> {
    let specs = || {
        config
            .tasks
            .iter()
            .filter(move |task| usize::from(task.cpu) == cpu)
    };
    let count = specs().count();
    if count > MAX_THREADS - 2 {
        return Err(SchedError::TooManyTasks(count));
    }
    let tasks: &'static mut [task::Task] = if count == 0 {
        &mut []
    } else {
        let mut specs = specs();
        unikernel_arch::memory::leak_slice(count, |i| {
            task::Task::new(*specs.next().expect("counted"), 2 + i, start)
        })
        .map_err(SchedError::Memory)?
    };
    let now = Instant::now();
    let mut threads: [state::Thread; MAX_THREADS] =
        core::array::from_fn(|_| state::Thread::free(0));
    threads[0].run = state::Run::Running;
    threads[0].name = if cpu == 0 { "main" } else { "jobs" };
    threads[0].priority = MAIN_PRIORITY;
    threads[0].running_since = now;

    let idle_stack =
        Stack::new(IDLE_STACK, "the idle context's stack").map_err(SchedError::Stack)?;
    threads[1].run = state::Run::Ready;
    threads[1].name = "idle";
    threads[1].idle = true;
    threads[1].context = Some(Context::new(idle_stack, |resumed| {
        state::started(resumed);
        idle()
    }));
    for (i, spec) in specs().enumerate() {
        let stack =
            Stack::new(TASK_STACK, "the stack of a real-time task").map_err(SchedError::Stack)?;
        let thread = &mut threads[2 + i];
        thread.run = state::Run::Ready;
        thread.name = spec.name;
        thread.task = Some(i);
        thread.context = Some(Context::new(stack, move |resumed| {
            state::started(resumed);
            interrupts::enable();
            task::run(i)
        }));
    }
    state::install(state::State {
        cpu,
        started: false,
        policy: config.policy,
        on_miss: config.on_miss,
        threads,
        current: 0,
        switching_from: 0,
        seq: 0,
        tasks,
        slice_end: None,
        slice_owner: 0,
        force: false,
        armed: None,
        counters: state::Counters {
            since: now,
            ..Default::default()
        },
    })
    .map_err(SchedError::Memory)
}

/// The idle context: halts the CPU until the next interrupt.
fn idle() -> ! {
    loop {
        interrupts::enable_and_wait();
    }
}

/// The handle `main` takes for the scheduler.
#[derive(Clone, Copy, Debug)]
pub struct Sched(());

impl Sched {
    /// What the clock calls for the scheduler: its alarm handler (releases, deadlines,
    /// sleepers, time slices), its prediction of the next alarm, and its `sleep_until`
    /// (blocks the calling thread instead of halting the CPU).
    pub fn clock_hooks(&self) -> Hooks {
        Hooks {
            on_alarm: state::on_alarm,
            predict: state::predict,
            sleep_until: state::sleep_until,
        }
    }

    /// What runs after every interrupt handler: switches to a thread the interrupt made
    /// more urgent than the one it interrupted.
    pub fn after_interrupt(&self) -> fn() {
        state::after_interrupt
    }

    /// How drivers' blocking calls (the network's) block: the calling thread, not the CPU.
    pub fn blocker(&self) -> Blocker {
        Blocker {
            block: state::block_io,
            wake: state::wake_io,
            relax: yield_now,
        }
    }

    /// Starts scheduling, once the hooks are in place: lets the task threads reach their
    /// first wait (they are more urgent than `main`) and arms the timer for the first
    /// release; then lets the other CPUs do the same with theirs.
    pub fn start(&self) {
        cpus::start_all();
        state::start_this_cpu();
    }

    pub fn policy(&self) -> Policy {
        state::with(|state| state.policy)
    }

    /// Spawns a thread with the default name, priority and stack; see [`Builder`].
    ///
    /// # Panics
    /// If the thread cannot be made (no slot or no memory for its stack).
    pub fn spawn<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        spawn(f)
    }

    /// Runs `f` on CPU `cpu`, pinned there: on CPU 0 as a thread (like [`Sched::spawn`]),
    /// on another CPU as a job of that CPU's queue, run by its job loop (a thread of the
    /// lowest priority) after the jobs queued before it. A job may sleep and block; while
    /// it does, the jobs queued after it wait. For a thread of its own on another CPU, see
    /// [`Builder::cpu`].
    pub fn spawn_on<F, T>(&self, cpu: usize, f: F) -> Result<CpuJoinHandle<T>, SpawnError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let online = self.cpus();
        if cpu >= online {
            return Err(SpawnError::NoSuchCpu { cpu, online });
        }
        if cpu == 0 {
            return Builder::new().cpu(0).spawn(f).map(CpuJoinHandle::Thread);
        }
        let packet = Arc::new(Packet::new());
        let sender = packet.clone();
        cpus::run_on(cpu, alloc::boxed::Box::new(move || sender.put(f())));
        Ok(CpuJoinHandle::Job(packet))
    }

    /// How many CPUs run (1 unless `sched(cpus = N)`; fewer than N when the VM has fewer).
    pub fn cpus(&self) -> usize {
        unikernel_arch::smp::online()
    }

    /// The CPU the caller runs on (0: the boot CPU).
    pub fn this_cpu(&self) -> usize {
        unikernel_arch::smp::this_cpu()
    }

    /// The least loaded of CPUs 1.. (the one with the fewest queued or running jobs;
    /// CPU 0 when it runs alone): where to put work that may run anywhere.
    pub fn least_loaded_cpu(&self) -> usize {
        (1..self.cpus())
            .min_by_key(|&cpu| cpus::load(cpu))
            .unwrap_or(0)
    }

    /// A builder for a thread with a name, a priority or a stack size of its own.
    pub fn thread(&self) -> Builder {
        Builder::new()
    }

    /// Lets every other ready thread of the same rank run first.
    pub fn yield_now(&self) {
        yield_now();
    }

    /// Blocks the calling thread for `duration`; others (and the tasks) run.
    pub fn sleep(&self, duration: Duration) {
        sleep(duration);
    }

    pub fn sleep_until(&self, deadline: Instant) {
        sleep_until(deadline);
    }

    /// Lets the tasks and threads run for `duration` while the caller (usually `main`)
    /// sleeps.
    pub fn run_for(&self, duration: Duration) {
        sleep(duration);
    }

    /// The figures of each real-time task: CPU 0's tasks, then CPU 1's, and so on.
    pub fn task_stats(&self) -> TaskStatsIter {
        TaskStatsIter { cpu: 0, next: 0 }
    }

    /// The figures of the task called `name`.
    pub fn task(&self, name: &str) -> Option<TaskStats> {
        self.task_stats().find(|task| task.name == name)
    }

    /// The table of every task's jitter, response time and misses.
    pub fn report(&self) -> Report<TaskStatsIter> {
        Report(self.task_stats())
    }

    /// The counters of the caller's CPU.
    pub fn stats(&self) -> SchedStats {
        state::with(|state| {
            let now = Instant::now();
            let idle_running = state
                .counters
                .idle_since
                .map_or(Duration::ZERO, |since| now - since);
            SchedStats {
                policy: state.policy,
                switches: state.counters.switches,
                preemptions: state.counters.preemptions,
                idle: Duration::from_nanos(state.counters.idle_ns) + idle_running,
                elapsed: now - state.counters.since,
                threads: state
                    .threads
                    .iter()
                    .filter(|t| !t.idle && !matches!(t.run, state::Run::Free))
                    .count(),
                tasks: state.tasks.len(),
            }
        })
    }

    /// Forgets the tasks' figures (of every CPU) and the idle time (of the caller's CPU),
    /// to measure after a warm-up.
    pub fn reset_stats(&self) {
        let here = self.this_cpu();
        for cpu in (0..self.cpus()).filter(|&cpu| cpu != here && state::runs_on(cpu)) {
            state::with_cpu(cpu, |state| {
                for task in state.tasks.iter_mut() {
                    task.measured = task::Measured::new();
                }
            });
        }
        state::with(|state| {
            for task in state.tasks.iter_mut() {
                task.measured = task::Measured::new();
            }
            let now = Instant::now();
            state.counters.idle_ns = 0;
            state.counters.since = now;
            if state.counters.idle_since.is_some() {
                state.counters.idle_since = Some(now);
            }
        });
    }
}

/// The tasks' figures, one at a time.
#[derive(Clone, Debug)]
pub struct TaskStatsIter {
    cpu: usize,
    next: usize,
}

impl Iterator for TaskStatsIter {
    type Item = TaskStats;
    fn next(&mut self) -> Option<TaskStats> {
        while state::runs_on(self.cpu) {
            let (cpu, index) = (self.cpu, self.next);
            let stats = state::with_cpu(cpu, |state| {
                let task = state.tasks.get(index)?;
                Some(TaskStats {
                    name: task.spec.name,
                    cpu,
                    period: Duration::from_nanos(task.spec.period_ns),
                    deadline: Duration::from_nanos(task.spec.deadline_ns),
                    wcet: Duration::from_nanos(task.spec.wcet_ns),
                    priority: task.spec.priority,
                    jobs: task.measured.jobs,
                    misses: task.measured.misses,
                    max_backlog: task.measured.max_backlog,
                    jitter: task.measured.jitter.summary(),
                    response: task.measured.response.summary(),
                    execution: task.measured.execution.summary(),
                    overruns: task.measured.overruns,
                })
            });
            match stats {
                Some(stats) => {
                    self.next += 1;
                    return Some(stats);
                }
                None => {
                    self.cpu += 1;
                    self.next = 0;
                }
            }
        }
        None
    }
}

/// Why a thread could not be spawned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpawnError {
    /// [`MAX_THREADS`] threads exist.
    TooManyThreads,
    Stack(StackError),
    /// No CPU with this index runs.
    NoSuchCpu {
        cpu: usize,
        online: usize,
    },
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooManyThreads => write!(f, "at most {MAX_THREADS} threads exist at once"),
            Self::Stack(error) => write!(f, "{error}"),
            Self::NoSuchCpu { cpu, online } => {
                write!(f, "no CPU {cpu}: {online} CPUs run (0 to {})", online - 1)
            }
        }
    }
}

/// What [`Sched::spawn_on`] returns: a thread on CPU 0, or a job on another CPU.
#[derive(Debug)]
pub enum CpuJoinHandle<T> {
    Thread(JoinHandle<T>),
    Job(Arc<Packet<T>>),
}

impl<T> CpuJoinHandle<T> {
    /// Blocks until the thread or job ends; returns what it returned.
    pub fn join(self) -> T {
        match self {
            Self::Thread(handle) => handle.join(),
            Self::Job(packet) => packet.take(),
        }
    }

    /// Whether the thread or job has ended.
    pub fn is_finished(&self) -> bool {
        match self {
            Self::Thread(handle) => handle.is_finished(),
            Self::Job(packet) => packet.is_ready(),
        }
    }
}

/// Where a thread or a job leaves its result, and where its joiner waits for it (on any
/// CPU).
pub struct Packet<T> {
    value: spin::Mutex<Option<T>>,
    joiner: sync::WaitQueue,
}

impl<T> fmt::Debug for Packet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Packet")
            .field("ready", &self.is_ready())
            .finish()
    }
}

impl<T> Packet<T> {
    fn new() -> Self {
        Self {
            value: spin::Mutex::new(None),
            joiner: sync::WaitQueue::new(),
        }
    }

    /// Leaves the result and wakes the joiner.
    fn put(&self, value: T) {
        // Interrupts off: the joiner looks at it under its CPU's lock, with them off.
        interrupts::without(|| *self.value.lock() = Some(value));
        if state::is_running() {
            self.joiner.wake_one();
        }
    }

    fn is_ready(&self) -> bool {
        interrupts::without(|| self.value.lock().is_some())
    }

    /// Blocks until the result is there, and takes it.
    fn take(&self) -> T {
        loop {
            if let Some(value) = interrupts::without(|| self.value.lock().take()) {
                return value;
            }
            if !state::is_running() {
                core::hint::spin_loop();
                continue;
            }
            sync::block_on(&self.joiner, || self.value.lock().is_none(), None);
        }
    }
}

/// Spawns a thread with a name, priority or stack size of its own.
#[derive(Clone, Copy, Debug)]
pub struct Builder {
    name: &'static str,
    priority: u8,
    stack_size: usize,
    cpu: Option<usize>,
}

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

impl Builder {
    pub const fn new() -> Self {
        Self {
            name: "thread",
            priority: DEFAULT_PRIORITY,
            stack_size: DEFAULT_STACK,
            cpu: None,
        }
    }

    pub const fn name(mut self, name: &'static str) -> Self {
        self.name = name;
        self
    }

    /// 0 is the most urgent; `main` runs at 255. Ignored under `sched = coop`.
    pub const fn priority(mut self, priority: u8) -> Self {
        self.priority = priority;
        self
    }

    /// Rounded up to whole pages; an unmapped guard page lies below it.
    pub const fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = bytes;
        self
    }

    /// Pins the thread to CPU `cpu` (0 = the boot CPU; a CPU that does not run makes
    /// [`Builder::spawn`] fail). Without it, the thread runs on the CPU of the thread that
    /// spawns it. Threads never move between CPUs.
    pub const fn cpu(mut self, cpu: usize) -> Self {
        self.cpu = Some(cpu);
        self
    }

    /// Spawns the thread. Under a preemptive policy it runs at once if it outranks the
    /// thread running on its CPU. The result is kept on the heap until joined, so spawning
    /// needs a `heap`.
    pub fn spawn<F, T>(self, f: F) -> Result<JoinHandle<T>, SpawnError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let online = unikernel_arch::smp::online();
        let cpu = self.cpu.unwrap_or_else(unikernel_arch::smp::this_cpu);
        if cpu >= online || !state::runs_on(cpu) {
            return Err(SpawnError::NoSuchCpu { cpu, online });
        }
        let packet = Arc::new(Packet::new());
        let result = packet.clone();
        let stack = Stack::new(self.stack_size, "the stack of a spawned thread")
            .map_err(SpawnError::Stack)?;
        let context = Context::new(stack, move |resumed| {
            state::started(resumed);
            interrupts::enable();
            result.put(f());
            drop(result);
            state::exit_current()
        });
        let mut context = Some(context);
        let mut outcome = Err(SpawnError::TooManyThreads);
        state::wake_where(cpu, |state| {
            let Some(index) = state.threads.iter().position(|t| t.run == state::Run::Free) else {
                return false;
            };
            let since = state.next_seq();
            let generation = state.threads[index].generation;
            let thread = &mut state.threads[index];
            *thread = state::Thread::free(generation);
            thread.run = state::Run::Ready;
            thread.context = context.take();
            thread.name = self.name;
            thread.priority = self.priority;
            thread.since = since;
            outcome = Ok(());
            true
        });
        outcome.map(|()| JoinHandle { packet })
    }
}

/// Waits for a spawned thread to end and takes its result.
#[derive(Debug)]
pub struct JoinHandle<T> {
    packet: Arc<Packet<T>>,
}

impl<T> JoinHandle<T> {
    /// Blocks until the thread ends; returns what it returned.
    pub fn join(self) -> T {
        self.packet.take()
    }

    /// Whether the thread has ended.
    pub fn is_finished(&self) -> bool {
        self.packet.is_ready()
    }
}

/// Spawns a thread with the default name, priority (128) and stack (64 KiB).
///
/// # Panics
/// If the thread cannot be made.
pub fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    match Builder::new().spawn(f) {
        Ok(handle) => handle,
        Err(error) => panic!("spawn: {error}"),
    }
}

/// Lets every other ready thread of the same rank run first.
pub fn yield_now() {
    assert!(
        !interrupts::in_handler(),
        "yield_now in an interrupt handler"
    );
    if !state::is_running() {
        core::hint::spin_loop();
        return;
    }
    interrupts::without(|| {
        let mut state = state::lock();
        let me = state.current;
        let since = state.next_seq();
        state.threads[me].since = since;
        let best = state.pick();
        if best != me {
            state::switch_to(state, best);
        }
    });
}

/// Blocks the calling thread for `duration`.
pub fn sleep(duration: Duration) {
    sleep_until(Instant::now() + duration);
}

/// Blocks the calling thread until `deadline`.
pub fn sleep_until(deadline: Instant) {
    state::sleep_until(deadline);
}

/// The CPU time the calling thread has used (the interrupt handlers that ran while it was
/// running included).
pub fn cpu_time() -> Duration {
    if !state::is_running() {
        return Instant::now() - Instant::BOOT;
    }
    state::cpu_time()
}

/// The CPU the caller runs on (0: the boot CPU): where a task's job or a thread runs.
pub fn this_cpu() -> usize {
    unikernel_arch::smp::this_cpu()
}

/// The name of the running thread (a task's name for a task's thread).
pub fn current_name() -> &'static str {
    if !state::is_running() {
        return "main";
    }
    state::with(|state| state.threads[state.current].name)
}
