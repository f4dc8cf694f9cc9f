//! The baselines of the functions benchmark (`benches/functions.sh`): the handlers of
//! `examples/functions`' `hello` and `stats`, served on loopback by the same HTTP stack as
//! the gateway (hyper on tokio), either
//!
//! - `function-baseline serve ADDRESS inprocess`: called in the server's process (a warm
//!   handler, the floor of any isolation), or
//! - `function-baseline serve ADDRESS cgi`: in a new process per request, this binary
//!   again as `function-baseline handle ROUTE`, the body on its stdin and the response
//!   body on its stdout (a CGI-like process per request, the isolation Linux offers
//!   without a VM).
#![forbid(unsafe_code)]

// examples/functions' `stats` module, included below, names `alloc` as a no_std crate does.
extern crate alloc;

use std::convert::Infallible;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;

// examples/functions' own `stats` code.
#[path = "../../../examples/functions/src/stats.rs"]
mod stats;

use stats::{Numbers, Summary};

/// The handlers: `(status, body)` for a route and a body.
fn handle(route: &str, body: &[u8]) -> (u16, Vec<u8>) {
    match route {
        "/hello" => (200, b"hello from a function\n".to_vec()),
        "/stats" => match serde_json::from_slice::<Numbers>(body) {
            Ok(Numbers { numbers }) => (
                200,
                serde_json::to_vec(&Summary::of(numbers)).unwrap_or_default(),
            ),
            Err(error) => (400, format!("{error}\n").into_bytes()),
        },
        _ => (404, b"no such route\n".to_vec()),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    InProcess,
    Cgi,
}

async fn answer(
    mode: Mode,
    program: Arc<std::path::PathBuf>,
    request: Request<hyper::body::Incoming>,
) -> Response<Full<Bytes>> {
    let route = request.uri().path().to_string();
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let (status, body) = match mode {
        Mode::InProcess => handle(&route, &body),
        Mode::Cgi => cgi(&program, &route, &body).await,
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    response
}

/// The handler in a process of its own; its exit status 0 is a 200, 4 a 400, else 502.
async fn cgi(program: &std::path::Path, route: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let child = tokio::process::Command::new(program)
        .args(["handle", route])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        return (502, b"cannot start the handler\n".to_vec());
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(body).await;
    }
    match child.wait_with_output().await {
        Ok(output) => {
            let status = match output.status.code() {
                Some(0) => 200,
                Some(4) => 400,
                Some(44) => 404,
                _ => 502,
            };
            (status, output.stdout)
        }
        Err(_) => (502, Vec::new()),
    }
}

#[tokio::main]
async fn serve(address: SocketAddr, mode: Mode) {
    let listener = match tokio::net::TcpListener::bind(address).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("function-baseline: cannot listen on {address}: {error}");
            std::process::exit(1);
        }
    };
    let program = Arc::new(std::env::current_exe().expect("the program's path"));
    println!(
        "listening on http://{}",
        listener.local_addr().expect("an address")
    );
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let program = Arc::clone(&program);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let program = Arc::clone(&program);
                async move { Ok::<_, Infallible>(answer(mode, program, request).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("handle") => {
            let route = args.get(2).map_or("", String::as_str);
            let mut body = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut body);
            let (status, out) = handle(route, &body);
            let _ = std::io::stdout().write_all(&out);
            std::process::exit(match status {
                200 => 0,
                400 => 4,
                _ => 44,
            });
        }
        Some("serve") => {
            let address = args
                .get(2)
                .and_then(|address| address.parse().ok())
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8090)));
            let mode = match args.get(3).map(String::as_str) {
                Some("cgi") => Mode::Cgi,
                _ => Mode::InProcess,
            };
            serve(address, mode);
        }
        _ => {
            eprintln!("usage: function-baseline serve ADDRESS inprocess|cgi");
            std::process::exit(2);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_handlers_answer_as_the_functions_do() {
        assert_eq!(
            handle("/hello", b""),
            (200, b"hello from a function\n".to_vec())
        );
        let (status, body) = handle("/stats", br#"{"numbers": [3, 1, 2]}"#);
        assert_eq!(status, 200);
        assert_eq!(
            String::from_utf8(body).unwrap(),
            r#"{"count":3,"sum":6,"min":1,"max":3,"sorted":[1,2,3]}"#
        );
        assert_eq!(handle("/stats", b"{").0, 400);
        assert_eq!(handle("/x", b"").0, 404);
    }
}
