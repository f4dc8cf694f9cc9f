//! Which VMM the kernel runs under, and the fast paths of the project's own KVM monitor
//! (`cargo uk run --vmm monitor`, the `unikernel-vmm` crate in `runner/vmm/`).
//!
//! The same image boots under QEMU and under the monitor. At its first console write (or
//! first clock read) the kernel asks CPUID whether the monitor is there; QEMU never
//! answers with the monitor's signature, so under QEMU everything stays on the portable
//! paths (the 16550 UART at COM1, one exit per byte; the isa-debug-exit port).
//!
//! # The monitor's interface (version 1)
//!
//! Detection, without a VM exit to the monitor (KVM answers CPUID from the table the monitor
//! gave it):
//! - CPUID leaf 1, ECX bit 31: a hypervisor is present.
//! - CPUID leaf [`abi::CPUID_SIGNATURE`] (0x4000_0000): EAX = the highest hypervisor leaf,
//!   EBX, ECX, EDX = the 12 bytes [`abi::SIGNATURE`] (`"UnikernelVMM"`).
//! - CPUID leaf [`abi::CPUID_FEATURES`] (0x4000_0001): EAX = [`abi::FEATURE_CONSOLE`] |
//!   [`abi::FEATURE_CLOCK`], EBX = [`abi::VERSION`].
//! - CPUID leaf [`abi::CPUID_TIMING`] (0x4000_0010, the leaf VMware and KVM use for it):
//!   EAX = the TSC frequency in kHz.
//!
//! Devices, all on I/O ports, each use one exit:
//! - [`abi::EXIT_PORT`] (0xf4, QEMU's isa-debug-exit address): a 32-bit write of `S` ends the
//!   VM and `runner` exits with `S` (QEMU encodes it as `(S << 1) | 1`; the runner decodes it,
//!   so both VMMs end with the same status).
//! - [`abi::CONSOLE_PORT`]: a 32-bit write of the guest-physical address of a
//!   [`abi::ConsoleWrite`] `{ buffer, length }` prints `length` bytes from `buffer` at once.
//! - [`abi::FUNCTION_PORT`] (with [`abi::FEATURE_FUNCTION`]): the request channel of a
//!   function image, a [`Mailbox`](unikernel_abi::function::Mailbox) handed over once per
//!   request; `unikernel_abi::function` documents the protocol, [`function_exchange`] is
//!   the guest's side.
//! - [`abi::CLOCK_PORT`]: a 32-bit write of the guest-physical address of an 8-byte aligned
//!   [`abi::ClockPage`]; the monitor fills it during that exit (and may refresh it later,
//!   bumping `version` to odd while it writes, as pvclock does). From then on the time is
//!   read from the page and the TSC, without exits.
//!
//! Pointers are guest-physical addresses. The kernel identity-maps the memory it uses (see
//! `paging.rs`), so the address of a static or of a stack variable is its physical address.

/// The interface, as plain data: shared by the kernel and by the monitor in `runner`.
pub use unikernel_abi::hypervisor as abi;

use core::sync::atomic::{AtomicU8, Ordering};

const UNKNOWN: u8 = 0;
const OTHER: u8 = 1;
const MONITOR: u8 = 2;
static DETECTED: AtomicU8 = AtomicU8::new(UNKNOWN);

/// The VMM the kernel runs under, as far as the kernel cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vmm {
    /// The project's monitor: the paravirtual console and clock are there.
    Monitor,
    /// QEMU, another VMM or bare metal: the portable devices only.
    Other,
}

/// Whether the CPUID answers say "the monitor": the hypervisor bit of leaf 1 ECX, then the
/// signature in leaf 0x4000_0000 with a highest leaf that covers the feature leaf.
pub fn is_monitor_signature(leaf1_ecx: u32, max_leaf: u32, ebx: u32, ecx: u32, edx: u32) -> bool {
    let mut signature = [0u8; 12];
    signature[0..4].copy_from_slice(&ebx.to_le_bytes());
    signature[4..8].copy_from_slice(&ecx.to_le_bytes());
    signature[8..12].copy_from_slice(&edx.to_le_bytes());
    leaf1_ecx & (1 << 31) != 0 && max_leaf >= abi::CPUID_FEATURES && signature == abi::SIGNATURE
}

/// The VMM, asked once (two CPUID instructions) and remembered.
pub fn vmm() -> Vmm {
    match DETECTED.load(Ordering::Relaxed) {
        MONITOR => Vmm::Monitor,
        OTHER => Vmm::Other,
        _ => {
            let found = detect();
            DETECTED.store(
                if found == Vmm::Monitor {
                    MONITOR
                } else {
                    OTHER
                },
                Ordering::Relaxed,
            );
            found
        }
    }
}

/// Whether the monitor runs this kernel.
pub fn is_monitor() -> bool {
    vmm() == Vmm::Monitor
}

#[cfg(target_os = "none")]
fn detect() -> Vmm {
    use core::arch::x86_64::__cpuid;
    let leaf1 = __cpuid(1);
    if leaf1.ecx & (1 << 31) == 0 {
        return Vmm::Other;
    }
    let base = __cpuid(abi::CPUID_SIGNATURE);
    if is_monitor_signature(leaf1.ecx, base.eax, base.ebx, base.ecx, base.edx)
        && __cpuid(abi::CPUID_FEATURES).eax & abi::FEATURE_CONSOLE != 0
    {
        Vmm::Monitor
    } else {
        Vmm::Other
    }
}

/// Host builds (unit tests) run under no VMM of ours.
#[cfg(not(target_os = "none"))]
fn detect() -> Vmm {
    Vmm::Other
}

/// Writes a 32-bit value to an I/O port of the monitor whose value is a guest-physical
/// address the monitor reads or fills during the write. This is the kernel's one port
/// access outside `x86_64`'s `Port`, whose asm is marked `nomem`: here every store before
/// the write must have happened, and the monitor's stores must be seen after it.
///
/// # Safety
/// The monitor runs the kernel (`is_monitor()`), `port` is one of its ports, and `value`
/// is the address of memory the kernel owns that may be read, and written where the
/// interface says so ([`abi::CLOCK_PORT`]: 48 bytes of a `ClockPage`; [`abi::FUNCTION_PORT`]:
/// the mailbox and its buffer), until the write returns, and for the clock page for good.
#[cfg(target_os = "none")]
unsafe fn port_write_u32_with_memory(port: u16, value: u32) {
    // SAFETY: forwarded to the caller; `out` itself changes no register but the port's.
    unsafe {
        core::arch::asm!("out dx, eax", in("dx") port, in("eax") value, options(nostack, preserves_flags));
    }
}

/// Prints `bytes` through the monitor's console in one exit. Returns `false` (and prints
/// nothing) where the monitor is not there or the buffer is not addressable by it.
pub fn console_write(bytes: &[u8]) -> bool {
    if bytes.is_empty() {
        return is_monitor();
    }
    if !is_monitor() {
        return false;
    }
    #[cfg(target_os = "none")]
    {
        let request = abi::ConsoleWrite {
            buffer: bytes.as_ptr() as u64,
            length: bytes.len() as u64,
        };
        let address = &raw const request as u64;
        let Ok(address) = u32::try_from(address) else {
            return false;
        };
        // SAFETY: the monitor runs the kernel (checked above); `address` is the request on
        // this stack, which lives until after the write, and the monitor only reads it and
        // the caller's bytes.
        unsafe { port_write_u32_with_memory(abi::CONSOLE_PORT, address) };
        // The request must live until the write above; keep the compiler from ending its
        // life earlier.
        core::hint::black_box(&request);
        true
    }
    #[cfg(not(target_os = "none"))]
    false
}

/// Whether the monitor offers the request channel of function images
/// ([`abi::FEATURE_FUNCTION`]).
///
/// Asked once and remembered: CPUID is a VM exit, which a request should not pay for.
pub fn has_function_channel() -> bool {
    static CHANNEL: AtomicU8 = AtomicU8::new(UNKNOWN);
    match CHANNEL.load(Ordering::Relaxed) {
        MONITOR => true,
        OTHER => false,
        _ => {
            #[cfg(target_os = "none")]
            let found = is_monitor()
                && core::arch::x86_64::__cpuid(abi::CPUID_FEATURES).eax & abi::FEATURE_FUNCTION
                    != 0;
            #[cfg(not(target_os = "none"))]
            let found = false;
            CHANNEL.store(if found { MONITOR } else { OTHER }, Ordering::Relaxed);
            found
        }
    }
}

/// The request buffer of a function image: `size` bytes of the VM's memory for good,
/// mapped read-write and not executable, handed out without being written.
///
/// Writing them (to give Rust initialised bytes) would cost a store per byte at boot, and
/// in `snapshot` mode would make every page of the buffer part of the snapshot; untouched,
/// they stay the VMM's zero pages until a request lands in them.
pub fn function_buffer(size: usize) -> Result<&'static mut [u8], crate::memory::MemoryError> {
    let region = crate::memory::allocate(size)?;
    let start = region.as_mut_ptr().cast::<u8>();
    // SAFETY: `allocate` hands out `size` bytes of RAM from the memory map for good, mapped
    // read-write, aliased by nothing (its cursor only grows), page aligned. Their bytes
    // are what the VMM put in guest memory (zeroes for a new VM), not values this program
    // left uninitialised, so they are valid `u8`s; the protocol only reads the bytes the
    // monitor wrote in each request.
    Ok(unsafe { core::slice::from_raw_parts_mut(start, size) })
}

/// Why a request could not be exchanged with the monitor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExchangeError {
    /// The VMM offers no request channel ([`has_function_channel`] is false).
    NoChannel,
    /// The mailbox or the buffer lies where the monitor cannot address it (the mailbox above
    /// 4 GiB).
    NotAddressable,
}

/// Hands `mailbox` to the monitor (a response, or nothing the first time, as its `state`
/// says) with `buffer` as the request buffer, and returns once the monitor has written a
/// request into both: one VM exit. Sets `buffer` and `capacity` itself.
///
/// The exclusive borrows are what makes this safe: the monitor writes only the mailbox and
/// at most `buffer.len()` bytes of `buffer`, and only during the exit.
pub fn function_exchange(
    mailbox: &mut unikernel_abi::function::Mailbox,
    buffer: &mut [u8],
) -> Result<(), ExchangeError> {
    if !has_function_channel() {
        return Err(ExchangeError::NoChannel);
    }
    mailbox.buffer = buffer.as_mut_ptr() as u64;
    mailbox.capacity = buffer.len() as u64;
    let Ok(address) = u32::try_from(&raw mut *mailbox as u64) else {
        return Err(ExchangeError::NotAddressable);
    };
    #[cfg(target_os = "none")]
    {
        // SAFETY: the monitor runs the kernel and offers the channel (checked above);
        // `address` is `mailbox`, which with `buffer` is borrowed exclusively for the
        // duration of the write, and the monitor writes only the mailbox's 128 bytes and at
        // most `capacity` bytes at `buffer` (the protocol of `unikernel_abi::function`). The
        // asm is not `nomem`, so the compiler reloads both after it.
        unsafe { port_write_u32_with_memory(abi::FUNCTION_PORT, address) };
    }
    #[cfg(not(target_os = "none"))]
    let _ = address;
    core::hint::black_box(&mut *mailbox);
    core::hint::black_box(&mut *buffer);
    Ok(())
}

/// The clock page, registered with the monitor at the first read.
#[cfg(target_os = "none")]
mod clock {
    use super::abi::{self, ClockPage};
    use core::sync::atomic::{AtomicBool, Ordering};

    #[repr(C, align(64))]
    struct Page(core::cell::UnsafeCell<ClockPage>);

    // SAFETY: the page is written only by the monitor (while the vCPU is stopped in an exit
    // or, for refreshes, with the version protocol) and read with volatile loads.
    unsafe impl Sync for Page {}

    static PAGE: Page = Page(core::cell::UnsafeCell::new(ClockPage {
        version: 0,
        flags: 0,
        tsc_timestamp: 0,
        system_ns: 0,
        wall_ns_at_zero: 0,
        tsc_hz: 0,
        tsc_to_ns_mul: 0,
        tsc_shift: 0,
        reserved: [0; 3],
    }));
    static REGISTERED: AtomicBool = AtomicBool::new(false);

    /// A consistent copy of the page, registering it first if needed.
    pub(super) fn read() -> Option<ClockPage> {
        if !super::is_monitor() {
            return None;
        }
        let page = PAGE.0.get();
        if !REGISTERED.load(Ordering::Acquire) {
            let address = u32::try_from(page as u64).ok()?;
            // SAFETY: the monitor runs the kernel (checked above); PAGE is a static the
            // monitor alone writes from now on, 64-byte aligned and a `ClockPage` in size.
            unsafe { super::port_write_u32_with_memory(abi::CLOCK_PORT, address) };
            REGISTERED.store(true, Ordering::Release);
        }
        loop {
            // SAFETY: `page` points at the static above; volatile reads see the monitor's
            // writes, and the version check below discards a torn copy.
            let before = unsafe { core::ptr::read_volatile(&raw const (*page).version) };
            // SAFETY: as above.
            let copy = unsafe { core::ptr::read_volatile(page) };
            core::sync::atomic::compiler_fence(Ordering::SeqCst);
            // SAFETY: as above.
            let after = unsafe { core::ptr::read_volatile(&raw const (*page).version) };
            if before == after && before & 1 == 0 {
                return (copy.tsc_hz != 0).then_some(copy);
            }
        }
    }
}

/// The monitor's clock: nanoseconds since the VM was created, read from the clock page and
/// the TSC without an exit (the first call registers the page: one exit). `None` under
/// other VMMs.
pub fn monotonic_ns() -> Option<u64> {
    #[cfg(target_os = "none")]
    {
        let page = clock::read()?;
        Some(page.ns_at(crate::timeline::tsc()))
    }
    #[cfg(not(target_os = "none"))]
    None
}

/// Unix time in nanoseconds from the monitor's clock; `None` under other VMMs.
pub fn wall_clock_ns() -> Option<u64> {
    #[cfg(target_os = "none")]
    {
        let page = clock::read()?;
        Some(
            page.wall_ns_at_zero
                .wrapping_add(page.ns_at(crate::timeline::tsc())),
        )
    }
    #[cfg(not(target_os = "none"))]
    None
}

/// The TSC frequency in Hz as the monitor reports it (CPUID leaf 0x4000_0010, no exit);
/// `None` under other VMMs.
pub fn tsc_hz() -> Option<u64> {
    #[cfg(target_os = "none")]
    if is_monitor() {
        let khz = core::arch::x86_64::__cpuid(abi::CPUID_TIMING).eax;
        return (khz != 0).then(|| u64::from(khz) * 1000);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::abi::*;
    use super::*;

    fn words(signature: &[u8; 12]) -> (u32, u32, u32) {
        let word = |i: usize| u32::from_le_bytes(signature[i..i + 4].try_into().unwrap());
        (word(0), word(4), word(8))
    }

    #[test]
    fn the_signature_is_recognised_and_kvms_is_not() {
        let (b, c, d) = words(&SIGNATURE);
        assert!(is_monitor_signature(1 << 31, CPUID_TIMING, b, c, d));
        assert!(
            !is_monitor_signature(0, CPUID_TIMING, b, c, d),
            "no hypervisor bit"
        );
        assert!(
            !is_monitor_signature(1 << 31, CPUID_SIGNATURE, b, c, d),
            "no feature leaf"
        );
        let (b, c, d) = words(b"KVMKVMKVM\0\0\0");
        assert!(!is_monitor_signature(1 << 31, 0x4000_0001, b, c, d));
    }
}
