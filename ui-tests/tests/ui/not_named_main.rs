use unikernel::prelude::*;

#[unikernel(console)]
fn start() {}
