//! The contract between `#[unikernel]`'s generated code and the kernel. Not a public API:
//! the names here change whenever the macro changes.
//!
//! The generated boot function is the wiring diagram: it calls these functions in the boot
//! order the macro resolved, each subsystem's init taking the handles of the subsystems it
//! needs, and each followed by `mark("<subsystem>")`:
//!
//! ```ignore
//! let __unikernel_console = init_console(LevelFilter::Info);
//! init_heap(&__UNIKERNEL_HEAP, 16777216usize);
//! let __unikernel_args = init_args();
//! let __unikernel_irq = init_irq();
//! let __unikernel_clock = init_clock(&__unikernel_irq);
//! let __unikernel_sched = init_sched(&__unikernel_clock, SchedConfig { .. });
//! hook_clock_to_sched(&__unikernel_clock, &__unikernel_sched);
//! hook_interrupts_to_sched(&__unikernel_sched);
//! hook_waits_to_sched(&__unikernel_sched);
//! start_sched(&__unikernel_sched);
//! let __unikernel_rand = init_rand();
//! let __unikernel_net = init_net(&__unikernel_irq, &__unikernel_clock, &__unikernel_rand, NetConfig::Static { .. });
//! mark("main");
//! exit(Termination::report(main(..)))
//! ```
//!
//! Values arrive checked: the macro validated sizes, addresses and options at compile time,
//! and nothing here checks them again.

pub use crate::exit::{Termination, exit};
pub use log::LevelFilter;
pub use unikernel_heap::{Heap, NoHeap};
pub use unikernel_net::{Config as NetConfig, Ipv4Address, Ipv4Cidr};
pub use unikernel_sched::{OnMiss, Policy, SchedConfig, TaskSpec};

use crate::{Args, Clock, Console, Disk, Fs, Function, Irq, Net, Rand, Sched};

/// Brings up the serial console and installs it as the `log` backend at `level`.
pub fn init_console(level: LevelFilter) -> Console {
    unikernel_console::init(level, unikernel_arch::boot::info().cmdline())
}

/// The app's heap, for `heap_stats`.
pub(crate) static HEAP: spin::Mutex<Option<&'static Heap>> = spin::Mutex::new(None);

/// Gives `heap` `size` bytes of the VM's memory, mapped read-write and never executable.
pub fn init_heap(heap: &'static Heap, size: usize) {
    *HEAP.lock() = Some(heap);
    match unikernel_arch::memory::allocate(size) {
        Ok(region) => heap.init(region),
        Err(error) => crate::exit::boot_error(format_args!("heap: {error}")),
    }
}

/// Splits the app's part of the kernel command line into arguments.
pub fn init_args() -> Args {
    unikernel_args::Args::parse(unikernel_arch::boot::info().cmdline())
}

/// Sets up the interrupt controllers and enables interrupts.
pub fn init_irq() -> Irq {
    unikernel_irq::init(unikernel_arch::boot::info().cmdline())
}

/// Starts the clock and the one-shot timer, whose interrupt `irq` routes.
pub fn init_clock(irq: &Irq) -> Clock {
    started("clock", unikernel_clock::init(irq, crate::cmdline()))
}

/// Makes the scheduler, on `clock`'s time; it runs nothing until [`start_sched`].
pub fn init_sched(clock: &Clock, config: SchedConfig) -> Sched {
    started("sched", unikernel_sched::init(clock, config))
}

/// The clock's alarm handler, next-alarm predictor and `sleep` become the scheduler's.
pub fn hook_clock_to_sched(clock: &Clock, sched: &Sched) {
    clock.set_hooks(sched.clock_hooks());
}

/// After every interrupt handler, the scheduler may switch to a thread the interrupt woke.
pub fn hook_interrupts_to_sched(sched: &Sched) {
    unikernel_arch::interrupts::set_after_interrupt(sched.after_interrupt());
}

/// Drivers' blocking calls (the network's) block the calling thread, not the CPU.
pub fn hook_waits_to_sched(sched: &Sched) {
    unikernel_arch::wait::set_blocker(sched.blocker());
}

/// What a periodic task's function may return: nothing.
#[diagnostic::on_unimplemented(
    message = "a task's function returns `{Self}`; it must be a plain `fn()`",
    label = "this task's function is `async` or returns a value",
    note = "a task's job runs to completion once per release: write `fn <name>()`, not `async fn`, and return nothing"
)]
pub trait TaskOutput {}

impl TaskOutput for () {}

/// Runs one job of a periodic task: the generated `job: || run_task(<fn>)`.
#[inline(always)]
pub fn run_task<R: TaskOutput>(job: fn() -> R) {
    job();
}

/// Lets the scheduler run its tasks and threads (after its hooks are in place).
pub fn start_sched(sched: &Sched) {
    sched.start();
}

/// Seeds the random-number generator from the CPU and the VMM's `unikernel.seed=`.
pub fn init_rand() -> Rand {
    started("rand", unikernel_rand::init(crate::cmdline()))
}

/// Opens the initrd the VMM loaded as a read-only file system.
pub fn init_fs() -> Fs {
    let initrd = started("fs", unikernel_arch::memory::initrd());
    started("fs", unikernel_fs::init(initrd))
}

/// Mounts the FAT file system of the VMM's virtio-blk device, its interrupt routed
/// through `irq`.
pub fn init_disk(irq: &Irq) -> Disk {
    let route_irq = |gsi, level, handler| {
        let line = match level {
            false => unikernel_irq::Line::gsi(gsi),
            true => unikernel_irq::Line::Gsi {
                gsi,
                trigger: unikernel_irq::Trigger::Level,
                polarity: unikernel_irq::Polarity::High,
            },
        };
        irq.register(line, handler).is_ok()
    };
    started("disk", unikernel_disk::init(crate::cmdline(), route_irq))
}

/// Brings up the network with `config`: the device's interrupt is routed through `irq`,
/// the stack's time and waits run on `clock`, and its sequence numbers and local ports
/// come from `rand`.
pub fn init_net(irq: &Irq, clock: &Clock, rand: &Rand, config: NetConfig) -> Net {
    static PLATFORM: spin::Once<NetPlatform> = spin::Once::new();
    let platform = PLATFORM.call_once(|| NetPlatform { clock: *clock });
    let route_irq = |gsi, level, handler| {
        let line = match level {
            false => unikernel_irq::Line::gsi(gsi),
            true => unikernel_irq::Line::Gsi {
                gsi,
                trigger: unikernel_irq::Trigger::Level,
                polarity: unikernel_irq::Polarity::High,
            },
        };
        irq.register(line, handler).is_ok()
    };
    started(
        "net",
        unikernel_net::init(config, platform, *rand, route_irq, crate::cmdline()),
    )
}

/// The network stack's time and waits, on the clock.
struct NetPlatform {
    clock: Clock,
}

impl unikernel_net::Platform for NetPlatform {
    fn now(&self) -> core::time::Duration {
        self.clock.since_boot()
    }

    /// Halts until an interrupt, with the clock's one alarm moved earlier to `deadline` if
    /// that comes first (and put back after, unless it changed meanwhile).
    fn wait(&self, deadline: Option<core::time::Duration>) {
        use unikernel_clock::{Instant, alarm, set_alarm};
        let previous = alarm();
        let ours = deadline
            .map(|deadline| Instant::BOOT + deadline)
            .filter(|&ours| previous.is_none_or(|previous| ours < previous));
        if let Some(ours) = ours {
            set_alarm(Some(ours));
        }
        unikernel_arch::interrupts::enable_and_wait();
        unikernel_arch::interrupts::disable();
        if let Some(ours) = ours
            && alarm().is_none_or(|current| current == ours)
        {
            set_alarm(previous);
        }
    }
}

/// Checks for the monitor's request channel and sets aside the request buffer of
/// `max_request` bytes; without the channel the boot ends with one sentence saying how to
/// run a function.
pub fn init_function(max_request: usize) -> Function {
    started("function", unikernel_function::init(max_request))
}

/// The state `#[unikernel::init]` makes, for the functions that take it by reference.
#[diagnostic::on_unimplemented(
    message = "no `#[unikernel::init]` returns `{Self}`",
    label = "the state this function takes",
    note = "a function's state parameter is a reference to the type `#[unikernel::init] fn init() -> State` returns"
)]
pub trait FunctionState: Sized {
    fn init() -> Self;
}

/// A function's return value as its response.
#[inline(always)]
pub fn respond(response: impl unikernel_function::IntoResponse) -> unikernel_function::Response {
    response.into_response()
}

/// The function note of a function image (layout in `unikernel_abi::function::NOTE_TYPE`).
pub type FunctionNote<const N: usize> = unikernel_arch::abi::manifest::Note<N>;

/// Before each request, `rand` mixes in the host's fresh seed, so that VMs restored from
/// one snapshot draw different numbers.
pub fn hook_rand_to_function(rand: &Rand, function: &Function) {
    struct Reseed(Rand);
    impl unikernel_function::RequestHook for Reseed {
        fn before_request(&self, seed: &[u8; 32], _wall_ns: u64) {
            self.0.reseed(seed);
        }
    }
    static HOOK: spin::Once<Reseed> = spin::Once::new();
    function.add_hook(HOOK.call_once(|| Reseed(*rand)));
}

/// Before each request, the clock takes the host's wall-clock time, so that a VM restored
/// from a snapshot does not live at the snapshot's time.
pub fn hook_clock_to_function(clock: &Clock, function: &Function) {
    struct SetWall(Clock);
    impl unikernel_function::RequestHook for SetWall {
        fn before_request(&self, _seed: &[u8; 32], wall_ns: u64) {
            if wall_ns != 0 {
                self.0
                    .set_wall(unikernel_clock::WallTime { unix_ns: wall_ns });
            }
        }
    }
    static HOOK: spin::Once<SetWall> = spin::Once::new();
    function.add_hook(HOOK.call_once(|| SetWall(*clock)));
}

/// The handle a subsystem's init returned, or the end of the boot with its error.
fn started<H>(subsystem: &str, result: Result<H, impl core::fmt::Display>) -> H {
    result.unwrap_or_else(|error| crate::exit::boot_error(format_args!("{subsystem}: {error}")))
}

/// Runs `start` (the rest of the boot, then `main`) on a stack of `size` bytes, which the
/// app chose with `stack = "<size>"`, instead of the boot stack.
pub fn run_main_on_stack(size: usize, start: fn() -> !) -> ! {
    let error = unikernel_arch::context::run_main_on_new_stack(size, start);
    crate::exit::boot_error(format_args!(
        "stack: {error}, or declare a smaller `stack` in `#[unikernel(...)]`"
    ))
}

/// Records that boot reached `stage` (a subsystem's name, or `main`).
pub fn mark(stage: &'static str) {
    unikernel_arch::timeline::mark(stage);
}

/// The `main` of a host build: apps are kernels and run only inside a VM.
pub fn host_main() -> ! {
    panic!(
        "a #[unikernel] app runs in a VM: build it for x86_64-unknown-none and boot it with `cargo run`"
    )
}

/// The ELF note `#[unikernel]` puts in every image: the subsystems it starts, which VMMs
/// read (layout in `unikernel_abi::manifest`).
pub type Manifest<const N: usize> = unikernel_arch::abi::manifest::Note<N>;
