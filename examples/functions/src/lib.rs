//! Serverless functions: one crate, one image per function (`cargo uk functions build
//! examples/functions`), each answering its route when the gateway (`cargo uk serve
//! examples/functions`) hands it a request.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::collections::BTreeMap;
use alloc::string::String;
use core::sync::atomic::{AtomicU64, Ordering};
use serde::Serialize;
use unikernel::prelude::*;

mod stats;

use stats::{Numbers, Summary};

/// The smallest function: a fixed answer.
#[unikernel::function(route = "GET /hello")]
fn hello(_request: Request) -> Response {
    Response::text("hello from a function\n")
}

/// The body back, with its content type.
#[unikernel::function(route = "POST /echo", heap = "8 MiB", max_request = "2 MiB")]
fn echo(request: Request) -> Response {
    let content_type = String::from(
        request
            .header("content-type")
            .unwrap_or("application/octet-stream"),
    );
    Response::bytes(request.into_body()).with_header("content-type", content_type)
}

/// JSON in, JSON out: `{"numbers": [3, 1, 2]}` -> count, sum, min, max and the sorted list.
#[unikernel::function(route = "POST /stats", mode = "snapshot", timeout = "2 s")]
fn stats(request: Request) -> Result<Response, Response> {
    let Numbers { numbers } = request
        .json()
        .map_err(|error| Response::status(400).with_text(alloc::format!("{error}\n")))?;
    Ok(Response::json(&Summary::of(numbers)))
}

/// The state `define` shares across requests: built once, before the snapshot.
struct Dictionary {
    words: BTreeMap<&'static str, &'static str>,
}

#[unikernel::init]
fn init() -> Dictionary {
    let words = [
        (
            "unikernel",
            "a single-purpose kernel linked with its one application",
        ),
        (
            "snapshot",
            "a VM's memory and registers, saved to be restored",
        ),
        ("function", "code that answers one request"),
    ];
    Dictionary {
        words: words.into_iter().collect(),
    }
}

/// Looks `?word=` up in the state `init` made.
#[unikernel::function(route = "GET /define")]
fn define(request: Request, dictionary: &Dictionary) -> Response {
    let word = request.query_param("word").unwrap_or("");
    match dictionary.words.get(word) {
        Some(meaning) => Response::text(alloc::format!("{word}: {meaning}\n")),
        None => Response::status(404).with_text(alloc::format!("no word `{word}`\n")),
    }
}

/// Fails on purpose: the gateway answers 502 and keeps serving.
#[unikernel::function(route = "GET /panic")]
fn panics(_request: Request) -> Response {
    panic!("this function panics on purpose")
}

/// Never answers: the gateway stops it at its timeout and answers 504.
#[unikernel::function(route = "GET /forever", timeout = "1 s")]
fn forever(_request: Request) -> Response {
    loop {
        core::hint::spin_loop();
    }
}

static COUNT: AtomicU64 = AtomicU64::new(0);

/// A global counter: 1 on every request in `fresh` and `snapshot` modes (each request has
/// a VM of its own), 1, 2, 3... in `warm` mode.
#[unikernel::function(route = "POST /count")]
fn count(_request: Request) -> Response {
    let count = COUNT.fetch_add(1, Ordering::Relaxed) + 1;
    Response::text(alloc::format!("{count}\n"))
}

#[derive(Serialize)]
struct Now {
    time: String,
    random: u64,
}

/// Subsystems per function: the wall clock (the host's time at the request, even in a VM
/// restored from a snapshot) and random numbers (reseeded for every request).
#[unikernel::function(route = "GET /now", clock, rand)]
fn now(_request: Request, clock: Clock, rand: Rand) -> Response {
    let time = clock
        .wall()
        .map(|wall| alloc::format!("{wall}"))
        .unwrap_or_default();
    Response::json(&Now {
        time,
        random: rand.u64(),
    })
}
