use unikernel::prelude::*;

#[unikernel::function(route = "GET /a")]
fn hello(_request: Request) -> Response {
    Response::text("a")
}

mod other {
    use unikernel::prelude::*;

    #[unikernel::function(route = "GET /b")]
    fn hello(_request: Request) -> Response {
        Response::text("b")
    }
}

fn main() {}
