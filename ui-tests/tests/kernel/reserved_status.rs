#![no_std]
#![no_main]
use unikernel::prelude::*;

#[unikernel(console)]
fn main() -> ExitCode {
    ExitCode::from(101)
}
