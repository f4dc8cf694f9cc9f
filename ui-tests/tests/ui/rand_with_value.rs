use unikernel::prelude::*;

#[unikernel(console, rand = "rdrand")]
fn main(rand: Rand) -> ExitCode {
    let _ = rand.u64();
    ExitCode::SUCCESS
}
