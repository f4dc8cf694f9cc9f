//! A `main` that never returns, without a heap and without handles, compiles on the host.

// The entry is in a module so that the case's binary runs a `main` of its own: the one the
// attribute generates for a host build says that apps run in a VM, and fails.
mod app {
    use unikernel::prelude::*;

    #[unikernel(console(log = "off"))]
    fn main() -> ! {
        #[allow(clippy::empty_loop)]
        loop {}
    }
}

fn main() {}
