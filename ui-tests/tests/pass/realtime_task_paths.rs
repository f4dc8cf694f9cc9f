//! A task's function may be a path: in another module, or a generic function with its
//! type argument.

#![deny(unused)]

mod app {
    use unikernel::prelude::*;

    #[unikernel(
        sched = edf,
        task(jobs::control, period = "1 ms", wcet = "200 us"),
        task(jobs::sample::<u32>, period = "10 ms", wcet = "1 ms")
    )]
    fn main() {}

    mod jobs {
        pub fn control() {}

        pub fn sample<T: Default>() {
            let _ = T::default();
        }
    }
}

fn main() {}
