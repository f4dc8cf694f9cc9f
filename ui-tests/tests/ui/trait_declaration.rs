use unikernel::prelude::*;

trait App {
    #[unikernel(console)]
    fn main() -> ExitCode;
}

fn main() {}
