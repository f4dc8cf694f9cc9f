use unikernel::prelude::*;

#[unikernel(console, fs)]
fn main(fs: Fs) {}
