use unikernel::prelude::*;

#[unikernel::function(route = "GET /hello")]
fn hello(_request: Request) -> Response {
    Response::text("hello")
}

mod again {
    use unikernel::prelude::*;

    #[unikernel::function(route = "GET /hello")]
    fn hello_again(_request: Request) -> Response {
        Response::text("hello again")
    }
}

fn main() {}
