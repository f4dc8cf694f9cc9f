//! Declares nothing and returns at once: the least a unikernel of ours boots.
#![no_std]
#![no_main]

use unikernel::prelude::*;

#[unikernel]
fn main() {}
