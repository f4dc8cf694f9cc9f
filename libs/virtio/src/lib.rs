//! Driver glue shared by the virtio drivers (`libs/net`, `libs/disk`): the bridge between
//! `virtio-drivers` and this kernel, finding a device (virtio-mmio or PCI) and
//! acknowledging its interrupt. Not a subsystem: an image links it only through a
//! subsystem that drives a virtio device.
#![no_std]
#![deny(unsafe_code)]

pub mod discover;
#[cfg(target_os = "none")]
#[allow(unsafe_code)]
mod find;
#[allow(unsafe_code)]
mod hal;

#[cfg(target_os = "none")]
pub use find::{Found, Location, ack_isr, find};
pub use hal::KernelHal;
