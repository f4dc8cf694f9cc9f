//! Ending the VM with a status the host sees.

/// Status codes the kernel itself reports (shared with the runner); an app's own codes
/// should stay at or below 100.
pub use unikernel_abi::status;

/// The kernel flag that turns a successful exit into an idle halt: `unikernel.idle` on the
/// command line. `cargo uk density` uses it to keep many booted VMs alive without work.
pub const IDLE_FLAG: &str = "idle";

/// Ends the VM with `status`.
///
/// Under QEMU the isa-debug-exit device at port 0xf4 makes QEMU exit with
/// `(status << 1) | 1`, which the runner maps back to `status`; the project's monitor has
/// the same port and ends with `status` itself (see [`crate::hypervisor`]). VMMs without
/// that device get a reset request instead (QEMU with `-no-reboot` exits on it), and if
/// even that is ignored the CPU halts with interrupts off.
///
/// With the kernel flag `unikernel.idle` a status of 0 does not end the VM: the CPU halts
/// with interrupts masked, for good, and the VMM sees a guest that booted and sits idle.
#[cfg(target_os = "none")]
pub fn exit(status: u8) -> ! {
    use x86_64::instructions::port::Port;
    if status == 0 && crate::boot::info().has_flag(IDLE_FLAG) {
        halt_forever();
    }
    // SAFETY: port 0xf4 is the isa-debug-exit device (or the monitor's exit port, or
    // nothing); writing it ends the VM or has no effect. Port 0x64 is the i8042 command
    // port: 0xfe pulses the reset line.
    unsafe {
        Port::<u32>::new(0xf4).write(u32::from(status));
        Port::<u8>::new(0x64).write(0xfe);
    }
    halt_forever()
}

/// Halts with interrupts masked: only an NMI or a reset ends it, and the VMM's vCPU thread
/// can sleep (a halted vCPU costs the host no CPU time).
#[cfg(target_os = "none")]
fn halt_forever() -> ! {
    loop {
        x86_64::instructions::interrupts::disable();
        x86_64::instructions::hlt();
    }
}

/// Host builds (unit tests) have no VM to end.
#[cfg(not(target_os = "none"))]
pub fn exit(status: u8) -> ! {
    panic!("the kernel exited with status {status}")
}
