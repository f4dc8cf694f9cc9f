use unikernel::prelude::*;

#[unikernel(console)]
fn main() -> u32 {
    0
}
