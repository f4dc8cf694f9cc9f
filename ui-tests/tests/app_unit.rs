//! A `main` returning `()` that declares nothing compiles on the host.

#[unikernel::unikernel]
fn main() {}

#[test]
fn compiles() {}
