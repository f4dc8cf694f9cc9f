//! A `main` that never returns, without a heap and without handles, compiles on the host.

use unikernel::prelude::*;

#[unikernel(console(log = "off"))]
fn main() -> ! {
    #[allow(clippy::empty_loop)]
    loop {}
}

#[test]
fn compiles() {}
