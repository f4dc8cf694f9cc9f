//! The contract between `#[unikernel]`'s generated code and the kernel. Not a public API:
//! the names here change whenever the macro changes.
//!
//! Generated code calls, in the boot order the macro resolved:
//! `init_console(level)`, `init_heap(&HEAP, size)`, `init_args()`, each followed by
//! `mark("<subsystem>")`, then `mark("main")`, then `exit(Termination::report(main(..)))`.

pub use crate::exit::{Termination, exit};
pub use log::LevelFilter;
pub use unikernel_heap::{Heap, NoHeap};
pub use unikernel_sched::{OnMiss, Policy, SchedConfig, TaskSpec};

use crate::{Args, Console};

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
pub fn init_irq() -> crate::Irq {
    unikernel_irq::init(unikernel_arch::boot::info().cmdline())
}

/// Starts the clock and the one-shot timer (after `init_irq`).
pub fn init_timer() -> crate::Clock {
    match unikernel_time::init(unikernel_arch::boot::info().cmdline()) {
        Ok(clock) => clock,
        Err(error) => crate::exit::boot_error(format_args!("timer: {error}")),
    }
}

/// Brings up the network: `net(ipv4 = "a.b.c.d/len", gateway = "e.f.g.h")` passes the
/// address and gateway, `net(dhcp)` passes `dhcp = true`.
pub fn init_net(ipv4: Option<([u8; 4], u8)>, gateway: Option<[u8; 4]>, dhcp: bool) -> crate::Net {
    let config = match ipv4 {
        Some((address, prefix_len)) if !dhcp => unikernel_net::Config::Static {
            cidr: unikernel_net::Ipv4Cidr::new(address.into(), prefix_len).unwrap_or_else(|| {
                crate::exit::boot_error(format_args!("net: prefix /{prefix_len}"))
            }),
            gateway: gateway.map(Into::into),
        },
        _ => unikernel_net::Config::Dhcp,
    };
    let platform = unikernel_net::Platform {
        now: || unikernel_time::Instant::now().duration_since(unikernel_time::Instant::BOOT),
        wait: net_wait,
        route_irq: |gsi, level, handler| {
            let line = match level {
                false => unikernel_irq::Line::gsi(gsi),
                true => unikernel_irq::Line::Gsi {
                    gsi,
                    trigger: unikernel_irq::Trigger::Level,
                    polarity: unikernel_irq::Polarity::High,
                },
            };
            unikernel_irq::handle().is_some_and(|irq| irq.register(line, handler).is_ok())
        },
    };
    match unikernel_net::init(config, platform, unikernel_arch::boot::info().cmdline()) {
        Ok(net) => net,
        Err(error) => crate::exit::boot_error(format_args!("net: {error}")),
    }
}

/// The network's wait: halts until an interrupt, with the timer's one alarm moved earlier
/// to `deadline` if that comes first (and put back after, unless it changed meanwhile).
fn net_wait(deadline: Option<core::time::Duration>) {
    use unikernel_time::{Instant, alarm, set_alarm};
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

/// Starts the scheduler (after `init_timer`): `main` goes on as its lowest-priority thread.
pub fn init_sched(config: SchedConfig) -> crate::Sched {
    match unikernel_sched::init(config) {
        Ok(sched) => sched,
        Err(error) => crate::exit::boot_error(format_args!("sched: {error}")),
    }
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
