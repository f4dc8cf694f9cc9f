use unikernel::prelude::*;

// Attribute macros cannot go on expressions: rustc refuses before `#[unikernel]` runs.
fn main() {
    let _entry = #[unikernel(console)]
    || {};
}
