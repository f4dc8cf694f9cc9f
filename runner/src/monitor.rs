//! The choice of VMM, and the monitor's types the runner's API hands out. The monitor
//! itself is the `unikernel-vmm` crate (runner/vmm).

use std::fmt;

pub use unikernel_vmm::{FaultKind, Run, Stats};

/// Which VMM boots an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Vmm {
    /// QEMU: every machine model and accelerator, the compatible default.
    #[default]
    Qemu,
    /// The project's own KVM monitor: PVH images on KVM, for speed and density.
    Monitor,
}

impl fmt::Display for Vmm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Vmm::Qemu => "qemu",
            Vmm::Monitor => "monitor",
        })
    }
}
