use unikernel::prelude::*;

pub struct State;

#[unikernel::init]
fn init() -> State {
    State
}

#[unikernel::function(route = "GET /a")]
fn no_request() -> Response {
    Response::text("")
}

#[unikernel::function(route = "GET /b")]
fn no_response(_request: Request) {}

#[unikernel::function(route = "GET /c")]
async fn not_async(_request: Request) -> Response {
    Response::text("")
}

#[unikernel::function(route = "GET /d")]
fn mutable_state(_request: Request, _state: &mut State) -> Response {
    Response::text("")
}

#[unikernel::function(route = "GET /e")]
fn generic<T>(_request: Request) -> Response {
    Response::text("")
}

#[unikernel::function(route = "GET /f")]
fn wrong_return(_request: Request) -> u32 {
    7
}

#[unikernel::function(route = "GET /g")]
fn wrong_request(_request: u32) -> Response {
    Response::text("")
}

#[unikernel::function(route = "GET /h")]
fn undeclared_handle(_request: Request, _rand: Rand) -> Response {
    Response::text("")
}

fn main() {}
