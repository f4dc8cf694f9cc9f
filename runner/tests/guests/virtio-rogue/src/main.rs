//! Breaks the rules of virtio toward the monitor's first virtio-mmio device (virtio-net at
//! 0xfeb00000), for runner/tests/monitor_net.rs. It sets the device up as a driver would
//! (features, the transmit queue, DRIVER_OK), then offers one chain that is:
//!
//! - `loop`: two descriptors that point at each other;
//! - `outside`: a buffer past the end of guest memory;
//! - `runaway`: fine, but the available index runs 100 entries ahead of a 16-entry ring;
//!
//! and waits for the device to say DEVICE_NEEDS_RESET: prints `needs reset` and exits 0,
//! or `no reset` and exits 1.
#![no_std]
#![no_main]

use core::ptr::{addr_of, addr_of_mut, read_volatile, write_volatile};

use unikernel::prelude::*;

const BASE: u64 = 0xfeb0_0000;
const MAGIC: u64 = 0x000;
const DEVICE_ID: u64 = 0x008;
const DRIVER_FEATURES: u64 = 0x020;
const DRIVER_FEATURES_SEL: u64 = 0x024;
const QUEUE_SEL: u64 = 0x030;
const QUEUE_NUM: u64 = 0x038;
const QUEUE_READY: u64 = 0x044;
const QUEUE_NOTIFY: u64 = 0x050;
const STATUS: u64 = 0x070;
const QUEUE_DESC: u64 = 0x080;
const QUEUE_AVAIL: u64 = 0x090;
const QUEUE_USED: u64 = 0x0a0;
const NEEDS_RESET: u32 = 0x40;
const SIZE: u16 = 16;
const NEXT: u16 = 1;

#[repr(C)]
#[derive(Clone, Copy)]
struct Descriptor {
    addr: u64,
    len: u32,
    flags: u16,
    next: u16,
}

#[repr(C, align(4096))]
struct Rings {
    descriptors: [Descriptor; SIZE as usize],
    avail_flags: u16,
    avail_idx: u16,
    avail_ring: [u16; SIZE as usize],
    _pad: [u8; 2048],
    used: [u32; 1 + 2 * SIZE as usize + 1],
    buffer: [u8; 64],
}

static mut RINGS: Rings = Rings {
    descriptors: [Descriptor {
        addr: 0,
        len: 0,
        flags: 0,
        next: 0,
    }; SIZE as usize],
    avail_flags: 0,
    avail_idx: 0,
    avail_ring: [0; SIZE as usize],
    _pad: [0; 2048],
    used: [0; 1 + 2 * SIZE as usize + 1],
    buffer: [0; 64],
};

fn read(offset: u64) -> u32 {
    // SAFETY: the window was mapped uncached in `main`; register reads have no side effect.
    unsafe { read_volatile((BASE + offset) as *const u32) }
}

fn write(offset: u64, value: u32) {
    // SAFETY: as in `read`; this guest is the only driver of the device.
    unsafe { write_volatile((BASE + offset) as *mut u32, value) }
}

fn write64(offset: u64, value: u64) {
    write(offset, value as u32);
    write(offset + 4, (value >> 32) as u32);
}

#[unikernel(console, heap = "64 KiB", args)]
fn main(args: Args) -> ExitCode {
    let mode = args.first().map(|arg| arg.as_str()).unwrap_or("loop");
    if unikernel_arch::device::map(BASE, 0x200).is_err() || read(MAGIC) != 0x7472_6976 {
        println!("virtio-rogue: no virtio-mmio device at {BASE:#x}");
        return ExitCode::FAILURE;
    }
    println!(
        "virtio-rogue: device {} at {BASE:#x}, mode {mode}",
        read(DEVICE_ID)
    );
    write(STATUS, 0);
    write(STATUS, 1 | 2);
    write(DRIVER_FEATURES_SEL, 0);
    write(DRIVER_FEATURES, 0);
    write(DRIVER_FEATURES_SEL, 1);
    write(DRIVER_FEATURES, 1); // VIRTIO_F_VERSION_1
    write(STATUS, 1 | 2 | 8);
    let rings = addr_of_mut!(RINGS);
    // SAFETY: this single-threaded guest is the only user of RINGS; the kernel is
    // identity mapped, so the addresses of its fields are guest-physical addresses.
    unsafe {
        write(QUEUE_SEL, 1);
        write(QUEUE_NUM, u32::from(SIZE));
        write64(QUEUE_DESC, addr_of!((*rings).descriptors) as u64);
        write64(QUEUE_AVAIL, addr_of!((*rings).avail_flags) as u64);
        write64(QUEUE_USED, addr_of!((*rings).used) as u64);
        write(QUEUE_READY, 1);
        write(STATUS, 1 | 2 | 8 | 4);
        let buffer = addr_of!((*rings).buffer) as u64;
        let descriptors = &mut (*rings).descriptors;
        match mode {
            "outside" => {
                descriptors[0] = Descriptor {
                    addr: 1 << 46,
                    len: 64,
                    flags: 0,
                    next: 0,
                };
            }
            "runaway" => {
                descriptors[0] = Descriptor {
                    addr: buffer,
                    len: 64,
                    flags: 0,
                    next: 0,
                };
            }
            _ => {
                descriptors[0] = Descriptor {
                    addr: buffer,
                    len: 12,
                    flags: NEXT,
                    next: 1,
                };
                descriptors[1] = Descriptor {
                    addr: buffer,
                    len: 12,
                    flags: NEXT,
                    next: 0,
                };
            }
        }
        (*rings).avail_ring[0] = 0;
        let index = if mode == "runaway" { 100 } else { 1 };
        write_volatile(addr_of_mut!((*rings).avail_idx), index);
    }
    write(QUEUE_NOTIFY, 1);
    for _ in 0..10_000_000u32 {
        if read(STATUS) & NEEDS_RESET != 0 {
            println!("virtio-rogue: needs reset");
            return ExitCode::SUCCESS;
        }
        core::hint::spin_loop();
    }
    println!("virtio-rogue: no reset");
    ExitCode::FAILURE
}
