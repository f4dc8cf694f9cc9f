//! The hello app compiles on the host (its boot code is type-checked there too).

use unikernel::prelude::*;

#[unikernel(console, heap = "1 MiB")]
fn main() -> ExitCode {
    // On the host, std's `println` and the prelude's are both in scope: name ours.
    unikernel::println!("hello from a unikernel");
    ExitCode::SUCCESS
}

#[test]
fn compiles() {}
