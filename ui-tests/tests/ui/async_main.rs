use unikernel::prelude::*;

#[unikernel(console)]
async fn main() {}
