//! An entry written as an associated function that uses nothing of its `impl`: the
//! generated items live in a function, which is legal there, and the entry works as at
//! module level (a `self` receiver or `Self` in `main` is an error: see tests/ui).

mod app {
    use unikernel::prelude::*;

    pub struct App;

    impl App {
        #[unikernel(console)]
        fn main() -> ExitCode {
            ExitCode::SUCCESS
        }
    }
}

fn main() {}
