use unikernel::prelude::*;

struct App;

impl App {
    #[unikernel(console)]
    fn main(&self) -> ExitCode {
        ExitCode::SUCCESS
    }
}

fn main() {}
