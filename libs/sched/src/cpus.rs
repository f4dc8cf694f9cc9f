//! Several CPUs (`sched(cpus = N)`, N > 1).
//!
//! Every CPU runs a scheduler of its own (state.rs): its periodic tasks (those the macro
//! placed on it), its threads, its idle context, on its own LAPIC timer. The boot CPU
//! (CPU 0) also runs `main`, the network and every interrupt of a device. Each other CPU
//! has, in place of `main`, a job loop (its thread 0, lowest priority): it runs the jobs
//! queued to it ([`crate::Sched::spawn_on`]) one after another, each to completion, and
//! blocks when its queue is empty until a job comes. A job is a thread's code: it may
//! sleep, block, lock a [`crate::Mutex`], use a [`crate::Channel`].
//!
//! Placement: nothing moves between CPUs. A thread spawned with `Builder::cpu(k)` runs on
//! CPU k; one spawned without runs on the CPU of the thread that spawned it (CPU 0 for
//! `main`'s). Wake-ups of a thread on another CPU go through a wake-up IPI.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use unikernel_arch::acpi::MAX_CPUS;
use unikernel_arch::interrupts;
use unikernel_arch::smp;

type Job = Box<dyn FnOnce() + Send>;

/// One CPU's queue of pinned jobs, and how many it has taken (queued and running).
struct Queue {
    jobs: spin::Mutex<VecDeque<Job>>,
    load: AtomicUsize,
}

static QUEUES: [Queue; MAX_CPUS] = [const {
    Queue {
        jobs: spin::Mutex::new(VecDeque::new()),
        load: AtomicUsize::new(0),
    }
}; MAX_CPUS];

/// The vector of the wake-up IPI (0 until the APs start).
static WAKE_VECTOR: AtomicU8 = AtomicU8::new(0);
/// Set by `Sched::start`: the APs may schedule.
static STARTED: AtomicBool = AtomicBool::new(false);

/// Why the other CPUs could not be started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpusError {
    /// IPIs need a local APIC; the machine runs on the PIC.
    NoLocalApic,
    Irq(unikernel_irq::IrqError),
    Smp(smp::SmpError),
}

impl core::fmt::Display for CpusError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NoLocalApic => f.write_str("several CPUs need a local APIC"),
            Self::Irq(error) => write!(f, "{error}"),
            Self::Smp(error) => write!(f, "starting the other CPUs: {error}"),
        }
    }
}

/// Starts up to `declared` CPUs. Returns how many run.
pub(crate) fn start(declared: u16, tsc_hz: u64) -> Result<usize, CpusError> {
    let irq = unikernel_irq::handle().ok_or(CpusError::NoLocalApic)?;
    let (boot_apic_id, send_ipi) = irq.startup_ipis().ok_or(CpusError::NoLocalApic)?;
    let vector = irq.register_local(woken).map_err(CpusError::Irq)?;
    WAKE_VECTOR.store(vector, Ordering::Release);
    let running = smp::start(smp::StartPlan {
        declared: declared.into(),
        boot_apic_id,
        send_ipi,
        tsc_hz,
        ap_main,
    })
    .map_err(CpusError::Smp)?;
    log::info!("running on {running} of {declared} declared CPUs");
    Ok(running)
}

/// The wake-up IPI's handler: the interrupt itself ends a halt; the CPU's alarm is set
/// for what the sender changed, and the after-interrupt hook runs the thread it woke.
fn woken() {
    crate::state::on_wake_ipi();
}

/// Each AP's life: its local APIC and timer; once the scheduler starts, its own
/// scheduling, with this execution as its thread 0, the job loop.
fn ap_main() -> ! {
    if let Some(irq) = unikernel_irq::handle() {
        irq.init_this_cpu();
    }
    // Without a timer of its own (the PIT machine), `init` placed no task here.
    unikernel_clock::init_this_cpu();
    loop {
        interrupts::disable();
        if STARTED.load(Ordering::Acquire) {
            break;
        }
        // Atomic with the check above: the start's IPI sent in between ends the halt.
        interrupts::enable_and_wait();
    }
    crate::state::start_this_cpu();
    interrupts::enable();
    job_loop()
}

/// The jobs of the CPU this runs on, one after the other, forever.
fn job_loop() -> ! {
    let queue = &QUEUES[smp::this_cpu()];
    loop {
        let job = interrupts::without(|| queue.jobs.lock().pop_front());
        match job {
            Some(job) => {
                job();
                queue.load.fetch_sub(1, Ordering::Release);
            }
            None => {
                crate::state::block_with(
                    |state, me| {
                        // Checked under the CPU's lock: `run_on` queues, then takes it.
                        if !queue.jobs.lock().is_empty() {
                            return false;
                        }
                        state.threads[me].job_wait = true;
                        true
                    },
                    None,
                );
            }
        }
    }
}

/// Lets the APs schedule, and wakes them to.
pub(crate) fn start_all() {
    STARTED.store(true, Ordering::Release);
    for cpu in 1..smp::online() {
        wake(cpu);
    }
}

/// Queues `job` on CPU `cpu` (1..online) and wakes its job loop.
pub(crate) fn run_on(cpu: usize, job: Job) {
    let queue = &QUEUES[cpu];
    queue.load.fetch_add(1, Ordering::Relaxed);
    interrupts::without(|| queue.jobs.lock().push_back(job));
    crate::state::wake_where(cpu, |state| {
        let jobs = &mut state.threads[0];
        if jobs.job_wait && jobs.run == crate::state::Run::Blocked {
            state.wake(0);
            return true;
        }
        false
    });
}

/// Sends the wake-up IPI to `cpu`.
pub(crate) fn wake(cpu: usize) {
    let vector = WAKE_VECTOR.load(Ordering::Acquire);
    if let Some(irq) = unikernel_irq::handle().filter(|_| vector != 0) {
        let _ = irq.send_to(cpu, vector);
    }
}

/// How many jobs CPU `cpu` has queued or running.
pub(crate) fn load(cpu: usize) -> usize {
    QUEUES[cpu].load.load(Ordering::Acquire)
}
