//! An app with every subsystem, handles taken by full path and with any pattern, options,
//! and a `Result` from `main`, compiles on the host.

use unikernel::prelude::*;

#[derive(Debug)]
struct Error;

/// Documentation and other attributes stay on `main`.
#[inline(never)]
#[unikernel(args, console(log = "debug"), heap = "4MiB")]
fn main(_: unikernel::Console, mut args: ::unikernel::Args) -> Result<(), Error> {
    let _ = &mut args;
    Ok(())
}

#[test]
fn compiles() {}
