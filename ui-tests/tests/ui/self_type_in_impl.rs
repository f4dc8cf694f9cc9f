use unikernel::prelude::*;

struct App;

impl App {
    fn run() -> ExitCode {
        ExitCode::SUCCESS
    }

    // Without `self` the attribute cannot tell that it is in an `impl`; `Self` shows it.
    #[unikernel(console)]
    fn main() -> ExitCode {
        Self::run()
    }
}

fn main() {}
