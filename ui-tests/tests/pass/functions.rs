//! A crate of functions compiles on the host: a function with and without state, with
//! subsystems and their handles, returning a `Response`, a `String` or a `Result`; an
//! `init`; functions in modules. (The images' entries exist only in the build of each
//! image, `cargo uk functions build`.)

#![deny(unused)]

use unikernel::prelude::*;

pub struct Model {
    scale: u32,
}

#[unikernel::init]
fn init() -> Model {
    Model { scale: 2 }
}

#[unikernel::function(route = "GET /hello")]
fn hello(_request: Request) -> Response {
    Response::text("hello")
}

#[unikernel::function(route = "POST /resize", heap = "8 MiB", timeout = "100 ms", mode = warm)]
fn resize(request: Request, model: &Model) -> String {
    format!("{} bytes at scale {}", request.body().len(), model.scale)
}

mod nested {
    use unikernel::prelude::*;

    #[unikernel::function(
        route = "GET /now",
        console(log = "debug"),
        clock,
        rand,
        max_request = "64 KiB",
        memory = "32 MiB",
        mode = "fresh"
    )]
    fn now(_request: Request, clock: Clock, rand: Rand) -> Result<Response, &'static str> {
        match clock.wall() {
            Some(_) => Ok(Response::text(format!("{}", rand.u64()))),
            None => Err("no wall clock"),
        }
    }
}

fn main() {}
