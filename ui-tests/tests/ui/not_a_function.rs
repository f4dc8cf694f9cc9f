use unikernel::prelude::*;

#[unikernel(console)]
struct App;

fn main() {}
