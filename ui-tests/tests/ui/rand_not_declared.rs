use unikernel::prelude::*;

#[unikernel(console)]
fn main(rand: Rand) -> ExitCode {
    let _ = rand.u64();
    ExitCode::SUCCESS
}
