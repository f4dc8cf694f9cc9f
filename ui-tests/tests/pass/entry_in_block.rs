//! An entry nested in a function's body: the generated items are legal in a block too.

mod app {
    #[allow(dead_code)]
    fn outer() {
        use unikernel::prelude::*;

        #[unikernel(console, heap = "64 KiB")]
        fn main() -> ExitCode {
            ExitCode::SUCCESS
        }
    }
}

fn main() {}
