//! The transport and the devices driven as a guest would: registers written through
//! [`Transport::write`], rings built by hand in guest memory.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use virtio_bindings::virtio_ring::{VRING_DESC_F_NEXT, VRING_DESC_F_WRITE};
use virtio_queue::desc::split::Descriptor;
use vm_memory::{Bytes, GuestAddress};

use super::*;
use virtio_bindings::virtio_blk::*;

const MEMORY: usize = 0x40_0000;
/// The rings of queue `q` start at RINGS + q * RING_STRIDE; buffers from BUFFERS.
const RINGS: u64 = 0x1_0000;
const RING_STRIDE: u64 = 0x1_0000;
const BUFFERS: u64 = 0x10_0000;
const SIZE: u16 = 16;
const FEATURES_OK: u32 =
    VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK;
const NEXT: u16 = VRING_DESC_F_NEXT as u16;
const WRITE: u16 = VRING_DESC_F_WRITE as u16;

fn memory() -> GuestMemoryMmap {
    GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), MEMORY)]).unwrap()
}

fn reg(transport: &mut Transport, offset: u32, value: u32) {
    transport.write(u64::from(offset), &value.to_le_bytes());
}

fn read(transport: &mut Transport, offset: u32) -> u32 {
    let mut data = [0u8; 4];
    transport.read(u64::from(offset), &mut data);
    u32::from_le_bytes(data)
}

fn desc_table(q: u16) -> u64 {
    RINGS + u64::from(q) * RING_STRIDE
}
fn avail(q: u16) -> u64 {
    desc_table(q) + 16 * u64::from(SIZE)
}
fn used(q: u16) -> u64 {
    desc_table(q) + 0x1000
}

/// Sets the device up as virtio-drivers does: features (all offered), queues, DRIVER_OK.
fn drive_up(transport: &mut Transport, queues: u16) {
    reg(transport, VIRTIO_MMIO_STATUS, 0);
    reg(
        transport,
        VIRTIO_MMIO_STATUS,
        VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER,
    );
    for select in 0..2 {
        reg(transport, VIRTIO_MMIO_DEVICE_FEATURES_SEL, select);
        let offered = read(transport, VIRTIO_MMIO_DEVICE_FEATURES);
        reg(transport, VIRTIO_MMIO_DRIVER_FEATURES_SEL, select);
        reg(transport, VIRTIO_MMIO_DRIVER_FEATURES, offered);
    }
    reg(transport, VIRTIO_MMIO_STATUS, FEATURES_OK);
    assert_eq!(read(transport, VIRTIO_MMIO_STATUS), FEATURES_OK);
    for q in 0..queues {
        reg(transport, VIRTIO_MMIO_QUEUE_SEL, u32::from(q));
        assert!(read(transport, VIRTIO_MMIO_QUEUE_NUM_MAX) >= u32::from(SIZE));
        reg(transport, VIRTIO_MMIO_QUEUE_NUM, u32::from(SIZE));
        reg(transport, VIRTIO_MMIO_QUEUE_DESC_LOW, desc_table(q) as u32);
        reg(transport, VIRTIO_MMIO_QUEUE_DESC_HIGH, 0);
        reg(transport, VIRTIO_MMIO_QUEUE_AVAIL_LOW, avail(q) as u32);
        reg(transport, VIRTIO_MMIO_QUEUE_AVAIL_HIGH, 0);
        reg(transport, VIRTIO_MMIO_QUEUE_USED_LOW, used(q) as u32);
        reg(transport, VIRTIO_MMIO_QUEUE_USED_HIGH, 0);
        reg(transport, VIRTIO_MMIO_QUEUE_READY, 1);
    }
    reg(
        transport,
        VIRTIO_MMIO_STATUS,
        FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK,
    );
}

/// Puts `descs` at `index..` of queue `q`'s table and offers the chain at `index`.
fn offer(mem: &GuestMemoryMmap, q: u16, index: u16, descs: &[Descriptor]) {
    for (i, desc) in descs.iter().enumerate() {
        mem.write_obj(
            *desc,
            GuestAddress(desc_table(q) + 16 * u64::from(index + i as u16)),
        )
        .unwrap();
    }
    let idx: u16 = mem.read_obj(GuestAddress(avail(q) + 2)).unwrap();
    mem.write_obj(
        index,
        GuestAddress(avail(q) + 4 + 2 * u64::from(idx % SIZE)),
    )
    .unwrap();
    mem.write_obj(idx.wrapping_add(1), GuestAddress(avail(q) + 2))
        .unwrap();
}

/// The used ring's index and its entries so far (id, len).
fn used_entries(mem: &GuestMemoryMmap, q: u16) -> Vec<(u32, u32)> {
    let idx: u16 = mem.read_obj(GuestAddress(used(q) + 2)).unwrap();
    (0..idx)
        .map(|i| {
            let at = used(q) + 4 + 8 * u64::from(i % SIZE);
            (
                mem.read_obj(GuestAddress(at)).unwrap(),
                mem.read_obj(GuestAddress(at + 4)).unwrap(),
            )
        })
        .collect()
}

fn net_pair(mem: &GuestMemoryMmap, interrupt: Option<EventFd>) -> (Transport, UnixStream) {
    let (ours, theirs) = UnixStream::pair().unwrap();
    theirs
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let device = net::Net::new(MAC, net::Backend::stream(ours).unwrap());
    (
        Transport::new(Box::new(device), mem.clone(), interrupt).unwrap(),
        theirs,
    )
}

fn failed(transport: &mut Transport) -> bool {
    read(transport, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET != 0
        && read(transport, VIRTIO_MMIO_INTERRUPT_STATUS) & INTERRUPT_CONFIG != 0
}

#[test]
fn the_registers_say_virtio_mmio_2_and_the_config_has_the_mac() {
    let mem = memory();
    let (mut transport, _peer) = net_pair(&mem, None);
    assert_eq!(read(&mut transport, VIRTIO_MMIO_MAGIC_VALUE), 0x7472_6976);
    assert_eq!(read(&mut transport, VIRTIO_MMIO_VERSION), 2);
    assert_eq!(read(&mut transport, VIRTIO_MMIO_DEVICE_ID), 1);
    reg(&mut transport, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
    assert_eq!(
        read(&mut transport, VIRTIO_MMIO_DEVICE_FEATURES),
        1,
        "VIRTIO_F_VERSION_1 (bit 32)"
    );
    let mut mac = [0u8; 6];
    transport.read(0x100, &mut mac);
    assert_eq!(mac, MAC);
    let mut status = [0u8; 2];
    transport.read(0x106, &mut status);
    assert_eq!(status, [1, 0], "link up");
    let mut past = [0xffu8; 4];
    transport.read(0x1fc, &mut past);
    assert_eq!(past, [0; 4]);
    assert_eq!(cmdline_entry(1), "virtio_mmio.device=512@0xfeb00200:6");
}

#[test]
fn frames_go_out_with_a_length_prefix_and_come_in_with_a_header() {
    let mem = memory();
    let irq = EventFd::new(vmm_sys_util::eventfd::EFD_NONBLOCK).unwrap();
    let (mut transport, mut peer) = net_pair(&mem, Some(irq.try_clone().unwrap()));
    drive_up(&mut transport, 2);
    assert_eq!(transport.failure(), None);

    // Transmit: a 12-byte header and a frame, in two descriptors.
    mem.write_slice(&[0u8; 12], GuestAddress(BUFFERS)).unwrap();
    mem.write_slice(b"hello, wire", GuestAddress(BUFFERS + 0x100))
        .unwrap();
    offer(
        &mem,
        1,
        0,
        &[
            Descriptor::new(BUFFERS, 12, NEXT, 1),
            Descriptor::new(BUFFERS + 0x100, 11, 0, 0),
        ],
    );
    transport.process(Event::Queue(1));
    let mut out = [0u8; 15];
    peer.read_exact(&mut out).unwrap();
    assert_eq!(&out[..4], &11u32.to_be_bytes());
    assert_eq!(&out[4..], b"hello, wire");
    assert_eq!(used_entries(&mem, 1), [(0, 0)]);
    assert_eq!(irq.read().unwrap(), 1, "one interrupt");

    // Receive: the guest offers a buffer, a frame arrives.
    offer(
        &mem,
        0,
        0,
        &[Descriptor::new(BUFFERS + 0x1000, 2048, WRITE, 0)],
    );
    peer.write_all(&[0, 0, 0, 5]).unwrap();
    peer.write_all(b"howdy").unwrap();
    transport.process(Event::Backend);
    assert_eq!(used_entries(&mem, 0), [(0, 17)]);
    let mut got = [0u8; 17];
    mem.read_slice(&mut got, GuestAddress(BUFFERS + 0x1000))
        .unwrap();
    assert_eq!(got[10], 1, "num_buffers");
    assert_eq!(&got[12..], b"howdy");
    assert_eq!(transport.failure(), None);
}

#[test]
fn a_looping_transmit_chain_fails_the_device_with_a_report() {
    let mem = memory();
    let (mut transport, _peer) = net_pair(&mem, None);
    drive_up(&mut transport, 2);
    offer(
        &mem,
        1,
        0,
        &[
            Descriptor::new(BUFFERS, 12, NEXT, 1),
            Descriptor::new(BUFFERS, 12, NEXT, 0),
        ],
    );
    transport.process(Event::Queue(1));
    assert!(failed(&mut transport));
    let why = transport.failure().unwrap();
    assert!(why.contains("virtio-net") && why.contains("loop"), "{why}");
    // Failed, the device ignores its queues until the driver resets it.
    offer(&mem, 1, 2, &[Descriptor::new(BUFFERS, 12, 0, 0)]);
    transport.process(Event::Queue(1));
    assert!(used_entries(&mem, 1).is_empty());
    reg(&mut transport, VIRTIO_MMIO_STATUS, 0);
    assert_eq!(
        (
            read(&mut transport, VIRTIO_MMIO_STATUS),
            transport.failure()
        ),
        (0, None)
    );
}

#[test]
fn buffers_outside_memory_and_runaway_indices_fail_the_device() {
    let mem = memory();
    let (mut transport, _peer) = net_pair(&mem, None);
    drive_up(&mut transport, 2);
    offer(&mem, 1, 0, &[Descriptor::new(MEMORY as u64 - 4, 64, 0, 0)]);
    transport.process(Event::Queue(1));
    assert!(
        transport
            .failure()
            .unwrap()
            .contains("outside guest memory")
    );

    let mem = memory();
    let (mut transport, _peer) = net_pair(&mem, None);
    drive_up(&mut transport, 2);
    // The available index runs more than a ring ahead of the device.
    mem.write_obj(SIZE + 5, GuestAddress(avail(1) + 2)).unwrap();
    transport.process(Event::Queue(1));
    assert!(transport.failure().unwrap().contains("available ring"));

    let mem = memory();
    let (mut transport, mut peer) = net_pair(&mem, None);
    drive_up(&mut transport, 2);
    // A receive chain with a device-readable buffer, and a frame waiting.
    offer(&mem, 0, 0, &[Descriptor::new(BUFFERS, 64, 0, 0)]);
    peer.write_all(&[0, 0, 0, 1, 7]).unwrap();
    transport.process(Event::Backend);
    assert!(transport.failure().unwrap().contains("device-readable"));
}

#[test]
fn bad_queue_sizes_rings_and_features_are_refused() {
    let mem = memory();
    let (mut transport, _peer) = net_pair(&mem, None);
    reg(
        &mut transport,
        VIRTIO_MMIO_STATUS,
        VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER,
    );
    reg(&mut transport, VIRTIO_MMIO_QUEUE_NUM, 3);
    assert!(transport.failure().unwrap().contains("3 entries"));

    let (mut transport, _peer) = net_pair(&mem, None);
    reg(
        &mut transport,
        VIRTIO_MMIO_STATUS,
        VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER,
    );
    reg(&mut transport, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
    reg(&mut transport, VIRTIO_MMIO_DRIVER_FEATURES, 1 << 6); // not offered
    reg(&mut transport, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
    reg(&mut transport, VIRTIO_MMIO_DRIVER_FEATURES, 1);
    reg(&mut transport, VIRTIO_MMIO_STATUS, FEATURES_OK);
    assert_eq!(
        read(&mut transport, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK,
        0
    );
    assert!(failed(&mut transport));
    assert!(transport.failure().unwrap().contains("did not offer"));

    // A used ring past the end of memory, found at DRIVER_OK.
    let (mut transport, _peer) = net_pair(&mem, None);
    drive_up(&mut transport, 0);
    assert_eq!(
        transport.failure(),
        None,
        "no queue ready, nothing to check"
    );
    reg(&mut transport, VIRTIO_MMIO_STATUS, 0);
    reg(
        &mut transport,
        VIRTIO_MMIO_STATUS,
        VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER,
    );
    reg(&mut transport, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
    reg(&mut transport, VIRTIO_MMIO_DRIVER_FEATURES, 1);
    reg(&mut transport, VIRTIO_MMIO_STATUS, FEATURES_OK);
    reg(&mut transport, VIRTIO_MMIO_QUEUE_NUM, u32::from(SIZE));
    reg(
        &mut transport,
        VIRTIO_MMIO_QUEUE_USED_LOW,
        MEMORY as u32 - 8,
    );
    reg(&mut transport, VIRTIO_MMIO_QUEUE_READY, 1);
    reg(
        &mut transport,
        VIRTIO_MMIO_STATUS,
        FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK,
    );
    assert!(transport.failure().unwrap().contains("does not fit"));

    // DRIVER_OK without FEATURES_OK.
    let (mut transport, _peer) = net_pair(&mem, None);
    reg(
        &mut transport,
        VIRTIO_MMIO_STATUS,
        VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_DRIVER_OK,
    );
    assert!(transport.failure().unwrap().contains("FEATURES_OK first"));
    // A notification of a queue that does not exist.
    let (mut transport, _peer) = net_pair(&mem, None);
    reg(&mut transport, VIRTIO_MMIO_QUEUE_NOTIFY, 7);
    assert!(transport.failure().unwrap().contains("queue 7"));
}

fn disk(sectors: u64) -> (tempfile::NamedTempFile, Transport, GuestMemoryMmap) {
    let file = tempfile::NamedTempFile::new().unwrap();
    file.as_file().set_len(sectors * blk::SECTOR).unwrap();
    let mem = memory();
    let device = blk::Blk::open(file.path(), false).unwrap();
    let transport = Transport::new(Box::new(device), mem.clone(), None).unwrap();
    (file, transport, mem)
}

/// Offers a request of `kind` at `sector` with one data buffer of `len` bytes at BUFFERS +
/// 0x1000 (device-writable for reads and get-id) and its status byte at BUFFERS + 0x10.
fn request(
    mem: &GuestMemoryMmap,
    index: u16,
    kind: u32,
    sector: u64,
    len: u32,
    data_writable: bool,
) {
    let mut header = [0u8; 16];
    header[..4].copy_from_slice(&kind.to_le_bytes());
    header[8..].copy_from_slice(&sector.to_le_bytes());
    mem.write_slice(&header, GuestAddress(BUFFERS)).unwrap();
    let mut descs = vec![Descriptor::new(BUFFERS, 16, NEXT, index + 1)];
    if len > 0 {
        let flags = NEXT | if data_writable { WRITE } else { 0 };
        descs.push(Descriptor::new(BUFFERS + 0x1000, len, flags, index + 2));
    }
    descs.push(Descriptor::new(BUFFERS + 0x10, 1, WRITE, 0));
    offer(mem, 0, index, &descs);
}

fn status_byte(mem: &GuestMemoryMmap) -> u8 {
    mem.read_obj(GuestAddress(BUFFERS + 0x10)).unwrap()
}

#[test]
fn a_disk_reads_writes_flushes_and_says_its_id() {
    let (file, mut transport, mem) = disk(8);
    let mut capacity = [0u8; 8];
    transport.read(0x100, &mut capacity);
    assert_eq!(u64::from_le_bytes(capacity), 8);
    drive_up(&mut transport, 1);

    mem.write_slice(&[0x5a; 1024], GuestAddress(BUFFERS + 0x1000))
        .unwrap();
    request(&mem, 0, VIRTIO_BLK_T_OUT, 3, 1024, false);
    transport.process(Event::Queue(0));
    assert_eq!(status_byte(&mem), VIRTIO_BLK_S_OK as u8);
    let on_disk = std::fs::read(file.path()).unwrap();
    assert!(on_disk[3 * 512..5 * 512].iter().all(|&b| b == 0x5a));
    assert!(on_disk[..3 * 512].iter().all(|&b| b == 0));

    mem.write_slice(&[0u8; 512], GuestAddress(BUFFERS + 0x1000))
        .unwrap();
    request(&mem, 3, VIRTIO_BLK_T_IN, 4, 512, true);
    transport.process(Event::Queue(0));
    assert_eq!(status_byte(&mem), VIRTIO_BLK_S_OK as u8);
    let mut back = [0u8; 512];
    mem.read_slice(&mut back, GuestAddress(BUFFERS + 0x1000))
        .unwrap();
    assert!(back.iter().all(|&b| b == 0x5a));

    request(&mem, 6, VIRTIO_BLK_T_FLUSH, 0, 0, false);
    transport.process(Event::Queue(0));
    assert_eq!(status_byte(&mem), VIRTIO_BLK_S_OK as u8);

    request(&mem, 8, VIRTIO_BLK_T_GET_ID, 0, 20, true);
    transport.process(Event::Queue(0));
    let mut id = [0u8; 20];
    mem.read_slice(&mut id, GuestAddress(BUFFERS + 0x1000))
        .unwrap();
    let name = file
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let expected = &name.as_bytes()[..name.len().min(20)];
    assert_eq!(&id[..expected.len()], expected);

    // Past the end: an I/O error for the driver, not a failure of the device.
    request(&mem, 11, VIRTIO_BLK_T_IN, 7, 1024, true);
    transport.process(Event::Queue(0));
    assert_eq!(status_byte(&mem), VIRTIO_BLK_S_IOERR as u8);
    // An unknown request type.
    request(&mem, 14, 99, 0, 0, false);
    transport.process(Event::Queue(0));
    assert_eq!(status_byte(&mem), VIRTIO_BLK_S_UNSUPP as u8);
    assert_eq!(transport.failure(), None);
    let used: Vec<u32> = used_entries(&mem, 0).iter().map(|&(_, len)| len).collect();
    assert_eq!(
        used,
        [1, 513, 1, 21, 1, 1],
        "data bytes written and the status byte"
    );

    // A read whose data the device would have to read from: the guest broke the rule.
    request(&mem, 0, VIRTIO_BLK_T_IN, 0, 512, false);
    transport.process(Event::Queue(0));
    assert!(transport.failure().unwrap().contains("device-readable"));
}

/// With O_DIRECT, requests go through a page-aligned buffer and read back what was
/// written (where the file system has no O_DIRECT, the refusal names the option).
#[test]
fn a_direct_disk_reads_what_it_wrote_or_is_refused_clearly() {
    // /var/tmp: a disk-backed file system (tmpfs before Linux 6.6 has no O_DIRECT).
    let file = tempfile::NamedTempFile::new_in("/var/tmp").unwrap();
    file.as_file().set_len(64 * blk::SECTOR).unwrap();
    let mem = memory();
    let device = match blk::Blk::open_with(file.path(), false, true) {
        Ok(device) => device,
        Err(err) => {
            let reason = err.to_string();
            assert!(reason.contains("--disk-direct"), "{reason}");
            eprintln!("skipped: {reason}");
            return;
        }
    };
    let mut transport = Transport::new(Box::new(device), mem.clone(), None).unwrap();
    drive_up(&mut transport, 1);
    let pattern: Vec<u8> = (0..1536u32).map(|i| (i * 7 % 251) as u8).collect();
    mem.write_slice(&pattern, GuestAddress(BUFFERS + 0x1000))
        .unwrap();
    request(&mem, 0, VIRTIO_BLK_T_OUT, 5, 1536, false);
    transport.process(Event::Queue(0));
    assert_eq!(status_byte(&mem), VIRTIO_BLK_S_OK as u8);
    mem.write_slice(&[0u8; 1536], GuestAddress(BUFFERS + 0x1000))
        .unwrap();
    request(&mem, 3, VIRTIO_BLK_T_IN, 5, 1536, true);
    transport.process(Event::Queue(0));
    assert_eq!(status_byte(&mem), VIRTIO_BLK_S_OK as u8);
    let mut back = vec![0u8; 1536];
    mem.read_slice(&mut back, GuestAddress(BUFFERS + 0x1000))
        .unwrap();
    assert_eq!(back, pattern);
    assert_eq!(
        &std::fs::read(file.path()).unwrap()[5 * 512..8 * 512],
        &pattern[..]
    );
    assert_eq!(transport.failure(), None);
}

/// virtio-drivers' teardown (the disk dropped when `main` returns) writes 0 to QueueReady
/// and spins until it reads 0 back: the guest never got to its exit. The queue stops, is
/// not served any more, and cannot be made ready again without a reset.
#[test]
fn a_driver_can_stop_a_queue_after_driver_ok() {
    let (_file, mut transport, mem) = disk(8);
    drive_up(&mut transport, 1);
    reg(&mut transport, VIRTIO_MMIO_QUEUE_SEL, 0);
    assert_eq!(read(&mut transport, VIRTIO_MMIO_QUEUE_READY), 1);
    reg(&mut transport, VIRTIO_MMIO_QUEUE_READY, 0);
    assert_eq!(read(&mut transport, VIRTIO_MMIO_QUEUE_READY), 0);
    request(&mem, 0, VIRTIO_BLK_T_FLUSH, 0, 0, false);
    transport.process(Event::Queue(0));
    assert!(
        used_entries(&mem, 0).is_empty(),
        "a stopped queue was served"
    );
    reg(&mut transport, VIRTIO_MMIO_QUEUE_READY, 1);
    assert_eq!(read(&mut transport, VIRTIO_MMIO_QUEUE_READY), 0);
    assert_eq!(transport.failure(), None);
}

#[test]
fn transport_state_survives_a_save_and_a_restore() {
    let mem = memory();
    let (mut transport, _peer) = net_pair(&mem, None);
    drive_up(&mut transport, 2);
    mem.write_slice(&[0u8; 12], GuestAddress(BUFFERS)).unwrap();
    offer(&mem, 1, 0, &[Descriptor::new(BUFFERS, 12, 0, 0)]);
    transport.process(Event::Queue(1));
    let saved = transport.save();
    assert_eq!(saved.queues[1].next_avail, 1);
    assert_eq!(saved.queues[1].desc_table, desc_table(1));
    // Through a serializer and into a fresh device, as a snapshot would.
    let json = serde_json::to_string(&saved).unwrap();
    let back: TransportState = serde_json::from_str(&json).unwrap();
    let (mut restored, _peer2) = net_pair(&mem, None);
    restored.restore(&back).unwrap();
    assert_eq!(restored.save(), saved);
    // It carries on where the first left off.
    offer(&mem, 1, 1, &[Descriptor::new(BUFFERS, 12, 0, 0)]);
    restored.process(Event::Queue(1));
    assert_eq!(used_entries(&mem, 1), [(0, 0), (1, 0)]);

    // A snapshot is untrusted: a ring outside memory, or a queue too big, is refused.
    let mut bad = saved.clone();
    bad.queues[0].used_ring = MEMORY as u64;
    assert!(net_pair(&mem, None).0.restore(&bad).is_err());
    let mut bad = saved.clone();
    bad.queues[0].size = 1024;
    assert!(net_pair(&mem, None).0.restore(&bad).is_err());
    let mut bad = saved;
    bad.queues.pop();
    assert!(net_pair(&mem, None).0.restore(&bad).is_err());
}
