//! The monitor's errors: why a VM could not be created. What happens once it runs is a
//! [`crate::VmExit`], not an error.

use std::path::PathBuf;

use crate::elf::ValidateError;

/// Why the monitor could not boot an image.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file is missing, unreadable or not a bootable image.
    #[error(transparent)]
    Image(#[from] ValidateError),
    #[error(
        "{} has no PVH note (XEN_ELFNOTE_PHYS32_ENTRY): the monitor boots PVH images only; boot it with --vmm qemu",
        .0.display()
    )]
    NoPvhNote(PathBuf),
    /// Density and the gdb stub run VMs of one vCPU (snapshots refuse in
    /// [`Error::Snapshot`]).
    #[error(
        "{} runs on {cpus} CPUs (`sched(cpus = {cpus})`), and {what} takes images of one CPU only; {instead}",
        .path.display()
    )]
    SeveralCpus {
        path: PathBuf,
        cpus: u16,
        /// What refuses it.
        what: &'static str,
        /// What to do instead.
        instead: &'static str,
    },
    #[error("{cpus} vCPUs asked for: the monitor gives a VM 1 to {max}")]
    CpuCount { cpus: u16, max: u16 },
    #[error("the monitor needs KVM, and /dev/kvm does not exist here (boot with --vmm qemu)")]
    NoKvm,
    #[error("the monitor needs KVM: permission denied on /dev/kvm (add yourself to the kvm group)")]
    KvmDenied,
    #[error("cannot open /dev/kvm: {0}")]
    OpenKvm(kvm_ioctls::Error),
    /// A KVM ioctl failed.
    #[error("{ioctl} failed: {source}")]
    Kvm {
        ioctl: &'static str,
        source: kvm_ioctls::Error,
    },
    #[error("--memory {0}: the monitor needs 2 MiB to 1 TiB")]
    MemorySize(u32),
    #[error("cannot map {mib} MiB of guest memory: {detail}")]
    MapMemory { mib: u32, detail: String },
    #[error(
        "{}: a segment at {start:#x}..{end:#x} does not fit in the VM's {mib} MiB above 1 MiB; give it more --memory",
        path.display()
    )]
    SegmentDoesNotFit {
        path: PathBuf,
        start: u64,
        end: u64,
        mib: u64,
    },
    #[error("the kernel command line is {len} bytes; the kernel takes at most {max}")]
    CommandLineTooLong { len: usize, max: usize },
    /// Writing into guest memory failed (`what` says what was written).
    #[error("writing {what} into guest memory: {detail}")]
    GuestMemory { what: &'static str, detail: String },
    #[error("initrd {}: {detail}", path.display())]
    Initrd { path: PathBuf, detail: String },
    /// A virtio device could not be set up (its back end, KVM's ioeventfd or irqfd).
    #[error("{0}")]
    Device(String),
    #[error("building the CPUID table: {0}")]
    Cpuid(String),
    #[error("cannot start the watchdog thread: {0}")]
    Watchdog(std::io::Error),
    #[error("cannot start the vCPU thread: {0}")]
    VcpuThread(std::io::Error),
    #[error("the vCPU thread of the monitor panicked (a bug in the monitor)")]
    VcpuPanicked,
    /// `--realtime`: a vCPU thread could not be put under SCHED_FIFO (the sentence says
    /// what it needs).
    #[error("{0}")]
    Realtime(String),
    /// The seccomp filter or the privilege drop of a vCPU thread could not be set up.
    #[error("confining the vCPU thread: {0}")]
    Sandbox(String),
    /// A snapshot could not be taken, or a file is not a snapshot this monitor restores
    /// (the sentence says which check failed).
    #[error("snapshot: {0}")]
    Snapshot(String),
    /// The gdb connection failed (`--gdb`).
    #[error("gdb: {0}")]
    Gdb(std::io::Error),
}

/// The monitor's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An `Error::Kvm` for `ioctl`, to use with `map_err`.
pub(crate) fn kvm(ioctl: &'static str) -> impl Fn(kvm_ioctls::Error) -> Error {
    move |source| Error::Kvm { ioctl, source }
}
