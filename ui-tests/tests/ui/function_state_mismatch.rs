use unikernel::prelude::*;

pub struct Model;
pub struct Other;

#[unikernel::init]
fn init() -> Model {
    Model
}

#[unikernel::function(route = "GET /a")]
fn wrong_state(_request: Request, _state: &Other) -> Response {
    Response::text("")
}

fn main() {}
