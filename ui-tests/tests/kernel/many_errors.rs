#![no_std]
#![no_main]
use unikernel::prelude::*;

#[unikernel(consle, heap = "1 MB", args(x), args)]
async fn main(net: Net) -> ExitCode {
    ExitCode::SUCCESS
}
