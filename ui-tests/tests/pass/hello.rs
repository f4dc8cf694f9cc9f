//! The hello app compiles on the host (its boot code is type-checked there too).

// The entry is in a module so that the case's binary runs a `main` of its own: the one the
// attribute generates for a host build says that apps run in a VM, and fails.
mod app {
    use unikernel::prelude::*;

    #[unikernel(console, heap = "1 MiB")]
    fn main() -> ExitCode {
        // On the host, std's `println` and the prelude's are both in scope: name ours.
        unikernel::println!("hello from a unikernel");
        ExitCode::SUCCESS
    }
}

fn main() {}
