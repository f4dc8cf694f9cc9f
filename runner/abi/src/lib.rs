//! What a unikernel and its host tools share, and nothing else: the interface of the
//! project's KVM monitor ([`hypervisor`]) and its request channel for functions
//! ([`function`]), the exit statuses ([`status`]) and the manifest
//! note `#[unikernel]` writes into every image ([`manifest`]).
//!
//! The guest (core/arch) and the host (the runner and its monitor, `unikernel-vmm`) both
//! depend on this crate, so a number defined here cannot drift between the two sides.
//! It has no dependencies and no `unsafe`, and builds for `x86_64-unknown-none` and the host.

#![no_std]
#![forbid(unsafe_code)]

pub mod function;
pub mod hypervisor;
pub mod manifest;
pub mod status;
