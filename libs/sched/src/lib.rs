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
    /// More tasks than threads.
    TooManyTasks(usize),
    Stack(StackError),
    Memory(unikernel_arch::memory::MemoryError),
    /// The other CPUs could not be started.
    Cpus(CpusError),
    /// A periodic task is placed on a CPU other than 0, where no task runs yet.
    TaskOnOtherCpu {
        task: &'static str,
        cpu: u16,
    },
}

impl fmt::Display for SchedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooManyTasks(n) => write!(
                f,
                "{n} tasks: at most {} fit beside main and the idle context",
                MAX_THREADS - 2
            ),
            Self::Stack(error) => write!(f, "{error}"),
            Self::Memory(error) => write!(f, "task statistics: {error}"),
            Self::Cpus(error) => write!(f, "{error}"),
            Self::TaskOnOtherCpu { task, cpu } => write!(
                f,
                "task `{task}` is placed on CPU {cpu}: periodic tasks run on CPU 0 only for now"
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
    if config.tasks.len() > MAX_THREADS - 2 {
        return Err(SchedError::TooManyTasks(config.tasks.len()));
    }
    if let Some(task) = config.tasks.iter().find(|task| task.cpu != 0) {
        return Err(SchedError::TaskOnOtherCpu {
            task: task.name,
            cpu: task.cpu,
        });
    }
    if config.cpus > 1 {
        cpus::start(config.cpus, clock.tsc_hz()).map_err(SchedError::Cpus)?;
    }
    let start = clock.now() + FIRST_RELEASE;
    // Thread 0 is main, 1 the idle context, 2.. the tasks.
    let tasks: &'static mut [task::Task] = if config.tasks.is_empty() {
        &mut []
    } else {
        unikernel_arch::memory::leak_slice(config.tasks.len(), |i| {
            task::Task::new(config.tasks[i], 2 + i, start)
        })
        .map_err(SchedError::Memory)?
    };
    let mut threads: [state::Thread; MAX_THREADS] =
        core::array::from_fn(|_| state::Thread::free(0));
    threads[0].run = state::Run::Running;
    threads[0].name = "main";
    threads[0].priority = MAIN_PRIORITY;

    let idle_stack =
        Stack::new(IDLE_STACK, "the idle context's stack").map_err(SchedError::Stack)?;
    threads[1].run = state::Run::Ready;
    threads[1].name = "idle";
    threads[1].idle = true;
    threads[1].context = Some(Context::new(idle_stack, |resumed| {
        state::started(resumed);
        idle()
    }));
    for (i, spec) in config.tasks.iter().enumerate() {
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
    let now = Instant::now();
    state::install(state::State {
        policy: config.policy,
        on_miss: config.on_miss,
        threads,
        current: 0,
        switching_from: 0,
        seq: 0,
        tasks,
        slice_end: None,
        force: false,
        armed: None,
        counters: state::Counters {
            since: now,
            ..Default::default()
        },
    });
    Ok(Sched(()))
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
    /// release.
    pub fn start(&self) {
        interrupts::without(|| {
            let mut state = state::lock();
            state.program_alarm();
            let best = state.pick();
            if best != 0 && !state.threads[best].idle {
                state::switch_to(state, best);
            }
        });
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
    /// on another CPU as a job of that CPU's queue, run to completion after the jobs queued
    /// before it (see the crate's README: such a job must not sleep or block).
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
            return Builder::new().spawn(f).map(CpuJoinHandle::Thread);
        }
        let packet: Arc<spin::Mutex<Option<T>>> = Arc::new(spin::Mutex::new(None));
        let sender = packet.clone();
        cpus::run_on(
            cpu,
            alloc::boxed::Box::new(move || {
                let value = f();
                *sender.lock() = Some(value);
                // The joiner may be halted on CPU 0.
                cpus::wake(0);
            }),
        );
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

    /// The figures of each real-time task.
    pub fn task_stats(&self) -> TaskStatsIter {
        TaskStatsIter {
            next: 0,
            len: state::with(|state| state.tasks.len()),
        }
    }

    /// The figures of the task called `name`.
    pub fn task(&self, name: &str) -> Option<TaskStats> {
        self.task_stats().find(|task| task.name == name)
    }

    /// The table of every task's jitter, response time and misses.
    pub fn report(&self) -> Report<TaskStatsIter> {
        Report(self.task_stats())
    }

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

    /// Forgets the tasks' figures and the idle time (to measure after a warm-up).
    pub fn reset_stats(&self) {
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
    next: usize,
    len: usize,
}

impl Iterator for TaskStatsIter {
    type Item = TaskStats;
    fn next(&mut self) -> Option<TaskStats> {
        if self.next >= self.len {
            return None;
        }
        let index = self.next;
        self.next += 1;
        Some(state::with(|state| {
            let task = &state.tasks[index];
            TaskStats {
                name: task.spec.name,
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
            }
        }))
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
    Job(Arc<spin::Mutex<Option<T>>>),
}

impl<T> CpuJoinHandle<T> {
    /// Waits until the thread or job ends; returns what it returned. Waiting for a job,
    /// the calling thread yields to the others and halts CPU 0 when none is ready (the
    /// job's end wakes it).
    pub fn join(self) -> T {
        match self {
            Self::Thread(handle) => handle.join(),
            Self::Job(packet) => loop {
                if let Some(value) = packet.lock().take() {
                    return value;
                }
                yield_now();
                interrupts::without(|| {
                    if packet.lock().is_none() {
                        interrupts::enable_and_wait();
                    }
                });
            },
        }
    }

    /// Whether the thread or job has ended.
    pub fn is_finished(&self) -> bool {
        match self {
            Self::Thread(handle) => handle.is_finished(),
            Self::Job(packet) => packet.lock().is_some(),
        }
    }
}

/// Spawns a thread with a name, priority or stack size of its own.
#[derive(Clone, Copy, Debug)]
pub struct Builder {
    name: &'static str,
    priority: u8,
    stack_size: usize,
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

    /// Spawns the thread. Under a preemptive policy it runs at once if it outranks the
    /// caller. The result is kept on the heap until joined, so spawning needs a `heap`.
    pub fn spawn<F, T>(self, f: F) -> Result<JoinHandle<T>, SpawnError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let packet: Arc<spin::Mutex<Option<T>>> = Arc::new(spin::Mutex::new(None));
        let result = packet.clone();
        let stack = Stack::new(self.stack_size, "the stack of a spawned thread")
            .map_err(SpawnError::Stack)?;
        let (index, generation) = state::with(|state| {
            let index = state
                .threads
                .iter()
                .position(|t| t.run == state::Run::Free)
                .ok_or(SpawnError::TooManyThreads)?;
            let context = Context::new(stack, move |resumed| {
                state::started(resumed);
                interrupts::enable();
                let value = f();
                *result.lock() = Some(value);
                drop(result);
                state::exit_current()
            });
            let since = state.next_seq();
            let generation = state.threads[index].generation;
            let thread = &mut state.threads[index];
            *thread = state::Thread::free(generation);
            thread.run = state::Run::Ready;
            thread.context = Some(context);
            thread.name = self.name;
            thread.priority = self.priority;
            thread.since = since;
            state.program_alarm();
            Ok((index, generation))
        })?;
        state::reschedule();
        Ok(JoinHandle {
            index,
            generation,
            packet,
        })
    }
}

/// Waits for a spawned thread to end and takes its result.
#[derive(Debug)]
pub struct JoinHandle<T> {
    index: usize,
    generation: u32,
    packet: Arc<spin::Mutex<Option<T>>>,
}

impl<T> JoinHandle<T> {
    /// Blocks until the thread ends; returns what it returned.
    pub fn join(self) -> T {
        loop {
            if let Some(value) = self.packet.lock().take() {
                return value;
            }
            let (index, generation) = (self.index, self.generation);
            state::block_with(
                |state, me| {
                    let thread = &mut state.threads[index];
                    let alive = thread.generation == generation
                        && !matches!(thread.run, state::Run::Finished | state::Run::Free);
                    if alive {
                        thread.joiner = Some(me);
                    }
                    alive
                },
                None,
            );
        }
    }

    /// Whether the thread has ended.
    pub fn is_finished(&self) -> bool {
        self.packet.lock().is_some()
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
    // A job on another CPU has no thread to yield: it just lets the CPU breathe.
    if !cpus::on_boot_cpu() {
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

/// The name of the running thread (a task's name for a task's thread).
pub fn current_name() -> &'static str {
    if !state::is_running() {
        return "main";
    }
    state::with(|state| state.threads[state.current].name)
}
