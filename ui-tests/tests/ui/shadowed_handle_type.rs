use unikernel::prelude::*;

struct Console;

#[unikernel(console)]
fn main(console: Console) {}
