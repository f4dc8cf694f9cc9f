//! An app with every subsystem (each with an option where it has one, and a periodic task),
//! handles taken by full path and with any pattern, and a `Result` from `main`, compiles
//! on the host.

#![deny(unused)]

// The entry is in a module so that the case's binary runs a `main` of its own: the one the
// attribute generates for a host build says that apps run in a VM, and fails.
mod app {
    use unikernel::prelude::*;

    #[derive(Debug)]
    struct Error;

    /// Documentation and other attributes stay on `main`.
    #[inline(never)]
    #[unikernel(
        args,
        console(log = "debug"),
        heap = "4MiB",
        irq,
        clock,
        sched = edf(on_miss = panic),
        task(control, period = "1 ms", wcet = "200 us"),
        rand,
        net(ipv4 = "10.0.2.15/24", gateway = "10.0.2.2"),
        fs,
        disk,
        function(max_request = "64 KiB")
    )]
    fn main(
        _: unikernel::Console,
        mut args: ::unikernel::Args,
        _irq: Irq,
        clock: Clock,
        _sched: Sched,
        rand: Rand,
        _net: Net,
        _fs: Fs,
        _disk: Disk,
        _function: Function,
    ) -> Result<(), Error> {
        let _ = (&mut args, clock.now(), rand.u64());
        Ok(())
    }

    fn control() {}
}

fn main() {}
