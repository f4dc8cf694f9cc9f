use unikernel::prelude::*;

#[unikernel(console)]
fn main(self) {}
