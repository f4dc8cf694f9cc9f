use unikernel::prelude::*;

struct Config;

#[unikernel(console)]
fn main(console: Console, config: Config) {}
