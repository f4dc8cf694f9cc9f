mod first {
    use unikernel::prelude::*;

    #[unikernel(console)]
    fn main() {}
}

mod second {
    use unikernel::prelude::*;

    #[unikernel(console)]
    fn main() {}
}

fn main() {}
