//! The `net` subsystem: a virtio-net device and a TCP/IP stack (smoltcp), with sockets
//! shaped like `std::net`'s.
//!
//! ```ignore
//! #[unikernel(console, heap = "8 MiB", net(ipv4 = "10.0.2.15/24", gateway = "10.0.2.2"))]
//! fn main(net: Net) -> ExitCode {
//!     let listener = TcpListener::bind(&net, 80).unwrap();
//!     for stream in listener.incoming() {
//!         let mut stream = stream.unwrap();
//!         let mut buf = [0; 1024];
//!         let n = stream.read(&mut buf).unwrap();
//!         stream.write_all(&buf[..n]).unwrap();
//!     }
//!     ExitCode::SUCCESS
//! }
//! ```
//!
//! - **The device.** virtio-net over virtio-mmio (QEMU microvm, Firecracker: the windows are
//!   announced on the kernel command line as `virtio_mmio.device=<size>@<base>:<irq>`) or
//!   over PCI (pc, q35), through the `virtio-drivers` crate. Frame buffers are fixed pools,
//!   so the data path allocates nothing.
//! - **Receive is interrupt driven** when the kernel routes the device's interrupt (the
//!   `irq` subsystem; virtio-mmio's edge-triggered GSI, or PCI's INTx, level-triggered,
//!   whose handler reads the device's ISR status register to lower the line): a caller with nothing to do waits until the device or the stack's
//!   next timer wakes it. Under a scheduler only the calling thread blocks (through
//!   `unikernel_arch::wait`, which the scheduler fills in, so this crate never links it)
//!   and the other threads run; without one the CPU halts. While the stack is busy it polls and the device is asked
//!   not to interrupt, which saves an interrupt per frame under load.
//! - **Several CPUs.** The device interrupts CPU 0, and the stack is one, behind a spin
//!   lock held with interrupts off; threads on every CPU may use sockets. A waiter on
//!   another CPU is woken by the scheduler's wake-up IPI when the interrupt on CPU 0, or a
//!   poll on any CPU, makes progress, and its timeout runs on its own CPU's timer. The
//!   interrupt handler never takes the stack's lock, so a CPU holding it never blocks
//!   CPU 0's interrupt.
//! - **Blocking calls, or not.** `read`, `write`, `accept`, `recv_from` block (with
//!   optional timeouts) like std's; `set_nonblocking(true)` makes them return
//!   [`Error::WouldBlock`] instead, and [`Net::wait`] blocks until the network makes
//!   progress: the pieces of an event loop serving many connections on one thread.
//! - **Backpressure, not unbounded buffers.** Each stream has fixed receive and send
//!   buffers (16 KiB by default): a full receive buffer closes the peer's TCP window, a full
//!   send buffer makes `write` wait (or return `WouldBlock`). A listener keeps at most its
//!   backlog of connections waiting for `accept`. UDP queues are bounded and drop when full.
#![no_std]
// The bring-up path exists only in the kernel; the host build keeps the logic for its tests.
#![cfg_attr(not(target_os = "none"), allow(dead_code))]
// Only the virtio driver's modules touch hardware; the stack and sockets need no unsafe.
#![deny(unsafe_code)]

extern crate alloc;

pub mod config;
#[cfg(target_os = "none")]
#[allow(unsafe_code)]
mod device;
mod gate;
pub use unikernel_virtio::discover;
#[allow(unsafe_code)]
mod nic;
pub mod platform;
mod stack;
pub mod tcp;
pub mod udp;

use core::fmt;
use core::net::Ipv4Addr;
use core::time::Duration;

pub use config::{Config, Ipv4Address, Ipv4Cidr};
pub use nic::NicStats;
pub use platform::Platform;
pub use tcp::{ListenOptions, Shutdown, TcpListener, TcpStream};
pub use udp::UdpSocket;
use unikernel_rand::Rand;

/// What a socket operation can fail with (the `std::io::ErrorKind`s that apply).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// Non-blocking mode, and the operation would have to wait.
    WouldBlock,
    /// The timeout set on the socket passed.
    TimedOut,
    /// The peer refused the connection.
    ConnectionRefused,
    /// The peer reset the connection (or it timed out).
    ConnectionReset,
    /// The connection is closed for writing.
    BrokenPipe,
    /// The socket is not connected.
    NotConnected,
    /// The port is in use.
    AddrInUse,
    /// No route to the address (the interface has no address yet, or no gateway).
    Unreachable,
    /// The stream ended before the expected data.
    UnexpectedEof,
    /// An argument was invalid (a zero timeout, port 0 for a listener, ...).
    InvalidInput,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::WouldBlock => "the operation would block",
            Self::TimedOut => "timed out",
            Self::ConnectionRefused => "connection refused",
            Self::ConnectionReset => "connection reset by peer",
            Self::BrokenPipe => "the connection is closed for writing",
            Self::NotConnected => "not connected",
            Self::AddrInUse => "address in use",
            Self::Unreachable => "no route to the address",
            Self::UnexpectedEof => "the stream ended early",
            Self::InvalidInput => "invalid argument",
        })
    }
}

impl core::error::Error for Error {}

/// Why the network could not be brought up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitError {
    /// No virtio-net device: none on the command line's virtio-mmio windows, none on PCI.
    NoDevice,
    /// The device did not initialise.
    Device(virtio_drivers::Error),
    /// No DHCP server answered in time.
    DhcpTimeout(Duration),
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoDevice => f.write_str(
                "no virtio-net device (QEMU: `-device virtio-net-device,netdev=...` on microvm, \
                 `virtio-net-pci` on pc/q35; the runner adds one with --forward or --tap)",
            ),
            Self::Device(error) => write!(f, "the virtio-net device failed to start: {error}"),
            Self::DhcpTimeout(after) => {
                write!(f, "no DHCP server answered within {} s", after.as_secs())
            }
        }
    }
}

/// The handle of the network: sockets are made with it (`TcpListener::bind(&net, 80)`).
/// It is `Copy`: hand it to every thread that needs the network.
#[derive(Clone, Copy, Debug)]
pub struct Net {
    _private: (),
}

/// What the network has done since boot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetStats {
    pub nic: NicStats,
    /// Device interrupts taken (0 when the stack polls).
    pub interrupts: u64,
    /// Sockets in the stack, open or pooled for reuse.
    pub sockets: usize,
    /// Times the stack was polled (each poll walks every socket).
    pub polls: u64,
}

/// How long `init` waits for a DHCP lease.
pub const DHCP_TIMEOUT: Duration = Duration::from_secs(20);

/// Finds the device, brings up the interface with `config` and returns the handle. The
/// command line is searched for virtio-mmio windows. `route_irq(line, level, handler)`
/// asks the interrupt controller to call `handler` on every interrupt of `line` (a GSI;
/// edge-triggered, or level-triggered and active high when `level`) and says whether it
/// did; when not, the stack polls the device. With DHCP, waits for a lease. `rand` seeds
/// the stack's initial TCP sequence numbers and picks the local ports of sockets the app
/// did not bind.
pub fn init(
    config: Config,
    platform: &'static dyn Platform,
    rand: Rand,
    route_irq: impl FnOnce(u32, bool, fn()) -> bool,
    cmdline: &str,
) -> Result<Net, InitError> {
    RAND.call_once(|| rand);
    #[cfg(target_os = "none")]
    return target::init(config, platform, rand, route_irq, cmdline);
    #[cfg(not(target_os = "none"))]
    {
        let _ = (config, platform, route_irq, cmdline);
        Err(InitError::NoDevice)
    }
}

#[cfg(target_os = "none")]
mod target {
    use super::*;
    use smoltcp::iface::{Config as IfaceConfig, Interface};
    use smoltcp::wire::{EthernetAddress, HardwareAddress};

    pub(super) fn init(
        config: Config,
        platform: &'static dyn Platform,
        rand: Rand,
        route_irq: impl FnOnce(u32, bool, fn()) -> bool,
        cmdline: &str,
    ) -> Result<Net, InitError> {
        let (transport, location) = device::find(cmdline).ok_or(InitError::NoDevice)?;
        let raw = nic::Raw::new(transport).map_err(InitError::Device)?;
        // SYN cookies must be unguessable too: a forged one would open connections.
        let cookie_key = gate::CookieKey::new(rand.u64(), rand.u64());
        let mut nic = nic::Nic::new(raw, cookie_key).map_err(InitError::Device)?;
        let mac = nic.mac();
        let now = stack::instant(platform.now());
        let mut iface_config = IfaceConfig::new(HardwareAddress::Ethernet(EthernetAddress(mac)));
        // smoltcp derives each connection's initial sequence number from this seed: a
        // guessable one would let an off-path host inject into connections.
        iface_config.random_seed = rand.u64();
        let iface = Interface::new(iface_config, &mut nic, now);
        let mut stack = stack::Stack::new(iface, nic, platform);
        match config {
            Config::Static { cidr, gateway } => stack.set_address(cidr, gateway),
            Config::Dhcp => stack.start_dhcp(),
        }
        stack::install(stack);

        // virtio-mmio: an edge-triggered GSI. PCI: INTx, level-triggered, on the ISA IRQ
        // the firmware wrote into the Interrupt Line register (see `unikernel_virtio::Location`).
        let irq = match location {
            device::Location::Mmio { irq, .. } => Some((irq, false)),
            device::Location::Pci { irq, .. } => irq.map(|line| (u32::from(line), true)),
        };
        let routed = irq.is_some_and(|(line, level)| route_irq(line, level, stack::on_interrupt));
        stack::set_interrupt_driven(routed);

        let net = Net { _private: () };
        if config == Config::Dhcp {
            let start = platform.now();
            while stack::with(|stack| stack.address()).is_none() {
                if platform.now() - start > DHCP_TIMEOUT {
                    return Err(InitError::DhcpTimeout(DHCP_TIMEOUT));
                }
                net.wait(Some(Duration::from_millis(100)));
            }
        }
        let [a, b, c, d, e, f] = mac;
        log::info!(
            "net: {} on {location}, MAC {a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{f:02x}, {}",
            net.ipv4()
                .map(|cidr| alloc::format!("{cidr}"))
                .unwrap_or_default(),
            if routed {
                "interrupt driven"
            } else {
                "polling"
            },
        );
        Ok(net)
    }
}

impl Net {
    /// The interface's address, once it has one (at once, or after the DHCP lease).
    pub fn ipv4(&self) -> Option<Ipv4Cidr> {
        stack::with(|stack| stack.address())
    }

    /// The default gateway, if any.
    pub fn gateway(&self) -> Option<Ipv4Addr> {
        stack::with(|stack| stack.gateway())
    }

    /// The device's MAC address.
    pub fn mac(&self) -> [u8; 6] {
        stack::with(|stack| stack.nic.mac())
    }

    /// Counters of the device and the stack.
    pub fn stats(&self) -> NetStats {
        stack::with(|stack| NetStats {
            nic: stack.nic.stats(),
            interrupts: stack::interrupts(),
            sockets: stack.sockets.iter().count(),
            polls: stack.polls,
        })
    }

    /// The stack's clock: time since boot.
    pub fn now(&self) -> Duration {
        stack::with(|stack| stack.platform.now())
    }

    /// Processes what arrived and sends what is queued, without waiting. Returns whether a
    /// socket may have changed.
    pub fn poll(&self) -> bool {
        stack::with(|stack| stack.poll())
    }

    /// Waits until the network makes progress (a frame arrives, a timer of the stack runs
    /// out) or `timeout` passes. Returns whether a socket may have changed: the event loop
    /// of a server with non-blocking sockets calls this when none of them can go on.
    pub fn wait(&self, timeout: Option<Duration>) -> bool {
        let (changed, seen) = stack::with(|stack| (stack.poll(), stack::progress()));
        if changed {
            return true;
        }
        let deadline = timeout.map(|timeout| self.now() + timeout);
        stack::wait(deadline, seen);
        self.poll()
    }
}

/// The generator `init` was given, for the ports it picks later.
static RAND: spin::Once<Rand> = spin::Once::new();

/// The dynamic ports (RFC 6335): where local ports of unbound sockets come from.
const DYNAMIC_PORTS: core::ops::RangeInclusive<u16> = 49152..=u16::MAX;

/// A local port for a socket the app did not bind: drawn at random from the dynamic
/// ports for each socket (RFC 6056's first algorithm), so that an off-path host cannot
/// predict it from an earlier connection.
pub(crate) fn ephemeral_port() -> u16 {
    let rand = RAND.get().expect("`init` stored the generator");
    port_in_dynamic_range(rand.below(dynamic_port_count()))
}

fn dynamic_port_count() -> u64 {
    u64::from(DYNAMIC_PORTS.end() - DYNAMIC_PORTS.start()) + 1
}

fn port_in_dynamic_range(offset: u64) -> u16 {
    DYNAMIC_PORTS.start() + offset as u16
}

/// Runs `attempt` on the stack until it returns `Some`: first as things are, then after a
/// poll, then after each wait for the device. `WouldBlock` at once in non-blocking mode,
/// after a poll only if one could help (see [`stack::Stack::poll_may_help`]): an event
/// loop that asks many idle connections in turn does not walk every socket for each.
/// `TimedOut` when `timeout` passes.
pub(crate) fn block<T>(
    nonblocking: bool,
    timeout: Option<Duration>,
    mut attempt: impl FnMut(&mut stack::Stack) -> Option<Result<T, Error>>,
) -> Result<T, Error> {
    let mut deadline = None;
    loop {
        let (result, now, seen) = stack::with(|stack| {
            if let Some(result) = attempt(stack) {
                return (Some(result), None, 0);
            }
            if nonblocking && !stack.poll_may_help() {
                return (None, None, 0);
            }
            stack.poll();
            (
                attempt(stack),
                Some(stack.platform.now()),
                stack::progress(),
            )
        });
        if let Some(result) = result {
            return result;
        }
        if nonblocking {
            return Err(Error::WouldBlock);
        }
        let now = now.expect("set when no result");
        if let Some(timeout) = timeout {
            let deadline = *deadline.get_or_insert(now + timeout);
            if now >= deadline {
                return Err(Error::TimedOut);
            }
        }
        stack::wait(deadline, seen);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_read_like_std() {
        extern crate std;
        use std::string::ToString;
        assert_eq!(
            Error::ConnectionReset.to_string(),
            "connection reset by peer"
        );
        assert!(InitError::NoDevice.to_string().contains("virtio-net"));
    }

    /// A platform whose time stands still.
    struct Stopped;

    impl Platform for Stopped {
        fn now(&self) -> Duration {
            Duration::ZERO
        }

        fn wait(&self, _: Option<Duration>) {}
    }

    #[test]
    fn init_on_the_host_finds_no_device() {
        let config = Config::Static {
            cidr: Ipv4Cidr::new(Ipv4Address::new(10, 0, 2, 15), 24),
            gateway: Some(Ipv4Address::new(10, 0, 2, 2)),
        };
        let mut routed = false;
        let seed =
            "unikernel.seed=0101010101010101010101010101010101010101010101010101010101010101";
        let rand = unikernel_rand::init(seed).expect("seeded by the command line");
        let result = init(
            config,
            &Stopped,
            rand,
            |_, _, _| {
                routed = true;
                true
            },
            "",
        );
        assert_eq!(result.unwrap_err(), InitError::NoDevice);
        assert!(!routed, "no device, no interrupt to route");

        // Ports of unbound sockets: in the dynamic range, and not one after the other.
        extern crate std;
        let ports: std::vec::Vec<u16> = (0..200).map(|_| ephemeral_port()).collect();
        assert!(ports.iter().all(|port| DYNAMIC_PORTS.contains(port)));
        let sequential = ports
            .windows(2)
            .filter(|w| w[1] == w[0].wrapping_add(1))
            .count();
        assert!(sequential < 5, "{ports:?}");
        let mut distinct = ports.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert!(distinct.len() > 190, "{} distinct of 200", distinct.len());
    }

    #[test]
    fn the_dynamic_range_is_covered_exactly() {
        assert_eq!(dynamic_port_count(), 16384);
        assert_eq!(port_in_dynamic_range(0), 49152);
        assert_eq!(port_in_dynamic_range(dynamic_port_count() - 1), u16::MAX);
    }
}
