//! virtio devices on the virtio-mmio transport (version 2, the modern one), the way QEMU's
//! microvm and Firecracker give them: 512-byte register windows from 0xfeb00000 on GSIs 5,
//! 6, ..., each announced on the kernel command line as
//! `virtio_mmio.device=512@0xfeb00000:5`, which the guest's discovery reads.
//!
//! The split of work, as in Firecracker:
//! - the vCPU thread answers register accesses (an MMIO exit, rare after the driver set
//!   the device up, and the interrupt acknowledgement);
//! - queue notifications never reach it: a write of the queue's index to QueueNotify
//!   signals an ioeventfd inside KVM, which wakes the device thread ([`worker`], epoll);
//! - the device thread moves the buffers and raises the interrupt through an irqfd, which
//!   KVM's in-kernel I/O APIC delivers (images that start `irq`; others poll).
//!
//! Queues are rust-vmm's `virtio-queue`; each descriptor chain is read through
//! [`chain::read_chain`], which checks every guest-controlled value first. A guest that
//! breaks the rules (a malformed chain, an available index that runs ahead of the ring, a
//! queue size or ring address that does not fit, features the device did not offer) gets
//! the device marked DEVICE_NEEDS_RESET with a configuration-change interrupt, and the
//! monitor reports why ([`Transport::failure`]); the device then ignores its queues until
//! the driver resets it.

pub mod blk;
pub mod chain;
pub mod net;
pub mod worker;

use std::os::fd::RawFd;

use serde::{Deserialize, Serialize};
use virtio_bindings::virtio_config::{
    VIRTIO_CONFIG_S_ACKNOWLEDGE, VIRTIO_CONFIG_S_DRIVER, VIRTIO_CONFIG_S_DRIVER_OK,
    VIRTIO_CONFIG_S_FAILED, VIRTIO_CONFIG_S_FEATURES_OK, VIRTIO_CONFIG_S_NEEDS_RESET,
    VIRTIO_F_VERSION_1,
};
use virtio_bindings::virtio_mmio::*;
use virtio_queue::{Queue, QueueOwnedT, QueueState, QueueT};
use vm_memory::GuestMemoryMmap;
use vmm_sys_util::eventfd::EventFd;

/// Where the first transport's registers are (QEMU microvm's windows).
pub const MMIO_BASE: u64 = 0xfeb0_0000;
/// The size of one transport's register window.
pub const MMIO_SIZE: u64 = 0x200;
/// The GSI of the first transport (microvm without ACPI: 5, 6, ...).
pub const FIRST_GSI: u32 = 5;
/// How many transports fit (GSIs 5 to 12, as microvm).
pub const MAX_DEVICES: usize = 8;

/// "virt", the magic value.
const MAGIC: u32 = 0x7472_6976;
/// The modern virtio-mmio transport.
const VERSION: u32 = 2;
/// The vendor ID the monitor reports ("UKVM" is not registered; any value is allowed).
const VENDOR: u32 = 0x4d56_4b55;
/// Where the device-specific configuration starts.
const CONFIG_SPACE: u64 = 0x100;
/// Interrupt status bits.
pub const INTERRUPT_USED_BUFFER: u32 = VIRTIO_MMIO_INT_VRING;
pub const INTERRUPT_CONFIG: u32 = VIRTIO_MMIO_INT_CONFIG;

/// The window and GSI of transport `index`.
pub fn window(index: usize) -> (u64, u32) {
    (
        MMIO_BASE + index as u64 * MMIO_SIZE,
        FIRST_GSI + index as u32,
    )
}

/// The command line parameter that announces transport `index`.
pub fn cmdline_entry(index: usize) -> String {
    let (base, gsi) = window(index);
    format!("virtio_mmio.device={MMIO_SIZE}@{base:#x}:{gsi}")
}

/// The MAC address of the network device (QEMU's default).
pub const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];

/// One device of a VM: its window, its transport, the ioeventfds of its queues.
#[derive(Debug)]
pub struct Slot {
    pub base: u64,
    pub transport: std::sync::Arc<std::sync::Mutex<Transport>>,
    pub notifiers: Vec<EventFd>,
}

impl Slot {
    /// The device thread's view of this slot.
    pub fn attached(&self) -> std::io::Result<worker::Attached> {
        Ok(worker::Attached {
            transport: std::sync::Arc::clone(&self.transport),
            notifiers: self
                .notifiers
                .iter()
                .map(EventFd::try_clone)
                .collect::<std::io::Result<_>>()?,
        })
    }
}

/// Creates the devices `config` asks for on `vm` (whose memory is `mem`), each on the next
/// window, with its queue notifications on ioeventfds and, when the VM has KVM's interrupt
/// controllers, its interrupt on an irqfd. Returns them and the command line parameters
/// that announce them.
pub fn attach(
    vm: &kvm_ioctls::VmFd,
    mem: &GuestMemoryMmap,
    config: &crate::VmConfig,
    interrupts: bool,
) -> crate::Result<(Vec<Slot>, Vec<String>)> {
    use crate::Error;
    let mut devices: Vec<Box<dyn VirtioDevice>> = Vec::new();
    if let Some(choice) = &config.net {
        let backend = match choice {
            crate::NetBackend::Tap { ifname, netns } => net::open_tap(ifname, netns.as_deref())
                .and_then(net::Backend::tap)
                .map_err(|err| Error::Device(format!("the tap device {ifname}: {err}")))?,
            crate::NetBackend::Stream { socket } => std::os::unix::net::UnixStream::connect(socket)
                .and_then(net::Backend::stream)
                .map_err(|err| {
                    Error::Device(format!(
                        "the network back end's socket {}: {err}",
                        socket.display()
                    ))
                })?,
        };
        devices.push(Box::new(net::Net::new(MAC, backend)));
    }
    for disk in &config.disks {
        let blk = blk::Blk::open_with(disk, false, config.disk_direct)
            .map_err(|err| Error::Device(format!("disk {}: {err}", disk.display())))?;
        devices.push(Box::new(blk));
    }
    if devices.len() > MAX_DEVICES {
        return Err(Error::Device(format!(
            "{} devices asked for; the monitor has {MAX_DEVICES} virtio-mmio windows",
            devices.len()
        )));
    }
    if !devices.is_empty() && crate::image::mem_size(mem) > MMIO_BASE {
        return Err(Error::Device(format!(
            "guest memory reaches the devices' windows at {MMIO_BASE:#x}: give a VM with devices at most {} MiB",
            MMIO_BASE >> 20
        )));
    }
    let failed =
        |what: &'static str| move |err: std::io::Error| Error::Device(format!("{what}: {err}"));
    let mut slots = Vec::new();
    let mut cmdline = Vec::new();
    for (index, device) in devices.into_iter().enumerate() {
        let (base, gsi) = window(index);
        let interrupt = if interrupts {
            let irq =
                EventFd::new(vmm_sys_util::eventfd::EFD_NONBLOCK).map_err(failed("an eventfd"))?;
            vm.register_irqfd(&irq, gsi).map_err(|source| Error::Kvm {
                ioctl: "KVM_IRQFD",
                source,
            })?;
            Some(irq)
        } else {
            None
        };
        let transport =
            Transport::new(device, mem.clone(), interrupt).map_err(|err| Error::Device(err.0))?;
        let mut notifiers = Vec::new();
        for queue in 0..transport.queue_count() {
            let notifier =
                EventFd::new(vmm_sys_util::eventfd::EFD_NONBLOCK).map_err(failed("an eventfd"))?;
            vm.register_ioevent(
                &notifier,
                &kvm_ioctls::IoEventAddress::Mmio(base + u64::from(VIRTIO_MMIO_QUEUE_NOTIFY)),
                queue as u32,
            )
            .map_err(|source| Error::Kvm {
                ioctl: "KVM_IOEVENTFD",
                source,
            })?;
            notifiers.push(notifier);
        }
        cmdline.push(cmdline_entry(index));
        slots.push(Slot {
            base,
            transport: std::sync::Arc::new(std::sync::Mutex::new(transport)),
            notifiers,
        });
    }
    Ok((slots, cmdline))
}

/// Why a device stopped: the guest broke a rule, or its back end failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceError(pub String);

impl<T: std::fmt::Display> From<T> for DeviceError {
    fn from(value: T) -> Self {
        DeviceError(value.to_string())
    }
}

/// What woke a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The driver notified this queue.
    Queue(usize),
    /// The back end has something (a frame arrived).
    Backend,
}

/// A device type's part: its features, configuration space and queue work. The transport
/// does the rest.
pub trait VirtioDevice: Send {
    /// The virtio device ID (1 network, 2 block).
    fn device_type(&self) -> u32;
    /// What the device is, for reports ("virtio-net", ...).
    fn name(&self) -> &'static str;
    /// The features offered (VIRTIO_F_VERSION_1 is added by the transport).
    fn features(&self) -> u64;
    /// The largest size of each queue.
    fn queue_max_sizes(&self) -> &[u16];
    /// Reads configuration space at `offset`; bytes past its end read as zero.
    fn read_config(&self, offset: u64, data: &mut [u8]);
    /// A descriptor the device thread waits on besides the queues (a socket, a tap).
    fn backend_fd(&self) -> Option<RawFd> {
        None
    }
    /// Does the work `event` calls for on the (ready, validated) `queues`; returns whether
    /// a used buffer was added to a queue that wants to be told.
    fn process(
        &mut self,
        queues: &mut [Queue],
        mem: &GuestMemoryMmap,
        event: Event,
    ) -> Result<bool, DeviceError>;
    /// Forgets per-driver state (the driver reset the device).
    fn reset(&mut self) {}
}

/// The state of a transport and its queues, without the back end: what a snapshot keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransportState {
    pub device_features_select: u32,
    pub driver_features_select: u32,
    pub driver_features: u64,
    pub queue_select: u32,
    pub status: u32,
    pub interrupt_status: u32,
    pub config_generation: u32,
    pub queues: Vec<QueueSnapshot>,
    pub failure: Option<String>,
}

/// `virtio_queue::QueueState`, serializable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueSnapshot {
    pub max_size: u16,
    pub next_avail: u16,
    pub next_used: u16,
    pub event_idx_enabled: bool,
    pub size: u16,
    pub ready: bool,
    pub desc_table: u64,
    pub avail_ring: u64,
    pub used_ring: u64,
}

impl From<QueueState> for QueueSnapshot {
    fn from(s: QueueState) -> Self {
        QueueSnapshot {
            max_size: s.max_size,
            next_avail: s.next_avail,
            next_used: s.next_used,
            event_idx_enabled: s.event_idx_enabled,
            size: s.size,
            ready: s.ready,
            desc_table: s.desc_table,
            avail_ring: s.avail_ring,
            used_ring: s.used_ring,
        }
    }
}

impl From<QueueSnapshot> for QueueState {
    fn from(s: QueueSnapshot) -> Self {
        QueueState {
            max_size: s.max_size,
            next_avail: s.next_avail,
            next_used: s.next_used,
            event_idx_enabled: s.event_idx_enabled,
            size: s.size,
            ready: s.ready,
            desc_table: s.desc_table,
            avail_ring: s.avail_ring,
            used_ring: s.used_ring,
        }
    }
}

/// One virtio-mmio transport: the registers, the queues, the device behind them.
pub struct Transport {
    device: Box<dyn VirtioDevice>,
    mem: GuestMemoryMmap,
    queues: Vec<Queue>,
    device_features_select: u32,
    driver_features_select: u32,
    driver_features: u64,
    queue_select: u32,
    status: u32,
    interrupt_status: u32,
    config_generation: u32,
    /// The irqfd of the transport's GSI (none without KVM's interrupt controllers).
    interrupt: Option<EventFd>,
    failure: Option<String>,
    /// Interrupts raised, for the statistics.
    pub interrupts: u64,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("device", &self.device.name())
            .field("status", &self.status)
            .field("failure", &self.failure)
            .finish_non_exhaustive()
    }
}

/// What a register write asks of the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    None,
    /// A QueueNotify that did not go through the ioeventfd (another width or value).
    Notify(usize),
}

impl Transport {
    /// A transport for `device` on `mem`, raising interrupts through `interrupt`.
    pub fn new(
        device: Box<dyn VirtioDevice>,
        mem: GuestMemoryMmap,
        interrupt: Option<EventFd>,
    ) -> Result<Self, DeviceError> {
        let queues = device
            .queue_max_sizes()
            .iter()
            .map(|&max| Queue::new(max))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| DeviceError(format!("creating a queue: {err:?}")))?;
        Ok(Transport {
            device,
            mem,
            queues,
            device_features_select: 0,
            driver_features_select: 0,
            driver_features: 0,
            queue_select: 0,
            status: 0,
            interrupt_status: 0,
            config_generation: 0,
            interrupt,
            failure: None,
            interrupts: 0,
        })
    }

    /// What the device is.
    pub fn name(&self) -> &'static str {
        self.device.name()
    }

    /// Why the device was marked failed, if it was.
    pub fn failure(&self) -> Option<&str> {
        self.failure.as_deref()
    }

    /// The back end's descriptor, for the device thread.
    pub fn backend_fd(&self) -> Option<RawFd> {
        self.device.backend_fd()
    }

    /// How many queues the device has.
    pub fn queue_count(&self) -> usize {
        self.queues.len()
    }

    fn offered(&self) -> u64 {
        self.device.features() | (1 << VIRTIO_F_VERSION_1)
    }

    fn active(&self) -> bool {
        self.status & VIRTIO_CONFIG_S_DRIVER_OK != 0 && self.failure.is_none()
    }

    fn selected(&mut self) -> Option<&mut Queue> {
        self.queues.get_mut(self.queue_select as usize)
    }

    /// Marks the device failed (DEVICE_NEEDS_RESET) and tells the driver. The first reason
    /// is kept.
    pub fn fail(&mut self, reason: impl Into<String>) {
        if self.failure.is_none() {
            self.failure = Some(reason.into());
        }
        self.status |= VIRTIO_CONFIG_S_NEEDS_RESET;
        self.interrupt_status |= INTERRUPT_CONFIG;
        self.config_generation = self.config_generation.wrapping_add(1);
        self.raise();
    }

    fn raise(&mut self) {
        if let Some(interrupt) = &self.interrupt {
            let _ = interrupt.write(1);
            self.interrupts += 1;
        }
    }

    /// A register read of `data.len()` bytes at `offset` in the window.
    pub fn read(&mut self, offset: u64, data: &mut [u8]) {
        if offset >= CONFIG_SPACE {
            self.device.read_config(offset - CONFIG_SPACE, data);
            return;
        }
        // Registers are 32-bit; other widths and offsets read as zero.
        if data.len() != 4 || !offset.is_multiple_of(4) {
            data.fill(0);
            return;
        }
        let value = match offset as u32 {
            VIRTIO_MMIO_MAGIC_VALUE => MAGIC,
            VIRTIO_MMIO_VERSION => VERSION,
            VIRTIO_MMIO_DEVICE_ID => self.device.device_type(),
            VIRTIO_MMIO_VENDOR_ID => VENDOR,
            VIRTIO_MMIO_DEVICE_FEATURES => match self.device_features_select {
                0 => self.offered() as u32,
                1 => (self.offered() >> 32) as u32,
                _ => 0,
            },
            VIRTIO_MMIO_QUEUE_NUM_MAX => self.selected().map_or(0, |q| u32::from(q.max_size())),
            VIRTIO_MMIO_QUEUE_READY => self.selected().map_or(0, |q| u32::from(q.ready())),
            VIRTIO_MMIO_INTERRUPT_STATUS => self.interrupt_status,
            VIRTIO_MMIO_STATUS => self.status,
            VIRTIO_MMIO_CONFIG_GENERATION => self.config_generation,
            _ => 0,
        };
        data.copy_from_slice(&value.to_le_bytes());
    }

    /// A register write at `offset` in the window.
    pub fn write(&mut self, offset: u64, data: &[u8]) -> WriteOutcome {
        if offset >= CONFIG_SPACE {
            // Neither device has writable configuration.
            return WriteOutcome::None;
        }
        let Ok(bytes) = <[u8; 4]>::try_from(data) else {
            return WriteOutcome::None;
        };
        let value = u32::from_le_bytes(bytes);
        let configuring = self.status & VIRTIO_CONFIG_S_DRIVER_OK == 0;
        match offset as u32 {
            VIRTIO_MMIO_DEVICE_FEATURES_SEL => self.device_features_select = value,
            VIRTIO_MMIO_DRIVER_FEATURES_SEL => self.driver_features_select = value,
            VIRTIO_MMIO_DRIVER_FEATURES if self.status & VIRTIO_CONFIG_S_FEATURES_OK == 0 => {
                match self.driver_features_select {
                    0 => {
                        self.driver_features = (self.driver_features >> 32 << 32) | u64::from(value)
                    }
                    1 => {
                        self.driver_features =
                            (self.driver_features & 0xffff_ffff) | (u64::from(value) << 32)
                    }
                    _ => {}
                }
            }
            VIRTIO_MMIO_QUEUE_SEL => self.queue_select = value,
            VIRTIO_MMIO_QUEUE_NUM if configuring => {
                let Ok(size) = u16::try_from(value) else {
                    self.fail(format!("the driver set a queue size of {value}"));
                    return WriteOutcome::None;
                };
                let select = self.queue_select;
                if let Some(queue) = self.selected() {
                    let max = queue.max_size();
                    if queue.try_set_size(size).is_err() {
                        self.fail(format!(
                            "the driver set queue {select} to {size} entries (a power of two up to {max} is allowed)"
                        ));
                    }
                }
            }
            VIRTIO_MMIO_QUEUE_READY if configuring => {
                if let Some(queue) = self.selected() {
                    queue.set_ready(value == 1);
                }
            }
            // A driver letting go of a queue (virtio-drivers' and Linux's teardown, at any
            // time) writes 0 and waits to read 0 back: ignored, it would wait forever.
            // The queue then stays stopped (only a reset makes it usable again: its
            // addresses were checked when it was set up, not since).
            VIRTIO_MMIO_QUEUE_READY if value == 0 => {
                if let Some(queue) = self.selected() {
                    queue.set_ready(false);
                }
            }
            VIRTIO_MMIO_QUEUE_DESC_LOW if configuring => {
                if let Some(q) = self.selected() {
                    q.set_desc_table_address(Some(value), None)
                }
            }
            VIRTIO_MMIO_QUEUE_DESC_HIGH if configuring => {
                if let Some(q) = self.selected() {
                    q.set_desc_table_address(None, Some(value))
                }
            }
            VIRTIO_MMIO_QUEUE_AVAIL_LOW if configuring => {
                if let Some(q) = self.selected() {
                    q.set_avail_ring_address(Some(value), None)
                }
            }
            VIRTIO_MMIO_QUEUE_AVAIL_HIGH if configuring => {
                if let Some(q) = self.selected() {
                    q.set_avail_ring_address(None, Some(value))
                }
            }
            VIRTIO_MMIO_QUEUE_USED_LOW if configuring => {
                if let Some(q) = self.selected() {
                    q.set_used_ring_address(Some(value), None)
                }
            }
            VIRTIO_MMIO_QUEUE_USED_HIGH if configuring => {
                if let Some(q) = self.selected() {
                    q.set_used_ring_address(None, Some(value))
                }
            }
            VIRTIO_MMIO_QUEUE_NOTIFY => {
                if (value as usize) < self.queues.len() {
                    return WriteOutcome::Notify(value as usize);
                }
                self.fail(format!(
                    "the driver notified queue {value}, which does not exist"
                ));
            }
            VIRTIO_MMIO_INTERRUPT_ACK => self.interrupt_status &= !value,
            VIRTIO_MMIO_STATUS => self.set_status(value),
            _ => {}
        }
        WriteOutcome::None
    }

    fn set_status(&mut self, value: u32) {
        if value == 0 {
            self.reset();
            return;
        }
        let added = value & !self.status;
        if value & self.status != self.status {
            // Only a reset (0) may clear bits.
            self.fail(format!(
                "the driver cleared status bits ({:#x} to {value:#x}) without a reset",
                self.status
            ));
            return;
        }
        if added & VIRTIO_CONFIG_S_FEATURES_OK != 0 {
            let unoffered = self.driver_features & !self.offered();
            if unoffered != 0 {
                // The specification's answer: FEATURES_OK does not stick.
                self.status = value & !VIRTIO_CONFIG_S_FEATURES_OK;
                self.fail(format!(
                    "the driver accepted features the device did not offer ({unoffered:#x})"
                ));
                return;
            }
            if self.driver_features & (1 << VIRTIO_F_VERSION_1) == 0 {
                self.status = value & !VIRTIO_CONFIG_S_FEATURES_OK;
                self.fail("the driver did not accept VIRTIO_F_VERSION_1 (this is a modern device)");
                return;
            }
        }
        if added & VIRTIO_CONFIG_S_DRIVER_OK != 0 {
            let needed =
                VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK;
            if value & needed != needed {
                self.status = value;
                self.fail(format!(
                    "the driver set DRIVER_OK with status {value:#x} (ACKNOWLEDGE, DRIVER and FEATURES_OK first)"
                ));
                return;
            }
            let event_idx = self.driver_features
                & (1 << virtio_bindings::virtio_ring::VIRTIO_RING_F_EVENT_IDX)
                != 0;
            for (index, queue) in self.queues.iter_mut().enumerate() {
                queue.set_event_idx(event_idx);
                if queue.ready() && !queue.is_valid(&self.mem) {
                    let state = queue.state();
                    self.status = value;
                    self.fail(format!(
                        "queue {index} does not fit in guest memory or is misaligned ({} entries, descriptors at {:#x}, available ring at {:#x}, used ring at {:#x})",
                        state.size, state.desc_table, state.avail_ring, state.used_ring
                    ));
                    return;
                }
            }
        }
        if value & VIRTIO_CONFIG_S_FAILED != 0 {
            // The driver gave up: nothing more to do, but no rule was broken.
            self.status = value;
            return;
        }
        self.status = value;
    }

    fn reset(&mut self) {
        for queue in &mut self.queues {
            queue.reset();
        }
        self.device.reset();
        self.device_features_select = 0;
        self.driver_features_select = 0;
        self.driver_features = 0;
        self.queue_select = 0;
        self.status = 0;
        self.interrupt_status = 0;
        self.failure = None;
    }

    /// Runs the device for `event`; raises the interrupt when it asks, marks the device
    /// failed when it reports a broken rule. Nothing happens before DRIVER_OK or after a
    /// failure.
    pub fn process(&mut self, event: Event) {
        if !self.active() {
            return;
        }
        if let Event::Queue(index) = event
            && !self.queues.get(index).is_some_and(|q| q.ready())
        {
            return;
        }
        match self.device.process(&mut self.queues, &self.mem, event) {
            Ok(true) => {
                self.interrupt_status |= INTERRUPT_USED_BUFFER;
                self.raise();
            }
            Ok(false) => {}
            Err(DeviceError(reason)) => {
                let name = self.device.name();
                self.fail(format!("{name}: {reason}"));
            }
        }
    }

    /// The transport's state (queues included), for a snapshot.
    pub fn save(&self) -> TransportState {
        TransportState {
            device_features_select: self.device_features_select,
            driver_features_select: self.driver_features_select,
            driver_features: self.driver_features,
            queue_select: self.queue_select,
            status: self.status,
            interrupt_status: self.interrupt_status,
            config_generation: self.config_generation,
            queues: self.queues.iter().map(|q| q.state().into()).collect(),
            failure: self.failure.clone(),
        }
    }

    /// Puts back a state [`Transport::save`] made, checking it as it would a guest's
    /// writes (a snapshot is as untrusted as the guest that made it).
    pub fn restore(&mut self, state: &TransportState) -> Result<(), DeviceError> {
        if state.queues.len() != self.queues.len() {
            return Err(DeviceError(format!(
                "the snapshot has {} queues, the device {}",
                state.queues.len(),
                self.queues.len()
            )));
        }
        let mut queues = Vec::with_capacity(state.queues.len());
        for (index, (snapshot, queue)) in state.queues.iter().zip(&self.queues).enumerate() {
            if snapshot.max_size != queue.max_size() {
                return Err(DeviceError(format!(
                    "queue {index}: the snapshot's largest size is {}, the device's {}",
                    snapshot.max_size,
                    queue.max_size()
                )));
            }
            let restored = Queue::try_from(QueueState::from(*snapshot))
                .map_err(|err| DeviceError(format!("queue {index}: {err:?}")))?;
            if restored.ready() && !restored.is_valid(&self.mem) {
                return Err(DeviceError(format!(
                    "queue {index} does not fit in guest memory"
                )));
            }
            queues.push(restored);
        }
        self.queues = queues;
        self.device_features_select = state.device_features_select;
        self.driver_features_select = state.driver_features_select;
        self.driver_features = state.driver_features;
        self.queue_select = state.queue_select;
        self.status = state.status;
        self.interrupt_status = state.interrupt_status;
        self.config_generation = state.config_generation;
        self.failure = state.failure.clone();
        Ok(())
    }
}

/// The head of the next available chain, if any; an available index that runs more than
/// a ring ahead is the guest's error.
pub(crate) fn pop_head(
    queue: &mut Queue,
    mem: &GuestMemoryMmap,
) -> Result<Option<u16>, DeviceError> {
    let mut available = queue
        .iter(mem)
        .map_err(|err| DeviceError(format!("the available ring: {err:?}")))?;
    Ok(available.next().map(|chain| chain.head_index()))
}

/// Copies `config[offset..]` into `data`; bytes past the end read as zero.
pub(crate) fn read_bytes(config: &[u8], offset: u64, data: &mut [u8]) {
    data.fill(0);
    let Ok(offset) = usize::try_from(offset) else {
        return;
    };
    if let Some(rest) = config.get(offset..) {
        let n = rest.len().min(data.len());
        data[..n].copy_from_slice(&rest[..n]);
    }
}

#[cfg(test)]
mod tests;
