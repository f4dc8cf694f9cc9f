use unikernel::prelude::*;

#[unikernel::function(route = "GET hello")]
fn no_slash(_request: Request) -> Response {
    Response::text("")
}

#[unikernel::function(route = "get /lower")]
fn lower_case(_request: Request) -> Response {
    Response::text("")
}

#[unikernel::function(route = "FETCH /x")]
fn unknown_method(_request: Request) -> Response {
    Response::text("")
}

#[unikernel::function(route = "GET /a?b=1")]
fn with_query(_request: Request) -> Response {
    Response::text("")
}

#[unikernel::function(route = "/only-a-path")]
fn no_method(_request: Request) -> Response {
    Response::text("")
}

#[unikernel::function(route = GET)]
fn not_a_string(_request: Request) -> Response {
    Response::text("")
}

#[unikernel::function(heap = "1 MiB")]
fn no_route(_request: Request) -> Response {
    Response::text("")
}

fn main() {}
