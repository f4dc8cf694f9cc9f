//! A `main` returning `()` that declares nothing compiles on the host.

// The entry is in a module so that the case's binary runs a `main` of its own: the one the
// attribute generates for a host build says that apps run in a VM, and fails.
mod app {
    #[unikernel::unikernel]
    fn main() {}
}

fn main() {}
