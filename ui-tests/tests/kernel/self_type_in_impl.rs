#![no_std]
#![no_main]
use unikernel::prelude::*;

struct App;

impl App {
    fn run() -> ExitCode {
        ExitCode::SUCCESS
    }

    #[unikernel(console)]
    fn main() -> ExitCode {
        Self::run()
    }
}
