//! Ending the VM with a status the host sees.

/// Status codes the kernel itself reports; an app's own codes should stay below 100.
pub mod status {
    /// The app panicked.
    pub const PANIC: u8 = 101;
    /// A CPU exception the kernel cannot recover from.
    pub const EXCEPTION: u8 = 102;
    /// Boot failed before `main` (bad boot information, not enough memory, ...).
    pub const BOOT_ERROR: u8 = 103;
}

/// Ends the VM with `status`.
///
/// Under QEMU the isa-debug-exit device at port 0xf4 makes QEMU exit with
/// `(status << 1) | 1`, which the runner maps back to `status`. VMMs without that device
/// get a reset request instead (QEMU with `-no-reboot` exits on it), and if even that is
/// ignored the CPU halts with interrupts off.
#[cfg(target_os = "none")]
pub fn exit(status: u8) -> ! {
    use x86_64::instructions::port::Port;
    // SAFETY: port 0xf4 is the isa-debug-exit device (or nothing); writing it ends the VM
    // or has no effect. Port 0x64 is the i8042 command port: 0xfe pulses the reset line.
    unsafe {
        Port::<u32>::new(0xf4).write(u32::from(status));
        Port::<u8>::new(0x64).write(0xfe);
    }
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
