//! Several CPUs (`sched(cpus = N)`, N > 1).
//!
//! The boot CPU (CPU 0) runs the threads, the periodic tasks, the network and every
//! interrupt of a device. Each other CPU has a queue of jobs pinned to it
//! ([`crate::Sched::spawn_on`]): it runs them one after another, each to completion, and
//! halts when its queue is empty until a wake-up IPI says a job came. A job may take the
//! [`crate::Mutex`] and use a [`crate::Channel`] without blocking calls (`lock` spins on
//! another CPU; `try_send`/`try_recv`); it must not sleep or block (that panics, naming
//! the CPU). Placement: nothing moves between CPUs; a thread spawned without a CPU runs on
//! CPU 0.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use core::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
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

/// The wake-up IPI's handler: the interrupt itself ends the halt (on CPU 0, the
/// scheduler's after-interrupt hook then runs the thread the sender woke).
fn woken() {}

/// Each AP's life: its local APIC, then its queue, forever.
fn ap_main() -> ! {
    if let Some(irq) = unikernel_irq::handle() {
        irq.init_this_cpu();
    }
    let queue = &QUEUES[smp::this_cpu()];
    loop {
        interrupts::disable();
        let job = queue.jobs.lock().pop_front();
        match job {
            Some(job) => {
                job();
                queue.load.fetch_sub(1, Ordering::Release);
            }
            // Atomic with the check above: a wake-up sent in between ends the halt.
            None => interrupts::enable_and_wait(),
        }
    }
}

/// Queues `job` on CPU `cpu` (1..online) and wakes it.
pub(crate) fn run_on(cpu: usize, job: Job) {
    let queue = &QUEUES[cpu];
    queue.load.fetch_add(1, Ordering::Relaxed);
    interrupts::without(|| queue.jobs.lock().push_back(job));
    wake(cpu);
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

/// Whether this code runs on CPU 0, where the threads live.
pub(crate) fn on_boot_cpu() -> bool {
    smp::this_cpu() == 0
}
