//! trybuild cases for `#[unikernel]` live in tests/.
