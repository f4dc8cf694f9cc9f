//! The monitor's devices, all on I/O ports. Pure logic: the VM loop hands each port access
//! here and acts on the answer.
//!
//! - 0xf4..0xf7, the exit port: a write of `S` ends the VM with status `S`.
//! - The paravirtual console and clock ports (see [`super::abi`]), and the request channel
//!   of function images, for a VM whose caller serves it (`Vm::serve_function`).
//! - COM1 (0x3f8..0x3ff): enough of a 16550 for a kernel that does not know the monitor
//!   (the floor kernel, or ours before it checks): bytes written to the transmit register
//!   are output, the line status always says "transmitter empty".
//! - i8042 (0x60, 0x64): command 0xfe (pulse the reset line) is a reset.
//! - Port 0x80 (POST codes) and every other port: writes ignored, reads all ones (an empty
//!   bus), and counted, so a guest probing hardware does not stop.

use unikernel_abi::hypervisor as abi;

const COM1: u16 = 0x3f8;
/// isa-debug-exit spans four ports; a write to any of them ends the VM.
const EXIT_PORT_LAST: u16 = abi::EXIT_PORT + 3;
const I8042_DATA: u16 = 0x60;
const I8042_COMMAND: u16 = 0x64;
const I8042_RESET: u8 = 0xfe;

/// What a port write asks of the monitor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Nothing more to do.
    None,
    /// Output these bytes (from COM1).
    Output(u8),
    /// Print the console request at this guest-physical address.
    ConsoleWrite(u64),
    /// Register the clock page at this guest-physical address.
    RegisterClock(u64),
    /// The mailbox of the request channel at this guest-physical address.
    Function(u64),
    /// End the VM with this status.
    Exit(i32),
    /// The guest asked for a reset.
    Reset,
}

/// The state of the port devices.
#[derive(Debug, Clone, Default)]
pub struct Ports {
    line_control: u8,
    interrupt_enable: u8,
    fifo_control: u8,
    modem_control: u8,
    scratch: u8,
    divisor: u16,
    /// Accesses to ports no device answers.
    pub unclaimed: u64,
    /// The first unclaimed port, for diagnostics.
    pub first_unclaimed: Option<u16>,
}

/// The little-endian value of an access of 1, 2 or 4 bytes.
pub fn value(data: &[u8]) -> u64 {
    data.iter()
        .rev()
        .fold(0u64, |value, &byte| (value << 8) | u64::from(byte))
}

impl Ports {
    /// A port write.
    pub fn write(&mut self, port: u16, data: &[u8]) -> Action {
        let value = value(data);
        match port {
            abi::EXIT_PORT..=EXIT_PORT_LAST => Action::Exit(value as i32),
            abi::CONSOLE_PORT if data.len() == 4 => Action::ConsoleWrite(value),
            abi::CLOCK_PORT if data.len() == 4 => Action::RegisterClock(value),
            abi::FUNCTION_PORT if data.len() == 4 => Action::Function(value),
            COM1..=0x3ff => self.uart_write(port - COM1, value as u8),
            I8042_COMMAND if value as u8 == I8042_RESET => Action::Reset,
            I8042_COMMAND | I8042_DATA | 0x80 => Action::None,
            _ => {
                self.unclaimed(port);
                Action::None
            }
        }
    }

    /// A port read; fills `data`.
    pub fn read(&mut self, port: u16, data: &mut [u8]) {
        let value: u8 = match port {
            COM1..=0x3ff => self.uart_read(port - COM1),
            // i8042 status: no data, input buffer empty.
            I8042_COMMAND => 0,
            _ => {
                self.unclaimed(port);
                0xff
            }
        };
        data.fill(0xff);
        if let Some(first) = data.first_mut() {
            *first = value;
        }
    }

    fn unclaimed(&mut self, port: u16) {
        self.unclaimed += 1;
        self.first_unclaimed.get_or_insert(port);
    }

    fn dlab(&self) -> bool {
        self.line_control & 0x80 != 0
    }

    fn uart_write(&mut self, offset: u16, value: u8) -> Action {
        match offset {
            0 if self.dlab() => self.divisor = (self.divisor & 0xff00) | u16::from(value),
            0 => return Action::Output(value),
            1 if self.dlab() => self.divisor = (self.divisor & 0x00ff) | (u16::from(value) << 8),
            1 => self.interrupt_enable = value & 0x0f,
            2 => self.fifo_control = value,
            3 => self.line_control = value,
            4 => self.modem_control = value,
            7 => self.scratch = value,
            _ => {}
        }
        Action::None
    }

    fn uart_read(&self, offset: u16) -> u8 {
        match offset {
            0 if self.dlab() => self.divisor as u8,
            0 => 0, // no input
            1 if self.dlab() => (self.divisor >> 8) as u8,
            1 => self.interrupt_enable,
            // No interrupt pending; FIFOs reported on when enabled.
            2 => 0x01 | if self.fifo_control & 1 != 0 { 0xc0 } else { 0 },
            3 => self.line_control,
            4 => self.modem_control,
            // Transmit holding register and transmitter empty.
            5 => 0x60,
            // Carrier detect, data set ready, clear to send.
            6 => 0xb0,
            _ => self.scratch,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exit_port_takes_any_width_and_offset() {
        let mut ports = Ports::default();
        assert_eq!(ports.write(0xf4, &[7, 0, 0, 0]), Action::Exit(7));
        assert_eq!(ports.write(0xf4, &[101]), Action::Exit(101));
        assert_eq!(ports.write(0xf6, &[3, 0]), Action::Exit(3));
    }

    #[test]
    fn com1_prints_data_bytes_but_not_the_divisor() {
        let mut ports = Ports::default();
        assert_eq!(ports.write(0x3fb, &[0x80]), Action::None); // DLAB on
        assert_eq!(ports.write(0x3f8, &[1]), Action::None); // divisor low
        let mut data = [0];
        ports.read(0x3f8, &mut data);
        assert_eq!(data, [1]);
        assert_eq!(ports.write(0x3fb, &[0x03]), Action::None); // 8N1, DLAB off
        assert_eq!(ports.write(0x3f8, b"x"), Action::Output(b'x'));
        ports.read(0x3fd, &mut data);
        assert_eq!(data[0] & 0x20, 0x20, "the transmitter is always empty");
        assert_eq!(ports.unclaimed, 0);
    }

    #[test]
    fn the_paravirtual_ports_want_32_bit_writes() {
        let mut ports = Ports::default();
        let address = 0x12_3450u32.to_le_bytes();
        assert_eq!(
            ports.write(abi::CONSOLE_PORT, &address),
            Action::ConsoleWrite(0x12_3450)
        );
        assert_eq!(
            ports.write(abi::CLOCK_PORT, &address),
            Action::RegisterClock(0x12_3450)
        );
        assert_eq!(ports.write(abi::CONSOLE_PORT, &[1]), Action::None);
        assert_eq!(ports.unclaimed, 1);
    }

    #[test]
    fn unclaimed_ports_read_as_all_ones_and_are_counted() {
        let mut ports = Ports::default();
        let mut data = [0u8; 2];
        ports.read(0x1234, &mut data);
        assert_eq!(data, [0xff, 0xff]);
        assert_eq!(ports.write(0x64, &[0xfe]), Action::Reset);
        assert_eq!(ports.write(0x21, &[0xff]), Action::None);
        assert_eq!((ports.unclaimed, ports.first_unclaimed), (2, Some(0x1234)));
    }
}
