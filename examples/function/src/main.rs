//! A function image written against the `function` subsystem directly: what
//! `#[unikernel::function]` generates for each function of a crate, by hand. It answers
//! requests from the gateway (`cargo uk serve`) over the monitor's request channel; under
//! QEMU, which has no such channel, the boot ends saying so.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use unikernel::prelude::*;

#[unikernel(console, heap = "1 MiB", rand, function(max_request = "64 KiB"))]
fn main(function: Function, rand: Rand) -> ! {
    let mut served = 0u64;
    function.serve(|request| {
        served += 1;
        match (request.method(), request.path()) {
            ("POST", "/echo") => Response::bytes(request.into_body()),
            ("GET", "/hello") => Response::text(format!(
                "hello, {} (request {served}, random {:016x})",
                request.query_param("name").unwrap_or("world"),
                rand.u64()
            )),
            ("GET", "/big") => Response::bytes(alloc::vec![b'x'; 100 * 1024]),
            _ => Response::status(404).with_text("no such route"),
        }
    })
}
