use unikernel::prelude::*;

#[unikernel(console)]
fn main()
where
    u8: Copy,
{
}
