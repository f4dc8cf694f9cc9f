//! The guest interface of the monitor: the kernel's own definitions
//! (`core/arch/src/hypervisor.rs`, where the interface is documented), so the two cannot
//! drift apart.

pub use unikernel_arch::hypervisor::abi::*;
