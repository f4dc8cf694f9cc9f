use unikernel::prelude::*;

#[unikernel(console(baud = 9600), heap = "1 MiB", args(verbose))]
fn main() {}
