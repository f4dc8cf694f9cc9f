//! The kernel's console and the channel its fault reports go out on.
//!
//! Under the project's monitor (see [`crate::hypervisor`]) each write is one exit of the
//! paravirtual console, and formatted output is gathered into one write per [`print`] call
//! (per 256 bytes). Elsewhere it is COM1, the 16550 UART every x86 VMM emulates, one exit
//! per byte. Output is polled, so it works from the first instruction of Rust to the last,
//! in exception handlers and in the panic handler.

use core::fmt;

#[cfg(target_os = "none")]
mod port {
    use core::sync::atomic::{AtomicBool, Ordering};
    use x86_64::instructions::port::Port;

    static FIFO_ON: AtomicBool = AtomicBool::new(false);

    const COM1: u16 = 0x3f8;

    /// COM1's registers, by their offset from its base port: the only ports `write` and
    /// `read` reach.
    #[derive(Clone, Copy)]
    #[repr(u16)]
    enum Register {
        Data = 0,
        InterruptEnable = 1,
        FifoControl = 2,
        LineControl = 3,
        ModemControl = 4,
        LineStatus = 5,
    }
    use Register::{Data, FifoControl, InterruptEnable, LineControl, LineStatus, ModemControl};

    /// Transmitter holding register empty: with FIFOs on, the whole FIFO is empty.
    const TRANSMIT_EMPTY: u8 = 1 << 5;
    /// The 16550A's transmit FIFO.
    const FIFO_SIZE: usize = 16;

    fn write(register: Register, value: u8) {
        // SAFETY: the port is one of COM1's registers; writing them configures the UART or
        // sends a byte and has no effect on memory.
        unsafe { Port::new(COM1 + register as u16).write(value) }
    }

    fn read(register: Register) -> u8 {
        // SAFETY: the port is one of COM1's registers; reading them has no effect on memory.
        unsafe { Port::new(COM1 + register as u16).read() }
    }

    /// 115200 baud, 8 data bits, no parity, one stop bit, FIFOs on, interrupts off.
    pub fn init() {
        write(InterruptEnable, 0);
        write(LineControl, 0x80); // divisor latch access
        write(Data, 1); // divisor 1: 115200 baud
        write(InterruptEnable, 0);
        write(LineControl, 0x03); // 8N1, latch closed
        write(FifoControl, 0xc7); // enable and clear FIFOs, 14-byte threshold
        write(ModemControl, 0x03); // DTR | RTS
        FIFO_ON.store(true, Ordering::Relaxed);
    }

    /// Sends bytes, waiting for the transmitter to drain once per FIFO's worth instead of
    /// once per byte: every register access is a VM exit, so this halves them.
    pub fn send(bytes: impl Iterator<Item = u8>) {
        let mut room = 0;
        for byte in bytes {
            if room == 0 {
                while read(LineStatus) & TRANSMIT_EMPTY == 0 {
                    core::hint::spin_loop();
                }
                // Before `init` the FIFO may be off: one byte at a time then.
                room = if FIFO_ON.load(Ordering::Relaxed) {
                    FIFO_SIZE
                } else {
                    1
                };
            }
            write(Data, byte);
            room -= 1;
        }
    }
}

/// Configures the UART. Output works before this too (VMMs do not need it), but real
/// 16550s and some VMMs start with undefined line settings. The monitor's console needs
/// nothing, so under it this costs no exit.
pub fn init() {
    #[cfg(target_os = "none")]
    if !crate::hypervisor::is_monitor() {
        port::init();
    }
}

/// Writes bytes to the console: one exit under the monitor (the bytes as they are; the
/// runner shows text with `\n` line ends either way), else to COM1, turning `\n` into
/// `\r\n` for terminals.
pub fn write_bytes(bytes: &[u8]) {
    if crate::hypervisor::console_write(bytes) {
        return;
    }
    #[cfg(target_os = "none")]
    port::send(bytes.iter().flat_map(|&byte| {
        let cr = (byte == b'\n').then_some(b'\r');
        cr.into_iter().chain(core::iter::once(byte))
    }));
    #[cfg(not(target_os = "none"))]
    let _ = bytes;
}

/// A `fmt::Write` sink on the console. Stateless: any number may exist at once.
#[derive(Clone, Copy, Debug, Default)]
pub struct Serial;

impl fmt::Write for Serial {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        write_bytes(s.as_bytes());
        Ok(())
    }
}

/// Prints formatted text to the console (used by `print!`, the logger, fault reports and
/// the panic handler). The pieces are gathered on the stack and written together, so a
/// line is one exit under the monitor rather than one per formatted piece.
pub fn print(args: fmt::Arguments<'_>) {
    let mut buffer = Buffered {
        bytes: [0; BUFFER],
        len: 0,
    };
    let _ = fmt::write(&mut buffer, args);
    buffer.flush();
}

const BUFFER: usize = 256;

/// Gathers formatted pieces; writes when full and at the end.
struct Buffered {
    bytes: [u8; BUFFER],
    len: usize,
}

impl Buffered {
    fn flush(&mut self) {
        if self.len > 0 {
            write_bytes(self.bytes.get(..self.len).unwrap_or_default());
            self.len = 0;
        }
    }
}

impl fmt::Write for Buffered {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let bytes = s.as_bytes();
        if self.len + bytes.len() > BUFFER {
            self.flush();
        }
        match self.bytes.get_mut(self.len..self.len + bytes.len()) {
            Some(room) if bytes.len() < BUFFER => {
                room.copy_from_slice(bytes);
                self.len += bytes.len();
            }
            _ => write_bytes(bytes),
        }
        Ok(())
    }
}
