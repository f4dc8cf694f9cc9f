#![no_std]
#![no_main]
use unikernel::prelude::*;

#[unikernel(console, heap = "1 MiB", netw)]
fn main() -> ExitCode {
    println!("hello from a unikernel");
    ExitCode::SUCCESS
}
