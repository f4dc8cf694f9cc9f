//! The floor: the least a PVH kernel can do. It enters long mode on page tables that are
//! built into the image, writes `floor` to COM1 and leaves through the isa-debug-exit port
//! (QEMU exits with status 1, which the runner reads as 0). Booting it measures what the
//! VMM itself costs; every boot figure of our images is a ratio to it, measured in the
//! same run (benches/README.md).
//!
//! It shares nothing with the `unikernel` crates, on purpose: it is the baseline they are
//! held to. Its unsafe code is the port I/O a kernel without drivers cannot avoid.
#![no_std]
#![no_main]

use core::arch::{asm, global_asm};

global_asm!(include_str!("boot.s"));

/// COM1's transmit register.
const COM1: u16 = 0x3f8;
/// QEMU's isa-debug-exit port (`-device isa-debug-exit,iobase=0xf4`).
const DEBUG_EXIT: u16 = 0xf4;

/// Writes one byte to an x86 I/O port.
///
/// # Safety
///
/// Writing `value` to `port` must not affect memory safety (true of COM1 and the exit port).
unsafe fn outb(port: u16, value: u8) {
    // SAFETY: the caller names a port whose write has no effect on memory safety.
    unsafe { asm!("out dx, al", in("dx") port, in("al") value, options(nomem, nostack)) }
}

/// Called by boot.s in long mode, on the image's stack.
#[unsafe(no_mangle)]
extern "C" fn floor_main() -> ! {
    for &byte in b"floor\n" {
        // SAFETY: COM1's data register; a write sends the byte.
        unsafe { outb(COM1, byte) }
    }
    // SAFETY: isa-debug-exit: the VMM ends the VM with status (0 << 1) | 1 = 1.
    unsafe { outb(DEBUG_EXIT, 0) }
    halt_forever()
}

/// Halts for good (a VMM without the exit port leaves the VM halted).
fn halt_forever() -> ! {
    loop {
        // SAFETY: `hlt` only waits for an interrupt; none is enabled.
        unsafe { asm!("hlt", options(nomem, nostack)) }
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    halt_forever()
}
