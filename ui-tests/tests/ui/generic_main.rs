use unikernel::prelude::*;

#[unikernel(console)]
fn main<T: Default>() {}
