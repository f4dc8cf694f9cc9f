//! Unikernels declared in code.
//!
//! An app names the subsystems it needs in one attribute on its `main`:
//!
//! ```ignore
//! #![no_std]
//! #![no_main]
//! use unikernel::prelude::*;
//!
//! #[unikernel(console, heap = "1 MiB")]
//! fn main(console: Console) -> ExitCode {
//!     println!("hello from a unikernel");
//!     ExitCode::SUCCESS
//! }
//! ```
//!
//! The attribute expands into the boot entry: it initialises exactly the declared
//! subsystems, in the fixed order documented in `macros/src/registry/mod.rs`, each init
//! taking the handles of what it needs, calls `main` with the handles it asked for, and
//! ends the VM with the status `main` returned.
//!
//! This crate is the facade on top of `core/arch` (the bottom layer: boot, paging,
//! interrupts, exit) and the subsystem crates in `libs/`; the generated code names only
//! paths under it. It holds no `unsafe` code.
#![no_std]
#![forbid(unsafe_code)]

pub use unikernel_macros::{function, init, unikernel};

pub use unikernel_args::Args;
pub use unikernel_console::{Console, print, println};
pub use unikernel_disk::Disk;
pub use unikernel_fs::Fs;
pub use unikernel_function::Function;
pub use unikernel_net::Net;
pub use unikernel_rand::Rand;

/// The network: sockets shaped like `std::net`'s, over virtio-net and smoltcp.
pub mod net {
    pub use unikernel_net::{
        Config, Error, Ipv4Address, Ipv4Cidr, ListenOptions, Net, NetStats, NicStats, Shutdown,
        TcpListener, TcpStream, UdpSocket,
    };
}
pub use unikernel_clock::{Clock, Duration, Instant};
pub use unikernel_irq::Irq;
pub use unikernel_sched::Sched;

/// Threads, a mutex and a channel, and the figures of the real-time tasks.
pub mod sched {
    pub use unikernel_sched::{
        Builder, Channel, CpuJoinHandle, CpusError, JoinHandle, MAX_THREADS, Mutex, MutexGuard,
        OnMiss, Policy, Report, Sched, SchedStats, SpawnError, TaskStats, cpu_time, current_name,
        sleep, sleep_until, spawn, this_cpu, yield_now,
    };
}

/// The clock: instants, the wall clock, the timer's figures, and histograms of durations.
pub mod clock {
    pub use unikernel_clock::histogram::{Histogram, Short, Summary};
    pub use unikernel_clock::{
        Clock, Duration, EventTimer, FrequencySource, Instant, TimerStats, WallTime,
    };
}

/// Read-only files from the initrd, shaped like `std::fs` (`Read`, `Seek` and `BufRead`
/// are `embedded-io`'s).
pub mod fs {
    /// The file-API body `examples/files` runs and `libs/fs`'s tests run against std.
    #[doc(hidden)]
    pub use unikernel_fs::conformance;
    pub use unikernel_fs::{
        BufRead, DirEntry, Error, File, FileType, Fs, InitError, Metadata, Read, ReadDir, Seek,
        SeekFrom,
    };
}

/// The disk: a FAT file system on virtio-blk, with files shaped like `std::fs`'s
/// (`Read`, `Write` and `Seek` are `embedded-io`'s).
pub mod disk {
    /// The writable file-API body `examples/disk-io` runs and `libs/disk`'s tests run
    /// against std.
    #[doc(hidden)]
    pub use unikernel_disk::conformance;
    pub use unikernel_disk::{
        DirEntry, Disk, Error, ErrorKind, File, InitError, Metadata, OpenOptions, Read, Seek,
        SeekFrom, Write, interrupts,
    };
}

/// Serverless functions: the request and response a `#[unikernel::function]` handles, and
/// the handle of the subsystem that serves them.
pub mod function {
    pub use unikernel_function::{
        DEFAULT_MAX_REQUEST, Function, Headers, InitError, IntoResponse, Request, RequestHook,
        Response,
    };
}

/// Random numbers: the generator's handle, where its seed came from, why seeding failed.
pub mod rand {
    pub use unikernel_rand::{InitError, Rand, Sources};
}

/// Interrupts: lines, controllers and what the dispatcher counted.
pub mod irq {
    pub use unikernel_irq::{Controller, Irq, IrqError, Line, Polarity, Stats, Trigger};
}

pub mod exit;
pub mod timeline;

pub use exit::ExitCode;

/// The kernel command line, as the VMM passed it.
pub fn cmdline() -> &'static str {
    unikernel_arch::boot::info().cmdline()
}

/// The heap's size, what is allocated now and the most ever allocated at once; `None` when
/// the app declares no heap.
pub fn heap_stats() -> Option<unikernel_heap::HeapStats> {
    __private::HEAP.lock().map(|heap| heap.stats())
}

/// Everything an app usually needs: `use unikernel::prelude::*;`.
pub mod prelude {
    pub use crate::function::{Request, Response};
    pub use crate::{
        Args, Clock, Console, Disk, Duration, ExitCode, Fs, Function, Instant, Irq, Net, Rand,
        Sched, print, println, unikernel,
    };
}

#[doc(hidden)]
pub mod __private;
