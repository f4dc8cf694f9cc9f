use unikernel::prelude::*;

#[unikernel(console)]
const unsafe extern "C" fn main() {}
