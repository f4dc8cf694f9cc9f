//! `timer` is the old name of `clock`: the error names the new one.

use unikernel::prelude::*;

#[unikernel(console, timer)]
fn main(clock: Clock) -> ExitCode {
    let _ = clock.now();
    ExitCode::SUCCESS
}
