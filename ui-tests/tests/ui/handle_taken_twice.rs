use unikernel::prelude::*;

#[unikernel(console)]
fn main(console: Console, again: Console) {}
