use unikernel::prelude::*;

struct Console;

#[unikernel(console)]
fn main(_console: Console) {}
