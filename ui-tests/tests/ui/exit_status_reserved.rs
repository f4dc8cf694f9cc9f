use unikernel::prelude::*;

#[unikernel(console, heap = "64 KiB", args)]
fn main(args: Args) -> ExitCode {
    match args.len() {
        0 => ExitCode::from(101),
        1 => unikernel::ExitCode::from(124u8),
        2 => ExitCode::from(200),
        _ => ExitCode::from(100),
    }
}
