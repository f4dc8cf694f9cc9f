use unikernel::prelude::*;

#[unikernel(console, args)]
fn main(args: Args) {}
