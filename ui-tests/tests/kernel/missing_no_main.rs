#![no_std]
use unikernel::prelude::*;

#[unikernel(console)]
fn main() -> ExitCode {
    ExitCode::SUCCESS
}
