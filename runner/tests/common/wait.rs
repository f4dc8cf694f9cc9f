//! Polling with a deadline, for the tests that wait on processes outside the test (the
//! gateway, containers, runtimes): `oci.rs` and `serve.rs` include it with
//! `#[path = "common/wait.rs"] mod wait;`.

use std::time::{Duration, Instant};

/// Calls `done` every `every` until it returns true; panics with `what()` when `timeout`
/// passes first.
pub fn until(
    timeout: Duration,
    every: Duration,
    mut done: impl FnMut() -> bool,
    what: impl Fn() -> String,
) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "{}", what());
        std::thread::sleep(every);
    }
}
