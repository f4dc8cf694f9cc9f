//! Driver glue shared by the virtio drivers (`libs/net`, `libs/disk`): the bridge between
//! `virtio-drivers` and this kernel. Not a subsystem: an image links it only through a
//! subsystem that drives a virtio device.
#![no_std]
#![deny(unsafe_code)]

#[allow(unsafe_code)]
mod hal;

pub use hal::KernelHal;
