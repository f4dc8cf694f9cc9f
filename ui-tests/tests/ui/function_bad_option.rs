use unikernel::prelude::*;

#[unikernel::function(route = "GET /a", timeout = "100 msec")]
fn bad_timeout(_request: Request) -> Response {
    Response::text("")
}

#[unikernel::function(route = "GET /b", mode = cold)]
fn bad_mode(_request: Request) -> Response {
    Response::text("")
}

#[unikernel::function(route = "GET /c", heap = "8 MB", max_request = "1 KiB")]
fn bad_sizes(_request: Request) -> Response {
    Response::text("")
}

#[unikernel::function(route = "GET /d", net(dhcp), gpu)]
fn bad_subsystems(_request: Request) -> Response {
    Response::text("")
}

#[unikernel::function(route = "GET /e", timeout = "1 s", timeout = "2 s", function(max_request = "1 MiB"))]
fn twice(_request: Request) -> Response {
    Response::text("")
}

#[unikernel::function(route = "GET /f", timeout)]
fn without_value(_request: Request) -> Response {
    Response::text("")
}

#[unikernel::function(route = "GET /g",, heap = "1 MiB")]
fn empty_entry(_request: Request) -> Response {
    Response::text("")
}

fn main() {}
