//! `main` on a stack of the app's choosing.

mod app {
    use unikernel::prelude::*;

    #[unikernel(console, heap = "64 KiB", stack = "1 MiB")]
    fn main() -> ExitCode {
        ExitCode::SUCCESS
    }
}

fn main() {}
