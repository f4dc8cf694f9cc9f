//! The runner, `cargo uk`: builds unikernel images, boots them in QEMU or on the
//! project's KVM monitor (the `unikernel-vmm` crate), tests and benchmarks them.
//!
//! The command line is in `cli`; tests use the library:
//!
//! ```no_run
//! use std::time::Duration;
//! let elf = runner::build_example("hello").unwrap();
//! let outcome = runner::Boot::new(&elf)
//!     .timeout(Duration::from_secs(30))
//!     .args(["a", "b"])
//!     .run()
//!     .unwrap();
//! outcome.assert_status(0).assert_serial_contains("hello");
//! ```

// Every system call goes through safe wrappers (rustix, std); the monitor crate holds the
// `unsafe` KVM needs.
#![forbid(unsafe_code)]

pub mod app_config;
mod bench;
pub mod boot;
pub mod build;
pub mod cleanup;
pub mod cli;
pub mod density;
pub mod disk;
mod error;
pub mod functions;
mod gdb;
mod lint;
pub mod monitor;
pub mod net;
pub mod new;
pub mod qemu;
pub mod setup;
pub mod size;
pub mod symbolize;
pub mod timeline;
mod values;

/// The one ELF reader of the host tools (validation, segments, notes, symbols).
pub use unikernel_vmm::elf;

pub use boot::{Boot, BootOutcome, Exit};
pub use build::{build_example, example_elf, floor_elf, repo_root};
pub use error::{Error, Result};
pub use qemu::{Accel, AccelRequest, Machine, Protocol};
pub use unikernel_abi::status;
