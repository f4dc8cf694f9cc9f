use unikernel::prelude::*;

#[unikernel(consle, heap = "1 MiB")]
fn main() -> ExitCode {
    ExitCode::SUCCESS
}
