//! The scheduler's state, the switch, blocking and waking.
//!
//! Each CPU has a state of its own: its threads (its `main` or job loop, its idle context,
//! its real-time tasks' threads and the threads spawned onto it), its tasks, its alarm.
//! Threads never move between CPUs. Everything here runs with interrupts disabled; a CPU
//! takes another CPU's lock only for a moment, to make one of that CPU's threads ready or
//! to add one (then an IPI tells that CPU to look), never while holding its own, so the
//! lock of a CPU's hot path is contended only by such wake-ups.
//!
//! A switch goes: pick the next context, take its suspended [`Context`] out of the table,
//! release the lock, [`Context::resume`] it. The suspended side comes back from `resume`
//! when something resumes it in turn, receives the context that did (or that context's
//! stack, if it ended) and files it under [`State::switching_from`].

use crate::rank::{self, Candidate, Rank};
use crate::task::Task;
use crate::{OnMiss, Policy};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use unikernel_arch::acpi::MAX_CPUS;
use unikernel_arch::context::{Context, Resumed};
use unikernel_arch::interrupts;
use unikernel_arch::smp::this_cpu;
use unikernel_clock::{Duration, Instant};

/// The most threads at once on one CPU: `main` (or the CPU's job loop), the idle context
/// and one per real-time task count.
pub const MAX_THREADS: usize = 64;

/// A thread anywhere: its CPU and its slot in that CPU's table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ThreadId {
    pub cpu: usize,
    pub index: usize,
}

impl ThreadId {
    /// As one number (for an atomic).
    pub fn encode(self) -> usize {
        self.cpu * MAX_THREADS + self.index
    }

    pub fn decode(value: usize) -> ThreadId {
        ThreadId {
            cpu: value / MAX_THREADS,
            index: value % MAX_THREADS,
        }
    }
}
/// How long a thread runs before an equally ranked ready one gets the CPU (preemptive
/// policies only; no timer interrupt for it unless such a thread is waiting).
pub const SLICE: Duration = Duration::from_millis(10);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Run {
    Free,
    Ready,
    Running,
    Blocked,
    Finished,
}

pub(crate) struct Thread {
    pub run: Run,
    /// The suspended context, while it does not run.
    pub context: Option<Context>,
    pub name: &'static str,
    pub priority: u8,
    /// The rank inherited from a more urgent waiter of a mutex this thread holds.
    pub inherited: Option<Rank>,
    /// The real-time task this thread runs the jobs of.
    pub task: Option<usize>,
    /// When a blocked thread wakes up by itself (a sleep, a wait with a timeout).
    pub wake_at: Option<Instant>,
    /// Set when `wake_at` woke it.
    pub timed_out: bool,
    /// When it became ready: FIFO order among equal ranks.
    pub since: u64,
    /// Counts reuses of the slot, so that a join handle does not wait for a newcomer.
    pub generation: u32,
    /// Blocked waiting for a device (`block_io`), until `wake_io`.
    pub io_wait: bool,
    /// The job loop of a CPU other than 0, blocked until a job is queued.
    pub job_wait: bool,
    pub idle: bool,
    /// CPU time used before the current run (interrupt handlers included).
    pub cpu_ns: u64,
    /// When the current run began.
    pub running_since: Instant,
}

impl Thread {
    pub fn free(generation: u32) -> Thread {
        Thread {
            run: Run::Free,
            context: None,
            name: "",
            priority: 0,
            inherited: None,
            task: None,
            wake_at: None,
            timed_out: false,
            since: 0,
            generation,
            io_wait: false,
            job_wait: false,
            idle: false,
            cpu_ns: 0,
            running_since: Instant::BOOT,
        }
    }
}

/// Counters for `Sched::stats`.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Counters {
    pub switches: u64,
    pub preemptions: u64,
    pub idle_ns: u64,
    pub idle_since: Option<Instant>,
    pub since: Instant,
}

pub(crate) struct State {
    /// The CPU whose state this is.
    pub cpu: usize,
    /// Set once the CPU schedules (`Sched::start` on CPU 0, the AP's own start on others):
    /// until then interrupts do not switch.
    pub started: bool,
    pub policy: Policy,
    pub on_miss: OnMiss,
    pub threads: [Thread; MAX_THREADS],
    pub current: usize,
    /// The context that switched last: the one whose suspended context (or stack) the
    /// resumed side receives.
    pub switching_from: usize,
    pub seq: u64,
    pub tasks: &'static mut [Task],
    /// When the running thread's time slice ends, if another one of its rank waits.
    pub slice_end: Option<Instant>,
    /// The thread whose slice that is (a task's job may be running meanwhile).
    pub slice_owner: usize,
    /// Switch at the next chance even to an equal rank: the slice is over.
    pub force: bool,
    /// The alarm as last programmed.
    pub armed: Option<Instant>,
    pub counters: Counters,
}

/// Each CPU's state, on memory of its own, indexed by [`this_cpu`].
static STATES: [spin::Once<&'static spin::Mutex<State>>; MAX_CPUS] =
    [const { spin::Once::new() }; MAX_CPUS];

/// Installs the state of CPU `state.cpu`.
pub(crate) fn install(state: State) -> Result<(), unikernel_arch::memory::MemoryError> {
    let cpu = state.cpu;
    let mut state = Some(state);
    let slot = unikernel_arch::memory::leak_slice(1, |_| {
        spin::Mutex::new(state.take().expect("one state per slot"))
    })?;
    let slot: &'static spin::Mutex<State> = &slot[0];
    STATES[cpu].call_once(|| slot);
    Ok(())
}

/// Whether the CPU this runs on has a scheduler.
pub(crate) fn is_running() -> bool {
    STATES[this_cpu()].get().is_some()
}

/// Whether CPU `cpu` has a scheduler.
pub(crate) fn runs_on(cpu: usize) -> bool {
    cpu < MAX_CPUS && STATES[cpu].get().is_some()
}

/// The state of the CPU this runs on. Interrupts must be disabled.
pub(crate) fn lock() -> spin::MutexGuard<'static, State> {
    lock_cpu(this_cpu())
}

/// The state of CPU `cpu`. Interrupts must be disabled, and the caller holds no other
/// CPU's state.
pub(crate) fn lock_cpu(cpu: usize) -> spin::MutexGuard<'static, State> {
    debug_assert!(
        !interrupts::are_enabled(),
        "the scheduler's lock needs interrupts off"
    );
    STATES[cpu]
        .get()
        .expect("the scheduler is not running: declare `sched` in `#[unikernel(...)]`")
        .lock()
}

/// Runs `f` on the state of the CPU this runs on, with interrupts disabled.
pub(crate) fn with<R>(f: impl FnOnce(&mut State) -> R) -> R {
    interrupts::without(|| f(&mut lock()))
}

/// Runs `f` on the state of CPU `cpu`, with interrupts disabled.
pub(crate) fn with_cpu<R>(cpu: usize, f: impl FnOnce(&mut State) -> R) -> R {
    interrupts::without(|| f(&mut lock_cpu(cpu)))
}

/// The running thread.
pub(crate) fn current() -> ThreadId {
    with(|state| ThreadId {
        cpu: state.cpu,
        index: state.current,
    })
}

/// Makes `thread` ready if it is blocked, wherever it is, and lets its CPU run it if it
/// should: at once on this CPU (after the handler, from an interrupt handler), through a
/// wake-up IPI on another. Returns whether it was blocked.
pub(crate) fn wake_thread(thread: ThreadId) -> bool {
    wake_where(thread.cpu, |state| {
        if state.threads[thread.index].run != Run::Blocked {
            return false;
        }
        state.wake(thread.index);
        true
    })
}

/// Runs `wake` on CPU `cpu`'s state; if it woke something, has that CPU look (the alarm
/// for a new time slice, a switch).
pub(crate) fn wake_where(cpu: usize, wake: impl FnOnce(&mut State) -> bool) -> bool {
    let here = this_cpu();
    let woke = with_cpu(cpu, |state| {
        let woke = wake(state);
        // Only a CPU programs its own timer: another does in its IPI handler.
        if woke && cpu == here {
            state.program_alarm();
        }
        woke
    });
    if woke {
        if cpu == here {
            reschedule();
        } else {
            crate::cpus::wake(cpu);
        }
    }
    woke
}

/// What the wake-up IPI does on the CPU it reaches: programs the alarm for what the
/// sender changed (a new thread, a time slice); the after-interrupt hook then switches.
pub(crate) fn on_wake_ipi() {
    if !is_running() {
        return;
    }
    let mut state = lock();
    if state.started {
        state.program_alarm();
    }
}

impl State {
    pub fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    pub fn rank(&self, index: usize) -> Rank {
        let thread = &self.threads[index];
        let natural = if thread.idle {
            Rank::IDLE
        } else if let Some(task) = thread.task {
            self.tasks[task].rank(self.policy)
        } else if self.policy == Policy::Coop {
            Rank::thread(0)
        } else {
            Rank::thread(thread.priority)
        };
        thread
            .inherited
            .map_or(natural, |inherited| natural.min(inherited))
    }

    fn runnable(&self, index: usize) -> bool {
        matches!(self.threads[index].run, Run::Ready | Run::Running)
    }

    /// The context to run now. The idle context is always runnable.
    pub fn pick(&self) -> usize {
        let candidates = (0..MAX_THREADS).filter(|&i| self.runnable(i)).map(|i| {
            (
                i,
                Candidate {
                    rank: self.rank(i),
                    since: self.threads[i].since,
                },
            )
        });
        rank::pick(candidates).expect("the idle context is always runnable")
    }

    /// Makes a blocked thread ready.
    pub fn wake(&mut self, index: usize) {
        let since = self.next_seq();
        let thread = &mut self.threads[index];
        if thread.run == Run::Blocked {
            thread.run = Run::Ready;
            thread.wake_at = None;
            thread.io_wait = false;
            thread.job_wait = false;
            thread.since = since;
        }
    }

    /// Programs the one-shot timer for the next thing due: a task's release or deadline
    /// check, a sleeper, the end of a time slice. Nothing due, no timer.
    pub fn program_alarm(&mut self) {
        self.update_slice();
        let tasks = self.tasks.iter().map(Task::next_event);
        let sleepers = self
            .threads
            .iter()
            .filter(|t| t.run == Run::Blocked)
            .filter_map(|t| t.wake_at);
        let next = tasks.chain(sleepers).chain(self.slice_end).min();
        if next != self.armed {
            self.armed = next;
            unikernel_clock::set_alarm(next);
        }
    }

    /// Starts a time slice when another thread of the running one's rank is ready, ends it
    /// when none is (preemptive policies, threads only). A task's job that preempts a
    /// thread leaves the thread's slice running: were it restarted after each job, a 1 kHz
    /// task would keep a 10 ms slice from ever ending.
    fn update_slice(&mut self) {
        let current = self.current;
        let rank = self.rank(current);
        if rank.is_task() {
            return;
        }
        let contested = self.policy != Policy::Coop
            && !self.threads[current].idle
            && (0..MAX_THREADS)
                .any(|i| i != current && self.threads[i].run == Run::Ready && self.rank(i) == rank);
        if !contested {
            self.slice_end = None;
        } else if self.slice_end.is_none() || self.slice_owner != current {
            self.slice_end = Some(Instant::now() + SLICE);
            self.slice_owner = current;
        }
    }
}

/// Switches from the running context to `next` (not the running one). Returns when the
/// running context is resumed. Interrupts must be disabled.
pub(crate) fn switch_to(mut state: spin::MutexGuard<'static, State>, next: usize) {
    let current = state.current;
    debug_assert_ne!(current, next);
    if state.threads[current].run == Run::Running {
        state.threads[current].run = Run::Ready;
    }
    let context = hand_over(&mut state, next);
    drop(state);
    after_switch(context.resume());
}

/// Makes `next` the running thread in the books (counters, the alarm for what it may need)
/// and returns its suspended context, for the caller to resume once the lock is dropped.
fn hand_over(state: &mut State, next: usize) -> Context {
    let current = state.current;
    let context = state.threads[next]
        .context
        .take()
        .expect("a runnable context that does not run is suspended");
    state.threads[next].run = Run::Running;
    state.switching_from = current;
    state.current = next;
    account(state, current, next);
    state.program_alarm();
    context
}

fn account(state: &mut State, from: usize, to: usize) {
    state.counters.switches += 1;
    let now = Instant::now();
    let ran = now - state.threads[from].running_since;
    state.threads[from].cpu_ns += ran.as_nanos() as u64;
    state.threads[to].running_since = now;
    if state.threads[from].idle
        && let Some(since) = state.counters.idle_since.take()
    {
        state.counters.idle_ns += (now - since).as_nanos() as u64;
    }
    if state.threads[to].idle {
        state.counters.idle_since = Some(now);
    }
}

/// The CPU time the running thread has used.
pub(crate) fn cpu_time() -> Duration {
    with(|state| {
        let thread = &state.threads[state.current];
        Duration::from_nanos(thread.cpu_ns) + (Instant::now() - thread.running_since)
    })
}

/// Files what the context that resumed us left behind.
pub(crate) fn after_switch(resumed: Resumed) {
    let mut state = lock();
    let from = state.switching_from;
    match resumed {
        Resumed::Suspended(context) => state.threads[from].context = Some(context),
        Resumed::Finished(stack) => {
            let generation = state.threads[from].generation.wrapping_add(1);
            state.threads[from] = Thread::free(generation);
            // Back to the pool of stacks; nothing runs on it any more.
            drop(stack);
        }
    }
}

/// The first thing a new context does.
pub(crate) fn started(resumed: Resumed) {
    after_switch(resumed);
}

/// Switches if something more urgent than the running context is ready (or the running
/// one cannot go on, or its slice is over). Not from an interrupt handler: the
/// after-interrupt hook does it there, once the controller is acknowledged.
pub(crate) fn reschedule() {
    if interrupts::in_handler() || !is_running() {
        return;
    }
    interrupts::without(|| {
        let mut state = lock();
        if !state.started {
            return;
        }
        let current = state.current;
        let best = state.pick();
        if best == current {
            state.force = false;
            return;
        }
        let running = state.threads[current].run == Run::Running;
        let preempt = state.policy != Policy::Coop && state.rank(best) < state.rank(current);
        if !running || state.threads[current].idle || state.force || preempt {
            if running && !state.threads[current].idle {
                state.counters.preemptions += 1;
            }
            state.force = false;
            switch_to(state, best);
        }
    })
}

/// The after-interrupt hook: a timer or device interrupt may have woken something.
pub(crate) fn after_interrupt() {
    if !is_running() {
        return;
    }
    interrupts::without(|| {
        let mut state = lock();
        if !state.started {
            return;
        }
        let current = state.current;
        let best = state.pick();
        if best == current {
            state.force = false;
            return;
        }
        let preempt = state.policy != Policy::Coop && state.rank(best) < state.rank(current);
        if state.threads[current].idle || state.force || preempt {
            if !state.threads[current].idle {
                state.counters.preemptions += 1;
            }
            state.force = false;
            switch_to(state, best);
        }
    })
}

/// Blocks the running thread if `wait` (called under the lock, with the thread's index)
/// says so, until something wakes it or `until` passes. Returns whether `until` woke it.
pub(crate) fn block_with(
    wait: impl FnOnce(&mut State, usize) -> bool,
    until: Option<Instant>,
) -> bool {
    assert!(
        !interrupts::in_handler(),
        "a thread cannot block inside an interrupt handler (sleep, join, lock, recv)"
    );
    interrupts::without(|| {
        let mut state = lock();
        let me = state.current;
        assert!(!state.threads[me].idle, "the idle context cannot block");
        if !wait(&mut state, me) {
            return false;
        }
        let thread = &mut state.threads[me];
        thread.run = Run::Blocked;
        thread.wake_at = until;
        thread.timed_out = false;
        let next = state.pick();
        switch_to(state, next);
        let state = lock();
        state.threads[state.current].timed_out
    })
}

/// Ends the running thread.
pub(crate) fn exit_current() -> ! {
    interrupts::disable();
    let mut state = lock();
    let me = state.current;
    state.threads[me].run = Run::Finished;
    let next = state.pick();
    let context = hand_over(&mut state, next);
    drop(state);
    context.finish()
}

/// The alarm: releases task jobs, checks deadlines, wakes sleepers, ends time slices.
/// Runs in the timer interrupt; the switch, if any, happens in the after-interrupt hook.
pub(crate) fn on_alarm() {
    let mut state = lock();
    state.armed = None;
    let now = Instant::now();
    crate::task::on_time(&mut state, now);
    for i in 0..MAX_THREADS {
        let thread = &state.threads[i];
        if thread.run == Run::Blocked && thread.wake_at.is_some_and(|at| at <= now) {
            state.threads[i].timed_out = true;
            state.wake(i);
        }
    }
    if state.slice_end.is_some_and(|end| end <= now) {
        state.slice_end = None;
        state.force = true;
        // To the back of its rank: the thread whose slice ended, not a task's job that
        // may be running.
        let owner = state.slice_owner;
        let since = state.next_seq();
        state.threads[owner].since = since;
    }
    state.program_alarm();
}

/// The alarm that will follow the one due at `at`, once everything due then is handled:
/// the timer interrupt programs it while it waits out its advance (see the `clock` crate).
/// A guess: `program_alarm` sets what is really needed, which costs nothing more when the
/// guess was right.
pub(crate) fn predict(at: Instant) -> Option<Instant> {
    let state = lock();
    let tasks = state.tasks.iter().map(|task| task.next_event_after(at));
    let sleepers = state
        .threads
        .iter()
        .filter(|t| t.run == Run::Blocked)
        .filter_map(|t| t.wake_at)
        .filter(|&wake| wake > at);
    let slice = state.slice_end.filter(|&end| end > at);
    tasks.chain(sleepers).chain(slice).min()
}

/// Sleeps the running thread until `deadline` (`Clock::sleep` lands here).
pub(crate) fn sleep_until(deadline: Instant) {
    while Instant::now() < deadline {
        // The switch programs the alarm with this thread's wake-up time.
        block_with(|_, _| true, Some(deadline));
    }
}

/// The CPUs that may have threads blocked in [`block_io`] (bit `k` for CPU `k`): a device
/// wake-up sends an IPI only to those, so with no waiter elsewhere it costs what it does on
/// one CPU. CPU `k`'s bit is set and cleared under CPU `k`'s lock; it may stay set after
/// its waiters woke by their deadlines, which costs one IPI that wakes nothing and clears it.
static IO_WAITING_CPUS: AtomicU64 = AtomicU64::new(0);

/// Per CPU: a wake-up from another CPU came, which a thread of this CPU about to block in
/// [`block_io`] may not have seen (its last look at the device was before it). Checked
/// after the CPU's bit in [`IO_WAITING_CPUS`] is set, and set by the waker before it reads
/// the bits: either the waiter sees this flag, or the waker sees its bit (sequentially
/// consistent on both sides).
static IO_WAKE_PENDING: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];

/// Blocks the running thread until a device wakes it ([`wake_io`]) or `deadline` (time since
/// boot) passes: the `block` of the arch layer's wait hook, which drivers call where they
/// would halt. Called with interrupts disabled (the caller's last look at its device and
/// the block are then atomic against this CPU's interrupts), returns with them disabled.
/// On any CPU: a wake-up from another CPU since the caller's last look makes it return at
/// once, and the deadline is this CPU's own timer.
pub(crate) fn block_io(deadline: Option<Duration>) {
    block_with(
        |state, me| {
            if unikernel_arch::smp::online() > 1 {
                IO_WAITING_CPUS.fetch_or(1 << state.cpu, Ordering::SeqCst);
                if IO_WAKE_PENDING[state.cpu].swap(false, Ordering::SeqCst) {
                    return false;
                }
            }
            state.threads[me].io_wait = true;
            true
        },
        deadline.map(|deadline| Instant::BOOT + deadline),
    );
}

/// Makes every thread blocked in [`block_io`] ready, on every CPU: those of this CPU at
/// once, those of another through a wake-up IPI, sent only to CPUs that have such a
/// thread. From an interrupt handler the after-interrupt hook switches if one of this
/// CPU's should run now; elsewhere this does.
pub(crate) fn wake_io() {
    let here = this_cpu();
    let woke = with(|state| {
        let woke = wake_io_waiters(state);
        if woke {
            state.program_alarm();
        }
        woke
    });
    let online = unikernel_arch::smp::online();
    if online > 1 {
        for cpu in (0..online).filter(|&cpu| cpu != here) {
            IO_WAKE_PENDING[cpu].store(true, Ordering::SeqCst);
        }
        let waiting = IO_WAITING_CPUS.load(Ordering::SeqCst) & !(1 << here);
        for cpu in (0..online).filter(|&cpu| waiting & (1 << cpu) != 0) {
            wake_where(cpu, wake_io_waiters);
        }
    }
    if woke {
        reschedule();
    }
}

/// Readies this state's threads blocked in [`block_io`]; none is left, so its CPU's bit in
/// [`IO_WAITING_CPUS`] goes (under its lock, as it was set). Returns whether it woke one.
fn wake_io_waiters(state: &mut State) -> bool {
    let mut woke = false;
    for i in 0..MAX_THREADS {
        if state.threads[i].io_wait && state.threads[i].run == Run::Blocked {
            state.wake(i);
            woke = true;
        }
    }
    let bit = 1 << state.cpu;
    // A load first: on one CPU the bit is never set, and the interrupt path stays as it was.
    if IO_WAITING_CPUS.load(Ordering::Relaxed) & bit != 0 {
        IO_WAITING_CPUS.fetch_and(!bit, Ordering::SeqCst);
    }
    woke
}

/// Starts scheduling on the CPU this runs on: arms its timer for its tasks' first release
/// and lets the threads more urgent than the running one (its tasks' threads) reach their
/// first wait.
pub(crate) fn start_this_cpu() {
    interrupts::without(|| {
        let mut state = lock();
        state.started = true;
        state.program_alarm();
        let best = state.pick();
        if best != state.current && !state.threads[best].idle {
            switch_to(state, best);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_id_is_one_number_and_back() {
        for (cpu, index) in [(0, 0), (0, MAX_THREADS - 1), (1, 0), (63, 17)] {
            let id = ThreadId { cpu, index };
            assert_eq!(ThreadId::decode(id.encode()), id);
        }
        // Distinct threads, distinct numbers: CPU 1's first is after CPU 0's last.
        assert_eq!(ThreadId { cpu: 1, index: 0 }.encode(), MAX_THREADS);
    }
}
