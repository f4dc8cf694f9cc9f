//! The x86_64 layer of a unikernel, the bottom of the kernel: boot entry (PVH and
//! multiboot), the memory map, paging with the image mapped W^X, GDT/TSS/IDT, CPU exception
//! reports, interrupt entry, thread contexts, the raw serial port, the kernel command line,
//! the boot timeline and the VM's exit. `README.md` says where to start reading.
//!
//! Everything `unsafe` in the kernel lives here or in a driver. The parts that are plain
//! logic (boot-info parsing, memory-map carving, fault decoding) also build on the host and
//! are unit-tested there; the parts that touch the CPU exist only on `target_os = "none"`.
#![no_std]

/// What the kernel shares with its host tools: the hypervisor interface, the exit statuses,
/// the manifest note.
pub use unikernel_abi as abi;

pub mod acpi;
pub mod backtrace;
pub mod boot;
pub mod cmdline;
pub mod context;
pub mod device;
pub mod exit;
pub mod fault;
pub mod hypervisor;
pub mod interrupts;
pub mod memory;
pub mod oom;
pub mod serial;
pub mod smp;
pub mod timeline;
pub mod wait;

#[cfg(target_os = "none")]
mod cpu;
#[cfg(target_os = "none")]
mod paging;
#[cfg(target_os = "none")]
mod start;
